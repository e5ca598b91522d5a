import AsyncHTTPClient
import CodeDomain
import CodeRuntime
import Foundation
import NIOCore
import NIOHTTP1

/// code-api as code-mcp uses it, over async-http-client with code-mcp's own operator key.
struct APIClient: Sendable {
    let baseURL: URL
    let apiKey: String
    let timeout: Duration
    let client: HTTPClient

    /// A problem answer of the API, or a failure to reach it; tools turn it into an `isError` result.
    struct Failure: Error, Sendable, CustomStringConvertible {
        let status: Int?
        let problem: ProblemDetails?
        let reason: String

        var description: String {
            if let problem { return "\(problem.status) \(problem.code): \(problem.detail ?? problem.title)" }
            return reason
        }
    }

    static let maximumResponseBytes = 8 * 1024 * 1024

    func get<T: Decodable>(_ path: String, query: [String: String?] = [:], requestID: String?, as type: T.Type) async throws -> T {
        try await send(.GET, path, query: query, body: nil, headers: [:], requestID: requestID, as: type).value
    }

    func post<T: Decodable>(_ path: String, body: (any Encodable)? = nil, headers: [String: String] = [:], requestID: String?, as type: T.Type) async throws -> (value: T, status: Int) {
        try await send(.POST, path, query: [:], body: body, headers: headers, requestID: requestID, as: type)
    }

    private func send<T: Decodable>(
        _ method: HTTPMethod, _ path: String, query: [String: String?], body: (any Encodable)?, headers: [String: String],
        requestID: String?, as type: T.Type
    ) async throws -> (value: T, status: Int) {
        var components = URLComponents(url: baseURL.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
        let items = query.compactMap { name, value in value.map { URLQueryItem(name: name, value: $0) } }.sorted { $0.name < $1.name }
        components.queryItems = items.isEmpty ? nil : items
        var request = HTTPClientRequest(url: components.url!.absoluteString)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(apiKey)")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "code-mcp/\(BuildInfo.version)")
        if let requestID { request.headers.add(name: "X-Request-ID", value: requestID) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try CodeJSON.encoder.encode(body)))
        }
        let response: HTTPClientResponse
        let data: Data
        do {
            response = try await client.execute(request, timeout: TimeAmount(timeout))
            data = Data(buffer: try await response.body.collect(upTo: Self.maximumResponseBytes))
        } catch {
            throw Failure(status: nil, problem: nil, reason: "code-api at \(baseURL.absoluteString) did not answer: \(error)")
        }
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            let problem = try? JSONDecoder().decode(ProblemDetails.self, from: data)
            throw Failure(status: status, problem: problem, reason: "code-api answered HTTP \(status)")
        }
        do {
            return (try CodeJSON.decoder.decode(T.self, from: data), status)
        } catch {
            throw Failure(status: status, problem: nil, reason: "code-api answered with an unexpected body: \(error)")
        }
    }
}
