import CodeAPIContract
import Foundation
import OpenAPIRuntime
import Testing

/// `ContractJSONDecoder` against what it replaces: Foundation's `JSONDecoder` configured as the OpenAPI
/// runtime configures it for `Configuration.contract` (dates through the contract's transcoder). Both decode
/// the same bytes; they must give equal values, or throw the same `DecodingError` case with the same coding
/// path. Where the input is not JSON, the contract's decoder must throw `dataCorrupted`, also where
/// `JSONDecoder` is lenient (see `StrictJSON`).
@Suite("Contract JSON decoder")
struct ContractJSONDecoderTests {
    static let foundationDecoder: JSONDecoder = {
        let decoder = JSONDecoder()
        let transcoder = ContractDateTranscoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            return try transcoder.decode(try container.decode(String.self))
        }
        return decoder
    }()

    static let decoder = ContractJSONDecoder()

    typealias Page = Components.Schemas.DeploymentPage

    // MARK: - Outcomes

    /// A decoding error as the two decoders are compared: its case, coding path (array indices as
    /// numbers) and, for `keyNotFound`, the key.
    enum Failure: Equatable, CustomStringConvertible {
        case dataCorrupted(path: [String])
        case typeMismatch(path: [String])
        case valueNotFound(path: [String])
        case keyNotFound(key: String, path: [String])
        case notADecodingError(String)

        init(_ error: any Error) {
            guard let error = error as? DecodingError else {
                self = .notADecodingError(String(describing: error))
                return
            }
            func name(_ key: any CodingKey) -> String { key.intValue.map(String.init) ?? key.stringValue }
            func path(_ context: DecodingError.Context) -> [String] { context.codingPath.map(name) }
            switch error {
            case .dataCorrupted(let context): self = .dataCorrupted(path: path(context))
            case .typeMismatch(_, let context): self = .typeMismatch(path: path(context))
            case .valueNotFound(_, let context): self = .valueNotFound(path: path(context))
            case .keyNotFound(let key, let context): self = .keyNotFound(key: name(key), path: path(context))
            @unknown default: self = .notADecodingError(String(describing: error))
            }
        }

        var isDataCorrupted: Bool {
            if case .dataCorrupted = self { return true }
            return false
        }

        var isDecodingError: Bool {
            if case .notADecodingError = self { return false }
            return true
        }

        var description: String {
            switch self {
            case .dataCorrupted(let path): "dataCorrupted at \(path)"
            case .typeMismatch(let path): "typeMismatch at \(path)"
            case .valueNotFound(let path): "valueNotFound at \(path)"
            case .keyNotFound(let key, let path): "keyNotFound \(key) at \(path)"
            case .notADecodingError(let error): "not a DecodingError: \(error)"
            }
        }
    }

    enum Outcome<Value: Equatable>: Equatable, CustomStringConvertible {
        case value(Value)
        case failure(Failure)

        init(_ body: () throws -> Value) {
            do { self = .value(try body()) } catch { self = .failure(Failure(error)) }
        }

        var failure: Failure? {
            if case .failure(let failure) = self { return failure }
            return nil
        }

        var description: String {
            switch self {
            case .value(let value): "value \(value)"
            case .failure(let failure): "error \(failure)"
            }
        }
    }

    /// What the two decoders made of one input.
    struct Verdict: CustomStringConvertible {
        var agree: Bool
        var ours: Outcome<String>
        var reference: Outcome<String>

        var description: String { "ContractJSONDecoder: \(ours); JSONDecoder: \(reference)" }
    }

    /// Decodes `bytes` as `T` with both decoders; they agree when their outcomes, values compared by
    /// `key`, are equal.
    static func verdict<T: Decodable, K: Equatable>(_ type: T.Type, _ bytes: [UInt8], key: (T) -> K) -> Verdict {
        let ours = Outcome { key(try decoder.decode(T.self, from: bytes)) }
        let reference = Outcome { key(try foundationDecoder.decode(T.self, from: Data(bytes))) }
        func described(_ outcome: Outcome<K>) -> Outcome<String> {
            switch outcome {
            case .value(let value): .value(String(describing: value))
            case .failure(let failure): .failure(failure)
            }
        }
        let agree = ours == reference || isNumberOutOfRange(ours: ours.failure, reference: reference.failure, in: bytes)
        return Verdict(agree: agree, ours: described(ours), reference: described(reference))
    }

    /// A difference the comparisons allow: JSONDecoder (swift-foundation, as on Linux) refuses a number that
    /// does not fit the type asked for with an error of its own (`JSONError.numberIsNotRepresentableInSwift`,
    /// which a type's `init(from:)` sees as is), and turns it into `dataCorrupted` with an empty coding path
    /// only when it reaches the top (losing where the number was). ContractJSONDecoder throws `dataCorrupted`
    /// at the number's coding path. Allowed when the input is JSON and `ours` points at a number in it.
    static func isNumberOutOfRange(ours: Failure?, reference: Failure?, in bytes: [UInt8]) -> Bool {
        guard case .dataCorrupted(let path) = ours, !path.isEmpty, reference == .dataCorrupted(path: []),
            case .scalar(let text)? = StrictJSON.parse(bytes)?.value(at: path[...]), let first = text.utf8.first
        else { return false }
        return first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first)
    }

    static func verdict<T: Decodable & Equatable>(_ type: T.Type, _ bytes: [UInt8]) -> Verdict {
        verdict(type, bytes) { $0 }
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func shown(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self).debugDescription }

    // MARK: - 1. Every response schema

    /// Request bodies and the webhook's, besides the response bodies the encoder's tests name.
    static let otherSchemas: [any Codable & Hashable & Sendable] = [
        Components.Schemas.DeploymentRequest(
            service: "web", image: "ghcr.io/acme/web:1.4.2", environment: .staging, strategy: .rolling, replicas: 4,
            healthUrl: "http://web.internal/health", labels: .init(additionalProperties: ["team": "payments", "a/b": "é \"q\""])),
        Components.Schemas.DeploymentRequest(service: "web", image: "nginx", environment: .development),
        Components.Schemas.KeyRequest(name: "ci", role: .admin),
        Components.Schemas.RolloutDelivery(
            event: .deployment_rollout, deliveryId: "del_1", deployment: ContractJSONEncoderTests.deployment(7, everything: true),
            attempt: 2, manifests: .init(compose: "services: {}\n", kubernetes: "kind: List\n")),
    ]

    @Test(arguments: ContractJSONEncoderTests.samples.indices)
    func decodesWhatFoundationsDecoderDecodesForEveryResponseSchema(sample: Int) throws {
        let value = ContractJSONEncoderTests.samples[sample]
        if let hashable = value as? any Codable & Hashable {
            try Self.roundTrip(hashable)
        } else {
            try Self.roundTripCanonically(value)
        }
    }

    @Test(arguments: otherSchemas.indices)
    func decodesWhatFoundationsDecoderDecodesForRequestBodies(sample: Int) throws {
        try Self.roundTrip(Self.otherSchemas[sample])
    }

    /// Encoded by Foundation's encoder (and by the contract's), decoded by both decoders: the same value,
    /// the one encoded.
    static func roundTrip<T: Codable & Hashable>(_ value: T) throws {
        for json in [try ContractJSONEncoderTests.foundationEncoder.encode(value), Data(try ContractJSONEncoder().encode(value))] {
            let reference = try foundationDecoder.decode(T.self, from: json)
            let ours = try decoder.decode(T.self, from: json)
            #expect(ours == reference, "\(T.self): \(String(decoding: json, as: UTF8.self))")
            #expect(ours == value, "\(T.self): \(String(decoding: json, as: UTF8.self))")
        }
    }

    /// For a schema that is not `Hashable`: the two decoded values encode to the same JSON.
    static func roundTripCanonically<T: ContractResponseBody & Decodable>(_ value: T) throws {
        let json = try ContractJSONEncoderTests.foundationEncoder.encode(value)
        let reference = try foundationDecoder.decode(T.self, from: json)
        let ours = try decoder.decode(T.self, from: json)
        let encoder = ContractJSONEncoderTests.foundationEncoder
        #expect(
            try ContractJSONEncoderTests.canonical(encoder.encode(ours)) == ContractJSONEncoderTests.canonical(encoder.encode(reference)))
        #expect(try ContractJSONEncoderTests.canonical(encoder.encode(ours)) == ContractJSONEncoderTests.canonical(json))
    }

    // MARK: - 2. Whitespace and the order of keys

    @Test(arguments: ContractJSONEncoderTests.samples.indices)
    func whitespaceBetweenEveryTokenAndKeysInReverseOrder(sample: Int) throws {
        let value = try #require(ContractJSONEncoderTests.samples[sample] as? any Codable & Hashable)
        try Self.respaced(value)
    }

    static func respaced<T: Codable & Hashable>(_ value: T) throws {
        let json = Array(try ContractJSONEncoderTests.foundationEncoder.encode(value))
        let node = try #require(StrictJSON.parse(json))
        let spaces = [" ", "\t", "\n", "\r\n", " \t\n\r ", "  "]
        for reversed in [false, true] {
            var turn = 0
            let text = node.written(reversed: reversed) {
                turn += 1
                return spaces[turn % spaces.count]
            }
            let input = bytes(text)
            let ours = Outcome { try decoder.decode(T.self, from: input) }
            let reference = Outcome { try foundationDecoder.decode(T.self, from: Data(input)) }
            #expect(ours == reference, "\(T.self): \(text)")
            #expect(ours == .value(value), "\(T.self): \(text)")
        }
    }

    // MARK: - 3. Strings

    @Test
    func stringsWithEveryEscapeAndBeyondASCII() throws {
        let strings = [
            #""plain""#, #""\"""#, #""\\""#, #""\/""#, #""a\/b/c""#, #""\b\f\n\r\t""#, #""\u0000\u0001\u001f\u001F\u007f""#,
            #""\u00e9\u00E9 é""#, #""e\u0301""#, #""🚀 \ud83d\ude80""#, #""\ud83d\ude00""#, #""\uD83D\uDE00""#, #""\u2028\u2029""#,
            "\"\u{2028}\u{2029}\"", #""\ud7ff\ue000\uffff\ufffd""#, #""\udbff\udfff""#, "\"\u{10FFFF}\"", #""a\u0000b""#, #""""#,
            #""\ufeff""#, "\"\u{FEFF}\"", #""ends with \\""#, #""\\u0041""#, #""\u0022\u005c\u002f""#, #""\u0041\u0042C""#,
            "\"\u{7F} é 🚀 日本語 \u{1F469}\u{200D}\u{1F4BB}\"",
            "\"" + String(repeating: #"x\n"#, count: 300) + "\"", "\"" + String(repeating: "é🚀", count: 200) + "\"",
        ]
        let input = Self.bytes("[" + strings.joined(separator: ",") + "]")
        let verdict = Self.verdict([String].self, input)
        #expect(verdict.agree, "\(verdict)")
        #expect(verdict.ours.failure == nil, "\(verdict)")
        // One at a time, and as keys.
        for string in strings {
            let single = Self.verdict(String.self, Self.bytes(string))
            #expect(single.agree, "\(string): \(single)")
            let keyed = Self.verdict([String: Int].self, Self.bytes("{" + string + ":1}"))
            #expect(keyed.agree, "\(string): \(keyed)")
        }
        // A member found by a key written with escapes.
        let member = Self.verdict([String: String].self, Self.bytes(#"{"k\u00e9y":"v","a\/b":"c","\"q\"":"d","t\tab":"e"}"#))
        #expect(member.agree, "\(member)")
    }

    /// The parser passes a value string's plain ASCII eight bytes at a time: whatever ends such a run (the
    /// closing quote, an escape, a byte beyond ASCII, a byte it refuses) is found at every position of
    /// strings of 1 to 24 bytes, with the string last in the document and followed by more, as a value and as a
    /// key. A word read past the document's end cannot change an outcome: the debug builds the tests run in
    /// trap on it (the bounds check of `loadUnaligned`).
    @Test
    func aSpecialByteAtEveryPositionOfAString() {
        let pieces: [[UInt8]] = [
            Array(#"\""#.utf8), Array(#"\\"#.utf8), Array(#"\n"#.utf8), Array(#"\u00e9"#.utf8), Array("é".utf8), Array("🚀".utf8),
            [0x01], [0x1F], [0x7F], [0xFF], [0x80], [0xC3], [UInt8(ascii: "\\")], [0x22],
        ]
        for length in 1...24 {
            for position in 0..<length {
                for piece in pieces {
                    var string = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    string.replaceSubrange(position..<position + 1, with: piece)
                    let quoted = [0x22] + string + [0x22]
                    for (document, target) in [
                        (quoted, Target.string), (Array("[".utf8) + quoted + Array(#","plain text after it"]"#.utf8), .strings),
                        (Array("{".utf8) + quoted + Array(#":1,"another key after it":2}"#.utf8), .intObject),
                    ] {
                        let verdict = target.verdict(document)
                        #expect(verdict.agree, "\(Self.shown(document)): \(verdict)")
                    }
                }
            }
            // Never closed: refused by both.
            let unterminated = [0x22] + [UInt8](repeating: UInt8(ascii: "a"), count: length)
            let verdict = Target.string.verdict(unterminated)
            #expect(verdict.agree && verdict.ours.failure != nil, "\(Self.shown(unterminated)): \(verdict)")
        }
    }

    // MARK: - 4. Invalid JSON

    /// The types the tables decode as.
    enum Target: String, Sendable {
        case value, object, strings, string, int, ints, double, intObject, bool, page, deploymentRequests, key, eventPage

        func verdict(_ bytes: [UInt8]) -> Verdict {
            switch self {
            case .value: ContractJSONDecoderTests.verdict(OpenAPIValueContainer.self, bytes)
            case .object: ContractJSONDecoderTests.verdict(OpenAPIObjectContainer.self, bytes)
            case .strings: ContractJSONDecoderTests.verdict([String].self, bytes)
            case .string: ContractJSONDecoderTests.verdict(String.self, bytes)
            case .int: ContractJSONDecoderTests.verdict(Int.self, bytes)
            case .ints: ContractJSONDecoderTests.verdict([Int].self, bytes)
            case .double: ContractJSONDecoderTests.verdict(Double.self, bytes) { $0.bitPattern }
            case .intObject: ContractJSONDecoderTests.verdict([String: Int].self, bytes)
            case .bool: ContractJSONDecoderTests.verdict(Bool.self, bytes)
            case .page: ContractJSONDecoderTests.verdict(Page.self, bytes)
            case .deploymentRequests: ContractJSONDecoderTests.verdict([Components.Schemas.DeploymentRequest].self, bytes)
            case .key: ContractJSONDecoderTests.verdict(Components.Schemas.Key.self, bytes)
            case .eventPage: ContractJSONDecoderTests.verdict(Components.Schemas.EventPage.self, bytes)
            }
        }
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        let bytes: [UInt8]
        let target: Target
        /// JSONDecoder takes it (lenient); the contract's decoder must not.
        let foundationAccepts: Bool

        init(_ text: String, _ target: Target, foundationAccepts: Bool = false) {
            self.init(bytes: Array(text.utf8), target, foundationAccepts: foundationAccepts)
        }

        init(bytes: [UInt8], _ target: Target, foundationAccepts: Bool = false) {
            self.bytes = bytes
            self.target = target
            self.foundationAccepts = foundationAccepts
        }

        var testDescription: String { "\(ContractJSONDecoderTests.shown(bytes)) as \(target)" }
    }

    static let invalidInputs: [Invalid] = [
        Invalid("", .value), Invalid(" ", .value), Invalid(" \t\r\n", .value), Invalid("{", .value), Invalid("}", .value),
        Invalid("[", .value), Invalid("]", .value), Invalid("[,1]", .ints), Invalid("[1,,2]", .ints), Invalid("{,}", .intObject),
        Invalid("[,]", .ints),
        // JSONDecoder (swift-foundation) takes a trailing comma in an array or object.
        Invalid("[1,]", .ints, foundationAccepts: true), Invalid("[1 ,\n]", .ints, foundationAccepts: true),
        Invalid(#"{"a":1,}"#, .intObject, foundationAccepts: true), Invalid(#"[[1,],[]]"#, .value, foundationAccepts: true),
        Invalid("01", .int), Invalid("-01", .int), Invalid("00", .double), Invalid("-", .int), Invalid("--1", .int), Invalid("1.", .double),
        Invalid(".5", .double), Invalid("1e", .double), Invalid("1e+", .double), Invalid("1.e5", .double), Invalid("+1", .int),
        Invalid("1-", .int), Invalid("1.2.3", .double), Invalid("1ee5", .double), Invalid("0x10", .int), Invalid("NaN", .double),
        Invalid("Infinity", .double), Invalid("-Infinity", .double), Invalid("[-]", .ints), Invalid("[01]", .value),
        Invalid(#""abc"#, .string), Invalid(#"["abc]"#, .strings), Invalid(#""\""#, .string), Invalid(#""\x""#, .string),
        Invalid(#""\'""#, .string), Invalid(#""\U0041""#, .string), Invalid(#""\u12""#, .string), Invalid(#""\u00G0""#, .string),
        Invalid(#""\ud800""#, .string), Invalid(#""\udc00""#, .string), Invalid(#""\ud800x""#, .string),
        Invalid(#""\ud800\u0041""#, .string), Invalid(#""\ude00\ud83d""#, .string), Invalid(#"["\ud83d"]"#, .strings),
        Invalid("\"a\tb\"", .string), Invalid("\"a\nb\"", .string), Invalid("\"a\rb\"", .string), Invalid("\"a\u{1}b\"", .string),
        Invalid("\"a\u{1F}b\"", .strings), Invalid(bytes: [0x22, 0x61, 0x00, 0x62, 0x22], .string),
        Invalid(bytes: [0x22, 0xFF, 0x22], .string), Invalid(bytes: [0x5B, 0x22, 0xC3, 0x28, 0x22, 0x5D], .strings),
        Invalid(bytes: [0x22, 0xED, 0xA0, 0x80, 0x22], .string), Invalid(bytes: [0x22, 0xC0, 0xAF, 0x22], .string),
        Invalid(bytes: [0x22, 0xE2, 0x82, 0x22], .string), Invalid(bytes: [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], .string),
        Invalid(bytes: [0x22, 0x80, 0x22], .string), Invalid(bytes: [0x22, 0xF0, 0x9F, 0x9A, 0x22], .string),
        Invalid(bytes: [0x5B, 0xFF, 0x5D], .value), Invalid(bytes: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D], .intObject),
        Invalid(#"{"a" 1}"#, .intObject), Invalid(#"{"a":}"#, .intObject), Invalid("{1:2}", .intObject), Invalid("{a:1}", .intObject),
        Invalid("{null:1}", .intObject), Invalid(#"{"a":1 "b":2}"#, .intObject), Invalid(#"{"a":1}}"#, .intObject),
        Invalid(#"{"a":1]"#, .intObject), Invalid("[1}", .ints), Invalid("[1 2]", .ints), Invalid(#"{"\x":1}"#, .intObject),
        Invalid("tru", .bool), Invalid("nul", .value), Invalid("fals", .bool), Invalid("True", .bool), Invalid("nulll", .value),
        Invalid("truefalse", .bool), Invalid("1 2", .int), Invalid("{}x", .intObject), Invalid("[]]", .ints), Invalid("[1],", .ints),
        Invalid("[1]\u{0}", .ints), Invalid("\"a\" \"b\"", .string), Invalid("// c", .value), Invalid("/* c */ 1", .int),
        Invalid("1 // c", .int), Invalid("'a'", .value), Invalid(String(repeating: "[", count: 10), .value),
        Invalid(String(repeating: "[", count: 10) + String(repeating: "]", count: 9), .value), Invalid("\u{B}1", .int),
        Invalid("\u{C}1", .int), Invalid("1\u{A0}", .int), Invalid("\u{2028}1", .int),
        Invalid(#"{"items":[],"next_cursor":"a",}"#, .page, foundationAccepts: true),
    ]

    @Test(arguments: invalidInputs)
    func invalidJSONIsDataCorrupted(_ input: Invalid) {
        #expect(StrictJSON.parse(input.bytes) == nil, "the test's own reading of JSON takes it")
        let verdict = input.target.verdict(input.bytes)
        #expect(verdict.ours.failure?.isDataCorrupted == true, "\(verdict)")
        if input.foundationAccepts {
            #expect(verdict.reference.failure == nil, "JSONDecoder no longer takes it: \(verdict)")
        } else {
            #expect(verdict.reference.failure != nil, "\(verdict)")
        }
    }

    /// A value of any shape, read through the containers: how deep it nests.
    struct Nest: Decodable, Equatable {
        var depth = 0

        init(from decoder: any Decoder) throws {
            if var array = try? decoder.unkeyedContainer() {
                while !array.isAtEnd { depth = max(depth, try array.decode(Nest.self).depth + 1) }
            } else if let object = try? decoder.container(keyedBy: AnyKey.self) {
                for key in object.allKeys { depth = max(depth, try object.decode(Nest.self, forKey: key).depth + 1) }
            } else {
                _ = try decoder.singleValueContainer().decode(Int.self)
            }
        }
    }

    /// Nesting as deep as JSONDecoder takes is taken by both, deeper refused by both.
    @Test(arguments: [1, 100, 255, 256, 257, 511, 512, 513, 600])
    func nestingAsDeepAsFoundationTakes(depth: Int) {
        for (open, close, inner) in [("[", "]", "1"), (#"{"a":"#, "}", "1"), (#"[{"a":"#, "}]", "[]")] {
            let input = Self.bytes(String(repeating: open, count: depth) + inner + String(repeating: close, count: depth))
            let verdict = Self.verdict(Nest.self, input)
            #expect(verdict.agree || (verdict.ours.failure != nil && verdict.reference.failure != nil), "\(open) × \(depth): \(verdict)")
        }
    }

    // MARK: - 5. Type and key errors

    /// A step of a path into a JSON document: an object's key or an array's index.
    enum Step: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, CustomStringConvertible {
        case key(String)
        case index(Int)

        init(stringLiteral value: String) { self = .key(value) }
        init(integerLiteral value: Int) { self = .index(value) }

        var description: String {
            switch self {
            case .key(let key): key
            case .index(let index): String(index)
            }
        }
    }

    /// A page of five deployments with one value replaced (or removed, without `json`).
    struct Damage: Sendable, CustomTestStringConvertible {
        let path: [Step]
        let json: String?
        let fails: Bool

        init(_ path: [Step], _ json: String?, fails: Bool = true) {
            self.path = path
            self.json = json
            self.fails = fails
        }

        var testDescription: String { "\(path.map(\.description).joined(separator: ".")) " + (json.map { "= \($0)" } ?? "removed") }
    }

    static let page = Page(
        items: (1...5).map { ContractJSONEncoderTests.deployment($0, everything: $0.isMultiple(of: 2)) }, nextCursor: "c")

    static let damages: [Damage] = [
        Damage(["items", 3, "image_ref", "registry"], nil), Damage(["items", 0, "id"], nil), Damage(["items", 4, "created_at"], nil),
        Damage(["items"], nil), Damage(["items", 1, "replicas"], #""3""#), Damage(["items", 1, "replicas"], "null"),
        Damage(["items", 1, "replicas"], "3.5"), Damage(["items", 1, "replicas"], "1e2", fails: false),
        Damage(["items", 1, "replicas"], "3.0", fails: false), Damage(["items", 1, "replicas"], "9223372036854775808"),
        Damage(["items", 1, "replicas"], "-9223372036854775809"), Damage(["items", 1, "replicas"], "true"),
        Damage(["items", 1, "replicas"], "[3]"), Damage(["items", 1, "replicas"], "1e400"), Damage(["items", 2, "status"], #""paused""#),
        Damage(["items", 2, "status"], #""Queued""#), Damage(["items", 2, "status"], "1"), Damage(["items", 2, "status"], "null"),
        Damage(["items", 0, "created_at"], #""2026-11-30 00:53""#),
        Damage(["items", 0, "created_at"], #""2026-02-30T00:00:00Z""#, fails: false),
        Damage(["items", 0, "created_at"], #""2026-11-30T00:53:20""#), Damage(["items", 0, "created_at"], #""2026-11-30""#),
        Damage(["items", 0, "created_at"], #""""#), Damage(["items", 0, "created_at"], "1796000000"),
        Damage(["items", 0, "created_at"], "null"), Damage(["items", 1, "finished_at"], #""yesterday""#),
        Damage(["items", 1, "finished_at"], "null", fails: false),
        Damage(["items", 0, "created_at"], #""2026-11-30T00:53:20+01:00""#, fails: false),
        Damage(["items"], "{}"), Damage(["items"], #""none""#), Damage(["items"], "null"), Damage(["items", 4], "null"),
        Damage(["items", 4], "[]"), Damage(["items", 4], "7"), Damage(["items", 1, "labels"], #"{"team":5}"#),
        Damage(["items", 1, "labels"], "[]"), Damage(["items", 1, "labels", "tier"], "null"), Damage(["items", 1, "labels", "tier"], "{}"),
        Damage(["items", 1, "labels"], "null"), Damage(["items", 0, "cancel_requested"], #""true""#),
        Damage(["items", 0, "cancel_requested"], "1"), Damage(["items", 0, "image_ref"], "null"),
        Damage(["items", 3, "image_ref"], #""ghcr.io""#), Damage(["items", 3, "image_ref"], "[]"),
        Damage(["items", 0, "image_ref", "tag"], "null", fails: false), Damage(["items", 0, "image_ref", "tag"], "5"),
        Damage(["items", 0, "health_url"], "5"), Damage(["items", 0, "health_url"], "null", fails: false),
        Damage(["next_cursor"], "null", fails: false), Damage(["next_cursor"], "false"),
        Damage(["items", 2, "unknown"], "[1,{}]", fails: false),
        Damage(["items", 1, "attempt"], "-1.5"), Damage(["items", 1, "environment"], #""prod""#), Damage([], "[]"), Damage([], "null"),
        Damage([], #""page""#), Damage([], "{}"),
    ]

    @Test(arguments: damages)
    func typeAndKeyErrorsAsFoundationThrowsThem(_ damage: Damage) throws {
        let json = Array(try ContractJSONEncoder().encode(Self.page))
        let node = try #require(StrictJSON.parse(json))
        let replacement = try damage.json.map { try #require(StrictJSON.parse(Self.bytes($0))) }
        let input = Self.bytes(node.replacing(damage.path[...], with: replacement).written())
        let verdict = Target.page.verdict(input)
        #expect(verdict.agree, "\(verdict)")
        #expect((verdict.reference.failure != nil) == damage.fails, "the case no longer tests what it did: \(verdict)")
    }

    static let otherErrors: [Invalid] = [
        // Additional properties are refused at the coding path of the object and the first unknown key.
        Invalid(
            #"[{"service":"a","image":"b","environment":"staging"},{"service":"a","image":"b","environment":"staging","x":1,"b":2}]"#,
            .deploymentRequests),
        Invalid(#"[{"service":"a","environment":"staging"}]"#, .deploymentRequests),
        Invalid(#"[{"service":"a","image":"b","environment":"staging","labels":{"a":1}}]"#, .deploymentRequests),
        Invalid(#"[{"service":"a","image":"b","environment":"staging","replicas":null,"labels":null}]"#, .deploymentRequests),
        Invalid(#"{"id":"k","name":"n","role":"root","prefix":"p","created_at":"2026-11-30T00:53:20.500Z"}"#, .key),
        Invalid(#"{"id":"k","name":"n","role":"admin","prefix":"p","created_at":"2026-11-30T00:53:20.500Z","revoked_at":"x"}"#, .key),
        Invalid(
            #"{"items":[{"seq":1.5,"deployment_id":"d","at":"2026-11-30T00:53:20Z","attempt":1,"step":"s","kind":"info","message":""}]}"#,
            .eventPage),
        Invalid(
            #"{"items":[{"seq":"1","deployment_id":"d","at":"2026-11-30T00:53:20Z","attempt":1,"step":"s","kind":"info","message":""}]}"#,
            .eventPage),
        Invalid(#"{"items":[],"next_after":18446744073709551616}"#, .eventPage), Invalid(#"{"items":[],"next_after":-0}"#, .eventPage),
        Invalid(#"{"a":1,"b":"2"}"#, .intObject), Invalid(#"{"a":1,"b":null}"#, .intObject), Invalid(#"[1,2,"3"]"#, .ints),
        Invalid("[1,null]", .ints), Invalid("[[1]]", .ints), Invalid("{}", .ints), Invalid("[]", .intObject), Invalid(#""1""#, .int),
        Invalid("null", .string), Invalid("1", .bool), Invalid("0", .bool), Invalid(#""true""#, .bool), Invalid("[true]", .bool),
        Invalid("null", .value), Invalid("[]", .object),
    ]

    @Test(arguments: otherErrors)
    func errorsOfOtherTypesAsFoundationThrowsThem(_ input: Invalid) {
        let verdict = input.target.verdict(input.bytes)
        #expect(verdict.agree, "\(verdict)")
    }

    // MARK: - 6. Numbers

    enum Number: String, CaseIterable, Sendable {
        case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, double, float, decimal

        func verdict(_ text: String) -> Verdict {
            let input = ContractJSONDecoderTests.bytes(text)
            func integer<T: FixedWidthInteger & Decodable>(_ type: T.Type) -> Verdict {
                ContractJSONDecoderTests.verdict(type, input) { String($0) }
            }
            // Bit for bit: sign, exponent and significand.
            func floatingPoint<T: BinaryFloatingPoint & Decodable>(_ type: T.Type) -> Verdict {
                ContractJSONDecoderTests.verdict(type, input) { "\($0) (\($0.sign) \($0.exponentBitPattern) \($0.significandBitPattern))" }
            }
            switch self {
            case .int: return integer(Int.self)
            case .int8: return integer(Int8.self)
            case .int16: return integer(Int16.self)
            case .int32: return integer(Int32.self)
            case .int64: return integer(Int64.self)
            case .uint: return integer(UInt.self)
            case .uint8: return integer(UInt8.self)
            case .uint16: return integer(UInt16.self)
            case .uint32: return integer(UInt32.self)
            case .uint64: return integer(UInt64.self)
            case .double: return floatingPoint(Double.self)
            case .float: return floatingPoint(Float.self)
            case .decimal: return ContractJSONDecoderTests.verdict(Decimal.self, input) { "\($0)" }
            }
        }

        /// The type's limits and one past them.
        var limits: [String] {
            func integer<T: FixedWidthInteger>(_ type: T.Type) -> [String] {
                let max = String(T.max)
                let min = String(T.min)
                let belowMin = T.min == 0 ? "-1" : "-" + Number.plusOne(String(min.dropFirst()))
                return [max, min, Number.plusOne(max), belowMin, max + ".0", min + ".0", max + "e0", "\(T.max - 1)"]
            }
            switch self {
            case .int: return integer(Int.self)
            case .int8: return integer(Int8.self)
            case .int16: return integer(Int16.self)
            case .int32: return integer(Int32.self)
            case .int64: return integer(Int64.self)
            case .uint: return integer(UInt.self)
            case .uint8: return integer(UInt8.self)
            case .uint16: return integer(UInt16.self)
            case .uint32: return integer(UInt32.self)
            case .uint64: return integer(UInt64.self)
            case .double:
                return [
                    "\(Double.greatestFiniteMagnitude)", "-\(Double.greatestFiniteMagnitude)", "\(Double.leastNormalMagnitude)",
                    "\(Double.leastNonzeroMagnitude)", "1.7976931348623158e308", "1.7976931348623159e308", "-1.7976931348623159e308",
                    "2.4703282292062327e-324", "2.4703282292062328e-324", "1e-325", "2.2250738585072011e-308",
                    "2.2250738585072012e-308",
                ]
            case .float:
                return [
                    "\(Float.greatestFiniteMagnitude)", "-\(Float.greatestFiniteMagnitude)", "\(Float.leastNormalMagnitude)",
                    "\(Float.leastNonzeroMagnitude)", "3.4028235677973366e38", "3.40282356779733661637539395458142568448e38",
                    "3.4028236e38", "3.5e38", "-3.5e38", "1e39", "7e-46", "8e-46", "1e-46", "1.1754942e-38", "16777217",
                ]
            case .decimal: return ["1e127", "1e128", "-1e128", "1e-128", "1e-129", "3402823669209384634633746074317682114550000"]
            }
        }

        /// A decimal numeral one more.
        static func plusOne(_ digits: String) -> String {
            var result = Array(digits.utf8)
            var index = result.count - 1
            while index >= 0 {
                if result[index] == UInt8(ascii: "9") {
                    result[index] = UInt8(ascii: "0")
                    index -= 1
                } else {
                    result[index] += 1
                    return String(decoding: result, as: UTF8.self)
                }
            }
            return "1" + String(decoding: result, as: UTF8.self)
        }
    }

    static let numbers = [
        "0", "-0", "1", "-1", "7", "42", "-42", "1e2", "1E2", "1e+2", "1E+2", "1e-2", "1.0", "-1.0", "1.5", "-1.5", "2.5e-3", "0.5e1",
        "10e-1", "1.25e1", "1.5e1", "123.456e3", "0e0", "0E-0", "-0.0e+0", "1e-0", "0.0", "-0.0", "1e400", "1E400", "-1e400", "1e-400",
        "-1e-400", "1e-7", "0.1", "0.2", "0.3", "0.1000000000000000055511151231257827", "0.30000000000000004",
        "100000000000000000000000000000000e-30", "123456789012345678901234567890", "0.000000000000000000000000000000000000000000001",
        "1.00000000000000000000000000000000000000001", "9007199254740993", "9007199254740993.0", "4503599627370496.5", "9007199254740993.5",
        "-9007199254740993.5",
        "12345678901234567.8", "127", "128",
        "-128", "-129", "255", "256", "255.0", "2.55e2", "12.7e1", "-12.8e1", "32767", "32768", "65535", "65536", "2147483647",
        "2147483648", "-2147483648", "-2147483649", "4294967295", "4294967296", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "-9223372036854775809", "18446744073709551615", "18446744073709551616", "1e18", "1e19", "1e20",
        "-9223372036854775808.0", "-9223372036854775807.0", "9.223372036854775807e18", "9223372036854775295.0",
        "9223372036854775296.0", "1.8446744073709551615e19", "12345678901234567.0", "1234567890123456789e0", "-1234567890123456789e0",
        "3.4028235e38", "1.7976931348623157e308", "4.9e-324", "1.4e-45",
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "1" + String(repeating: "0", count: 400), "0." + String(repeating: "0", count: 400) + "1",
        "1." + String(repeating: "9", count: 400),
        "1e" + String(repeating: "0", count: 30) + "1", "1e-" + String(repeating: "9", count: 30), " 5 ", "\t-5\n",
        #""1""#, "true", "null", "[1]", "{}",
    ]

    @Test(arguments: Number.allCases)
    func numbersAtAndBeyondTheirLimits(_ number: Number) {
        for text in Self.numbers + number.limits {
            let verdict = number.verdict(text)
            // JSONDecoder reads a number written with a fraction or an exponent, from 2^53 up, through
            // `Decimal`, and its conversion from there stops at -9223372036854775807: it refuses
            // -9223372036854775808.0 as an Int64. ContractJSONDecoder reads it.
            if [.int, .int64].contains(number), text == "-9223372036854775808.0", verdict.ours == .value(text.replacing(".0", with: "")),
                verdict.reference.failure?.isDataCorrupted == true
            {
                continue
            }
            #expect(verdict.agree, "\(number) \(text): \(verdict)")
        }
    }

    // MARK: - 7. Containers beyond the generated types

    typealias AnyKey = ContractJSONEncoderTests.AnyKey

    /// What a hand-written `init(from:)` sees through every kind of container, one line for each call: its
    /// value or its error.
    struct Shapes: Decodable, Equatable {
        var log: [String] = []

        init(from decoder: any Decoder) throws {
            var log: [String] = []
            func note(_ label: String, _ body: () throws -> Any) {
                do {
                    let value = try body()
                    switch value {
                    case let date as Date: log.append("\(label): date \(date.timeIntervalSince1970)")
                    case let data as Data: log.append("\(label): data \(Array(data))")
                    case let url as URL: log.append("\(label): url \(url.absoluteString)")
                    case let double as Double: log.append("\(label): \(double) bits \(double.bitPattern)")
                    case let object as OpenAPIObjectContainer:
                        let encoder = JSONEncoder()
                        encoder.outputFormatting = .sortedKeys
                        log.append("\(label): \(String(decoding: try encoder.encode(object), as: UTF8.self))")
                    default: log.append("\(label): \(String(reflecting: value))")
                    }
                } catch {
                    log.append("\(label): \(Failure(error))")
                }
            }
            let object = try decoder.container(keyedBy: AnyKey.self)
            note("allKeys") { object.allKeys.map(\.stringValue).sorted() }
            for key: AnyKey in ["name", "absent", "null", "nested", "kéy", "a/b", "escaped \"key\""] {
                note("contains \(key.stringValue)") { object.contains(key) }
            }
            note("name") { try object.decode(String.self, forKey: "name") }
            note("name if present") { try object.decodeIfPresent(String.self, forKey: "name") as Any }
            note("absent if present") { try object.decodeIfPresent(String.self, forKey: "absent") as Any }
            note("null if present") { try object.decodeIfPresent(Int.self, forKey: "null") as Any }
            note("null if present, generic") { try object.decodeIfPresent([Int].self, forKey: "null") as Any }
            note("name if present as Int") { try object.decodeIfPresent(Int.self, forKey: "name") as Any }
            note("nil null") { try object.decodeNil(forKey: "null") }
            note("nil name") { try object.decodeNil(forKey: "name") }
            note("nil absent") { try object.decodeNil(forKey: "absent") }
            note("absent") { try object.decode(Int.self, forKey: "absent") }
            note("absent, generic") { try object.decode([Int].self, forKey: "absent") }
            note("null as Int") { try object.decode(Int.self, forKey: "null") }
            note("null as String?") { try object.decode(String?.self, forKey: "null") as Any }
            note("name as Int") { try object.decode(Int.self, forKey: "name") }
            note("escaped keys") {
                [try object.decode(Int.self, forKey: "kéy"), try object.decode(Int.self, forKey: "a/b")]
            }
            note("escaped quote key") { try object.decode(String.self, forKey: "escaped \"key\"") }

            let nested = try object.nestedContainer(keyedBy: AnyKey.self, forKey: "nested")
            note("nested allKeys") { nested.allKeys.map(\.stringValue).sorted() }
            note("nested a") { try nested.decode(Int.self, forKey: "a") }
            note("nested absent") { try nested.decode(Int.self, forKey: "absent") }
            note("nested a as String") { try nested.decode(String.self, forKey: "a") }
            var list = try nested.nestedUnkeyedContainer(forKey: "b")
            note("b count") { list.count as Any }
            note("b at end") { list.isAtEnd }
            note("b index") { list.currentIndex }
            note("b bool") { try list.decode(Bool.self) }
            note("b nil on null") { try list.decodeNil() }
            note("b index after null") { list.currentIndex }
            note("b nil on string") { try list.decodeNil() }
            note("b index after string") { list.currentIndex }
            note("b string as Int") { try list.decode(Int.self) }
            note("b index after mismatch") { list.currentIndex }
            note("b string") { try list.decode(String.self) }
            note("b at end after") { list.isAtEnd }
            note("b past end") { try list.decode(Int.self) }
            note("b nil past end") { try list.decodeNil() }
            note("b nested past end") {
                _ = try list.nestedUnkeyedContainer()
                return "container"
            }
            note("b index at end") { list.currentIndex }
            let deeper = try nested.nestedContainer(keyedBy: AnyKey.self, forKey: "deeper")
            note("deeper c") { try deeper.decode(Double.self, forKey: "c") }
            note("deeper c as Int") { try deeper.decode(Int.self, forKey: "c") }
            note("deeper c as Float") { try deeper.decode(Float.self, forKey: "c") }
            note("nested of a string") {
                _ = try object.nestedContainer(keyedBy: AnyKey.self, forKey: "name")
                return "container"
            }
            note("nested of absent") {
                _ = try object.nestedContainer(keyedBy: AnyKey.self, forKey: "absent")
                return "container"
            }
            note("unkeyed of absent") {
                _ = try object.nestedUnkeyedContainer(forKey: "absent")
                return "container"
            }
            note("unkeyed of null") {
                _ = try object.nestedUnkeyedContainer(forKey: "null")
                return "container"
            }
            note("unkeyed of an object") {
                _ = try object.nestedUnkeyedContainer(forKey: "nested")
                return "container"
            }

            var elements = try object.nestedUnkeyedContainer(forKey: "list")
            note("list count") { elements.count as Any }
            var turns = 0
            while !elements.isAtEnd, turns < 20 {
                turns += 1
                let index = elements.currentIndex
                if try elements.decodeNil() {
                    note("list \(index)") { "null" }
                    continue
                }
                switch index {
                case 1:
                    note("list 1") { try elements.decode(Int.self) }
                case 2:
                    note("list 2 as Int") { try elements.decode(Int.self) }
                    note("list 2 as Bool") { try elements.decode(Bool.self) }
                    note("list 2 as [String]") { try elements.decode([String].self) }
                    note("list 2 as keyed") {
                        _ = try elements.nestedContainer(keyedBy: AnyKey.self)
                        return "container"
                    }
                    note("list 2 index") { elements.currentIndex }
                    note("list 2") { try elements.decode(String.self) }
                case 3:
                    var inner = try elements.nestedUnkeyedContainer()
                    note("list 3 count") { inner.count as Any }
                    note("list 3.0") { try inner.decode(Int.self) }
                    var innermost = try inner.nestedUnkeyedContainer()
                    note("list 3.1.0") { try innermost.decode(Int.self) }
                    note("list 3.1 past end") { try innermost.decode(Int.self) }
                    note("list 3.1 at end") { innermost.isAtEnd }
                    note("list 3 at end") { inner.isAtEnd }
                case 4:
                    let member = try elements.nestedContainer(keyedBy: AnyKey.self)
                    note("list 4 k") { try member.decode(String.self, forKey: "k") }
                    note("list 4 absent") { try member.decode(String.self, forKey: "absent") }
                    note("list 4 k as Int") { try member.decode(Int.self, forKey: "k") }
                case 6:
                    let sub = try elements.superDecoder()
                    note("list 6 super") { try sub.singleValueContainer().decode(Int.self) }
                    note("list 6 super as String") { try sub.singleValueContainer().decode(String.self) }
                    note("list 6 super as keyed") {
                        _ = try sub.container(keyedBy: AnyKey.self)
                        return "container"
                    }
                case 7:
                    note("list 7 as Int") { try elements.decode(Int.self) }
                    note("list 7 as Double") { try elements.decode(Double.self) }
                    note("list 7 as Float") { try elements.decode(Float.self) }
                    note("list 7 as Decimal") { try elements.decode(Decimal.self) }
                    note("list 7 as UInt8") { try elements.decode(UInt8.self) }
                    note("list 7 as OpenAPIValueContainer") { try elements.decode(OpenAPIValueContainer.self) }
                default:
                    note("list \(index) unexpected") { try elements.decode(OpenAPIValueContainer.self) }
                }
            }
            note("list index at end") { elements.currentIndex }

            let sup = try object.superDecoder()
            note("super s") { try sup.container(keyedBy: AnyKey.self).decode(Int.self, forKey: "s") }
            note("super s as String") { try sup.container(keyedBy: AnyKey.self).decode(String.self, forKey: "s") }
            let parent = try object.superDecoder(forKey: "parent")
            note("parent") {
                var values = try parent.unkeyedContainer()
                return [try values.decode(Int.self), try values.decode(Int.self)]
            }
            note("parent as [Int]") { try parent.singleValueContainer().decode([Int].self) }
            note("super of absent, nil") { try object.superDecoder(forKey: "absent").singleValueContainer().decodeNil() }
            note("super of absent, Int") { try object.superDecoder(forKey: "absent").singleValueContainer().decode(Int.self) }
            note("super of null") { try object.superDecoder(forKey: "null").singleValueContainer().decodeNil() }

            note("data") { try object.decode(Data.self, forKey: "data") }
            note("bad data") { try object.decode(Data.self, forKey: "bad_data") }
            note("data of a number") { try object.decode(Data.self, forKey: "decimal") }
            note("url") { try object.decode(URL.self, forKey: "url") }
            note("url of empty") { try object.decode(URL.self, forKey: "empty_string") }
            note("decimal") { try object.decode(Decimal.self, forKey: "decimal") }
            note("decimal of a string") { try object.decode(Decimal.self, forKey: "name") }
            note("date") { try object.decode(Date.self, forKey: "date") }
            note("date if present") { try object.decodeIfPresent(Date.self, forKey: "date") as Any }
            note("date of a number") { try object.decode(Date.self, forKey: "decimal") }
            note("date of a bad string") { try object.decode(Date.self, forKey: "name") }
            note("dates") { try object.decode([Date].self, forKey: "dates") }
            note("empty object") { try object.nestedContainer(keyedBy: AnyKey.self, forKey: "empty_object").allKeys.count }
            note("empty object as [String: Int]") { try object.decode([String: Int].self, forKey: "empty_object") }
            note("empty array") {
                let empty = try object.nestedUnkeyedContainer(forKey: "empty_array")
                return [empty.count as Any, empty.isAtEnd, empty.currentIndex]
            }
            note("empty array as [Int]") { try object.decode([Int].self, forKey: "empty_array") }
            note("empty string") { try object.decode(String.self, forKey: "empty_string") }
            note("whole as single value") { try decoder.singleValueContainer().decodeNil() }
            note("whole as unkeyed") {
                _ = try decoder.unkeyedContainer()
                return "container"
            }
            note("whole as value") { try decoder.singleValueContainer().decode(OpenAPIObjectContainer.self) }
            self.log = log
        }
    }

    static let shapes = #"""
        {"name":"shapes","nested":{"a":1,"b":[true,null,"x"],"deeper":{"c":-2.5}},
         "list":[null,1,"two",[3,[4]],{"k":"v"},null,5,1.0],"null":null,"super":{"s":1},"parent":[1,2],
         "data":"AAEC+g==","bad_data":"AAEC+g=","url":"https://example.com/a?b=c","decimal":12.50,
         "date":"2026-11-30T00:53:20.500Z","dates":["2026-11-30T00:53:20Z","2026-11-30T00:53:20.123+02:00"],
         "empty_object":{},"empty_array":[],"empty_string":"","k\u00e9y":1,"a\/b":2,"escaped \"key\"":"\u00e9"}
        """#

    @Test
    func everyKindOfContainerAsFoundationDecodes() throws {
        let input = Self.bytes(Self.shapes)
        let ours = try Self.decoder.decode(Shapes.self, from: input).log
        let reference = try Self.foundationDecoder.decode(Shapes.self, from: Data(input)).log
        #expect(ours.count == reference.count)
        for (index, var line) in reference.enumerated() {
            // JSONDecoder lets its own error for a number that does not fit out of `init(from:)` (see
            // `isNumberOutOfRange`); ContractJSONDecoder throws `dataCorrupted` there.
            if line == "deeper c as Int: not a DecodingError: numberIsNotRepresentableInSwift(parsed: \"-2.5\")" {
                line = "deeper c as Int: dataCorrupted at [\"nested\", \"deeper\", \"c\"]"
            }
            #expect(
                index < ours.count && ours[index] == line,
                "JSONDecoder: \(line); ContractJSONDecoder: \(index < ours.count ? ours[index] : "-")")
        }
    }

    @Test
    func dictionaries() {
        let cases: [(String, Verdict)] = [
            (#"{"a":1,"b":-2,"c":3e0,"d":4.0}"#, Self.verdict([String: Int].self, Self.bytes(#"{"a":1,"b":-2,"c":3e0,"d":4.0}"#))),
            ("{}", Self.verdict([String: Int].self, Self.bytes("{}"))),
            ("nested", Self.verdict([String: [String: Int]].self, Self.bytes(#"{"x":{"a":1},"y":{},"z":{"b":2,"c":3}}"#))),
            ("optional values", Self.verdict([String: Int?].self, Self.bytes(#"{"a":1,"b":null}"#))),
            ("Int keys", Self.verdict([Int: String].self, Self.bytes(#"{"1":"a","-2":"b","30":"c"}"#))),
            ("Int keys, not numbers", Self.verdict([Int: String].self, Self.bytes(#"{"1":"a","x":"b"}"#))),
            ("arrays", Self.verdict([String: [String]].self, Self.bytes(#"{"a":["x","y"],"b":[]}"#))),
            ("bad value", Self.verdict([String: [String]].self, Self.bytes(#"{"a":["x",1]}"#))),
        ]
        for (name, verdict) in cases {
            #expect(verdict.agree, "\(name): \(verdict)")
        }
    }

    static let freeForm = #"""
        {"null":null,"t":true,"f":false,"int":42,"neg":-7,"zero":0,"negzero":-0,"one":1.0,"hundred":1e2,"half":1.5,"tiny":2.5e-3,
         "big":9223372036854775807,"bigger":9223372036854775808,"huge":1e300,"string":"s \"q\" \u00e9 \ud83d\ude00 \/",
         "empty":"","array":[1,"two",[3,[4,[]]],{"k":[null,{}]},true,null,0.1],"object":{"a":{"b":{"c":[{"d":1}]}}},"o":{},"a":[]}
        """#

    @Test
    func freeFormJSON() throws {
        let input = Self.bytes(Self.freeForm)
        for verdict in [
            Self.verdict(OpenAPIValueContainer.self, input), Self.verdict(OpenAPIObjectContainer.self, input),
            Self.verdict(OpenAPIArrayContainer.self, Self.bytes("[" + Self.freeForm + ",1,[],{},null]")),
            Self.verdict(OpenAPIValueContainer.self, Self.bytes("[" + Self.freeForm + ",1,[],{},null]")),
            Self.verdict(OpenAPIArrayContainer.self, input), Self.verdict(OpenAPIObjectContainer.self, Self.bytes("[]")),
        ] {
            #expect(verdict.agree, "\(verdict)")
        }
        for scalar in ["null", "true", "false", "1", "-1", "1.0", "1.5", "1e2", "-0", "9223372036854775808", "1e400", #""s""#, "[]", "{}"] {
            let verdict = Self.verdict(OpenAPIValueContainer.self, Self.bytes(scalar))
            #expect(verdict.agree, "\(scalar): \(verdict)")
        }
    }

    /// The keys of an object, each once.
    struct Keys: Decodable {
        let keys: [String]
        init(from decoder: any Decoder) throws {
            keys = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
        }
    }

    @Test
    func aKeyTwiceIsListedOnce() throws {
        // `OpenAPIObjectContainer` and additional properties build a dictionary with
        // `Dictionary(uniqueKeysWithValues:)` from `allKeys`, which stops the process on a key listed twice.
        let input = Self.bytes(#"{"a":1,"b":2,"a":3,"c":{},"b":[]}"#)
        let ours = try Self.decoder.decode(Keys.self, from: input).keys
        let reference = try Self.foundationDecoder.decode(Keys.self, from: Data(input)).keys
        #expect(ours.count == Set(ours).count, "\(ours)")
        #expect(Set(ours) == Set(reference))
    }

    /// Two values of `a` and `b`, read in the order given.
    struct TwoKeys: Decodable, Equatable {
        let a: Int
        let b: Int

        enum CodingKeys: String, CodingKey { case a, b }

        init(a: Int, b: Int) {
            self.a = a
            self.b = b
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            a = try container.decode(Int.self, forKey: .a)
            b = try container.decode(Int.self, forKey: .b)
        }
    }

    /// A key written twice gives its first value, as `JSONDecoder` gives it, whatever the order in which a type
    /// reads the keys and however the key is written (escaped, or as other bytes for the same characters).
    @Test(arguments: [
        (#"{"b":1,"a":2,"b":3}"#, TwoKeys(a: 2, b: 1)),
        (#"{"a":1,"b":2,"a":3,"b":4}"#, TwoKeys(a: 1, b: 2)),
        (#"{"b":5,"\u0061":6,"a":7}"#, TwoKeys(a: 6, b: 5)),
        (#"{"a":8,"b":9,"\u0062":10}"#, TwoKeys(a: 8, b: 9)),
    ])
    func aKeyTwiceGivesItsFirstValue(input: String, expected: TwoKeys) throws {
        #expect(try Self.decoder.decode(TwoKeys.self, from: Self.bytes(input)) == expected)
        #expect(try Self.foundationDecoder.decode(TwoKeys.self, from: Data(input.utf8)) == expected)
    }

    /// A precomposed é and e + U+0301 are one key for `String`, and so for both decoders.
    @Test
    func aKeyTwiceInOtherBytesGivesItsFirstValue() throws {
        struct Accented: Decodable, Equatable {
            let value: Int
            enum CodingKeys: String, CodingKey { case value = "caf\u{E9}" }
        }
        for input in ["{\"cafe\u{301}\":1,\"caf\u{E9}\":2}", "{\"caf\u{E9}\":3,\"cafe\u{301}\":4}"] {
            let ours = try Self.decoder.decode(Accented.self, from: Self.bytes(input))
            #expect(ours == (try Self.foundationDecoder.decode(Accented.self, from: Data(input.utf8))), "\(input)")
            #expect(ours.value == 1 || ours.value == 3, "\(input)")
        }
    }

    /// A name beyond ASCII that `String` takes as equal to a key written in ASCII (the Kelvin sign is K, the
    /// Greek question mark is ;) finds that key, as JSONDecoder's dictionary of keys finds it: the bytes differ
    /// and the key's are ASCII, so only the name's own test for ASCII sends the comparison to `String`.
    @Test
    func aNameBeyondASCIIFindsTheASCIIKeyItEquals() {
        struct Singletons: Decodable, Equatable {
            let kelvin: Int
            let question: Int
            enum CodingKeys: String, CodingKey {
                case kelvin = "\u{212A}"
                case question = "\u{37E}"
            }
        }
        let verdict = Self.verdict(Singletons.self, Self.bytes(#"{"K":1,";":2}"#))
        #expect(verdict.agree && verdict.ours.failure == nil, "\(verdict)")
    }

    /// A null where a `Date`, `Data` or `URL` is asked for is `valueNotFound` of that type, as JSONDecoder says.
    @Test
    func aNullDateDataOrURLIsNotFoundAsItsType() {
        struct Holder<T: Decodable>: Decodable { let value: T }
        func notFound<T: Decodable>(_ type: T.Type, in decode: (Data) throws -> Holder<T>) -> String? {
            switch Result(catching: { try decode(Data(#"{"value":null}"#.utf8)) }) {
            case .failure(DecodingError.valueNotFound(let missing, let context)):
                return "\(missing) at \(context.codingPath.map(\.stringValue))"
            case .failure(let error): return "\(error)"
            case .success: return nil
            }
        }
        #expect(notFound(Date.self, in: { try Self.decoder.decode(Holder<Date>.self, from: $0) }) == "Date at [\"value\"]")
        #expect(notFound(Date.self, in: { try Self.foundationDecoder.decode(Holder<Date>.self, from: $0) }) == "Date at [\"value\"]")
        #expect(notFound(Data.self, in: { try Self.decoder.decode(Holder<Data>.self, from: $0) }) == "Data at [\"value\"]")
        #expect(notFound(URL.self, in: { try Self.decoder.decode(Holder<URL>.self, from: $0) }) == "URL at [\"value\"]")
    }

    /// `decodeIfPresent` at the end of an array is nil and moves the index on, as JSONDecoder's does.
    @Test
    func decodeIfPresentAtTheEndOfAnArray() throws {
        struct Tail: Decodable, Equatable {
            let first: Int
            let rest: Int?
            let indices: [Int]
            init(from decoder: any Decoder) throws {
                var container = try decoder.unkeyedContainer()
                first = try container.decode(Int.self)
                let before = container.currentIndex
                rest = try container.decodeIfPresent(Int.self)
                indices = [before, container.currentIndex]
            }
        }
        let ours = try Self.decoder.decode(Tail.self, from: Self.bytes("[1]"))
        #expect(ours == (try Self.foundationDecoder.decode(Tail.self, from: Data("[1]".utf8))))
        #expect(ours.rest == nil && ours.indices == [1, 2])
    }

    // MARK: - 8. Random edits

    /// A small, seedable generator (SplitMix64), so that a failing seed can be replayed.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let randomBase = Page(
        items: [ContractJSONEncoderTests.deployment(3, everything: true), ContractJSONEncoderTests.deployment(4, everything: false)],
        nextCursor: "k2x9")

    static let jsonishBytes: [UInt8] =
        Array(#"{}[]:,"\/ 0123456789.-+eEtrufalsnx"#.utf8) + [
            0x09, 0x0A, 0x0D, 0x00, 0x01, 0x1F, 0x7F, 0x80, 0xA9, 0xBF, 0xC3, 0xE2, 0xED, 0xF0, 0xFF,
        ]

    /// The base page's JSON with one to three random edits: a byte deleted, a JSON-ish byte inserted, or a byte
    /// doubled.
    static func edited(_ base: [UInt8], seed: UInt64) -> [UInt8] {
        var random = SplitMix64(state: seed)
        var bytes = base
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            let index = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<3, using: &random) {
            case 0: bytes.remove(at: index)
            case 1: bytes.insert(jsonishBytes.randomElement(using: &random)!, at: index)
            default: bytes.insert(bytes[index], at: index)
            }
        }
        return bytes
    }

    @Test
    func randomEditsOfAPageDecodeAsFoundationDecodesThem() throws {
        let base = try ContractJSONEncoder().encode(Self.randomBase)
        // A different 500 each run; a failure names its seed, which `edited(_:seed:)` replays.
        let first = UInt64.random(in: 0..<(1 << 48))
        var decoded = 0
        for seed in first..<first + 500 {
            let input = Self.edited(base, seed: seed)
            let ours = Outcome { try Self.decoder.decode(Page.self, from: input) }
            let reference = Outcome { try Self.foundationDecoder.decode(Page.self, from: Data(input)) }
            let strict = StrictJSON.parse(input)
            let message: Comment = "seed \(seed): \(String(decoding: input, as: UTF8.self))"
            switch (ours, reference) {
            case (.value(let value), .value(let expected)):
                decoded += 1
                #expect(strict != nil, "ContractJSONDecoder took what is not JSON: \(message)")
                // A key twice in one object included: both give the first.
                #expect(value == expected, message)
            case (.failure(let failure), .failure):
                #expect(failure.isDecodingError, "\(failure): \(message)")
            case (.failure(let failure), .value):
                // JSONDecoder is lenient where ContractJSONDecoder is strict: it takes a trailing comma in an
                // array or object, and checks a number or a string only when a type reads it (the value of a
                // key no type asks for is never checked). Then the input is not JSON, and ContractJSONDecoder
                // must refuse it as corrupted.
                #expect(strict == nil, "JSONDecoder decoded, ContractJSONDecoder threw \(failure): \(message)")
                #expect(failure.isDataCorrupted, "JSONDecoder decoded, ContractJSONDecoder threw \(failure): \(message)")
            case (.value, .failure(let failure)):
                Issue.record("JSONDecoder threw \(failure), ContractJSONDecoder decoded: \(message)")
            }
        }
        // Most edits land in a string and keep the page valid; a run that decoded nothing tested little.
        #expect(decoded > 50)
    }

    // MARK: - 9. Data and [UInt8]

    @Test
    func dataAndBytesGiveTheSameResult() throws {
        let page = Array(try ContractJSONEncoder().encode(Self.randomBase))
        let inputs: [[UInt8]] =
            [page, Self.bytes("[1,2]"), Self.bytes("[1,]"), Self.bytes(""), Self.bytes(#"{"items":{}}"#)]
            + Self.invalidInputs.prefix(20).map(\.bytes)
        for input in inputs {
            let fromBytes = Outcome { try Self.decoder.decode(OpenAPIValueContainer.self, from: input) }
            let fromData = Outcome { try Self.decoder.decode(OpenAPIValueContainer.self, from: Data(input)) }
            // A slice of a larger `Data`, whose indices do not start at zero.
            let slice = (Data([0x7B, 0x5B]) + Data(input) + Data([0x5D]))[2..<(2 + input.count)]
            let fromSlice = Outcome { try Self.decoder.decode(OpenAPIValueContainer.self, from: slice) }
            #expect(fromData == fromBytes, "\(Self.shown(input))")
            #expect(fromSlice == fromBytes, "\(Self.shown(input))")
        }
        let pages = Outcome { try Self.decoder.decode(Page.self, from: Data(page)) }
        #expect(pages == .value(Self.randomBase))
        #expect(Outcome { try Self.decoder.decode(Page.self, from: page) } == pages)
    }
}

// MARK: - The test's own reading of JSON

extension ContractJSONDecoderTests {
    /// A strict reading of RFC 8259 JSON, independent of both decoders: to write a document again with other
    /// spacing or order, to edit it, and to tell whether an input is JSON at all.
    struct StrictJSON {
        /// A value; scalars (strings, numbers, literals) as written, object keys also as read.
        indirect enum Node: Sendable {
            case object([(raw: String, key: String, value: Node)])
            case array([Node])
            case scalar(String)

            /// Written again, with `space()` between every two tokens, and members in reverse order if asked.
            func written(reversed: Bool = false, space: () -> String = { "" }) -> String {
                var out = space()
                write(into: &out, reversed: reversed, space: space)
                return out + space()
            }

            private func write(into out: inout String, reversed: Bool, space: () -> String) {
                switch self {
                case .scalar(let text):
                    out += text
                case .array(let elements):
                    out += "[" + space()
                    for (index, element) in elements.enumerated() {
                        if index > 0 { out += "," + space() }
                        element.write(into: &out, reversed: reversed, space: space)
                        out += space()
                    }
                    out += "]"
                case .object(let members):
                    out += "{" + space()
                    for (index, member) in (reversed ? members.reversed() : members).enumerated() {
                        if index > 0 { out += "," + space() }
                        out += member.raw + space() + ":" + space()
                        member.value.write(into: &out, reversed: reversed, space: space)
                        out += space()
                    }
                    out += "}"
                }
            }

            /// The value at `path` (keys, and array indices as numbers), if there is one.
            func value(at path: ArraySlice<String>) -> Node? {
                guard let step = path.first else { return self }
                switch self {
                case .object(let members): return members.first { $0.key == step }?.value.value(at: path.dropFirst())
                case .array(let elements):
                    guard let index = Int(step), elements.indices.contains(index) else { return nil }
                    return elements[index].value(at: path.dropFirst())
                case .scalar: return nil
                }
            }

            /// With the value at `path` replaced by `new`, added if absent (as the last member), or removed
            /// if `new` is nil.
            func replacing(_ path: ArraySlice<Step>, with new: Node?) -> Node {
                guard let step = path.first else { return new ?? self }
                let rest = path.dropFirst()
                switch (self, step) {
                case (.object(var members), .key(let key)):
                    if let index = members.firstIndex(where: { $0.key == key }) {
                        if rest.isEmpty, new == nil {
                            members.remove(at: index)
                        } else {
                            members[index].value = members[index].value.replacing(rest, with: new)
                        }
                    } else if rest.isEmpty, let new {
                        members.append((raw: "\"\(key)\"", key: key, value: new))
                    }
                    return .object(members)
                case (.array(var elements), .index(let index)) where elements.indices.contains(index):
                    if rest.isEmpty, new == nil {
                        elements.remove(at: index)
                    } else {
                        elements[index] = elements[index].replacing(rest, with: new)
                    }
                    return .array(elements)
                default:
                    return self
                }
            }
        }

        /// The document; nil if it is not JSON.
        static func parse(_ bytes: [UInt8]) -> Node? {
            var reader = StrictJSON(bytes: bytes)
            guard let node = reader.value() else { return nil }
            reader.skipSpace()
            guard reader.index == bytes.count else { return nil }
            return node
        }

        let bytes: [UInt8]
        var index = 0

        private var byte: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let byte, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        }

        private mutating func take(_ expected: UInt8) -> Bool {
            guard byte == expected else { return false }
            index += 1
            return true
        }

        private func text(from start: Int) -> String { String(decoding: bytes[start..<index], as: UTF8.self) }

        mutating func value() -> Node? {
            skipSpace()
            guard let first = byte else { return nil }
            switch first {
            case UInt8(ascii: "{"): return object()
            case UInt8(ascii: "["): return array()
            case UInt8(ascii: "\""):
                let start = index
                guard string() != nil else { return nil }
                return .scalar(text(from: start))
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "n"): return literal("null")
            default: return nil
            }
        }

        private mutating func literal(_ word: String) -> Node? {
            for expected in word.utf8 where !take(expected) { return nil }
            return .scalar(word)
        }

        private mutating func object() -> Node? {
            index += 1
            var members: [(raw: String, key: String, value: Node)] = []
            skipSpace()
            if take(UInt8(ascii: "}")) { return .object(members) }
            while true {
                skipSpace()
                let start = index
                guard byte == UInt8(ascii: "\""), let key = string() else { return nil }
                let raw = text(from: start)
                skipSpace()
                guard take(UInt8(ascii: ":")), let value = value() else { return nil }
                members.append((raw, key, value))
                skipSpace()
                if take(UInt8(ascii: "}")) { return .object(members) }
                guard take(UInt8(ascii: ",")) else { return nil }
            }
        }

        private mutating func array() -> Node? {
            index += 1
            var elements: [Node] = []
            skipSpace()
            if take(UInt8(ascii: "]")) { return .array(elements) }
            while true {
                guard let element = value() else { return nil }
                elements.append(element)
                skipSpace()
                if take(UInt8(ascii: "]")) { return .array(elements) }
                guard take(UInt8(ascii: ",")) else { return nil }
            }
        }

        private mutating func digits() -> Int {
            let start = index
            while let byte, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { index += 1 }
            return index - start
        }

        private mutating func number() -> Node? {
            let start = index
            _ = take(UInt8(ascii: "-"))
            if take(UInt8(ascii: "0")) {
                // No leading zeros: a digit cannot follow.
            } else if digits() == 0 {
                return nil
            }
            if take(UInt8(ascii: ".")), digits() == 0 { return nil }
            if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
                if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
                if digits() == 0 { return nil }
            }
            return .scalar(text(from: start))
        }

        private mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let digit = Character(Unicode.Scalar(bytes[index])).hexDigitValue else { return nil }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            return value
        }

        /// A string's content, from its opening quote to past its closing one.
        private mutating func string() -> String? {
            index += 1
            var content: [UInt8] = []
            while let byte {
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return String(decoding: content, as: UTF8.self)
                case ..<0x20:
                    return nil
                case UInt8(ascii: "\\"):
                    index += 1
                    guard let escaped = self.byte else { return nil }
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): content.append(escaped)
                    case UInt8(ascii: "b"): content.append(0x08)
                    case UInt8(ascii: "f"): content.append(0x0C)
                    case UInt8(ascii: "n"): content.append(0x0A)
                    case UInt8(ascii: "r"): content.append(0x0D)
                    case UInt8(ascii: "t"): content.append(0x09)
                    case UInt8(ascii: "u"):
                        guard var scalar = hex4() else { return nil }
                        if (0xDC00...0xDFFF).contains(scalar) { return nil }
                        if (0xD800...0xDBFF).contains(scalar) {
                            guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")), let low = hex4(), (0xDC00...0xDFFF).contains(low)
                            else {
                                return nil
                            }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        content.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
                    default:
                        return nil
                    }
                case ..<0x80:
                    content.append(byte)
                    index += 1
                default:
                    guard let length = utf8Sequence() else { return nil }
                    content.append(contentsOf: bytes[index..<index + length])
                    index += length
                }
            }
            return nil
        }

        /// The length of the well-formed UTF-8 sequence of two to four bytes at `index`, if it is one.
        private func utf8Sequence() -> Int? {
            let lead = bytes[index]
            let shape: (length: Int, second: ClosedRange<UInt8>)
            switch lead {
            case 0xC2...0xDF: shape = (2, 0x80...0xBF)
            case 0xE0: shape = (3, 0xA0...0xBF)
            case 0xE1...0xEC, 0xEE...0xEF: shape = (3, 0x80...0xBF)
            case 0xED: shape = (3, 0x80...0x9F)
            case 0xF0: shape = (4, 0x90...0xBF)
            case 0xF1...0xF3: shape = (4, 0x80...0xBF)
            case 0xF4: shape = (4, 0x80...0x8F)
            default: return nil
            }
            guard index + shape.length <= bytes.count, shape.second.contains(bytes[index + 1]) else { return nil }
            for offset in 2..<shape.length where !(0x80...0xBF).contains(bytes[index + offset]) { return nil }
            return shape.length
        }
    }
}
