/// The schema, as versioned migrations per backend. Append new migrations; never edit applied ones.
///
/// The two backends hold the same tables and columns. Timestamps are integer milliseconds since the
/// Unix epoch; booleans are 0/1 integers; labels are a JSON object in text. `seq` columns give every row
/// an insertion order that cursors and `after` parameters refer to.
enum SchemaMigrations {
    struct Migration {
        let name: String
        /// Statements, run in order inside one transaction.
        let statements: [String]
        var sql: String { statements.joined(separator: ";\n") }
    }

    static let sqlite: [Migration] = [
        Migration(name: "0001_initial", statements: initial(serial: "INTEGER PRIMARY KEY AUTOINCREMENT", integer: "INTEGER")),
        Migration(name: "0002_failures_and_releases", statements: failuresAndReleases(integer: "INTEGER")),
        Migration(name: "0003_audit_client", statements: auditClient),
        Migration(name: "0004_trace_parent", statements: traceParent),
    ]

    static let postgres: [Migration] = [
        Migration(name: "0001_initial", statements: initial(serial: "BIGSERIAL PRIMARY KEY", integer: "BIGINT")),
        Migration(name: "0002_failures_and_releases", statements: failuresAndReleases(integer: "BIGINT")),
        Migration(name: "0003_audit_client", statements: auditClient),
        Migration(name: "0004_trace_parent", statements: traceParent),
        Migration(name: "0005_live_queue_indexes", statements: liveQueueIndexes),
        Migration(name: "0006_live_queue_claim_index", statements: liveQueueClaimIndex),
    ]

    /// The names a backend knows, to tell a database migrated by a newer binary.
    static func names(_ migrations: [Migration]) -> Set<String> { Set(migrations.map(\.name)) }

    /// `attempt` counts claims (and fences a worker's writes); max attempts applies to `failures` only,
    /// so that a release (drain, shutdown, an expired lease) never uses up a deployment's retries.
    private static func failuresAndReleases(integer: String) -> [String] {
        [
            "ALTER TABLE deployments ADD COLUMN failures \(integer) NOT NULL DEFAULT 0",
            "ALTER TABLE deployments ADD COLUMN releases \(integer) NOT NULL DEFAULT 0",
        ]
    }

    /// Which client (e.g. code-mcp) sent an audited request, when it says so.
    private static let auditClient = ["ALTER TABLE audit_log ADD COLUMN client TEXT"]

    /// PostgreSQL only: indexes over the live queue (queued and running rows), so that a claim and the
    /// cancellation sweep read the rows still in play in `seq` order instead of every deployment ever made.
    /// Without them the claim's prepared plan, chosen while the queue was full, walked the primary key past
    /// every finished row, and the sweep scanned the table. (SQLite, without statistics, looks the live
    /// queue up through `deployments_status`, one lookup per live status; a partial index there cost each
    /// create ~5 % more CPU, measured side by side.)
    /// Writes to `deployments` wait while they are built (a scan of the table, ~0.4 s per million rows
    /// measured); on a longer history an operator builds them beforehand with `CREATE INDEX CONCURRENTLY`
    /// under these names, and the migration finds them (docs/persistence.md).
    private static let liveQueueIndexes = [
        "CREATE INDEX IF NOT EXISTS deployments_live ON deployments (seq) WHERE \(WorkQueueSQL.live)",
        """
        CREATE INDEX IF NOT EXISTS deployments_live_cancel_requested ON deployments (seq)
        WHERE cancel_requested = 1 AND \(WorkQueueSQL.live)
        """,
    ]

    /// PostgreSQL only: the live queue's index carries the columns of the claim's conditions, so that the
    /// claim reads it in `seq` order when the planner underestimates the queue. With only `seq` in it, a
    /// table without statistics (a new installation, until autovacuum's first ANALYZE) with a queue filled
    /// at once (2,000 deployments: the planner expected 8 live rows and 1 claimable) was read with a bitmap
    /// scan and a sort of every live row for each claim: 2.1 ms of the server's CPU per claim against
    /// 0.1 ms, half of the server's time in the worker benchmark. With the conditions in the index, the rows
    /// that fail them are passed over in the index, and the ordered scan is the cheaper plan for that
    /// estimate too (WorkQueuePlanTests; by hand also with fresh statistics and with statistics taken while
    /// the queue was empty). Serves every reader of the live queue that `deployments_live` served (same
    /// predicate, `seq` first). `lease_expires_at` stays out of it, so that a heartbeat, which only moves
    /// the lease, can stay a heap-only update.
    private static let liveQueueClaimIndex = [
        // An index of this name that a `CREATE INDEX CONCURRENTLY` beforehand left invalid (it failed or was
        // cancelled) serves no query, and `IF NOT EXISTS` would take it for built: dropped, then built here.
        """
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('deployments_live_claim') AND NOT indisvalid) THEN
                DROP INDEX deployments_live_claim;
            END IF;
        END $$
        """,
        """
        CREATE INDEX IF NOT EXISTS deployments_live_claim ON deployments (seq, cancel_requested, failures, attempt)
        WHERE \(WorkQueueSQL.live)
        """,
        "DROP INDEX IF EXISTS deployments_live",
    ]

    /// The W3C `traceparent` of the request that created a deployment, so the worker's pipeline span
    /// joins that request's trace. NULL when tracing was off.
    private static let traceParent = ["ALTER TABLE deployments ADD COLUMN trace_parent TEXT"]

    private static func initial(serial: String, integer: String) -> [String] {
        [
            """
            CREATE TABLE deployments (
                seq \(serial),
                id TEXT NOT NULL UNIQUE,
                service TEXT NOT NULL,
                image TEXT NOT NULL,
                image_registry TEXT NOT NULL,
                image_repository TEXT NOT NULL,
                image_tag TEXT,
                image_digest TEXT,
                environment TEXT NOT NULL,
                strategy TEXT NOT NULL,
                replicas \(integer) NOT NULL,
                health_url TEXT,
                labels TEXT NOT NULL,
                status TEXT NOT NULL,
                attempt \(integer) NOT NULL DEFAULT 0,
                error TEXT,
                cancel_requested \(integer) NOT NULL DEFAULT 0,
                lease_owner TEXT,
                lease_expires_at \(integer),
                created_by TEXT,
                idempotency_key TEXT,
                request_hash TEXT,
                created_at \(integer) NOT NULL,
                updated_at \(integer) NOT NULL,
                started_at \(integer),
                finished_at \(integer)
            )
            """,
            // NULL keys are distinct in unique indexes of both databases: only keyed requests are constrained.
            "CREATE UNIQUE INDEX deployments_idempotency ON deployments (created_by, idempotency_key)",
            "CREATE INDEX deployments_status ON deployments (status, seq)",
            "CREATE INDEX deployments_service ON deployments (service, seq)",
            "CREATE INDEX deployments_environment ON deployments (environment, seq)",
            """
            CREATE TABLE deployment_events (
                seq \(serial),
                deployment_id TEXT NOT NULL REFERENCES deployments (id),
                at \(integer) NOT NULL,
                attempt \(integer) NOT NULL,
                worker_id TEXT,
                step TEXT NOT NULL,
                kind TEXT NOT NULL,
                outcome TEXT,
                duration_ms \(integer),
                message TEXT NOT NULL
            )
            """,
            "CREATE INDEX deployment_events_deployment ON deployment_events (deployment_id, seq)",
            """
            CREATE TABLE deployment_manifests (
                deployment_id TEXT PRIMARY KEY REFERENCES deployments (id),
                attempt \(integer) NOT NULL,
                rendered_at \(integer) NOT NULL,
                compose TEXT NOT NULL,
                kubernetes TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE api_keys (
                seq \(serial),
                id TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                role TEXT NOT NULL,
                prefix TEXT NOT NULL,
                secret_hash TEXT NOT NULL UNIQUE,
                created_at \(integer) NOT NULL,
                created_by TEXT,
                last_used_at \(integer),
                revoked_at \(integer)
            )
            """,
            """
            CREATE TABLE audit_log (
                seq \(serial),
                at \(integer) NOT NULL,
                key_id TEXT,
                action TEXT NOT NULL,
                target TEXT,
                outcome TEXT NOT NULL,
                status \(integer) NOT NULL,
                request_id TEXT,
                method TEXT NOT NULL,
                path TEXT NOT NULL
            )
            """,
        ]
    }
}
