import CodeAPI
import CodeAPIContract
import CodeConfiguration
import CodeDomain
import CodeRuntime
import CodeStore
import CodeTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Authentication, roles, keys and audit")
struct AccessTests {
    /// One row of the role × endpoint matrix: the least role allowed and how to call the endpoint.
    struct Endpoint: Sendable, CustomStringConvertible {
        let method: HTTPRequest.Method
        let label: String
        let minimum: Role
        let success: HTTPResponse.Status
        /// Makes the request's path and body; called per attempt so that state-changing calls get fresh targets.
        let prepare: @Sendable (APITestContext) async throws -> (path: String, body: Any?)

        var description: String { "\(method) \(label)" }
    }

    static func newDeployment(_ api: APITestContext) async throws -> String {
        try await api.client.call(.post, "/v1/deployments", key: api.keys.admin, json: Requests.deployment()).decode(
            Components.Schemas.Deployment.self
        ).id
    }

    static let endpoints: [Endpoint] = [
        Endpoint(method: .get, label: "/v1/deployments", minimum: .viewer, success: .ok) { _ in ("/v1/deployments", nil) },
        Endpoint(method: .post, label: "/v1/deployments", minimum: .operator, success: .created) { _ in
            ("/v1/deployments", Requests.deployment())
        },
        Endpoint(method: .post, label: "/v1/deployments/validate", minimum: .viewer, success: .ok) { _ in
            ("/v1/deployments/validate", Requests.deployment())
        },
        Endpoint(method: .get, label: "/v1/deployments/{id}", minimum: .viewer, success: .ok) { api in
            ("/v1/deployments/\(try await newDeployment(api))", nil)
        },
        Endpoint(method: .post, label: "/v1/deployments/{id}/cancel", minimum: .operator, success: .ok) { api in
            ("/v1/deployments/\(try await newDeployment(api))/cancel", nil)
        },
        Endpoint(method: .get, label: "/v1/deployments/{id}/events", minimum: .viewer, success: .ok) { api in
            ("/v1/deployments/\(try await newDeployment(api))/events", nil)
        },
        Endpoint(method: .get, label: "/v1/deployments/{id}/manifests", minimum: .viewer, success: .notFound) { api in
            ("/v1/deployments/\(try await newDeployment(api))/manifests", nil)
        },
        Endpoint(method: .get, label: "/v1/policy", minimum: .viewer, success: .ok) { _ in ("/v1/policy", nil) },
        Endpoint(method: .post, label: "/v1/keys", minimum: .admin, success: .created) { _ in
            ("/v1/keys", ["name": "matrix", "role": "viewer"])
        },
        Endpoint(method: .get, label: "/v1/keys", minimum: .admin, success: .ok) { _ in ("/v1/keys", nil) },
        Endpoint(method: .delete, label: "/v1/keys/{id}", minimum: .admin, success: .ok) { api in
            let response = try await api.client.call(.post, "/v1/keys", key: api.keys.admin, json: ["name": "doomed", "role": "viewer"])
            return ("/v1/keys/\(try response.object()["id"] as? String ?? "")", nil)
        },
        Endpoint(method: .get, label: "/v1/audit", minimum: .admin, success: .ok) { _ in ("/v1/audit", nil) },
    ]

    @Test(arguments: TestBackend.available)
    func roleMatrix(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            for endpoint in Self.endpoints {
                for role in [nil, Role.viewer, .operator, .admin] {
                    let (path, body) = try await endpoint.prepare(api)
                    let response = try await api.client.call(endpoint.method, path, key: api.keys.secret(for: role), json: body)
                    let expected: HTTPResponse.Status =
                        role == nil ? .unauthorized : (role!.allows(endpoint.minimum) ? endpoint.success : .forbidden)
                    #expect(response.status == expected, "\(endpoint) as \(role?.rawValue ?? "anonymous")")
                    if expected == .unauthorized {
                        #expect(response.headers[.wwwAuthenticate] == "Bearer")
                        #expect(try response.problem().code == "unauthorized")
                    }
                    if expected == .forbidden {
                        #expect(try response.problem().code == "forbidden")
                    }
                }
            }
        }
    }

    @Test(arguments: TestBackend.available)
    func healthAndDocumentNeedNoKey(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            for path in ["/health", "/health/live", "/health/ready", "/openapi.yaml"] {
                #expect(try await api.client.call(.get, path).status == .ok, "\(path)")
            }
            let ready = try await api.client.call(.get, "/health/ready").object()
            let checks = ready["checks"] as? [[String: Any]]
            #expect(checks?.first?["name"] as? String == "database")
            #expect(checks?.first?["status"] as? String == "ok")
        }
    }

    @Test(arguments: TestBackend.available)
    func badKeysAre401WithReasonsCounted(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            let attempts: [(String?, String)] = [
                (nil, "missing"),
                ("Basic dXNlcjpwYXNz", "malformed"),
                ("Bearer not-a-key", "malformed"),
                ("Bearer \(APIKeySecret.generate())", "unknown"),
            ]
            for (header, _) in attempts {
                let headers: HTTPFields = header.map { [.authorization: $0] } ?? [:]
                let response = try await api.client.execute(uri: "/v1/deployments", method: .get, headers: headers, body: nil)
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] == "Bearer")
            }
            let exposition = String(decoding: api.runtime.metrics.exposition(), as: UTF8.self)
            #expect(exposition.contains(#"code_auth_failures_total{reason="missing"} 1"#))
            #expect(exposition.contains(#"code_auth_failures_total{reason="malformed"} 2"#))
            #expect(exposition.contains(#"code_auth_failures_total{reason="unknown"} 1"#))
        }
    }

    @Test(arguments: TestBackend.available)
    func createdKeyShowsItsSecretOnceAndRevocationIsImmediate(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            let created = try await api.client.call(.post, "/v1/keys", key: api.keys.admin, json: ["name": "ci-bot", "role": "operator"])
            #expect(created.status == .created)
            let object = try created.object()
            let secret = try #require(object["secret"] as? String)
            let id = try #require(object["id"] as? String)
            #expect(secret.hasPrefix("code_"))
            #expect(created.headers[.location] == "/v1/keys/\(id)")
            #expect(object["prefix"] as? String == String(secret.prefix(12)))

            #expect(try await api.client.call(.get, "/v1/deployments", key: secret).status == .ok)
            let listed = try await api.client.call(.get, "/v1/keys?limit=100", key: api.keys.admin)
            let text = String(buffer: listed.body)
            #expect(!text.contains(secret), "the list never carries secrets")
            #expect(!text.contains(APIKeySecret.hash(secret)), "nor their hashes")
            let keys = try listed.decode(Components.Schemas.KeyPage.self).items
            #expect(keys.first { $0.id == id }?.lastUsedAt != nil, "last_used_at is recorded")

            let revoked = try await api.client.call(.delete, "/v1/keys/\(id)", key: api.keys.admin)
            #expect(revoked.status == .ok)
            #expect(try revoked.decode(Components.Schemas.Key.self).revokedAt != nil)
            #expect(
                try await api.client.call(.get, "/v1/deployments", key: secret).status == .unauthorized, "revoked keys stop working at once"
            )
            let exposition = String(decoding: api.runtime.metrics.exposition(), as: UTF8.self)
            #expect(exposition.contains(#"code_auth_failures_total{reason="revoked"} 1"#))

            #expect(try await api.client.call(.delete, "/v1/keys/key_missing", key: api.keys.admin).status == .notFound)
            let adminID = try #require(keys.first { $0.name == "bootstrap-admin" }?.id)
            let selfRevocation = try await api.client.call(.delete, "/v1/keys/\(adminID)", key: api.keys.admin)
            #expect(selfRevocation.status == .conflict)
            #expect(try selfRevocation.problem().code == "cannot_revoke_own_key")
            let badRole = try await api.client.call(.post, "/v1/keys", key: api.keys.admin, json: ["name": "x", "role": "root"])
            #expect(badRole.status == .unprocessableContent)
            #expect(try badRole.problem().errors?.map(\.field) == ["role"])
            let badName = try await api.client.call(.post, "/v1/keys", key: api.keys.admin, json: ["name": " ", "role": "viewer"])
            #expect(try badName.problem().errors?.map(\.field) == ["name"])
        }
    }

    @Test(arguments: TestBackend.available)
    func bootstrapKeysFromSettingsWork(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            let keys = try await api.client.call(.get, "/v1/keys?limit=100", key: api.keys.admin).decode(Components.Schemas.KeyPage.self)
                .items
            #expect(keys.first { $0.name == "bootstrap-admin" }?.role == .admin)
            #expect(keys.first { $0.name == "code-mcp" }?.role == ._operator)
            #expect(try await api.client.call(.post, "/v1/deployments", key: api.keys.mcp, json: Requests.deployment()).status == .created)
            #expect(try await api.client.call(.get, "/v1/audit", key: api.keys.mcp).status == .forbidden)
        }
    }

    @Test(arguments: TestBackend.available)
    func auditLogRecordsEveryAuthenticatedMutatingRequest(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            let created = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(), headers: [.xRequestID: "audit-req-1"])
            let deployment = try created.decode(Components.Schemas.Deployment.self)
            _ = try await api.client.call(.post, "/v1/deployments/\(deployment.id)/cancel", key: api.keys.operator)
            _ = try await api.client.call(.post, "/v1/deployments", key: api.keys.viewer, json: Requests.deployment())
            _ = try await api.client.call(.post, "/v1/deployments", key: api.keys.operator, json: ["service": "web"])
            _ = try await api.client.call(.get, "/v1/deployments", key: api.keys.viewer)

            let page = try await api.client.call(.get, "/v1/audit?limit=100", key: api.keys.admin).decode(Components.Schemas.AuditPage.self)
            let operatorID = try await api.client.call(.get, "/v1/keys?limit=100", key: api.keys.admin).decode(
                Components.Schemas.KeyPage.self
            ).items.first { $0.name == "operator-key" }?.id
            // Newest first; the two key creations of the harness come last.
            let recent = Array(page.items.prefix(4))
            #expect(recent.map(\.action) == ["deployment.create", "deployment.create", "deployment.cancel", "deployment.create"])
            #expect(recent.map(\.outcome.rawValue) == ["failed", "denied", "succeeded", "succeeded"])
            #expect(recent.map(\.status) == [422, 403, 200, 201])
            #expect(recent[3].target == deployment.id)
            #expect(recent[3].keyId == operatorID)
            #expect(recent[3].requestId == "audit-req-1")
            #expect(recent[2].target == deployment.id)
            #expect(!page.items.contains { $0.method == "GET" }, "reads are not audited")
            #expect(page.items.filter { $0.action == "key.create" }.count == 2)

            let first = try await api.client.call(.get, "/v1/audit?limit=2", key: api.keys.admin).decode(Components.Schemas.AuditPage.self)
            let second = try await api.client.call(.get, "/v1/audit?limit=2&cursor=\(try #require(first.nextCursor))", key: api.keys.admin)
                .decode(Components.Schemas.AuditPage.self)
            #expect(first.items.map(\.seq) + second.items.map(\.seq) == page.items.prefix(4).map(\.seq))
        }
    }

    /// Anyone can send requests without a key, as many and as long as they like: they cost no database
    /// write, only a counter (and a sampled log line).
    @Test(arguments: TestBackend.available)
    func requestsWithoutAValidKeyWriteNothing(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            let before = try await api.client.call(.get, "/v1/audit?limit=100", key: api.keys.admin).decode(
                Components.Schemas.AuditPage.self)
            let longID = String(repeating: "x", count: 4000)
            for _ in 0..<5 {
                #expect(try await api.client.call(.post, "/v1/deployments", json: Requests.deployment()).status == .unauthorized)
                #expect(try await api.client.call(.post, "/v1/deployments/\(longID)/cancel").status == .unauthorized)
                #expect(
                    try await api.client.call(.delete, "/v1/keys/\(longID)", key: "code_" + String(repeating: "0", count: 40)).status
                        == .unauthorized)
            }
            let after = try await api.client.call(.get, "/v1/audit?limit=100", key: api.keys.admin).decode(
                Components.Schemas.AuditPage.self)
            #expect(after.items.map(\.seq) == before.items.map(\.seq), "no audit row for a request without a valid key")
            let exposition = String(decoding: api.runtime.metrics.exposition(), as: UTF8.self)
            #expect(exposition.contains(#"code_auth_failures_total{reason="missing"} 10"#))
        }
    }

    /// The label a caller gives itself in `X-Code-Client` (code-mcp: one per MCP token) is kept with the
    /// audit row when it is a plain label, and dropped when it is not.
    @Test(arguments: TestBackend.available)
    func auditRowsKeepTheClientLabel(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            _ = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(), headers: [.codeClient: "mcp:0123456789ab"])
            _ = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(),
                headers: [.codeClient: "not a label; <script>"])
            _ = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(),
                headers: [.codeClient: String(repeating: "a", count: 65)])
            let page = try await api.client.call(.get, "/v1/audit?limit=3", key: api.keys.admin).decode(Components.Schemas.AuditPage.self)
            #expect(page.items.map(\.client) == [nil, nil, "mcp:0123456789ab"])
        }
    }

    /// What an audit row keeps of a request is bounded, however long the request's id or path.
    @Test(arguments: TestBackend.available)
    func auditRowsStoreBoundedValues(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            let longID = String(repeating: "y", count: 3000)
            let status = try await api.client.call(
                .post, "/v1/deployments/\(longID)/cancel", key: api.keys.operator,
                headers: [.xRequestID: String(repeating: "r", count: 120)]
            ).status
            #expect(status == .notFound)
            let page = try await api.client.call(.get, "/v1/audit?limit=1", key: api.keys.admin).decode(Components.Schemas.AuditPage.self)
            let row = try #require(page.items.first)
            #expect(row.action == "deployment.cancel")
            #expect(try #require(row.target).count <= 128)
            #expect(row.path.count <= 512)
            #expect(row.path.hasPrefix("/v1/deployments/yyyy"))
        }
    }

    /// How many times code-api has looked a key up in the database.
    static func keyLookups(_ api: APITestContext) -> Int {
        let exposition = String(decoding: api.runtime.metrics.exposition(), as: UTF8.self)
        let prefix = #"code_db_query_duration_seconds_count{operation="key.lookup",backend="\#(api.backend.rawValue)"} "#
        return exposition.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) } ?? 0
    }

    @Test(arguments: TestBackend.available)
    func aKeyIsLookedUpOncePerCacheLifetimeAndRefusedASecondAfterItsRevocationElsewhere(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            let secret = try await createKey(api.client, admin: api.keys.admin, role: .viewer, name: "cached")
            let before = Self.keyLookups(api)
            let started = ContinuousClock.now
            for _ in 0..<20 { #expect(try await api.client.call(.get, "/v1/deployments", key: secret).status == .ok) }
            let seconds = Int((ContinuousClock.now - started) / APIKeyCache.longestLifetime)
            // One lookup per second the twenty requests took (and one more for a second begun), not one each.
            #expect((1...(2 + seconds)).contains(Self.keyLookups(api) - before))

            // Another replica (the test's own store on the same database) revokes it: this one hears nothing,
            // and refuses the key once the cache's second is over.
            let id = try #require(try await api.store.keys(limit: 100, before: nil).items.first { $0.name == "cached" }?.id)
            _ = try #require(try await api.store.revokeKey(id: id, at: Date()))
            try await Task.sleep(for: APIKeyCache.longestLifetime)
            #expect(try await api.client.call(.get, "/v1/deployments", key: secret).status == .unauthorized)
        }
    }

    @Test(arguments: TestBackend.available)
    func withoutTheCacheEveryRequestLooksItsKeyUpAndRevocationElsewhereIsImmediate(backend: TestBackend) async throws {
        try await withAPI(backend, keyCacheLifetime: .zero) { api in
            let secret = try await createKey(api.client, admin: api.keys.admin, role: .viewer, name: "uncached")
            let before = Self.keyLookups(api)
            for _ in 0..<5 { #expect(try await api.client.call(.get, "/v1/deployments", key: secret).status == .ok) }
            #expect(Self.keyLookups(api) - before == 5)
            let id = try #require(try await api.store.keys(limit: 100, before: nil).items.first { $0.name == "uncached" }?.id)
            _ = try #require(try await api.store.revokeKey(id: id, at: Date()))
            #expect(try await api.client.call(.get, "/v1/deployments", key: secret).status == .unauthorized)
        }
    }

    @Test func theCacheLifetimeIsReadFromTheEnvironmentAndBoundedByASecond() throws {
        func settings(_ value: String?) throws(ConfigurationError) -> APISettings {
            var environment = ["DATABASE_URL": "sqlite:///tmp/unused.db"]
            environment["CODE_KEY_CACHE_SECONDS"] = value
            return try APISettings(from: EnvironmentSettings(environment: environment))
        }
        #expect(try settings(nil).keyCacheLifetime == .seconds(1))
        #expect(try settings("0.25").keyCacheLifetime == .milliseconds(250))
        #expect(try settings("0").keyCacheLifetime == .zero)
        #expect(throws: ConfigurationError.self) { try settings("1.5") }
        #expect(throws: ConfigurationError.self) { try settings("-1") }
        #expect(try settings("1").keyCacheLifetime == .seconds(1))
        // Read to the millisecond: less than half of one is no cache at all, never a cache of no lifetime.
        #expect(try settings("0.0004").keyCacheLifetime == .zero)
    }

    @Test func aLifetimeBeyondASecondGivenInCodeIsRefusedBeforeAnythingOpens() async throws {
        let settings = APISettings(database: try DatabaseLocation(url: "sqlite:///nonexistent/dir/code.db"), keyCacheLifetime: .seconds(2))
        let runtime = ServiceRuntime(name: "code-api", settings: RuntimeSettings(host: "127.0.0.1", port: 0))
        await #expect(throws: ConfigurationError.self) { _ = try await buildApplication(settings: settings, runtime: runtime) }
    }

    @Test(arguments: TestBackend.available)
    func createdDeploymentsAndQueriesAreMeasured(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            _ = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(environment: "development"))
            _ = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(environment: "staging"))
            _ = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(environment: "staging"))
            let exposition = String(decoding: api.runtime.metrics.exposition(), as: UTF8.self)
            #expect(exposition.contains(#"code_deployments_created_total{environment="staging"} 2"#))
            #expect(exposition.contains(#"code_deployments_created_total{environment="development"} 1"#))
            #expect(
                exposition.contains(
                    #"code_db_query_duration_seconds_count{operation="deployment.create",backend="\#(backend.rawValue)"} 3"#))
        }
    }
}

@Suite("OpenAPI document")
struct OpenAPIDocumentTests {
    @Test func servedDocumentIsTheRepositoryFile() async throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../openapi/openapi.yaml")
            .standardized
        let expected = try String(contentsOf: file, encoding: .utf8)
        try await withAPI(.sqlite) { api in
            let response = try await api.client.call(.get, "/openapi.yaml")
            #expect(response.headers[.contentType] == "application/yaml; charset=utf-8")
            #expect(String(buffer: response.body) == expected, "the served document is the contract the code is generated from")
        }
    }
}
