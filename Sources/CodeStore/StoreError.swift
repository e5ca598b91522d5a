import CodeConfiguration

/// Errors of the store that callers act on; database errors (connection, constraint) pass through as the
/// driver reports them.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    case corruptRow(String)
    case notFound
    case idempotencyMismatch(existingID: String)
    case conflict(String)
    case invalidDatabaseURL(String)
    /// A caller asked for something the store never does (e.g. finishing with a status that is not final).
    case invalidArgument(String)
    /// The database holds migrations this binary does not know: it was migrated by a newer version (a
    /// downgrade). Running on would write rows the newer schema does not expect, so the process stops.
    case schemaNewerThanBinary(unknownMigrations: [String])
    /// The database did not answer in time (down, restarting, unreachable): callers answer 503 and retry.
    case unavailable(String)

    public var description: String {
        switch self {
        case .corruptRow(let detail): "the database returned an unexpected row: \(detail)"
        case .notFound: "not found"
        case .idempotencyMismatch(let id): "idempotency key was used for a different request (deployment \(id))"
        case .conflict(let detail): detail
        case .invalidDatabaseURL(let detail): detail
        case .invalidArgument(let detail): detail
        case .schemaNewerThanBinary(let unknown):
            "the database was migrated by a newer version of CODE (unknown migrations: \(unknown.joined(separator: ", "))); "
                + "run that version or restore a backup taken before the upgrade"
        case .unavailable(let detail): "the database is unavailable: \(detail)"
        }
    }
}

extension StoreError: ExitCodeError {
    /// A database newer than the binary ends the process with 65 (sysexits.h `EX_DATAERR`: the data is not
    /// what this program can work with), distinct from 78 for configuration errors and 1 for crashes.
    public static let schemaNewerThanBinaryExitCode: Int32 = 65

    public var exitCode: Int32 {
        switch self {
        case .schemaNewerThanBinary: Self.schemaNewerThanBinaryExitCode
        default: 1
        }
    }
}
