import CodeTestSupport
import Foundation
import GRDB
import Logging
import PostgresNIO
import Testing

@testable import CodeStore

/// The work queue's statements look the live queue (queued and running rows) up by status instead of
/// scanning every deployment ever made: a claim, and every idle worker's poll, would otherwise cost more as
/// the history grows.
@Suite("Work queue query plans", .timeLimit(.minutes(1)))
struct WorkQueuePlanTests {
    /// SQLite as the services run it (no statistics gathered), over a history of 2,000 finished
    /// deployments and a queue of 10.
    @Test func sqliteLooksTheLiveQueueUpByStatus() async throws {
        let directory = try ServiceFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(path: directory.appendingPathComponent("code.db").path, metricsFactory: nil)
        try await store.migrate()
        try await store.pool.write { db in
            try db.execute(
                sql: """
                    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2010)
                    INSERT INTO deployments (id, service, image, image_registry, image_repository, environment, strategy,
                        replicas, labels, status, created_at, updated_at)
                    SELECT 'dep_' || i, 'web', 'nginx', 'docker.io', 'library/nginx', 'dev', 'rolling', 1, '{}',
                        CASE WHEN i > 2000 THEN 'queued' ELSE 'succeeded' END, 0, 0
                    FROM n
                    """)
        }
        let statements: [String: SQL] = [
            "a poll": "SELECT seq FROM deployments WHERE \(SQLiteStore.claimableOrCancelled(maxAttempts: 3)) LIMIT 1",
            "the claim": SQLiteStore.nextClaimable(maxAttempts: 3),
            "the cancellation sweep": "SELECT seq FROM deployments WHERE \(SQLiteStore.cancelledWhileUnheld)",
        ]
        for (name, statement) in statements {
            let plan = try await store.pool.read { db in
                try Row.fetchAll(db, SQLRequest<Row>(literal: "EXPLAIN QUERY PLAN \(statement)")).map { $0["detail"] as String }
            }
            #expect(!plan.contains { $0.hasPrefix("SCAN deployments") }, "\(name) scans the table: \(plan)")
            #expect(
                plan.contains("SEARCH deployments USING INDEX deployments_status (status=?)"), "\(name) looks rows up by status: \(plan)")
        }
    }

    /// PostgreSQL, on a new table without statistics (as a queue filled at once is at first): over a history
    /// of 2,000 finished deployments with a queue of 10, and a queue of 2,000 filled at once; each with the
    /// plan made for a run's parameters and the generic one PostgreSQL keeps for a prepared statement after
    /// its first runs. The claim reads the live queue in `seq` order through its index, testing its
    /// conditions there, and stops at the first claimable row; the sweep reads its own index. Without the
    /// live queue's indexes the claim walked the primary key from the oldest row and the sweep scanned the
    /// table; with an index on `seq` alone, the planner expected 8 live rows of the 2,000, read them all with
    /// a bitmap scan and sorted them, for every claim (2.1 ms of the server's CPU each instead of 0.1).
    @Test(.enabled(if: TestBackend.available.contains(.postgres)), arguments: [(2_000, 10), (0, 2_000)])
    func postgresClaimReadsTheLiveQueueInOrder(finished: Int, queued: Int) async throws {
        try await withStore(.postgres) { store in
            let client = try #require(store as? PostgresStore).client
            try await client.withConnection { connection in
                try await connection.query(Self.history(finished: finished, queued: queued), logger: Self.logger)
                for mode in ["force_custom_plan", "force_generic_plan"] {
                    let plan = try await Self.claimPlan(connection, mode: mode)
                    let text = "\(mode), \(finished) finished, \(queued) queued:\n" + plan.joined(separator: "\n")
                    let claimScan = plan.firstIndex { $0.contains("Index Scan using deployments_live_claim ") }
                    #expect(
                        claimScan.map { plan.indices.contains($0 + 1) && plan[$0 + 1].contains("Index Cond: ((cancel_requested = 0)") }
                            == true,
                        "the claim reads its index and tests its conditions there: \(text)")
                    #expect(text.contains("deployments_live_cancel_requested "), "the sweep reads its index: \(text)")
                    #expect(!text.contains("Seq Scan"), "\(text)")
                    #expect(!text.contains("Sort"), "the claim sorts the live queue: \(text)")
                    #expect(!text.contains("Bitmap"), "\(text)")
                    // The primary key serves only lookups by seq (an Index Cond on the next line), never a walk.
                    for (index, line) in plan.enumerated() where line.contains("using deployments_pkey") {
                        #expect(plan.indices.contains(index + 1) && plan[index + 1].contains("Index Cond: (seq ="), "\(text)")
                    }
                }
            }
        }
    }

    /// An operator who builds the claim's index beforehand (`CREATE INDEX CONCURRENTLY`, docs/persistence.md)
    /// and sees it fail is left with an invalid index of that name, which serves no query. The migration
    /// builds the index again instead of taking it for built and dropping the one the claim still had.
    @Test(.enabled(if: TestBackend.available.contains(.postgres)))
    func postgresMigrationRebuildsAClaimIndexLeftInvalid() async throws {
        try await withStore(.postgres) { store in
            let postgres = try #require(store as? PostgresStore)
            try await postgres.client.withConnection { connection in
                // The database as the version before found it, then a concurrent build that fails: a unique
                // index over two rows of the same service.
                try await connection.query("DELETE FROM schema_migrations WHERE name = '0006_live_queue_claim_index'", logger: Self.logger)
                try await connection.query("DROP INDEX deployments_live_claim", logger: Self.logger)
                try await connection.query(
                    "CREATE INDEX deployments_live ON deployments (seq) WHERE \(unescaped: WorkQueueSQL.live)", logger: Self.logger)
                try await connection.query(Self.history(finished: 0, queued: 2), logger: Self.logger)
                await #expect(throws: (any Error).self) {
                    try await connection.query(
                        "CREATE UNIQUE INDEX CONCURRENTLY deployments_live_claim ON deployments (service)", logger: Self.logger)
                }
                #expect(try await Self.indexStates(connection) == ["deployments_live": true, "deployments_live_claim": false])
            }
            try await store.migrate()
            try await postgres.client.withConnection { connection in
                #expect(try await Self.indexStates(connection) == ["deployments_live_claim": true])
                let definition = try await connection.query(
                    "SELECT pg_get_indexdef(to_regclass('deployments_live_claim'))", logger: Self.logger
                ).collect().first?.decode(String.self)
                #expect(definition?.contains("(seq, cancel_requested, failures, attempt)") == true, "\(definition ?? "none")")
            }
        }
    }

    /// Whether each of the live queue's claim indexes there is is valid, by name.
    private static func indexStates(_ connection: PostgresConnection) async throws -> [String: Bool] {
        var states: [String: Bool] = [:]
        let rows = try await connection.query(
            """
            SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE c.relname IN ('deployments_live', 'deployments_live_claim')
            """, logger: logger)
        for try await (name, valid) in rows.decode((String, Bool).self) { states[name] = valid }
        return states
    }

    private static let logger = Logger(label: "plan-test")

    /// The lines of `EXPLAIN` for the claim, prepared, under `plan_cache_mode` `mode`.
    private static func claimPlan(_ connection: PostgresConnection, mode: String) async throws -> [String] {
        try await connection.query("SET plan_cache_mode = \(unescaped: mode)", logger: logger)
        try await connection.query(
            "PREPARE claim (text, text, bigint, bigint, bigint) AS \(unescaped: ClaimNextStatement.sql)", logger: logger)
        var plan: [String] = []
        for try await line in try await connection.query("EXPLAIN EXECUTE claim ('w', 'r', 30000, 3, 6)", logger: logger)
            .decode(String.self)
        {
            plan.append(line)
        }
        try await connection.query("DEALLOCATE claim", logger: logger)
        try await connection.query("RESET plan_cache_mode", logger: logger)
        return plan
    }

    /// Finished deployments, then queued ones, inserted in one statement.
    static func history(finished: Int, queued: Int) -> PostgresQuery {
        """
        INSERT INTO deployments (id, service, image, image_registry, image_repository, environment, strategy,
            replicas, labels, status, created_at, updated_at)
        SELECT 'dep_' || i, 'web', 'nginx', 'docker.io', 'library/nginx', 'dev', 'rolling', 1, '{}',
            CASE WHEN i > \(unescaped: String(finished)) THEN 'queued' ELSE 'succeeded' END, 0, 0
        FROM generate_series(1, \(unescaped: String(finished + queued))) AS i
        """
    }
}
