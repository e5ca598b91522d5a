import CodeAPI
import CodeAPIContract
import CodeDomain
import CodeRuntime
import CodeStore
import CodeTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing

@Suite("Deployment endpoints")
struct DeploymentEndpointTests {
    @Test(arguments: TestBackend.available)
    func createReturns201WithLocationAndTheQueuedDeployment(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            let response = try await api.client.call(.post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment())
            #expect(response.status == .created)
            let deployment = try response.decode(Components.Schemas.Deployment.self)
            #expect(deployment.status == .queued)
            #expect(deployment.attempt == 0)
            #expect(deployment.imageRef == .init(registry: "ghcr.io", repository: "acme/web", tag: "1.4.2", digest: nil))
            #expect(response.headers[.location] == "/v1/deployments/\(deployment.id)")
            let object = try response.object()
            #expect(object["id"] as? String == deployment.id)
            #expect(object["status"] as? String == "queued")

            let read = try await api.client.call(.get, "/v1/deployments/\(deployment.id)", key: api.keys.viewer)
            #expect(read.status == .ok)
            #expect(try read.decode(Components.Schemas.Deployment.self) == deployment)
        }
    }

    @Test(arguments: TestBackend.available)
    func invalidFieldsAre422ListingEveryField(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            let body: [String: Any] = [
                "service": "Bad_Name", "image": "UPPER:case", "environment": "qa", "replicas": 0, "labels": ["ok": "fine"],
            ]
            let response = try await api.client.call(.post, "/v1/deployments", key: api.keys.operator, json: body)
            #expect(response.status == .unprocessableContent)
            let problem = try response.problem()
            #expect(problem.code == "validation_failed")
            #expect(problem.errors?.map(\.field) == ["service", "image", "environment", "replicas"])

            let unknown = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(extra: ["replica": 3]))
            #expect(unknown.status == .unprocessableContent)
            #expect(try unknown.problem().errors == [.init(field: "replica", message: "is not a known field")])

            let wrongType = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(extra: ["replicas": "two"]))
            #expect(try wrongType.problem().errors == [.init(field: "replicas", message: "must be an integer")])

            let missing = try await api.client.call(.post, "/v1/deployments", key: api.keys.operator, json: ["service": "web"])
            #expect(try missing.problem().code == "validation_failed")
        }
    }

    @Test(arguments: TestBackend.available)
    func policyViolationsAre422WithRuleIDs(backend: TestBackend) async throws {
        try await withAPI(backend, allowedRegistries: ["ghcr.io"]) { api in
            let production = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator,
                json: Requests.deployment(image: "docker.io/acme/web:latest", environment: "production"))
            #expect(production.status == .unprocessableContent)
            let problem = try production.problem()
            #expect(problem.code == "policy_violation")
            #expect(
                problem.violations?.map(\.rule) == ["production-requires-digest", "no-latest-outside-development", "registry-allowlist"])

            let pinned = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator,
                json: Requests.deployment(image: "ghcr.io/acme/web@\(Requests.digest)", environment: "production"))
            #expect(pinned.status == .created)

            let validate = try await api.client.call(
                .post, "/v1/deployments/validate", key: api.keys.viewer, json: Requests.deployment(image: "nginx", environment: "staging"))
            #expect(validate.status == .unprocessableContent)
            #expect(try validate.problem().violations?.map(\.rule) == ["no-latest-outside-development", "registry-allowlist"])
            let valid = try await api.client.call(.post, "/v1/deployments/validate", key: api.keys.viewer, json: Requests.deployment())
            #expect(valid.status == .ok)
            #expect(try valid.object()["valid"] as? Bool == true)
            let listed = try await api.client.call(.get, "/v1/deployments", key: api.keys.viewer)
            #expect(try listed.decode(Components.Schemas.DeploymentPage.self).items.count == 1, "validation creates nothing")

            let policy = try await api.client.call(.get, "/v1/policy", key: api.keys.viewer)
            #expect(policy.status == .ok)
            #expect(try policy.object()["allowed_registries"] as? [String] == ["ghcr.io"])
        }
    }

    @Test(arguments: TestBackend.available)
    func bodiesAreLimitedTypedAndParsed(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            let auth: HTTPFields = [.authorization: "Bearer \(api.keys.operator)"]
            var json = auth
            json[.contentType] = "application/json"
            let tooLarge = try await api.client.execute(
                uri: "/v1/deployments", method: .post, headers: json, body: ByteBuffer(string: String(repeating: " ", count: 64 * 1024 + 1))
            )
            #expect(tooLarge.status == .contentTooLarge)
            #expect(try tooLarge.problem().code == "payload_too_large")
            var text = auth
            text[.contentType] = "text/plain"
            let wrongType = try await api.client.execute(
                uri: "/v1/deployments", method: .post, headers: text, body: ByteBuffer(string: "{}"))
            #expect(wrongType.status == .unsupportedMediaType)
            #expect(try wrongType.problem().code == "unsupported_media_type")
            let malformed = try await api.client.execute(
                uri: "/v1/deployments", method: .post, headers: json, body: ByteBuffer(string: "{\"service\":"))
            #expect(malformed.status == .badRequest)
            #expect(try malformed.problem().code == "malformed_json")
        }
    }

    @Test(arguments: TestBackend.available)
    func idempotencyKeyReplaysOrConflicts(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "deploy-web-42"]
            let first = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(), headers: key)
            #expect(first.status == .created)
            #expect(first.headers[HTTPField.Name("Idempotent-Replayed")!] == nil)
            let again = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(), headers: key)
            #expect(again.status == .created)
            #expect(again.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            #expect(try again.decode(Components.Schemas.Deployment.self).id == (try first.decode(Components.Schemas.Deployment.self).id))

            let different = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(replicas: 3), headers: key)
            #expect(different.status == .conflict)
            #expect(try different.problem().code == "idempotency_key_reused")
            // One audit row per request: the create's (written with the deployment), the replay's and the
            // conflict's (written by the access middleware).
            let id = try first.decode(Components.Schemas.Deployment.self).id
            let audit = try await api.client.call(.get, "/v1/audit?limit=100", key: api.keys.admin).decode(
                Components.Schemas.AuditPage.self
            ).items.filter { $0.action == "deployment.create" }
            #expect(audit.map(\.status) == [409, 201, 201])
            #expect(audit.map(\.target) == [nil, id, id])

            let invalid = try await api.client.call(
                .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(),
                headers: [HTTPField.Name("Idempotency-Key")!: String(repeating: "k", count: 256)])
            #expect(invalid.status == .badRequest)
            #expect(try invalid.problem().code == "invalid_idempotency_key")

            let list = try await api.client.call(.get, "/v1/deployments?limit=100", key: api.keys.viewer)
            #expect(try list.decode(Components.Schemas.DeploymentPage.self).items.count == 1)
        }
    }

    @Test(arguments: TestBackend.available)
    func listFiltersAndValidatesParameters(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            for (service, environment) in [("web", "staging"), ("api", "development"), ("web", "development")] {
                let response = try await api.client.call(
                    .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(service: service, environment: environment))
                #expect(response.status == .created)
            }
            let web = try await api.client.call(.get, "/v1/deployments?service=web", key: api.keys.viewer).decode(
                Components.Schemas.DeploymentPage.self)
            #expect(web.items.map(\.service) == ["web", "web"])
            let development = try await api.client.call(.get, "/v1/deployments?environment=development&service=web", key: api.keys.viewer)
                .decode(Components.Schemas.DeploymentPage.self)
            #expect(development.items.count == 1)
            let queued = try await api.client.call(.get, "/v1/deployments?status=queued", key: api.keys.viewer).decode(
                Components.Schemas.DeploymentPage.self)
            #expect(queued.items.count == 3)

            for query in ["limit=0", "limit=101", "limit=ten", "status=done", "environment=qa", "service=Bad_Name", "cursor=not-a-cursor"] {
                let response = try await api.client.call(.get, "/v1/deployments?\(query)", key: api.keys.viewer)
                #expect(response.status == .badRequest, "\(query)")
                #expect(try response.problem().code == "invalid_parameter")
            }
        }
    }

    @Test(arguments: TestBackend.available)
    func paginationOverHTTPIsStableUnderConcurrentInserts(backend: TestBackend) async throws {
        try await withAPI(backend, setup: .live) { api in
            var existing: Set<String> = []
            for index in 0..<25 {
                let response = try await api.client.call(
                    .post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment(service: "svc\(index)"))
                existing.insert(try response.decode(Components.Schemas.Deployment.self).id)
            }
            let inserter = Task {
                for _ in 0..<20 {
                    _ = try await api.store.createDeployment(
                        NewDeployment(
                            spec: try DeploymentSpec.validate(
                                DeploymentRequest(service: "late", image: "ghcr.io/a/b:1", environment: "staging")
                            ).get(), createdBy: nil))
                }
            }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let uri = "/v1/deployments?limit=4" + (cursor.map { "&cursor=\($0)" } ?? "")
                let page = try await api.client.call(.get, uri, key: api.keys.viewer).decode(Components.Schemas.DeploymentPage.self)
                seen += page.items.map(\.id)
                cursor = page.nextCursor
            } while cursor != nil
            try await inserter.value
            #expect(seen.count == Set(seen).count, "no duplicates across pages")
            #expect(existing.isSubset(of: Set(seen)), "nothing that existed is skipped")
        }
    }

    @Test(arguments: TestBackend.available)
    func cancelDependsOnStatus(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            let queued = try await api.client.call(.post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment()).decode(
                Components.Schemas.Deployment.self)
            let cancelled = try await api.client.call(.post, "/v1/deployments/\(queued.id)/cancel", key: api.keys.operator)
            #expect(cancelled.status == .ok)
            #expect(try cancelled.decode(Components.Schemas.Deployment.self).status == .cancelled)
            let again = try await api.client.call(.post, "/v1/deployments/\(queued.id)/cancel", key: api.keys.operator)
            #expect(again.status == .conflict)
            #expect(try again.problem().code == "deployment_finished")

            let running = try await api.client.call(.post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment()).decode(
                Components.Schemas.Deployment.self)
            let claim = try #require(
                try await api.store.claimNext(worker: "test-worker", leaseDuration: .seconds(30), maxAttempts: 3))
            #expect(claim.deployment.id == running.id)
            let requested = try await api.client.call(.post, "/v1/deployments/\(running.id)/cancel", key: api.keys.operator)
            #expect(requested.status == .accepted)
            let body = try requested.decode(Components.Schemas.Deployment.self)
            #expect(body.status == .running)
            #expect(body.cancelRequested)

            let missing = try await api.client.call(.post, "/v1/deployments/dep_missing/cancel", key: api.keys.operator)
            #expect(missing.status == .notFound)
            #expect(try missing.problem().code == "not_found")
        }
    }

    @Test(arguments: TestBackend.available)
    func eventsAndManifests(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            let deployment = try await api.client.call(.post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment())
                .decode(Components.Schemas.Deployment.self)
            let notYet = try await api.client.call(.get, "/v1/deployments/\(deployment.id)/manifests", key: api.keys.viewer)
            #expect(notYet.status == .notFound)
            #expect(try notYet.problem().code == "manifests_not_rendered")

            let claim = try #require(try await api.store.claimNext(worker: "w", leaseDuration: .seconds(30), maxAttempts: 3))
            for step in ["validate", "render"] {
                #expect(
                    try await api.store.appendEvent(
                        claim, NewEvent(step: step, kind: .finished, outcome: .succeeded, durationMs: 3, message: "\(step) done")))
            }
            #expect(try await api.store.saveManifests(claim, compose: "services: {}", kubernetes: "kind: Deployment", at: Date()))

            let manifests = try await api.client.call(.get, "/v1/deployments/\(deployment.id)/manifests", key: api.keys.viewer)
            #expect(manifests.status == .ok)
            #expect(try manifests.decode(Components.Schemas.Manifests.self).kubernetes == "kind: Deployment")

            let all = try await api.client.call(.get, "/v1/deployments/\(deployment.id)/events", key: api.keys.viewer)
            let page = try all.decode(Components.Schemas.EventPage.self)
            #expect(page.items.map(\.step) == ["queue", "validate", "render"])
            #expect(page.nextAfter == nil)
            let first = try await api.client.call(.get, "/v1/deployments/\(deployment.id)/events?limit=1", key: api.keys.viewer).decode(
                Components.Schemas.EventPage.self)
            #expect(first.items.map(\.step) == ["queue"])
            let rest = try await api.client.call(
                .get, "/v1/deployments/\(deployment.id)/events?after=\(try #require(first.nextAfter))", key: api.keys.viewer
            ).decode(Components.Schemas.EventPage.self)
            #expect(rest.items.map(\.step) == ["validate", "render"])

            let badAfter = try await api.client.call(.get, "/v1/deployments/\(deployment.id)/events?after=-1", key: api.keys.viewer)
            #expect(badAfter.status == .badRequest)
            for path in ["/v1/deployments/dep_missing", "/v1/deployments/dep_missing/events", "/v1/deployments/dep_missing/manifests"] {
                let missing = try await api.client.call(.get, path, key: api.keys.viewer)
                #expect(missing.status == .notFound, "\(path)")
                #expect(try missing.problem().code == "not_found")
            }
        }
    }
}
