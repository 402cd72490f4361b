import DeerFlowCLI

await DeerFlowCLI.main()
