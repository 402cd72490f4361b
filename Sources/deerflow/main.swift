import DeerFlowCLI
print("x")
