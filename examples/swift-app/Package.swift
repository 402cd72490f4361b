// swift-tools-version:6.2
import PackageDescription

// An application that defines its own workflows in Swift and runs them with DeerFlow's
// commands: `swift run instrumented-workflows server`, `... worker`, `... run`, `... demo`.
let package = Package(
    name: "instrumented-workflows",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "deerflow", path: "../.."),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    ],
    targets: [
        .executableTarget(
            name: "InstrumentedWorkflows",
            dependencies: [
                .product(name: "DeerFlow", package: "deerflow"),
                .product(name: "DeerFlowCLI", package: "deerflow"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Sources/InstrumentedWorkflows"
        ),
    ]
)
