import CodeAPIContract
import CodeDomain
import CodeRuntime
import CodeStore
import Foundation
import HTTPTypes
import Logging
import OpenAPIRuntime
import Synchronization

/// Authentication and the audit log, for every operation of the contract.
///
/// Authenticates `Authorization: Bearer <key>` against the store, or against `keyCache` while it holds the
/// key (a second at most: a key revoked through another replica is refused within that; through this one,
/// at once), and makes the key the request's `Identity`. Roles are checked by each handler, next to what it
/// does. Every authenticated mutating request (anything but GET and HEAD) is
/// recorded in the audit log with its outcome; the action is named after the contract's operation id
/// (`AuditAction`), so the routes are known in one place, the document.
///
/// A request without a valid key writes nothing to the database: anyone can send those, as many and as
/// long as they like. They are counted (`code_auth_failures_total{reason}`) and logged, sampled.
struct AccessMiddleware: ServerMiddleware {
    let store: any APIKeyRepository & AuditRepository
    let keyCache: APIKeyCache?
    let metrics: APIMetrics
    let logger: Logger
    let refusalLog: SampledLog
    /// `last_used_at` is written at most this often per key, so reads do not turn into writes.
    static let lastUsedResolution: TimeInterval = 60

    func intercept(
        _ request: HTTPRequest,
        body: HTTPBody?,
        metadata: ServerRequestMetadata,
        operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let audited = request.method != .get && request.method != .head
        switch try await BearerAuthentication.authenticate(
            authorization: request.headerFields[.authorization], keys: store, cache: keyCache)
        {
        case .failure(let failure):
            metrics.authFailures(failure.rawValue).increment()
            let error = ServiceError.unauthorized(
                failure == .missing ? "Send an API key as 'Authorization: Bearer <key>'." : "The API key is not valid."
            )
            refusalLog.record { suppressed in
                requestLogger.warning(
                    "refused a request without a valid API key",
                    metadata: [
                        "reason": .string(failure.rawValue), "action": .string(AuditAction.name(of: operationID)),
                        "method": .string(request.method.rawValue),
                        "similar_lines_suppressed": .stringConvertible(suppressed),
                    ])
            }
            throw error
        case .success(let key):
            await recordUse(of: key)
            // Named only for a request that is audited: reads, most of the traffic, need no action.
            let action = audited ? AuditAction(operationID: operationID, metadata: metadata) : nil
            let pending = action.map { PendingAudit(request, action: $0, key: key) }
            do {
                let (response, responseBody) = try await Identity.$current.withValue(key) {
                    try await PendingAudit.$current.withValue(pending) { try await next(request, body, metadata) }
                }
                if let pending, !pending.isWritten {
                    // A created resource's id is the last segment of its Location.
                    let created = response.headerFields[.location].map { String($0.split(separator: "/").last ?? "") }
                    await audit(pending.entry(status: response.status.code, target: action?.target ?? created))
                }
                return (response, responseBody)
            } catch {
                let problem = ServiceError.from(error)
                let status = problem.status.code
                if status == 403 { metrics.authFailures("forbidden").increment() }
                if let pending, !pending.isWritten {
                    let entry = pending.entry(status: status, target: action?.target)
                    if problem.code == StoreError.unavailableCode {
                        // The database has just failed this request (silent past the store's deadline, an
                        // operation past its ceiling, a dropped connection): writing the row now would most
                        // likely hold the 503 for another deadline. The error log keeps the row instead.
                        // (Read from the problem: the runtime hands the error over wrapped in its `ServerError`.)
                        requestLogger.error("could not write the audit log: the database is unavailable", metadata: entry.logMetadata)
                    } else {
                        await audit(entry)
                    }
                }
                throw error
            }
        }
    }

    private var requestLogger: Logger { RequestScope.logger(or: logger) }

    private func recordUse(of key: APIKey) async {
        let now = Date()
        if let last = key.lastUsedAt, now.timeIntervalSince(last) < Self.lastUsedResolution { return }
        // Noted in the cache even when the write fails: the requests of the entry's second do not each wait on
        // a database that has just failed one (a database down for longer fails their own operations anyway).
        defer { keyCache?.recordedUse(keyID: key.id, at: now) }
        do {
            try await store.recordKeyUse(id: key.id, at: now)
        } catch {
            requestLogger.warning("could not record key use", metadata: ["key_id": .string(key.id), "error": .string("\(error)")])
        }
    }

    private func audit(_ entry: NewAuditEntry) async {
        do {
            try await store.recordAudit(entry)
        } catch {
            // The change itself happened (or was refused); losing its audit line is reported, not hidden.
            requestLogger.error("could not write the audit log", metadata: entry.logMetadata.merging(["error": .string("\(error)")]) { $1 })
        }
    }
}

/// The audit row of the mutating request being handled. The access middleware writes it when the handler
/// returns or throws, unless the handler wrote it already in the transaction of its change (a created
/// deployment: `NewDeployment.audit`), which saves a write and never leaves a change without its row.
final class PendingAudit: Sendable {
    @TaskLocal static var current: PendingAudit?

    private let keyID: String
    private let action: String
    private let requestID: String?
    private let method: String
    private let path: String
    private let client: String?
    private let written = Atomic(false)

    init(_ request: HTTPRequest, action: AuditAction, key: APIKey) {
        keyID = key.id
        self.action = action.name
        requestID = AuditLimits.bounded(RequestScope.current?.requestID, to: AuditLimits.requestID)
        method = request.method.rawValue
        path = AuditLimits.bounded(request.path.map { String($0.prefix { $0 != "?" }) } ?? "/", to: AuditLimits.path)
        client = AuditLimits.clientLabel(request.headerFields[.codeClient])
    }

    /// The row for an answer with this status; the outcome follows from it.
    func entry(status: Int, target: String?) -> NewAuditEntry {
        let outcome =
            switch status {
            case 200..<400: "succeeded"
            case 403: "denied"
            default: "failed"
            }
        return NewAuditEntry(
            at: Date(), keyID: keyID, action: action, target: AuditLimits.bounded(target, to: AuditLimits.target), outcome: outcome,
            status: status, requestID: requestID, method: method, path: path, client: client
        )
    }

    /// Says the row was written with the change: the middleware writes none.
    func markWritten() { written.store(true, ordering: .releasing) }
    var isWritten: Bool { written.load(ordering: .acquiring) }
}

/// Bounds on what an audit row stores of a request, whoever sent it: an id or path longer than any the API
/// serves is cut (and marked), so a row costs at most a few hundred bytes. Counted in Unicode scalars, not
/// characters: one character can carry any number of combining marks.
enum AuditLimits {
    static let target = 128
    static let requestID = 128
    static let path = 512
    static let client = 64

    /// The caller's `X-Code-Client` label, kept only when it is a plain label (letters, digits and `.:_-`,
    /// at most 64 characters); anything else is dropped rather than stored.
    static func clientLabel(_ value: String?) -> String? {
        guard let value, !value.isEmpty, value.count <= client,
            value.unicodeScalars.allSatisfy({
                $0.isASCII && (CharacterSet.alphanumerics.contains($0) || ".:_-".unicodeScalars.contains($0))
            })
        else { return nil }
        return value
    }

    static func bounded(_ value: String, to limit: Int) -> String {
        let scalars = value.unicodeScalars
        guard scalars.count > limit else { return value }
        var cut = String.UnicodeScalarView(scalars.prefix(limit - 1))
        cut.append("…")
        return String(cut)
    }

    static func bounded(_ value: String?, to limit: Int) -> String? {
        value.map { bounded($0, to: limit) }
    }
}

/// The audit name of an operation, derived from its operation id in the contract: the verb and the
/// resource of `createDeployment` make `deployment.create`, `revokeKey` makes `key.revoke`. The target
/// is the operation's `{id}` path parameter, when it has one.
struct AuditAction: Equatable {
    let name: String
    let target: String?

    init(operationID: String, metadata: ServerRequestMetadata) {
        name = Self.name(of: operationID)
        target = metadata.pathParameters["id"].map(String.init)
    }

    static func name(of operationID: String) -> String {
        guard let resourceStart = operationID.firstIndex(where: \.isUppercase) else { return operationID }
        let verb = operationID[..<resourceStart]
        var resource = ""
        for character in operationID[resourceStart...] {
            if character.isUppercase, !resource.isEmpty { resource.append("_") }
            resource.append(Character(character.lowercased()))
        }
        return "\(resource).\(verb)"
    }
}

extension NewAuditEntry {
    /// The row as a log line's fields, for when it cannot be written.
    var logMetadata: Logger.Metadata {
        var metadata: Logger.Metadata = [
            "action": .string(action), "outcome": .string(outcome), "status": .stringConvertible(status), "method": .string(method),
            "path": .string(path),
        ]
        if let keyID { metadata["key_id"] = .string(keyID) }
        if let target { metadata["target"] = .string(target) }
        return metadata
    }
}
