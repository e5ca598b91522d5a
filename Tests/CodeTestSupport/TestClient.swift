import CodeDomain
import CodeRuntime
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting

extension TestClientProtocol {
    /// One request with an optional bearer key and JSON body.
    public func call(
        _ method: HTTPRequest.Method,
        _ uri: String,
        key: String? = nil,
        json: Any? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers = extra
        if let key { headers[.authorization] = "Bearer \(key)" }
        var body: ByteBuffer?
        if let json {
            headers[.contentType] = headers[.contentType] ?? "application/json"
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
        }
        return try await executeRequest(uri: uri, method: method, headers: headers, body: body)
    }
}

extension TestResponse {
    public func object() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] else {
            throw UnexpectedBody(text: String(buffer: body))
        }
        return object
    }

    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try CodeJSON.decoder.decode(type, from: Data(buffer: body))
    }

    /// The problem body; fails the decoding when the response is not a problem.
    public func problem() throws -> ProblemDetails {
        guard headers[.contentType] == "application/problem+json" else {
            throw UnexpectedBody(text: "\(status) \(headers[.contentType] ?? "-"): \(String(buffer: body))")
        }
        return try JSONDecoder().decode(ProblemDetails.self, from: Data(buffer: body))
    }
}
