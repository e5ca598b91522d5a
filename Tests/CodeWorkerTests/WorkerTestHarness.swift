import CodeDomain
import CodeRuntime
import CodeStore
import CodeTestSupport
import CodeWorker
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import ServiceLifecycle

/// A worker application on a database of its own, with a store on the same database to play code-api.
struct WorkerTestContext: Sendable {
    let client: any TestClientProtocol
    let store: any Store
    let runtime: ServiceRuntime
    let database: TestDatabase
    let location: DatabaseLocation

    /// Inserts a queued deployment as code-api would.
    func enqueue(
        service: String = "web", image: String = "ghcr.io/acme/web:2.0", environment: DeploymentEnvironment = .staging,
        replicas: Int = 2, healthURL: String? = nil
    ) async throws -> Deployment {
        let spec = try DeploymentSpec.validate(
            DeploymentRequest(
                service: service, image: image, environment: environment.rawValue, replicas: replicas, healthURL: healthURL
            )
        ).get()
        return try await store.createDeployment(NewDeployment(spec: spec, createdBy: "key_test")).deployment
    }

    /// Waits (bounded) until the deployment reaches a terminal status.
    func waitUntilFinished(_ id: String, timeout: Duration = .seconds(30)) async throws -> Deployment {
        try await waitFor(id, timeout: timeout) { $0.status.isTerminal }
    }

    func waitFor(_ id: String, timeout: Duration = .seconds(30), _ condition: (Deployment) -> Bool) async throws -> Deployment {
        var matched: Deployment?
        try await Polling.until("waiting for deployment \(id)", timeout: timeout, every: .milliseconds(20)) {
            matched = try await store.deployment(id: id).flatMap { condition($0) ? $0 : nil }
            return matched != nil
        }
        return matched!
    }

    /// The worker's metrics once they contain `line` (or after `timeout`, for the caller's expectations to
    /// report): a deployment is terminal in the database a moment before the worker counts it.
    func metrics(containing line: String, timeout: Duration = .seconds(5)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            let metrics = String(decoding: runtime.metrics.exposition(), as: UTF8.self)
            if metrics.contains(line) || ContinuousClock.now >= deadline { return metrics }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func events(_ id: String) async throws -> [DeploymentEvent] {
        try await store.events(deploymentID: id, after: nil, limit: 1000).items
    }
}

func workerSettings(_ location: DatabaseLocation, _ configure: (inout WorkerSettings) -> Void = { _ in }) -> WorkerSettings {
    var settings = WorkerSettings(
        database: location, workerID: "test-worker-\(UUID().uuidString.prefix(6))", concurrency: 4, leaseDuration: .seconds(30),
        rollout: .simulated(step: .milliseconds(20)), verifyTimeout: .seconds(5), verifyInterval: .milliseconds(50),
        // The tests' health endpoints listen on loopback, which health_url may not reach by default.
        healthURLAllowlist: try! HealthURLAllowlist(parsing: ["127.0.0.1"]), maximumPollInterval: .milliseconds(100)
    )
    configure(&settings)
    return settings
}

func quietLogger() -> Logger {
    var logger = Logger(label: "code-worker-test")
    logger.logLevel = .critical
    return logger
}

func withWorker(
    _ backend: TestBackend,
    setup: TestingSetup = .router,
    configure: @escaping @Sendable (inout WorkerSettings) -> Void = { _ in },
    _ body: @escaping @Sendable (WorkerTestContext) async throws -> Void
) async throws {
    try await withMigratedStore(backend) { database, location, store in
        let runtime = ServiceRuntime(name: "code-worker", settings: RuntimeSettings(host: "127.0.0.1", port: 0), logger: quietLogger())
        let app = try await buildApplication(settings: workerSettings(location, configure), runtime: runtime)
        try await app.test(setup) { client in
            try await body(WorkerTestContext(client: client, store: store, runtime: runtime, database: database, location: location))
        }
    }
}

/// A migrated store on a database of its own, for tests that run workers (or pipelines) themselves.
func withMigratedStore(
    _ backend: TestBackend,
    _ body: @escaping @Sendable (TestDatabase, DatabaseLocation, any Store) async throws -> Void
) async throws {
    try await TestDatabase.with(backend) { database in
        let location = try DatabaseLocation(url: database.url)
        let storeHandle = try StoreHandle.open(location, logger: quietLogger())
        try await storeHandle.withServices { store in
            try await store.migrate()
            try await body(database, location, store)
        }
    }
}
