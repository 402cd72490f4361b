// swift-tools-version:6.0
// The code generator behind scripts/generate-openapi: swift-openapi-generator's command-line tool,
// at the version whose output is committed in Sources/DeerFlowAPI/Generated. The script builds it
// with its own scratch path (.build-openapi-generator), so DeerFlow's build never compiles it.
import PackageDescription

let package = Package(
    name: "openapi-generator",
    dependencies: [
        .package(url: "https://github.com/apple/swift-openapi-generator.git", exact: "1.14.3"),
    ],
    targets: []
)
