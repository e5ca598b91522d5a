import CodeAPIContract
import Foundation
import HTTPTypes
import OpenAPIRuntime
import Testing

@testable import CodeMCP

/// The overload the generated client calls for code-api's answers (ContractResponseBodies.swift): what it
/// reads is what the runtime's `JSONDecoder` reads, with the configuration's date transcoder, and the
/// generated client calls it (a trailing comma, which only `JSONDecoder` takes, tells the two apart).
@Suite("Contract response bodies, read")
struct ContractResponseBodiesTests {
    static let createdAt = Date(timeIntervalSince1970: 1_796_000_000.25)

    static let key = Components.Schemas.Key(
        id: "key_1", name: "ci \"deployer\" é", role: ._operator, prefix: "code_ab12", createdAt: createdAt, createdBy: "key_0",
        lastUsedAt: createdAt.addingTimeInterval(60))

    /// The runtime's decoder for `Configuration.contract`, as its `Converter` sets it up.
    static func runtimeDecoder(_ transcoder: any DateTranscoder) -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            try transcoder.decode(try decoder.singleValueContainer().decode(String.self))
        }
        return decoder
    }

    @Test
    func readsWhatTheRuntimesDecoderReads() async throws {
        let page = Components.Schemas.KeyPage(items: [Self.key, Self.key], nextCursor: "c_2")
        let json = try ContractJSONEncoder().encode(page)
        let read = try await contractResponseValue(Components.Schemas.KeyPage.self, from: HTTPBody(json), configuration: .contract)
        #expect(read == page)
        #expect(read == (try Self.runtimeDecoder(ContractDateTranscoder()).decode(Components.Schemas.KeyPage.self, from: Data(json))))
    }

    /// Timestamps go through the configuration's transcoder, not a fixed one.
    @Test
    func timestampsGoThroughTheConfigurationsTranscoder() async throws {
        struct EpochSeconds: DateTranscoder {
            func encode(_ date: Date) throws -> String { String(Int(date.timeIntervalSince1970)) }
            func decode(_ text: String) throws -> Date {
                guard let seconds = Double(text) else { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: text)) }
                return Date(timeIntervalSince1970: seconds)
            }
        }
        let json = try ContractJSONEncoder(dateTranscoder: EpochSeconds()).encode(Self.key)
        #expect(String(decoding: json, as: UTF8.self).contains(#""created_at":"1796000000""#))
        let configuration = Configuration(dateTranscoder: EpochSeconds())
        let read = try await contractResponseValue(Components.Schemas.Key.self, from: HTTPBody(json), configuration: configuration)
        #expect(read.createdAt == Date(timeIntervalSince1970: 1_796_000_000))
        // The contract's transcoder refuses that text: the configuration's was used.
        await #expect(throws: DecodingError.self) {
            try await contractResponseValue(Components.Schemas.Key.self, from: HTTPBody(json), configuration: .contract)
        }
    }

    /// A body that is not the schema is the `DecodingError` the runtime's decoder throws, with its path.
    @Test
    func anAnswerThatIsNotTheSchemaIsADecodingError() async throws {
        let json = #"{"items":[{"id":"key_1","name":"n","role":"operator","prefix":"code_ab12"}]}"#
        do {
            _ = try await contractResponseValue(Components.Schemas.KeyPage.self, from: HTTPBody(json), configuration: .contract)
            Issue.record("a key without created_at was read")
        } catch DecodingError.keyNotFound(let key, let context) {
            #expect(key.stringValue == "created_at")
            #expect(context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue } == ["items", "0"])
        }
    }

    /// No body at all: the runtime's own error, as before.
    @Test
    func noBodyIsTheRuntimesError() async throws {
        do {
            _ = try await contractResponseValue(Components.Schemas.KeyPage.self, from: nil, configuration: .contract)
            Issue.record("no body was read")
        } catch {
            #expect("\(error)".contains("Missing required response body"), "\(error)")
        }
    }

    /// Answers every request with one JSON body.
    struct OneAnswer: ClientTransport {
        let json: String

        func send(_ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String) async throws -> (HTTPResponse, HTTPBody?) {
            (HTTPResponse(status: .ok, headerFields: [.contentType: "application/json"]), HTTPBody(json))
        }
    }

    /// The generated client reads code-api's answers through the overload: an answer with a trailing comma,
    /// which the runtime's `JSONDecoder` reads and `ContractJSONDecoder` refuses, is refused.
    @Test
    func theGeneratedClientReadsAnswersWithTheContractsDecoder() async throws {
        let lenient = #"{"items":[],}"#
        #expect(
            try Self.runtimeDecoder(ContractDateTranscoder()).decode(Components.Schemas.KeyPage.self, from: Data(lenient.utf8)).items
                .isEmpty)
        let serverURL = try #require(URL(string: "http://127.0.0.1:9"))
        do {
            _ = try await Client(serverURL: serverURL, configuration: .contract, transport: OneAnswer(json: lenient)).listKeys(.init())
            Issue.record("the generated client read a trailing comma: JSONDecoder read the answer")
        } catch let error as ClientError {
            guard case DecodingError.dataCorrupted? = error.underlyingError as? DecodingError else {
                Issue.record("not the decoder's refusal: \(error)")
                return
            }
        }
        let strict = try await Client(serverURL: serverURL, configuration: .contract, transport: OneAnswer(json: #"{"items":[]}"#))
            .listKeys(.init())
        #expect(try strict.ok.body.json.items.isEmpty)
    }
}
