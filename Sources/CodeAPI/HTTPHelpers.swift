import CodeDomain
import CodeRuntime
import CodeStore
import Foundation
import Hummingbird

/// A JSON response encoded the way every API resource is (RFC 3339 timestamps with milliseconds).
func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
    var fields = headers
    fields[.contentType] = "application/json; charset=utf-8"
    let body = try CodeJSON.encoder.encode(value)
    return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
}

/// Opaque list cursors: clients pass back what they got. Every value the OpenAPI pattern allows
/// (1-12 characters of 0-9 and a-z) decodes to a position, so a well-formed cursor is never refused.
enum Cursor {
    static let maximumLength = 12

    static func encode(_ position: Int64?) -> String? {
        position.map { String($0, radix: 36) }
    }

    static func decode(_ text: String) -> Int64? {
        guard (1...maximumLength).contains(text.count), text.allSatisfy({ $0.isASCII && ($0.isNumber || $0.isLowercase) }) else {
            return nil
        }
        return Int64(text, radix: 36)
    }
}

/// Reads query parameters and collects every problem, to report them together as one 400.
struct QueryParameters {
    private let parameters: Parameters
    private(set) var errors: [ProblemDetails.FieldError] = []

    static let maximumLimit = 100

    init(_ request: Request) {
        parameters = request.uri.queryParameters
    }

    /// The parameter's value, nil when absent. Given twice, or empty where a value is needed, it is an error.
    mutating func string(_ name: String, allowEmpty: Bool = false) -> String? {
        let values = parameters.getAll(name)
        guard let value = values.first else { return nil }
        if values.count > 1 {
            errors.append(.init(field: name, message: "must be given once"))
            return nil
        }
        if value.isEmpty && !allowEmpty {
            errors.append(.init(field: name, message: "must not be empty"))
            return nil
        }
        return value
    }

    mutating func limit(default defaultValue: Int) -> Int {
        guard let raw = string("limit") else { return defaultValue }
        guard let value = Int(raw), (1...Self.maximumLimit).contains(value) else {
            errors.append(.init(field: "limit", message: "must be an integer from 1 to \(Self.maximumLimit)"))
            return defaultValue
        }
        return value
    }

    /// An empty cursor means the first page.
    mutating func cursor() -> Int64? {
        guard let raw = string("cursor", allowEmpty: true), !raw.isEmpty else { return nil }
        guard let position = Cursor.decode(raw) else {
            errors.append(.init(field: "cursor", message: "is not a cursor this API returned"))
            return nil
        }
        return position
    }

    mutating func choice<Value: RawRepresentable & CaseIterable>(_ name: String, as type: Value.Type) -> Value? where Value.RawValue == String {
        guard let raw = string(name) else { return nil }
        guard let value = Value(rawValue: raw) else {
            errors.append(.init(field: name, message: "must be one of \(Value.allCases.map(\.rawValue).joined(separator: ", "))"))
            return nil
        }
        return value
    }

    mutating func nonNegativeInteger(_ name: String) -> Int64? {
        guard let raw = string(name) else { return nil }
        guard let value = Int64(raw), value >= 0 else {
            errors.append(.init(field: name, message: "must be a non-negative integer"))
            return nil
        }
        return value
    }

    mutating func check(_ name: String, _ valid: Bool, _ message: String) {
        if !valid { errors.append(.init(field: name, message: message)) }
    }

    /// Throws 400 `invalid_parameter` listing every bad parameter.
    func validate() throws {
        guard errors.isEmpty else {
            throw ServiceError(.badRequest, code: "invalid_parameter", detail: "Some query parameters are not valid.", errors: errors)
        }
    }
}

extension StoreError: ProblemConvertible {
    public var serviceError: ServiceError {
        switch self {
        case .notFound:
            .notFound("No such resource.")
        case .idempotencyMismatch(let existingID):
            .conflict(code: "idempotency_key_reused", "This Idempotency-Key was used for a different request (deployment \(existingID)).")
        case .conflict(let detail):
            .conflict(code: "conflict", detail)
        case .corruptRow, .invalidDatabaseURL, .invalidArgument:
            .internalError
        }
    }
}
