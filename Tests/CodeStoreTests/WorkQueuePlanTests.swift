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

    /// PostgreSQL, on a new table without statistics (as a queue filled at once is at first), over a history
    /// of 2,000 finished deployments and a queue of 10, with the plan PostgreSQL keeps for a prepared
    /// statement after its first runs (generic). Without the live queue's indexes, the claim walked the
    /// primary key from the oldest row and the cancellation sweep scanned the table.
    @Test(.enabled(if: TestBackend.available.contains(.postgres)))
    func postgresClaimReadsTheLiveQueueIndexes() async throws {
        try await withStore(.postgres) { store in
            let client = try #require(store as? PostgresStore).client
            try await client.withConnection { connection in
                try await connection.query(Self.history(finished: 2_000, queued: 10), logger: Self.logger)
                let plan = try await Self.claimPlan(connection, mode: "force_generic_plan")
                let text = plan.joined(separator: "\n")
                #expect(text.contains("deployments_live_claim "), "the claim reads the live queue's index:\n\(text)")
                #expect(text.contains("deployments_live_cancel_requested "), "the sweep reads its index:\n\(text)")
                #expect(!text.contains("Seq Scan"), "\(text)")
                // The primary key serves only lookups by seq (an Index Cond on the next line), never a walk.
                for (index, line) in plan.enumerated() where line.contains("using deployments_pkey") {
                    #expect(plan.indices.contains(index + 1) && plan[index + 1].contains("Index Cond: (seq ="), "\(text)")
                }
            }
        }
    }

    /// PostgreSQL, a queue of 2,000 filled at once on a table without statistics (autovacuum's ANALYZE comes
    /// a minute later at the soonest), with the plans made for each run's parameters and the generic one:
    /// the claim reads the live queue in `seq` order and stops at the first claimable row. With an index on
    /// `seq` alone the planner expected 8 live rows, read all 2,000 with a bitmap scan and sorted them, for
    /// every claim (2.1 ms of the server's CPU each instead of 0.1).
    @Test(.enabled(if: TestBackend.available.contains(.postgres)))
    func postgresClaimReadsAQueueFilledAtOnceInOrder() async throws {
        try await withStore(.postgres) { store in
            let client = try #require(store as? PostgresStore).client
            try await client.withConnection { connection in
                try await connection.query(Self.history(finished: 0, queued: 2_000), logger: Self.logger)
                for mode in ["force_custom_plan", "force_generic_plan"] {
                    let text = try await Self.claimPlan(connection, mode: mode).joined(separator: "\n")
                    #expect(text.contains("Index Scan using deployments_live_claim "), "\(mode):\n\(text)")
                    #expect(!text.contains("Sort"), "\(mode): the claim sorts the live queue:\n\(text)")
                    #expect(!text.contains("Bitmap"), "\(mode):\n\(text)")
                }
            }
        }
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
