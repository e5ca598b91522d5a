// swift-tools-version:6.1
// CODE services: code-api, code-worker and code-mcp share one package so that a single
// compile of the dependencies serves all three executables (and all three container images).
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

/// A service made by scripts/new-service.sh from templates/service: a library target with its settings
/// and `buildApplication` on the shared runtime, a thin executable, and a test target.
struct GeneratedService {
    /// The executable and image name, as in services.json (`code-notify`).
    let name: String
    /// The library target (`CodeNotify`); its tests are `CodeNotifyTests`.
    let module: String
}

let generatedServices: [GeneratedService] = [
    // scripts/new-service.sh adds services above this line.
]

let package = Package(
    name: "code-services",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "code-api", targets: ["code-api"]),
        .executable(name: "code-worker", targets: ["code-worker"]),
        .executable(name: "code-mcp", targets: ["code-mcp"]),
        // Every service in one binary, the one the container images ship (Sources/code-services).
        .executable(name: "code-services", targets: ["code-services"]),
    ] + generatedServices.map { .executable(name: $0.name, targets: [$0.name]) },
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", from: "0.12.1"),
        .package(url: "https://github.com/apple/swift-openapi-generator.git", from: "1.14.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird.git", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0"),
    ],
    targets: [
        // Settings from environment variables (secrets also from NAME_FILE) through swift-configuration,
        // with errors that name the variable. Used by the runtime and by the store's database settings.
        .target(
            name: "CodeConfiguration",
            dependencies: [.product(name: "Configuration", package: "swift-configuration")],
            swiftSettings: strictSettings
        ),
        // Sets the Swift runtime's global-enqueue hook, which Swift cannot name (see its header); used by
        // CodeRuntime's EventLoopExecutor.
        .target(name: "CConcurrencyHook"),
        // Timers on the event loops (`LoopTimer`) for the waits that run often: the worker's and the store's.
        .target(
            name: "CodeTiming",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Shared service runtime: configuration, logging, request ids, problem+json errors,
        // metrics, health and lifecycle. Every executable stands on it.
        .target(
            name: "CodeRuntime",
            dependencies: [
                "CodeConfiguration", "CodeDomain",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                "CConcurrencyHook",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ],
            swiftSettings: strictSettings
        ),
        // Deployment domain: image references, the deployment policy, shared value types.
        // Dependency-free so that the API, the worker and the MCP server reuse one definition.
        .target(
            name: "CodeDomain",
            swiftSettings: strictSettings
        ),
        // The API contract: Sources/CodeAPIContract/openapi.yaml (openapi/openapi.yaml links to it), the
        // one hand-written description of the API; its types, generated at build time by
        // swift-openapi-generator; the domain's values as those types; and the document as a resource.
        // code-api serves them, code-mcp sends them, code-worker's webhook delivers them.
        .target(
            name: "CodeAPIContract",
            dependencies: [
                "CodeDomain", .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            resources: [.copy("openapi.yaml")],
            swiftSettings: strictSettings,
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        // Persistence: repository protocols with SQLite (GRDB) and PostgreSQL (postgres-nio) implementations.
        .target(
            name: "CodeStore",
            dependencies: [
                "CodeDomain", "CodeConfiguration", "CodeTiming",
                .product(name: "GRDB", package: "GRDB.swift"),
                // The SQLite C API GRDB links, for reading a statement's columns (SQLiteRecordCursor.swift).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSettings
        ),
        // code-api: the contract's generated server protocol (its openapi.yaml links to the contract's),
        // implemented over the store, served by Hummingbird.
        .target(
            name: "CodeAPI",
            dependencies: [
                "CodeRuntime", "CodeConfiguration", "CodeDomain", "CodeStore", "CodeAPIContract",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSettings,
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        .target(
            name: "CodeWorker",
            dependencies: [
                "CodeRuntime", "CodeConfiguration", "CodeDomain", "CodeStore", "CodeAPIContract", "CodeTiming",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "CodeMCP",
            dependencies: [
                "CodeRuntime", "CodeConfiguration", "CodeDomain", "CodeAPIContract",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            // openapi.yaml (a link to the contract's) feeds the generated client.
            swiftSettings: strictSettings,
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        // Each service's own executable runs its library's command (`swift run code-api`, the
        // development image, the tests); the images run the same commands from code-services.
        .executableTarget(name: "code-api", dependencies: ["CodeAPI"], swiftSettings: strictSettings),
        .executableTarget(name: "code-worker", dependencies: ["CodeWorker"], swiftSettings: strictSettings),
        .executableTarget(name: "code-mcp", dependencies: ["CodeMCP"], swiftSettings: strictSettings),
        // The multi-call binary: every service's library, generated ones included (from `generatedServices`;
        // scripts/new-service.sh also adds the command to its table in Sources/code-services/main.swift).
        .executableTarget(
            name: "code-services",
            dependencies: [
                "CodeAPI", "CodeWorker", "CodeMCP", "CodeRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ] + generatedServices.map { .target(name: $0.module) },
            exclude: ["code-services.order", "private-functions.ld"],
            swiftSettings: strictSettings,
            // No dynamic symbol table (the toolchain links executables with --export-dynamic): nothing
            // looks our symbols up at run time, the backtracer reads names from the symbol table or
            // from code-services.debug, and it is 8 MB of the binary (.dynsym, .dynstr, .gnu.hash).
            // Linked by lld (the toolchain's, usr/bin/ld.lld) rather than gold, for packed relative
            // relocations (DT_RELR, glibc 2.36+, Debian 12's): the 180,000 pointer fix-ups of
            // Swift's metadata take 36 kB instead of 4.4 MB of .rela.dyn, which the loader read at
            // every start. lld also links this binary in 2 s where gold took 50 s.
            // Functions laid out in the order of code-services.order, start-up's and an idle service's
            // first, and the private ones the file cannot name together (private-functions.ld): the
            // kernel maps 64 KiB around each page of code a process runs, so scattered they kept half
            // of all code resident. This takes effect when every module is compiled with one section
            // per function (the Makefile's RELEASE_FLAGS, the Dockerfile); scripts/symbol-order.py.
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-use-ld=lld", "-Xlinker", "--no-export-dynamic", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                        "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Sources/code-services/code-services.order",
                        "-Xlinker", "--no-warn-symbol-ordering",
                        "-Xlinker", "-T\(Context.packageDirectory)/Sources/code-services/private-functions.ld",
                    ],
                    .when(platforms: [.linux]))
            ]
        ),
        // Test helpers shared by the test targets: child processes, free ports, loopback HTTP, PostgreSQL.
        .target(
            name: "CodeTestSupport",
            dependencies: [
                "CodeDomain", "CodeRuntime",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/CodeTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CodeRuntimeTests",
            dependencies: [
                "CodeRuntime", "CodeConfiguration", "CodeTestSupport", "CConcurrencyHook",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CodeTimingTests",
            dependencies: ["CodeTiming"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CodeDomainTests",
            dependencies: ["CodeDomain"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CodeStoreTests",
            dependencies: [
                "CodeStore", "CodeDomain", "CodeTestSupport",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CodeAPITests",
            dependencies: [
                "CodeAPI", "CodeAPIContract", "CodeConfiguration", "CodeRuntime", "CodeStore", "CodeDomain", "CodeTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CodeWorkerTests",
            dependencies: [
                "CodeWorker", "CodeRuntime", "CodeStore", "CodeDomain", "CodeTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CodeMCPTests",
            dependencies: [
                "CodeMCP", "CodeAPI", "CodeWorker", "CodeRuntime", "CodeStore", "CodeDomain", "CodeTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strictSettings
        ),
        // Runs the real executables as child processes; depending on them makes `swift test` build them.
        .testTarget(
            name: "ExecutableTests",
            dependencies: [
                "code-api", "code-worker", "code-mcp", "code-services", "CodeTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
    ] + generatedServices.flatMap { service -> [Target] in
        [
            .target(
                name: service.module,
                dependencies: [
                    "CodeRuntime", "CodeConfiguration",
                    .product(name: "Hummingbird", package: "hummingbird"),
                    .product(name: "ArgumentParser", package: "swift-argument-parser"),
                ],
                swiftSettings: strictSettings
            ),
            .executableTarget(name: service.name, dependencies: [.target(name: service.module)], swiftSettings: strictSettings),
            .testTarget(
                name: service.module + "Tests",
                // The executable too: the tests run it as a process.
                dependencies: [
                    .target(name: service.module), .target(name: service.name), "CodeRuntime", "CodeTestSupport",
                    .product(name: "HummingbirdTesting", package: "hummingbird"),
                ],
                swiftSettings: strictSettings
            ),
        ]
    }
)
