import CodeAPI
import CodeAPIContract
import Foundation
import HTTPTypes
import OpenAPIRuntime
import Testing

/// The overload the generated server calls for a response body (ContractResponseBodies.swift); through code-api,
/// `ContractJSONEncoderTests.codeAPIWritesItsResponsesWithIt`.
@Suite("Contract response bodies")
struct ContractResponseBodiesTests {
    static func written(_ configuration: Configuration) async throws -> (String, HTTPFields) {
        let (body, headers) = try contractResponseBody(
            ContractJSONEncoderTests.deployment(2, everything: false), configuration: configuration,
            contentType: "application/json; charset=utf-8")
        return (String(decoding: try await [UInt8](collecting: body, upTo: 1 << 20), as: UTF8.self), headers)
    }

    @Test
    func theContractsOptionsAreWrittenByTheStreamingEncoder() async throws {
        let (json, headers) = try await Self.written(.contract)
        #expect(
            json
                == String(
                    decoding: try ContractJSONEncoder().encode(ContractJSONEncoderTests.deployment(2, everything: false)), as: UTF8.self))
        #expect(json.hasPrefix(#"{"id":"dep_2","service":"web""#))
        #expect(headers[.contentType] == "application/json; charset=utf-8")
        #expect(headers[.contentLength] == String(json.utf8.count))
    }

    /// Options the streaming encoder does not write are not dropped: such a configuration is answered by the
    /// runtime's encoder.
    @Test
    func otherOptionsAreWrittenByTheRuntime() async throws {
        let (json, headers) = try await Self.written(
            Configuration(dateTranscoder: ContractDateTranscoder(), jsonEncodingOptions: [.sortedKeys]))
        #expect(json.hasPrefix(#"{"attempt":2,"cancel_requested":false,"created_at":"#))
        #expect(json.contains(#""image":"ghcr.io\/acme\/web:1.4.2""#))
        #expect(headers[.contentLength] == String(json.utf8.count))
    }
}
