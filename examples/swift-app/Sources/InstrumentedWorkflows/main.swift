import DeerFlowCLI

// Every `deerflow` subcommand, with the Swift workflows above registered beside any YAML files
// given by --workflows.
await DeerFlowCommandLine.main(workflows: [instrumented])
