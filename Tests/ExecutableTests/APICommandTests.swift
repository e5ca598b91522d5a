import CodeTestSupport
import Foundation
import Testing

/// `code-api migrate` and `code-api keys ...` against a real database file, as an operator runs them.
@Suite("code-api commands")
struct APICommandTests {
    @Test func migrateThenCreateAKeyThatTheServerAccepts() async throws {
        let directory = try ServiceFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = ["DATABASE_URL": "sqlite://\(directory.path)/code.db"]

        let migrate = try await ServiceProcess.run("code-api", arguments: ["migrate"], environment: database)
        #expect(migrate.status == 0, "\(migrate.stderr)")
        #expect(migrate.stdout.contains("migrations applied (sqlite)"))
        let again = try await ServiceProcess.run("code-api", arguments: ["migrate"], environment: database)
        #expect(again.status == 0, "migrations are idempotent")

        let create = try await ServiceProcess.run(
            "code-api", arguments: ["keys", "create", "--role", "operator", "--name", "ci"], environment: database)
        #expect(create.status == 0, "\(create.stderr)")
        let fields = create.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(fields.count == 3)
        #expect(fields[1] == "operator")
        let secret = try #require(fields.last)
        #expect(secret.hasPrefix("code_"))

        let port = freePort()
        let server = try ServiceProcess(
            "code-api", environment: database.merging(["HOST": "127.0.0.1", "PORT": "\(port)", "METRICS_PORT": "0"]) { a, _ in a })
        defer { server.stop() }
        _ = try await LoopbackHTTP.waitUntilAnswering("http://127.0.0.1:\(port)/health/ready")
        let list = try await LoopbackHTTP.request(
            .GET, "http://127.0.0.1:\(port)/v1/deployments", headers: [("Authorization", "Bearer \(secret)")])
        #expect(list.status == 200)
        let anonymous = try await LoopbackHTTP.request(.GET, "http://127.0.0.1:\(port)/v1/deployments")
        #expect(anonymous.status == 401)
    }

    @Test func badDatabaseURLAndKeyAreConfigurationErrors() async throws {
        let badURL = try await ServiceProcess.run("code-api", environment: ["DATABASE_URL": "mysql://x"])
        #expect(badURL.status == 78)
        #expect(badURL.stderr.contains("DATABASE_URL: expected a sqlite:// or postgres:// URL"))
        let badKey = try await ServiceProcess.run(
            "code-api", environment: ["DATABASE_URL": "sqlite:///tmp/x.db", "CODE_ADMIN_KEY": "hunter2"])
        #expect(badKey.status == 78)
        #expect(badKey.stderr.contains("CODE_ADMIN_KEY: must be 'code_'"))
        #expect(!badKey.stderr.contains("hunter2"), "secrets never appear in errors")
    }
}
