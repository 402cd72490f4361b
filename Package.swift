// swift-tools-version:6.2
import PackageDescription

/// Strict baseline for every target of ours: Swift 6 language mode plus the upcoming features the
/// Swift server projects we follow enable (see hummingbird's Package.swift).
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// For DeerFlowAPI, whose code swift-openapi-generator writes: its imports carry no access level
/// (scripts/generate-openapi explains why), so they keep Swift 6's meaning there.
let generatedCodeSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "deerflow",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "deerflow", targets: ["deerflow"]),
        .library(name: "DeerFlow", targets: ["DeerFlow"]),
        .library(name: "DeerFlowServer", targets: ["DeerFlowServer"]),
        .library(name: "DeerFlowCLI", targets: ["DeerFlowCLI"]),
        .library(name: "DeerFlowTesting", targets: ["DeerFlowTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        // gzip for the UI's pages (zlib).
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        // The API's code is generated from openapi.yaml ahead of time (scripts/generate-openapi),
        // so only the runtime and the transports are dependencies, not the generator.
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/swift-server/swift-openapi-hummingbird.git", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.4.0"),
        // HMAC-SHA256 of webhook bodies (constant-time comparison included).
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // The web UI's templates (Hummingbird's own templating).
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        // Pure domain: definitions, YAML workflow files, run/task state machine, retry policy, cron.
        // No NIO, no database, no HTTP.
        .target(
            name: "DeerFlowCore",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),
        // The engine: public Swift DSL, store protocol, scheduler and workers as Services, task
        // executors, events. Imports only the observability *APIs*.
        .target(
            name: "DeerFlow",
            dependencies: [
                "DeerFlowCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // The embedded store.
        .target(
            name: "DeerFlowSQLite",
            dependencies: [
                "DeerFlow",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                "DeerFlowCore",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The distributed store.
        .target(
            name: "DeerFlowPostgres",
            dependencies: [
                "DeerFlow",
                "DeerFlowCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // The API as openapi.yaml describes it: types, the server's APIProtocol and the client,
        // generated by scripts/generate-openapi (committed in Generated/), and openapi.yaml itself
        // as a resource.
        .target(
            name: "DeerFlowAPI",
            dependencies: [
                "DeerFlowCore",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            exclude: ["openapi-generator-config.yaml"],
            resources: [.copy("openapi.yaml")],
            swiftSettings: generatedCodeSettings
        ),
        // The HTTP API (implementing DeerFlowAPI's APIProtocol), health and metrics endpoints.
        .target(
            name: "DeerFlowHTTP",
            dependencies: [
                "DeerFlow",
                "DeerFlowCore",
                "DeerFlowAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                // The HTTP servers' own event loops (HTTPListener.eventLoopGroup).
                .product(name: "NIOPosix", package: "swift-nio"),
                // The connection deadlines and parser errors of the listeners (HTTPListener).
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The web UI: server-rendered pages beside the API, on its listener and access control.
        .target(
            name: "DeerFlowUI",
            dependencies: [
                "DeerFlow",
                "DeerFlowCore",
                "DeerFlowHTTP",
                "DeerFlowAlerting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // The only target that imports observability backends (Prometheus, OpenTelemetry).
        .target(
            name: "DeerFlowObservability",
            dependencies: [
                "DeerFlow",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "DeerFlowCore",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // In-process evaluation of Prometheus alerting rules over DeerFlow's own metric history.
        .target(
            name: "DeerFlowAlerting",
            dependencies: ["DeerFlowCore"],
            swiftSettings: strictSettings
        ),
        // Notifications: notifications.yaml, templates, routing, Slack / PagerDuty / SMTP clients.
        .target(
            name: "DeerFlowNotifications",
            dependencies: [
                "DeerFlowCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Structured logging: JSON lines, redaction, console/file sinks.
        .target(
            name: "DeerFlowLogging",
            dependencies: [
                "DeerFlowCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // The application layer: assembles a process (store, engine, metrics, API, alerting,
        // notifications, logging and tracing services) from an explicit configuration.
        .target(
            name: "DeerFlowServer",
            dependencies: [
                "DeerFlow",
                "DeerFlowCore",
                "DeerFlowSQLite",
                "DeerFlowPostgres",
                "DeerFlowHTTP",
                "DeerFlowUI",
                "DeerFlowObservability",
                "DeerFlowLogging",
                "DeerFlowAlerting",
                "DeerFlowNotifications",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Command-line interface; a user's own executable calls `DeerFlowCommand.main(workflows:)`.
        .target(
            name: "DeerFlowCLI",
            dependencies: [
                "DeerFlow",
                "DeerFlowServer",
                "DeerFlowSQLite",
                "DeerFlowPostgres",
                "DeerFlowHTTP",
                "DeerFlowObservability",
                "DeerFlowLogging",
                "DeerFlowAlerting",
                "DeerFlowNotifications",
                "DeerFlowAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                "DeerFlowCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // For users of the library: the store conformance suite and the engine harnesses.
        .target(
            name: "DeerFlowTesting",
            dependencies: [
                "DeerFlow",
                "DeerFlowCore",
                "DeerFlowSQLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // This repository's test harnesses (not a product): in-process and real `deerflow`
        // servers, PostgreSQL clusters, Prometheus, loopback peers run by the test venv.
        .target(
            name: "DeerFlowTestSupport",
            dependencies: [
                "DeerFlow",
                "DeerFlowCore",
                "DeerFlowSQLite",
                "DeerFlowHTTP",
                "DeerFlowObservability",
                "DeerFlowServer",
                "DeerFlowAlerting",
                "DeerFlowTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/DeerFlowTestSupport",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "deerflow",
            dependencies: ["DeerFlowCLI"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "DeerFlowCoreTests",
            dependencies: ["DeerFlowCore", .product(name: "PropertyBased", package: "swift-property-based"), .product(name: "Yams", package: "Yams")],
            swiftSettings: strictSettings
        ),
        // Property-based fuzzing of every parser of user input (workflow and config files, cron,
        // durations, PromQL, templates), from the seed files in Corpus/; DEERFLOW_FUZZ_COUNT sets
        // the inputs per parser (README, "Fuzzing").
        .testTarget(
            name: "DeerFlowFuzzTests",
            dependencies: [
                "DeerFlowCore", "DeerFlowAlerting", "DeerFlowNotifications", "DeerFlowLogging",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            resources: [.copy("Corpus")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "DeerFlowAlertingTests",
            dependencies: ["DeerFlowAlerting", "DeerFlowCore"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "DeerFlowNotificationsTests",
            dependencies: [
                "DeerFlowNotifications", "DeerFlowCore", "DeerFlowTesting", "DeerFlowTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "DeerFlowLoggingTests",
            dependencies: [
                "DeerFlowLogging", "DeerFlowCore", "DeerFlowTesting", "DeerFlowTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "DeerFlowPostgresTests",
            dependencies: [
                "DeerFlow", "DeerFlowCore", "DeerFlowPostgres", "DeerFlowTesting", "DeerFlowTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "DeerFlowTests",
            dependencies: [
                "DeerFlow", "DeerFlowSQLite", "DeerFlowHTTP", "DeerFlowUI", "DeerFlowObservability", "DeerFlowCLI", "DeerFlowServer", "DeerFlowTesting",
                "DeerFlowTestSupport", "DeerFlowAlerting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                // Values of the SQLite connection's binds and rows (SQLiteConnectionTests).
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                // Only for the test that shows why OTLP http/json is refused (OTLPJSONTests).
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                // The counting store of the UI's store-call test is a Service (UIStoreCallsTests).
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                "DeerFlowCore",
                "DeerFlowNotifications",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
