import CodeAPI
import CodeDomain
import CodeRuntime
import CodeStore
import CodeTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging

/// Secrets of one key per role, for a test's API.
struct TestKeys: Sendable {
    let admin: String
    let `operator`: String
    let viewer: String
    let mcp: String

    func secret(for role: Role?) -> String? {
        switch role {
        case .admin: admin
        case .operator: `operator`
        case .viewer: viewer
        case nil: nil
        }
    }
}

/// What a test gets: a client for the application, the keys, a store on the same database (to play the
/// worker), and the runtime (for metrics).
struct APITestContext: Sendable {
    let client: any TestClientProtocol
    let keys: TestKeys
    let store: any Store
    let runtime: ServiceRuntime
    let backend: TestBackend
}

/// Builds code-api on a database of its own with an admin key from the settings (as compose injects it),
/// creates an operator and a viewer key through the API, and runs `body` through `setup`.
func withAPI(
    _ backend: TestBackend,
    setup: TestingSetup = .router,
    allowedRegistries: [String] = [],
    keyCacheLifetime: Duration = APIKeyCache.longestLifetime,
    _ body: @escaping @Sendable (APITestContext) async throws -> Void
) async throws {
    try await TestDatabase.with(backend) { database in
        let location = try DatabaseLocation(url: database.url)
        let admin = APIKeySecret.generate()
        let mcp = APIKeySecret.generate()
        let settings = APISettings(
            database: location, adminKey: admin, mcpKey: mcp, policy: DeploymentPolicy(allowedRegistries: allowedRegistries),
            keyCacheLifetime: keyCacheLifetime)
        var logger = Logger(label: "code-api-test")
        logger.logLevel = .warning
        let runtime = ServiceRuntime(name: "code-api", settings: RuntimeSettings(host: "127.0.0.1", port: 0), logger: logger)
        let app = try await buildApplication(settings: settings, runtime: runtime)
        let storeHandle = try StoreHandle.open(location, logger: logger)
        try await storeHandle.withServices { store in
            try await app.test(setup) { client in
                let operatorKey = try await createKey(client, admin: admin, role: .operator)
                let viewerKey = try await createKey(client, admin: admin, role: .viewer)
                let keys = TestKeys(admin: admin, operator: operatorKey, viewer: viewerKey, mcp: mcp)
                try await body(APITestContext(client: client, keys: keys, store: store, runtime: runtime, backend: backend))
            }
        }
    }
}

func createKey(_ client: any TestClientProtocol, admin: String, role: Role, name: String? = nil) async throws -> String {
    let response = try await client.call(
        .post, "/v1/keys", key: admin, json: ["name": name ?? "\(role.rawValue)-key", "role": role.rawValue])
    guard response.status == .created, let secret = try response.object()["secret"] as? String else {
        throw UnexpectedBody(text: "key creation answered \(response.status): \(String(buffer: response.body))")
    }
    return secret
}

enum Requests {
    static let digest = "sha256:" + String(repeating: "9a", count: 32)

    static func deployment(
        service: String = "web", image: String = "ghcr.io/acme/web:1.4.2", environment: String = "staging",
        replicas: Int = 2, extra: [String: Any] = [:]
    ) -> [String: Any] {
        [
            "service": service, "image": image, "environment": environment, "strategy": "rolling", "replicas": replicas,
            "labels": ["team": "core"],
        ]
        .merging(extra) { _, new in new }
    }
}
