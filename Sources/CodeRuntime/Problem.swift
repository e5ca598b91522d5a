import Foundation
import Hummingbird

/// An RFC 9457 problem details body, with the stable machine-readable `code` clients switch on.
///
/// `type` is a URN built from the code (`urn:code-services:problem:not_found`) so that it is stable
/// without pretending to be a resolvable URL.
public struct ProblemDetails: Codable, Sendable, Equatable {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String?
    public var code: String
    public var requestID: String?
    /// Field-level errors, e.g. `{"field": "replicas", "message": "must be from 1 to 100"}`.
    public var errors: [FieldError]?
    /// Policy violations, e.g. `{"rule": "CODE-POL-001", "message": "..."}`.
    public var violations: [PolicyViolationBody]?

    public struct FieldError: Codable, Sendable, Equatable {
        public var field: String
        public var message: String
        public init(field: String, message: String) {
            self.field = field
            self.message = message
        }
    }

    public struct PolicyViolationBody: Codable, Sendable, Equatable {
        public var rule: String
        public var message: String
        public init(rule: String, message: String) {
            self.rule = rule
            self.message = message
        }
    }

    enum CodingKeys: String, CodingKey {
        case type, title, status, detail, code, errors, violations
        case requestID = "request_id"
    }

    public static let mediaType = "application/problem+json"

    public static func typeURI(for code: String) -> String { "urn:code-services:problem:\(code)" }
}

/// An error that becomes a problem response. Throw it from handlers; the telemetry middleware turns it,
/// and every other error, into `application/problem+json`.
public struct ServiceError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var code: String
    public var detail: String?
    public var errors: [ProblemDetails.FieldError]?
    public var violations: [ProblemDetails.PolicyViolationBody]?
    public var headers: HTTPFields

    public init(
        _ status: HTTPResponse.Status,
        code: String,
        detail: String? = nil,
        errors: [ProblemDetails.FieldError]? = nil,
        violations: [ProblemDetails.PolicyViolationBody]? = nil,
        headers: HTTPFields = [:]
    ) {
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.violations = violations
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code)\(detail.map { ": \($0)" } ?? "")" }

    public static func notFound(_ detail: String) -> ServiceError { .init(.notFound, code: "not_found", detail: detail) }
    public static func conflict(code: String, _ detail: String) -> ServiceError { .init(.conflict, code: code, detail: detail) }
    public static func badRequest(code: String, _ detail: String) -> ServiceError { .init(.badRequest, code: code, detail: detail) }
    public static func validation(_ errors: [ProblemDetails.FieldError]) -> ServiceError {
        .init(.unprocessableContent, code: "validation_failed", detail: "The request body is not valid.", errors: errors)
    }
    public static func unauthorized(_ detail: String) -> ServiceError {
        .init(.unauthorized, code: "unauthorized", detail: detail, headers: [.wwwAuthenticate: "Bearer"])
    }
    public static func forbidden(_ detail: String) -> ServiceError { .init(.forbidden, code: "forbidden", detail: detail) }
    public static let internalError = ServiceError(.internalServerError, code: "internal_error", detail: "An unexpected error occurred.")
}

/// Errors that know which problem they are. Store and domain errors conform in the HTTP layers so that
/// the runtime stays independent of them.
public protocol ProblemConvertible: Error {
    var serviceError: ServiceError { get }
}

extension ServiceError: ProblemConvertible {
    public var serviceError: ServiceError { self }
}

extension ServiceError {
    /// Maps any error to the problem clients see. Unknown errors become a generic 500: their messages can
    /// carry internals (SQL, paths), so they go to the log, never to the client.
    public static func from(_ error: any Error) -> ServiceError {
        switch error {
        case let convertible as any ProblemConvertible:
            return convertible.serviceError
        case let httpError as HTTPError:
            return ServiceError(
                httpError.status,
                code: code(for: httpError.status),
                detail: httpError.body,
                headers: httpError.headers
            )
        case let responseError as any HTTPResponseError:
            return ServiceError(responseError.status, code: code(for: responseError.status))
        default:
            return .internalError
        }
    }

    /// Stable codes for the statuses frameworks produce themselves (unknown route, wrong method, body too
    /// large, an unsupported content type).
    public static func code(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "bad_request"
        case 401: "unauthorized"
        case 403: "forbidden"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 408: "request_timeout"
        case 409: "conflict"
        case 413: "payload_too_large"
        case 415: "unsupported_media_type"
        case 422: "validation_failed"
        case 429: "too_many_requests"
        case 503: "service_unavailable"
        case 500..<600: "internal_error"
        default: "http_\(status.code)"
        }
    }

    public func problem(requestID: String?) -> ProblemDetails {
        ProblemDetails(
            type: ProblemDetails.typeURI(for: code),
            title: status.reasonPhrase.isEmpty ? "HTTP \(status.code)" : status.reasonPhrase,
            status: status.code,
            detail: detail,
            code: code,
            requestID: requestID,
            errors: errors,
            violations: violations
        )
    }

    /// The full problem response.
    public func response(requestID: String?) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? encoder.encode(problem(requestID: requestID))) ?? Data("{}".utf8)
        var fields = headers
        fields[.contentType] = ProblemDetails.mediaType
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
