// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "fleet",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fleet", targets: ["fleet"]),
        .library(name: "AMQPClient", targets: ["AMQPClient"]),
        .library(name: "FleetRuntime", targets: ["FleetRuntime"]),
        .library(name: "Liquid", targets: ["Liquid"]),
        .library(name: "ProfileStore", targets: ["ProfileStore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/pointfreeco/swift-clocks.git", from: "1.1.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // C libraries, through system library targets with a shim header.
        .systemLibrary(
            name: "CRabbitMQ", path: "Sources/CRabbitMQ", pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(
            name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),

        // The platform.
        // Leaves: the one JSON parser and writer (also Liquid's), and the one backoff (job retries, reconnects).
        .target(name: "FleetJSON", swiftSettings: strict),
        .target(name: "FleetBackoff", swiftSettings: strict),
        // Liquid: a Shopify-compatible template engine; no dependency on the rest of the fleet but FleetJSON.
        .target(name: "Liquid", dependencies: ["FleetJSON"], exclude: ["README.md"], swiftSettings: strict),
        .target(
            name: "AMQPClient",
            dependencies: ["CRabbitMQ", "FleetBackoff", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        // The contract: envelopes, errors, retry strategy. Links no C library.
        .target(name: "FleetCore", dependencies: ["FleetJSON", "FleetBackoff"], swiftSettings: strict),
        // The job ledger and effects journal on PostgreSQL (postgres-nio), shared by the workers of many hosts
        // (`FLEET_STORE=postgres://...`).
        .target(
            name: "FleetPostgres",
            dependencies: [
                "FleetCore", "FleetStore", "ProfileStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .target(
            name: "FleetStore",
            dependencies: ["CSQLite", "FleetCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        // The runtime: the queue-driver protocol (and its in-memory driver), job processing, the effects journal.
        .target(
            name: "FleetRuntime",
            dependencies: [
                "FleetCore", "FleetStore", "FleetBackoff",
                .product(name: "Clocks", package: "swift-clocks"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        // The runtime's queue on RabbitMQ: the AMQP driver and the broker topology.
        .target(
            name: "FleetAMQP",
            dependencies: [
                "AMQPClient", "FleetCore", "FleetRuntime",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        // Signed links of the mails (unsubscribe, preference centre, open pixel, click redirect): written by the
        // email worker, verified by `fleet serve`.
        .target(
            name: "FleetLinks", dependencies: ["FleetJSON", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        // The shared profile store (SQLite) and the CRM sync worker (kind crm).
        .target(
            name: "ProfileStore",
            dependencies: [
                "CSQLite", "FleetCore", "FleetStore", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // What every marketing kind (email, push) shares: the campaign's parameters and A/B assignment, frequency caps
        // across channels, quiet hours and local days, JSON to Liquid.
        .target(
            name: "FleetMarketing",
            dependencies: [
                "FleetCore", "FleetRuntime", "Liquid", "ProfileStore", .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        .target(
            name: "CRMWorker", dependencies: ["FleetCore", "FleetRuntime", "ProfileStore"], path: "Workers/CRMWorker",
            swiftSettings: strict),
        // The email campaign worker (kind email): templates, consent and caps, variants, MIME, delivery.
        .target(
            name: "EmailWorker",
            dependencies: [
                "CSQLite", "FleetBackoff", "FleetCampaign", "FleetCore", "FleetLinks", "FleetMarketing", "FleetRuntime", "FleetStore", "Liquid", "ProfileStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            path: "Workers/EmailWorker", exclude: ["README.md"], swiftSettings: strict),
        // The push worker (kind push): APNs and FCM over HTTP/2 (async-http-client), JWTs signed with swift-crypto.
        .target(
            name: "PushWorker",
            dependencies: [
                "FleetCore", "FleetMarketing", "FleetRuntime", "Liquid", "ProfileStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Workers/PushWorker", exclude: ["README.md"], swiftSettings: strict),
        // The content worker (kind content): recommendation models trained from the store's events and catalog,
        // recommendation blocks per person and slot.
        .target(
            name: "ContentWorker",
            dependencies: [
                "FleetBackoff", "FleetCampaign", "FleetCore", "FleetMarketing", "FleetRuntime", "Liquid", "ProfileStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Workers/ContentWorker", exclude: ["README.md"], swiftSettings: strict),
        // Campaign fan-out (`fleet campaign`): a segment's members, each one job in their local time, throttled,
        // published with confirms and recorded per campaign so that a second run resumes.
        .target(
            name: "FleetCampaign",
            dependencies: [
                "AMQPClient", "FleetAMQP", "FleetBackoff", "FleetCore", "FleetMarketing", "FleetRuntime", "FleetStore", "ProfileStore",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // The engagement service (`fleet serve`, Hummingbird): one-click unsubscribe, preference centre, opens and
        // clicks, campaign reports; also the workers' /metrics, /healthz and /readyz on the same HTTP stack.
        .target(
            name: "FleetServe",
            dependencies: [
                "FleetCampaign", "FleetCore", "FleetLinks", "FleetStore", "Liquid", "ProfileStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        // The benchmark harness: raw broker pipe, result tap, CPU budget, workloads and each bench's runs; the
        // `fleet bench` commands call into it.
        .target(
            name: "FleetBench",
            dependencies: [
                "AMQPClient", "CRabbitMQ", "ContentWorker", "CRMWorker", "EmailWorker", "FleetAMQP", "FleetBackoff", "FleetCampaign", "FleetCore", "FleetLinks", "FleetRuntime", "FleetStore", "Liquid",
                "ProfileStore", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "fleet",
            dependencies: [
                "AMQPClient", "FleetAMQP", "FleetBackoff", "FleetBench", "FleetCampaign", "FleetCore", "FleetRuntime", "FleetServe", "Liquid",
                "ProfileStore", "CRMWorker", "ContentWorker", "EmailWorker", "FleetMarketing", "FleetPostgres", "PushWorker",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),

        // Tests: unit tests, and integration tests against a real RabbitMQ and a real SQLite file.
        .target(
            name: "FleetTestSupport",
            dependencies: ["AMQPClient", "FleetAMQP", "FleetCore", "FleetPostgres", .product(name: "PostgresNIO", package: "postgres-nio"),
                           .product(name: "Logging", package: "swift-log")],
            path: "Tests/FleetTestSupport",
            swiftSettings: strict),
        .testTarget(name: "FleetCoreTests", dependencies: ["FleetCore"], swiftSettings: strict),
        .testTarget(name: "LiquidTests", dependencies: ["Liquid"], swiftSettings: strict),
        // Runs the built `fleet` executable (FLEET_BIN); the Ruby parity test also uses the engine directly.
        .testTarget(name: "FleetCLITests", dependencies: ["Liquid"], swiftSettings: strict),
        .testTarget(name: "FleetStoreTests", dependencies: ["FleetStore"], swiftSettings: strict),
        .testTarget(
            name: "FleetPostgresTests",
            dependencies: [
                "FleetPostgres", "FleetCore", "FleetRuntime", "FleetStore", "FleetTestSupport", "ProfileStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "FleetCampaignTests",
            dependencies: ["FleetCampaign", "FleetAMQP", "FleetCore", "FleetRuntime", "FleetStore", "AMQPClient", "FleetTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "AMQPClientTests",
            dependencies: ["AMQPClient", "FleetAMQP", "FleetCore", "FleetTestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .testTarget(
            name: "ProfileStoreTests",
            dependencies: ["ProfileStore", "CRMWorker", "FleetCore", "FleetAMQP", "FleetPostgres", "FleetStore", "AMQPClient", "FleetTestSupport",
                           .product(name: "PostgresNIO", package: "postgres-nio")],
            swiftSettings: strict),
        .testTarget(
            name: "EmailWorkerTests",
            dependencies: ["EmailWorker", "FleetMarketing", "Liquid", "ProfileStore", "FleetCore", "FleetAMQP", "FleetStore", "AMQPClient", "FleetTestSupport",
                           "FleetPostgres", .product(name: "PostgresNIO", package: "postgres-nio")],
            exclude: ["inspect_maildir.py", "starttls_injector.py"],  // run by the tests with python3
            swiftSettings: strict),
        .testTarget(
            name: "FleetServeTests",
            dependencies: [
                "FleetServe", "FleetLinks", "FleetCampaign", "ProfileStore", "FleetStore", "FleetCore", "EmailWorker", "Liquid", "FleetTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            exclude: ["browser_common.py", "browser_preferences.py", "browser_report.py"],  // run by the tests with python3 (selenium, chromium)
            swiftSettings: strict),
        .testTarget(
            name: "ContentWorkerTests",
            dependencies: [
                "ContentWorker", "FleetCore", "FleetMarketing", "FleetRuntime", "Liquid", "ProfileStore", "FleetTestSupport",
                .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "PushWorkerTests",
            dependencies: [
                "PushWorker", "FleetCore", "FleetMarketing", "FleetRuntime", "FleetStore", "ProfileStore", "FleetTestSupport",
                "AMQPClient", "FleetAMQP",
                .product(name: "Clocks", package: "swift-clocks"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "FleetRuntimeTests",
            dependencies: [
                "FleetRuntime", "FleetAMQP", "FleetCore", "AMQPClient", "FleetStore", "FleetTestSupport",
                .product(name: "Clocks", package: "swift-clocks"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
