import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A response read in full, for assertions.
public struct HTTPResult: Sendable {
    public let status: Int
    public let headers: HTTPHeaders
    public let body: Data

    public var text: String { String(decoding: body, as: UTF8.self) }

    public func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw UnexpectedBody(text: text)
        }
        return object
    }

    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: body)
    }
}

public struct UnexpectedBody: Error, CustomStringConvertible {
    public let text: String
    public init(text: String) { self.text = text }
    public var description: String { "unexpected body: \(text)" }
}

/// Real HTTP over loopback with AsyncHTTPClient.
public enum LoopbackHTTP {
    public static func request(
        _ method: HTTPMethod = .GET,
        _ url: String,
        headers: [(String, String)] = [],
        body: Data? = nil,
        timeout: Duration = .seconds(10)
    ) async throws -> HTTPResult {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        let response = try await HTTPClient.shared.execute(request, timeout: TimeAmount.nanoseconds(nanoseconds))
        let buffer = try await response.body.collect(upTo: 16 * 1024 * 1024)
        return HTTPResult(status: Int(response.status.code), headers: response.headers, body: Data(buffer.readableBytesView))
    }

    /// Polls `url` until it answers 2xx; returns the time it took from `since`.
    public static func waitUntilAnswering(
        _ url: String,
        since start: ContinuousClock.Instant = .now,
        timeout: Duration = .seconds(30)
    ) async throws -> Duration {
        let deadline = start + timeout
        while ContinuousClock.now < deadline {
            if let result = try? await request(.GET, url, timeout: .seconds(1)), (200..<300).contains(result.status) {
                return ContinuousClock.now - start
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw ProcessTimeout(command: "GET \(url)", timeout: timeout)
    }
}
