import Foundation
import MCP
import Testing

@testable import CodeMCP

@Suite("Tool results")
struct ToolResultsTests {
    private struct Sample: Encodable {
        let text = "data:text/plain;base64,SGVsbG8="
        let count = 3
        let ratio = 0.5
        let flag = true
        let missing: String? = nil
        let nested = ["image": "ghcr.io/acme/web:1.0"]
        let list = [1, 2]
        let at = Date(timeIntervalSince1970: 1_764_000_000.125)
    }

    @Test func valuesKeepTheirJSONTypesAndStringsStayStrings() throws {
        let value = try JSONValue.from(Sample())
        guard case .object(let object) = value else {
            Issue.record("not an object: \(value)")
            return
        }
        // The SDK's own decoding would turn this string into `.data`: an API answer's string is a string.
        #expect(object["text"] == .string("data:text/plain;base64,SGVsbG8="))
        #expect(object["count"] == .int(3))
        #expect(object["ratio"] == .double(0.5))
        #expect(object["flag"] == .bool(true))
        #expect(object["missing"] == nil || object["missing"] == .null)
        #expect(object["nested"] == .object(["image": .string("ghcr.io/acme/web:1.0")]))
        #expect(object["list"] == .array([.int(1), .int(2)]))
        #expect(object["at"] == .string("2025-11-24T16:00:00.125Z"))
    }
}
