import CodeRuntime
import CodeStore
import Foundation
import HTTPTypes
import OpenAPIRuntime

/// The problems the contract's generated code reports: swift-openapi-runtime wraps every error of a
/// request (decoding its input, a handler's or a middleware's error) in a `ServerError`.
extension ServerError: ProblemConvertible {
    public var serviceError: ServiceError {
        if let convertible = underlyingError as? any ProblemConvertible {
            return convertible.serviceError
        }
        if let decoding = underlyingError as? DecodingError {
            // Operations that take no body decode only parameters: a value of the wrong type there is a
            // bad parameter, not a bad body.
            guard [.get, .head, .delete].contains(request.method) else { return JSONBody.problem(for: decoding) }
            return ServiceError(.badRequest, code: "invalid_parameter", detail: "Some query parameters are not valid.")
        }
        // The runtime's own answers (415 for another content type, 400 for a value that does not parse),
        // with this API's stable codes; anything else is an internal error whose details stay in the log.
        guard httpStatus.code < 500 else { return .internalError }
        let code = httpStatus == .badRequest ? "invalid_parameter" : ServiceError.code(for: httpStatus)
        return ServiceError(httpStatus, code: code, detail: causeDescription)
    }
}

extension StoreError: ProblemConvertible {
    /// The problem code of `unavailable`.
    static let unavailableCode = "database_unavailable"

    public var serviceError: ServiceError {
        switch self {
        case .notFound:
            .notFound("No such resource.")
        case .idempotencyMismatch(let existingID):
            .conflict(code: "idempotency_key_reused", "This Idempotency-Key was used for a different request (deployment \(existingID)).")
        case .conflict(let detail):
            .conflict(code: "conflict", detail)
        case .unavailable:
            // The database is down or restarting: a retry later succeeds, so 503, not 500.
            ServiceError(
                .serviceUnavailable, code: Self.unavailableCode, detail: "The database is unavailable; retry shortly.",
                headers: [.retryAfter: "1"])
        case .corruptRow, .invalidDatabaseURL, .invalidArgument, .schemaNewerThanBinary:
            .internalError
        }
    }
}
