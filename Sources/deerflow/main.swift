import DeerFlowCLI

await DeerFlowCommandLine.main()
