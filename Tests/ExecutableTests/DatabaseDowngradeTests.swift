import CodeTestSupport
import Foundation
import Testing

/// Issue 12, defect 12: a database migrated by a newer version (a downgrade) ends the process with one
/// clear line and exit code 65, instead of a crash in the migrator.
@Suite("Database newer than the binary")
struct DatabaseDowngradeTests {
    static let sqlite3 = URL(fileURLWithPath: "/usr/bin/sqlite3")

    @Test(
        .enabled(if: FileManager.default.isExecutableFile(atPath: sqlite3.path), "needs the sqlite3 command"),
        arguments: ["code-api", "code-worker"])
    func aDatabaseFromANewerVersionExits65WithOneLine(service: String) async throws {
        let directory = try ServiceFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var environment = ServiceFixtures.minimalEnvironment(for: "code-api", directory: directory)
        let migrated = try await ServiceProcess.run("code-api", arguments: ["migrate"], environment: environment)
        #expect(migrated.status == 0, "\(migrated.stderr)")
        // What a newer binary would have left: a migration this one does not know.
        let insert = Process()
        insert.executableURL = Self.sqlite3
        insert.arguments = [
            directory.appendingPathComponent("code.db").path, "INSERT INTO grdb_migrations VALUES ('9999_from_the_future')",
        ]
        try insert.run()
        insert.waitUntilExit()
        #expect(insert.terminationStatus == 0)

        environment = ServiceFixtures.minimalEnvironment(for: service, directory: directory)
        environment["PORT"] = String(freePort())
        environment["METRICS_PORT"] = "0"
        let result = try await ServiceProcess.run(service, environment: environment, timeout: .seconds(60))
        #expect(result.status == 65, "\(result.stderr)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(lines.last?.contains("migrated by a newer version") == true, "\(result.stderr)")
        #expect(lines.last?.contains("9999_from_the_future") == true)

        if service == "code-api" {
            let migrate = try await ServiceProcess.run("code-api", arguments: ["migrate"], environment: environment)
            #expect(migrate.status == 65, "\(migrate.stderr)")
            #expect(migrate.stderr.split(separator: "\n").count == 1, "\(migrate.stderr)")
        }
    }
}
