import CodeDomain
import CodeStore
import CodeTestSupport
import Foundation
import Logging

/// Runs `body` against a migrated store on a database of its own, then drops the database.
func withStore(_ backend: TestBackend, _ body: @escaping @Sendable (any Store) async throws -> Void) async throws {
    try await TestDatabase.with(backend) { database in
        let handle = try StoreHandle.open(try DatabaseLocation(url: database.url), logger: Logger(label: "store-test"))
        try await handle.withServices { store in
            try await store.migrate()
            try await body(store)
        }
    }
}

enum Fixtures {
    static let digest = "sha256:" + String(repeating: "3c", count: 32)

    static func spec(
        service: String = "web", image: String = "ghcr.io/acme/web:1.2.3", environment: DeploymentEnvironment = .staging,
        replicas: Int = 2, labels: [String: String] = ["team": "core"]
    ) -> DeploymentSpec {
        try! DeploymentSpec.validate(
            DeploymentRequest(
                service: service, image: image, environment: environment.rawValue, strategy: "rolling", replicas: replicas,
                healthURL: "http://web.internal/health", labels: labels
            )
        ).get()
    }

    static func newDeployment(
        _ spec: DeploymentSpec = Fixtures.spec(), by key: String? = "key_test", idempotencyKey: String? = nil,
        requestHash: String? = nil, at date: Date = Date()
    ) -> NewDeployment {
        NewDeployment(spec: spec, createdBy: key, idempotencyKey: idempotencyKey, requestHash: requestHash, createdAt: date)
    }
}
