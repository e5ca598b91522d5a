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

    public var description: String {
        switch self {
        case .corruptRow(let detail): "the database returned an unexpected row: \(detail)"
        case .notFound: "not found"
        case .idempotencyMismatch(let id): "idempotency key was used for a different request (deployment \(id))"
        case .conflict(let detail): detail
        case .invalidDatabaseURL(let detail): detail
        case .invalidArgument(let detail): detail
        }
    }
}
