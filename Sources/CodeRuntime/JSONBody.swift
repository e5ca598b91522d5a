import Foundation
import Hummingbird
import NIOCore

/// Decoding of JSON request bodies with explicit limits and problem errors:
/// 415 `unsupported_media_type` for anything but `application/json` (or a `+json` type),
/// 413 `payload_too_large` beyond `limit` bytes, 400 `malformed_json` for text that is not JSON,
/// 422 `validation_failed` naming the field for JSON of the wrong shape.
public enum JSONBody {
    public static let defaultLimit = 64 * 1024
    /// Decoders that reject unknown fields throw `DecodingError.dataCorrupted` with this description.
    public static let unknownFieldDescription = "unknown field"
    /// What swift-openapi-runtime's decoders of `additionalProperties: false` schemas say instead.
    static let openAPIUnknownFieldPrefix = "Additional properties are disabled"

    public static func decode<Value: Decodable>(
        _ type: Value.Type,
        from request: Request,
        limit: Int = defaultLimit
    ) async throws -> Value {
        try checkContentType(request)
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw ServiceError(.contentTooLarge, code: "payload_too_large", detail: "The request body exceeds \(limit) bytes.")
        }
        return try decode(type, from: Data(buffer: buffer))
    }

    public static func decode<Value: Decodable>(_ type: Value.Type, from data: Data) throws -> Value {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw problem(for: error)
        }
    }

    static func checkContentType(_ request: Request) throws {
        let contentType = request.headers[.contentType].flatMap(MediaType.init(from:))
        guard let contentType, contentType.type == .application,
            contentType.subType == "json" || contentType.subType.hasSuffix("+json")
        else {
            throw ServiceError(.unsupportedMediaType, code: "unsupported_media_type", detail: "Send the body as application/json.")
        }
    }

    /// The problem a decoding error is to the client: 400 `malformed_json` when the text is not JSON, else
    /// 422 `validation_failed` naming the field.
    public static func problem(for error: DecodingError) -> ServiceError {
        func path(_ codingPath: [any CodingKey], _ key: (any CodingKey)? = nil) -> String {
            let keys = codingPath + (key.map { [$0] } ?? [])
            let rendered = keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return rendered.isEmpty ? "$" : rendered.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return .badRequest(code: "malformed_json", "The request body is not valid JSON.")
        case .dataCorrupted(let context)
        where context.debugDescription == unknownFieldDescription || context.debugDescription.hasPrefix(openAPIUnknownFieldPrefix):
            return .validation([.init(field: path(context.codingPath), message: "is not a known field")])
        case .dataCorrupted(let context):
            return .validation([.init(field: path(context.codingPath), message: "has an invalid value")])
        case .keyNotFound(let key, let context):
            return .validation([.init(field: path(context.codingPath, key), message: "is required")])
        case .typeMismatch(let type, let context):
            return .validation([.init(field: path(context.codingPath), message: "must be \(describe(type))")])
        case .valueNotFound(let type, let context):
            return .validation([.init(field: path(context.codingPath), message: "must be \(describe(type)), not null")])
        @unknown default:
            return .badRequest(code: "malformed_json", "The request body is not valid JSON.")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type, is Int32.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        case is Bool.Type: "a boolean"
        case is [String: String].Type: "an object of strings"
        default:
            String(describing: type).hasPrefix("Array") ? "an array" : "an object"
        }
    }
}
