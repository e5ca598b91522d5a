import CodeDomain
import Foundation
import OpenAPIRuntime

/// Decodes the contract's JSON (`Configuration.contract`: timestamps through the date transcoder) as
/// Foundation's `JSONDecoder` does, from an index of the document built in one pass.
///
/// Why not `JSONDecoder`, as the OpenAPI runtime uses: it builds a dictionary of every object's members
/// (each key hashed) before the first member is read, and looks each key up in it; reading code-api's page
/// of 20 deployments was 27 % of code-mcp's CPU on a `list_deployments` (docs/performance.md,
/// twenty-second round). This decoder checks the whole document first (strict RFC 8259: no trailing commas,
/// leading zeros or comments; valid UTF-8; a `\u` escape of half a surrogate pair refused; nothing after
/// the value), recording each value's place in a flat array. A keyed container then finds a member by
/// comparing its key's bytes, starting after the member found last: the generated types read their
/// members in the order code-api writes them, so a lookup usually compares one key.
///
/// What a type reads decodes as `JSONDecoder` decodes it by default (tested against it): the same values
/// and `DecodingError` cases with the same coding paths, numbers that do not fit the type asked for refused
/// (integers written `1.0` or `1e2` read exactly), `Date` through the transcoder, `Data` from base64, `URL`
/// from a string, `Decimal` from a number, keys compared as `String`s are, the first of a key written twice.
/// Unlike `JSONDecoder`, which is more lenient about input: trailing commas, a byte order mark, UTF-16 and
/// UTF-32, and a value no type reads that is not valid (a bad escape, invalid UTF-8) are refused as corrupt
/// data; a number that does not fit has its own coding path (JSONDecoder's is empty) and its own message;
/// `-9223372036854775808.0` is `Int.min`, which JSONDecoder refuses. The errors' messages are this decoder's.
public struct ContractJSONDecoder: Sendable {
    public let dateTranscoder: any DateTranscoder

    public init(dateTranscoder: any DateTranscoder = ContractDateTranscoder()) {
        self.dateTranscoder = dateTranscoder
    }

    public func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try bytes.withUnsafeBytes { try decode(type, buffer: $0) }
    }

    public func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try data.withUnsafeBytes { try decode(type, buffer: $0) }
    }

    private func decode<T: Decodable>(_ type: T.Type, buffer: UnsafeRawBufferPointer) throws -> T {
        let document = try JSONDocument(copying: buffer, dateTranscoder: dateTranscoder)
        return try ValueDecoder(document: document, node: 0, parent: nil, key: nil).unwrap(T.self, at: 0, key: nil)
    }
}

// MARK: - The document's index

/// One JSON value of the document. Objects hold their members as key and value, one after the other.
private struct JSONNode {
    enum Kind: UInt8 { case object, array, string, number, `true`, `false`, null }

    struct Flags: OptionSet {
        let rawValue: UInt8
        /// A string with a backslash: its text is not its bytes.
        static let escaped = Flags(rawValue: 1)
        /// A string with bytes beyond ASCII: other bytes may be the same characters (e + U+0301 is é).
        static let beyondASCII = Flags(rawValue: 2)
        /// A number without fraction or exponent.
        static let integer = Flags(rawValue: 4)
        /// An object that may hold a key twice: its members are looked up from the first, which is the one
        /// `JSONDecoder` gives.
        static let keyTwice = Flags(rawValue: 8)
    }

    var kind: Kind
    var flags: Flags = []
    /// Where the value starts in the document (a string's first byte after the quote).
    var start: Int32
    /// Where a string or number ends (a string's closing quote); an object or array: the index of the node
    /// after its last member.
    var end: Int32 = 0
    /// An object's members or an array's elements.
    var count: Int32 = 0
    /// A key's ASCII bytes, hashed (FNV-1a): unescaped ASCII keys with different hashes are different keys (an
    /// escaped key or one beyond ASCII is flagged by `markKeyTwice` without its hash). 0 for a value.
    var hash: UInt32 = 0
}

/// The bytes of a document (a copy, which the decoders may keep) and the index of its values.
private final class JSONDocument {
    /// Deeper nesting is refused, as `JSONDecoder` refuses it.
    static let maximumDepth = 512

    let bytes: UnsafeMutableBufferPointer<UInt8>
    // Unchecked: a document is read by the one `decode` call that made it, and the checks of exclusive access
    // would be paid on every read of a node.
    @exclusivity(unchecked) private(set) var nodes: [JSONNode] = []
    let dateTranscoder: any DateTranscoder

    init(copying source: UnsafeRawBufferPointer, dateTranscoder: any DateTranscoder) throws {
        // Places in the document are 32-bit.
        guard source.count <= Int32.max else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "A JSON document of 2 GiB or more."))
        }
        bytes = .allocate(capacity: max(source.count, 1))
        if let base = source.baseAddress { UnsafeMutableRawPointer(bytes.baseAddress!).copyMemory(from: base, byteCount: source.count) }
        self.dateTranscoder = dateTranscoder
        // Every property is set: when the parser throws, `deinit` frees the copy.
        var parser = JSONParser(bytes: UnsafeBufferPointer(start: bytes.baseAddress, count: source.count))
        nodes = try parser.parse()
    }

    deinit { bytes.deallocate() }

    /// The node after `index` and everything inside it.
    @inline(__always) func after(_ index: Int) -> Int {
        let node = nodes[index]
        return node.kind == .object || node.kind == .array ? Int(node.end) : index + 1
    }

    func kind(_ index: Int) -> JSONNode.Kind { index < 0 ? .null : nodes[index].kind }

    /// The raw bytes of a string (without its quotes) or number.
    func text(_ index: Int) -> UnsafeBufferPointer<UInt8> {
        let node = nodes[index]
        return UnsafeBufferPointer(rebasing: bytes[Int(node.start)..<Int(node.end)])
    }

    /// Whether string node `index` (a key) is `name`, as `String` compares them (canonical equivalence, as
    /// `JSONDecoder`'s dictionary of keys finds them): by their bytes when both are ASCII.
    func string(_ index: Int, equals name: inout MemberName) -> Bool {
        let node = nodes[index]
        if node.flags.contains(.escaped) { return string(index) == name.string }
        let raw = text(index)
        let equal = name.string.withUTF8Bytes { utf8 in
            utf8.count == raw.count && (raw.isEmpty || memcmp(utf8.baseAddress!, raw.baseAddress!, raw.count) == 0)
        }
        // Different bytes beyond ASCII may be the same characters (e + U+0301 is é).
        if !equal && (node.flags.contains(.beyondASCII) || !name.isASCII) { return string(index) == name.string }
        return equal
    }

    /// String node `index`, its escapes resolved (the parser checked them and the UTF-8).
    func string(_ index: Int) -> String {
        let raw = text(index)
        guard nodes[index].flags.contains(.escaped) else { return String(decoding: raw, as: UTF8.self) }
        var unescaped: [UInt8] = []
        unescaped.reserveCapacity(raw.count)
        var position = 0
        while position < raw.count {
            let byte = raw[position]
            guard byte == UInt8(ascii: "\\") else {
                unescaped.append(byte)
                position += 1
                continue
            }
            let escape = raw[position + 1]
            position += 2
            switch escape {
            case UInt8(ascii: "b"): unescaped.append(0x08)
            case UInt8(ascii: "f"): unescaped.append(0x0C)
            case UInt8(ascii: "n"): unescaped.append(0x0A)
            case UInt8(ascii: "r"): unescaped.append(0x0D)
            case UInt8(ascii: "t"): unescaped.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = JSONParser.hex4(raw, at: position)
                position += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    // The parser checked that the low half follows, as `\uDC00`...`\uDFFF`.
                    let low = JSONParser.hex4(raw, at: position + 2)
                    position += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                unescaped.append(contentsOf: UTF8.encode(Unicode.Scalar(scalar)!)!)
            default: unescaped.append(escape)  // \" \\ \/
            }
        }
        return String(decoding: unescaped, as: UTF8.self)
    }
}

// MARK: - The parser

/// Checks a document and records its values, without recursion: `open` holds the objects and arrays
/// not yet closed, and `parse` reads their members.
private struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0
    var nodes: [JSONNode] = []
    var open: [Int] = []
    /// The keys of the object `markKeyTwice` looks at, kept for the next.
    private var keys: [JSONNode] = []

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        // About one value in 14 bytes for the contract's objects: most pages fit without growing.
        nodes.reserveCapacity(bytes.count / 12 + 4)
    }

    mutating func parse() throws -> [JSONNode] {
        skipWhitespace()
        try value()
        while let container = open.last {
            skipWhitespace()
            guard position < bytes.count else { throw corrupted("Unexpected end of file") }
            let isObject = nodes[container].kind == .object
            if bytes[position] == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                position += 1
                nodes[container].end = Int32(nodes.count)
                open.removeLast()
                if isObject && nodes[container].count > 1 { markKeyTwice(container) }
                continue
            }
            if nodes[container].count > 0 {
                guard bytes[position] == UInt8(ascii: ",") else { throw corrupted("Expected ',' or '\(isObject ? "}" : "]")'") }
                position += 1
                skipWhitespace()
            }
            if isObject { try member() } else { try value() }
        }
        skipWhitespace()
        guard position == bytes.count else { throw corrupted("Unexpected character after the top-level value") }
        return nodes
    }

    /// Flags the object at `index` when a key may be in it twice: two keys with the same bytes, or a key whose
    /// bytes do not decide what it is (escaped, or beyond ASCII). A filter of 256 bits over the keys' hashes
    /// decides most keys are new without comparing: the contract's objects, up to 29 keys, compare one or two.
    private mutating func markKeyTwice(_ index: Int) {
        keys.removeAll(keepingCapacity: true)
        var filter: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var keyNode = index + 1
        while keyNode < Int(nodes[index].end) {
            let key = nodes[keyNode]
            if !key.flags.isDisjoint(with: [.escaped, .beyondASCII]) {
                nodes[index].flags.insert(.keyTwice)
                return
            }
            let bit = UInt64(1) << (key.hash & 63)
            let seen: Bool
            switch (key.hash >> 6) & 3 {
            case 0: (seen, filter.0) = (filter.0 & bit != 0, filter.0 | bit)
            case 1: (seen, filter.1) = (filter.1 & bit != 0, filter.1 | bit)
            case 2: (seen, filter.2) = (filter.2 & bit != 0, filter.2 | bit)
            default: (seen, filter.3) = (filter.3 & bit != 0, filter.3 | bit)
            }
            if seen {
                for earlier in keys where earlier.hash == key.hash && earlier.end - earlier.start == key.end - key.start {
                    if memcmp(bytes.baseAddress! + Int(earlier.start), bytes.baseAddress! + Int(key.start), Int(key.end - key.start)) == 0 {
                        nodes[index].flags.insert(.keyTwice)
                        return
                    }
                }
            }
            keys.append(key)
            let value = keyNode + 1
            keyNode = nodes[value].kind == .object || nodes[value].kind == .array ? Int(nodes[value].end) : value + 1
        }
    }

    /// A key, its colon and the start of its value.
    private mutating func member() throws {
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw corrupted("Expected a key") }
        nodes[open[open.count - 1]].count += 1
        try string(isKey: true)
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw corrupted("Expected ':' after a key") }
        position += 1
        skipWhitespace()
        try value()
    }

    /// A value; an object or array is opened (`parse` reads its members).
    private mutating func value() throws {
        guard position < bytes.count else { throw corrupted("Unexpected end of file") }
        if let container = open.last, nodes[container].kind == .array { nodes[container].count += 1 }
        switch bytes[position] {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            guard open.count < JSONDocument.maximumDepth else { throw corrupted("Too many nested arrays or dictionaries") }
            open.append(nodes.count)
            let kind: JSONNode.Kind = bytes[position] == UInt8(ascii: "{") ? .object : .array
            nodes.append(JSONNode(kind: kind, start: Int32(position)))
            position += 1
        case UInt8(ascii: "\""): try string(isKey: false)
        case UInt8(ascii: "t"): try literal("true", .true)
        case UInt8(ascii: "f"): try literal("false", .false)
        case UInt8(ascii: "n"): try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        default: throw corrupted("Unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString, _ kind: JSONNode.Kind) throws {
        let length = word.utf8CodeUnitCount
        guard bytes.count - position >= length, memcmp(bytes.baseAddress! + position, word.utf8Start, length) == 0 else {
            throw corrupted("Invalid literal")
        }
        nodes.append(JSONNode(kind: kind, start: Int32(position), end: Int32(position + length)))
        position += length
    }

    /// `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`
    private mutating func number() throws {
        let start = position
        var isInteger = true
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count, isDigit(bytes[position]) else { throw corrupted("Invalid number") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            skipDigits()
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard position < bytes.count, isDigit(bytes[position]) else { throw corrupted("Invalid number: a digit must follow '.'") }
            skipDigits()
        }
        if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard position < bytes.count, isDigit(bytes[position]) else { throw corrupted("Invalid number: an exponent needs digits") }
            skipDigits()
        }
        nodes.append(JSONNode(kind: .number, flags: isInteger ? .integer : [], start: Int32(start), end: Int32(position)))
    }

    /// A string from its opening quote: escapes and UTF-8 checked, control characters refused. A key's ASCII
    /// bytes are hashed (`markKeyTwice` compares keys by hash first); a value's are not, and its runs of plain ASCII
    /// are passed eight bytes at a time (ids, names and timestamps: most of a page's bytes).
    private mutating func string(isKey: Bool) throws {
        position += 1
        let start = position
        var flags: JSONNode.Flags = []
        var hash: UInt32 = 2_166_136_261
        let words = UnsafeRawBufferPointer(bytes)
        while true {
            if !isKey {
                while position + 8 <= bytes.count {
                    let word = words.loadUnaligned(fromByteOffset: position, as: UInt64.self)
                    if JSONEscaping.hasEscapedByte(word) || word & 0x8080_8080_8080_8080 != 0 { break }
                    position += 8
                }
            }
            guard position < bytes.count else { throw corrupted("Unterminated string") }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") {
                flags.insert(.escaped)
                try escape()
            } else if byte < 0x20 {
                throw corrupted("Unescaped control character in a string")
            } else if byte < 0x80 {
                if isKey { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
                position += 1
            } else {
                flags.insert(.beyondASCII)
                try utf8Sequence()
            }
        }
        nodes.append(JSONNode(kind: .string, flags: flags, start: Int32(start), end: Int32(position), hash: isKey ? hash : 0))
        position += 1
    }

    private mutating func escape() throws {
        guard position + 1 < bytes.count else { throw corrupted("Unterminated string") }
        switch bytes[position + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            position += 2
        case UInt8(ascii: "u"):
            let scalar = try unicodeEscape(at: position)
            position += 6
            if (0xDC00...0xDFFF).contains(scalar) { throw corrupted("A \\u escape of a low surrogate without its high one") }
            if (0xD800...0xDBFF).contains(scalar) {
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u"),
                    (0xDC00...0xDFFF).contains(try unicodeEscape(at: position))
                else { throw corrupted("A \\u escape of a high surrogate without its low one") }
                position += 6
            }
        default:
            throw corrupted("Invalid escape")
        }
    }

    /// The scalar of `\uXXXX` at `at` (its backslash).
    private func unicodeEscape(at index: Int) throws -> UInt32 {
        guard index + 6 <= bytes.count, (2..<6).allSatisfy({ isHexDigit(bytes[index + $0]) }) else {
            throw corrupted("A \\u escape needs four hexadecimal digits")
        }
        return Self.hex4(bytes, at: index + 2)
    }

    static func hex4(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> UInt32 {
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = UInt32(bytes[index + offset])
            value = value << 4 | (byte <= 0x39 ? byte - 0x30 : (byte | 0x20) - 0x57)
        }
        return value
    }

    /// One multi-byte UTF-8 sequence: no overlong forms, no surrogates, nothing above U+10FFFF.
    private mutating func utf8Sequence() throws {
        let lead = bytes[position]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: (length, low) = (3, 0xA0)
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: (length, high) = (3, 0x9F)
        case 0xF0: (length, low) = (4, 0x90)
        case 0xF1...0xF3: length = 4
        case 0xF4: (length, high) = (4, 0x8F)
        default: throw corrupted("Invalid UTF-8")
        }
        guard position + length <= bytes.count, (low...high).contains(bytes[position + 1]),
            (1..<length).dropFirst().allSatisfy({ (0x80...0xBF).contains(bytes[position + $0]) })
        else { throw corrupted("Invalid UTF-8") }
        position += length
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): position += 1
            default: return
            }
        }
    }

    private mutating func skipDigits() {
        while position < bytes.count, isDigit(bytes[position]) { position += 1 }
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    private func isHexDigit(_ byte: UInt8) -> Bool { isDigit(byte) || (byte | 0x20) &- UInt8(ascii: "a") < 6 }

    private func corrupted(_ what: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: [], debugDescription: "The given data was not valid JSON: \(what) at byte \(position)."))
    }
}

// MARK: - Decoding

/// An array element's place in a coding path, as `JSONDecoder` names it.
private struct IndexKey: CodingKey {
    let intValue: Int?
    let stringValue: String

    init(_ index: Int) {
        intValue = index
        stringValue = "Index \(index)"
    }

    init?(intValue: Int) { self.init(intValue) }
    init?(stringValue: String) { nil }
}

/// The decoder of one value (`node`; -1: a value that is not there, which reads as null), and its single
/// value container. A keyed container of it keeps its place (`cursor`) here.
private final class ValueDecoder: Decoder, SingleValueDecodingContainer {
    let document: JSONDocument
    let node: Int
    let parent: ValueDecoder?
    let key: (any CodingKey)?
    /// The key node at which the next lookup in this object starts.
    var cursor: Int

    init(document: JSONDocument, node: Int, parent: ValueDecoder?, key: (any CodingKey)?) {
        self.document = document
        self.node = node
        self.parent = parent
        self.key = key
        cursor = node + 1
    }

    var codingPath: [any CodingKey] {
        var path: [any CodingKey] = []
        var decoder: ValueDecoder? = self
        while let current = decoder, let key = current.key {
            path.append(key)
            decoder = current.parent
        }
        return path.reversed()
    }

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        try expect(.object, as: [String: Any].self, container: "keyed decoding container")
        return KeyedDecodingContainer(KeyedContainer<Key>(decoder: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try expect(.array, as: [Any].self, container: "unkeyed decoding container")
        return UnkeyedContainer(decoder: self)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    private func expect(_ kind: JSONNode.Kind, as type: Any.Type, container: String) throws {
        let found = document.kind(node)
        guard found != kind else { return }
        if found == .null {
            throw DecodingError.valueNotFound(
                type, .init(codingPath: codingPath, debugDescription: "Cannot get \(container) -- found null value instead"))
        }
        throw Self.mismatch(type, found: found, path: codingPath)
    }

    // MARK: Values, by node

    /// The path of a value of this decoder: its own, or one of its members' (`key`).
    func path(_ key: (any CodingKey)?) -> [any CodingKey] {
        key.map { codingPath + [$0] } ?? codingPath
    }

    static func mismatch(_ type: Any.Type, found: JSONNode.Kind, path: [any CodingKey]) -> DecodingError {
        let description: String
        switch found {
        case .object: description = "a dictionary"
        case .array: description = "an array"
        case .string: description = "a string"
        case .number: description = "number"
        case .true, .false: description = "bool"
        case .null: description = "null"
        }
        return .typeMismatch(
            type, .init(codingPath: path, debugDescription: "Expected to decode \(type) but found \(description) instead."))
    }

    /// Refuses null and any kind but `kind` for a `type` at `index`.
    @inline(__always) func check(_ index: Int, is kind: JSONNode.Kind, _ type: Any.Type, key: (any CodingKey)?) throws {
        let found = document.kind(index)
        guard found != kind else { return }
        if found == .null {
            throw DecodingError.valueNotFound(
                type, .init(codingPath: path(key), debugDescription: "Expected \(type) value but found null instead."))
        }
        throw Self.mismatch(type, found: found, path: path(key))
    }

    func bool(at index: Int, key: (any CodingKey)?) throws -> Bool {
        switch document.kind(index) {
        case .true: return true
        case .false: return false
        default:
            try check(index, is: .true, Bool.self, key: key)
            return false
        }
    }

    func string(at index: Int, key: (any CodingKey)?) throws -> String {
        try check(index, is: .string, String.self, key: key)
        return document.string(index)
    }

    func integer<T: FixedWidthInteger>(_ type: T.Type, at index: Int, key: (any CodingKey)?) throws -> T {
        try check(index, is: .number, T.self, key: key)
        let text = document.text(index)
        let isInteger = document.nodes[index].flags.contains(.integer)
        if isInteger, let value = Self.parseInteger(T.self, text) { return value }
        // A fraction or an exponent (`1.0`, `1e2`): as JSONDecoder reads them, a Double that `T` holds exactly
        // (so `0.5` is refused and `1e-400` is 0), read again exactly from the digits beyond 2^53, where
        // Doubles are more than 1 apart.
        if !isInteger, let double = Double(String(decoding: text, as: UTF8.self)), let value = T(exactly: double) {
            if double.magnitude < 9_007_199_254_740_992 { return value }
            if let exact = Self.parseIntegral(T.self, text) { return exact }
        }
        throw DecodingError.dataCorrupted(
            .init(
                codingPath: path(key),
                debugDescription: "Number \(String(decoding: text, as: UTF8.self)) is not representable in Swift."))
    }

    /// Digits with an optional minus sign, or nil when they do not fit `T`.
    static func parseInteger<T: FixedWidthInteger>(_ type: T.Type, _ text: UnsafeBufferPointer<UInt8>) -> T? {
        let negative = text[0] == UInt8(ascii: "-")
        if negative && !T.isSigned { return text.count == 2 && text[1] == UInt8(ascii: "0") ? 0 : nil }
        var value: T = 0
        for byte in text[(negative ? 1 : 0)...] {
            let digit = T(byte &- UInt8(ascii: "0"))
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            if overflow || overflow2 { return nil }
            value = next
        }
        return value
    }

    /// A number with a fraction or an exponent (`1.0`, `1e2`, `1.5e1`) read from its digits as an integer
    /// within `T`, what is right of the point dropped (as `JSONDecoder` reads such numbers beyond 2^53,
    /// through `Decimal`), or nil.
    static func parseIntegral<T: FixedWidthInteger>(_ type: T.Type, _ text: UnsafeBufferPointer<UInt8>) -> T? {
        var digits: [UInt8] = []
        var exponent = 0
        var position = 0
        let negative = text[0] == UInt8(ascii: "-")
        if negative { position += 1 }
        var inFraction = false
        while position < text.count, text[position] | 0x20 != UInt8(ascii: "e") {
            if text[position] == UInt8(ascii: ".") {
                inFraction = true
            } else {
                digits.append(text[position])
                if inFraction { exponent -= 1 }
            }
            position += 1
        }
        if position < text.count {
            position += 1
            let negativeExponent = text[position] == UInt8(ascii: "-")
            if text[position] == UInt8(ascii: "-") || text[position] == UInt8(ascii: "+") { position += 1 }
            var written = 0
            while position < text.count {
                // Saturated: beyond a million, the number is 0 or does not fit any integer type.
                written = min(written * 10 + Int(text[position] &- UInt8(ascii: "0")), 1_000_000)
                position += 1
            }
            exponent += negativeExponent ? -written : written
        }
        // What is right of the point goes, as `Decimal`'s conversion to an integer drops it (JSONDecoder reads
        // `9007199254740993.5`, a Double that is an integer, as 9007199254740993).
        if exponent < 0 { digits.removeLast(min(-exponent, digits.count)) }
        exponent = max(exponent, 0)
        while let first = digits.first, first == UInt8(ascii: "0") { digits.removeFirst() }
        if digits.isEmpty { return 0 }
        guard digits.count + exponent <= 40 else { return nil }
        digits += repeatElement(UInt8(ascii: "0"), count: exponent)
        if negative { digits.insert(UInt8(ascii: "-"), at: 0) }
        return digits.withUnsafeBufferPointer { parseInteger(T.self, $0) }
    }

    func floatingPoint<T: BinaryFloatingPoint & LosslessStringConvertible>(
        _ type: T.Type, at index: Int, key: (any CodingKey)?
    ) throws -> T {
        try check(index, is: .number, T.self, key: key)
        let text = String(decoding: document.text(index), as: UTF8.self)
        // A number that is not zero but rounds to zero does not fit, as JSONDecoder says.
        guard let value = T(text), value.isFinite, value != 0 || !Self.hasNonZeroDigit(document.text(index)) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: path(key), debugDescription: "Number \(text) is not representable in Swift."))
        }
        return value
    }

    /// Whether a number's digits before its exponent are not all zeros.
    static func hasNonZeroDigit(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        for byte in text {
            if byte | 0x20 == UInt8(ascii: "e") { return false }
            if byte >= UInt8(ascii: "1") && byte <= UInt8(ascii: "9") { return true }
        }
        return false
    }

    /// A `T` from node `index`: the types `JSONDecoder` reads itself, then anything else through its
    /// `init(from:)` with a decoder of its own.
    func unwrap<T: Decodable>(_ type: T.Type, at index: Int, key: (any CodingKey)?) throws -> T {
        if T.self == String.self { return try string(at: index, key: key) as! T }
        // A null is refused as the type asked for; another kind as the string the type is read from.
        if document.kind(index) == .null, T.self == Date.self || T.self == Data.self || T.self == URL.self {
            throw DecodingError.valueNotFound(
                T.self, .init(codingPath: path(key), debugDescription: "Cannot get value of type \(T.self) -- found null value instead"))
        }
        if T.self == Date.self {
            let text = try string(at: index, key: key)
            return try document.dateTranscoder.decode(text) as! T
        }
        if T.self == Data.self {
            let text = try string(at: index, key: key)
            guard let data = Data(base64Encoded: text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: path(key), debugDescription: "Encountered Data is not valid Base64."))
            }
            return data as! T
        }
        if T.self == URL.self {
            let text = try string(at: index, key: key)
            guard let url = URL(string: text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: path(key), debugDescription: "Invalid URL string."))
            }
            return url as! T
        }
        if T.self == Decimal.self {
            try check(index, is: .number, Decimal.self, key: key)
            let text = String(decoding: document.text(index), as: UTF8.self)
            guard let decimal = Decimal(string: text, locale: Self.posix) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: path(key), debugDescription: "Number \(text) is not representable in Swift."))
            }
            return decimal as! T
        }
        let decoder = index == node && key == nil ? self : ValueDecoder(document: document, node: index, parent: self, key: key)
        return try T(from: decoder)
    }

    /// Numbers are written with a point, whatever the process's locale.
    static let posix = Locale(identifier: "en_US_POSIX")

    // MARK: SingleValueDecodingContainer

    func decodeNil() -> Bool { document.kind(node) == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try bool(at: node, key: nil) }
    func decode(_ type: String.Type) throws -> String { try string(at: node, key: nil) }
    func decode(_ type: Double.Type) throws -> Double { try floatingPoint(type, at: node, key: nil) }
    func decode(_ type: Float.Type) throws -> Float { try floatingPoint(type, at: node, key: nil) }
    func decode(_ type: Int.Type) throws -> Int { try integer(type, at: node, key: nil) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type, at: node, key: nil) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type, at: node, key: nil) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type, at: node, key: nil) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type, at: node, key: nil) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type, at: node, key: nil) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type, at: node, key: nil) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type, at: node, key: nil) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type, at: node, key: nil) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type, at: node, key: nil) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        // The value's own decoder: decoding through it again is what a wrapper type does (`superDecoder`).
        if T.self == String.self || T.self == Date.self || T.self == Data.self || T.self == URL.self || T.self == Decimal.self {
            return try unwrap(type, at: node, key: nil)
        }
        return try T(from: self)
    }

    // MARK: Members of an object

    /// The value node of the member `name` of this object, or nil. Starts at the member after the one found
    /// last and wraps around, unless a key may be in the object twice: then at the first, as `JSONDecoder`
    /// gives the first.
    func member(_ name: String) -> Int? {
        let end = Int(document.nodes[node].end)
        var name = MemberName(name)
        if document.nodes[node].flags.contains(.keyTwice) { return member(&name, from: node + 1, to: end) }
        return member(&name, from: cursor, to: end) ?? member(&name, from: node + 1, to: min(cursor, end))
    }

    /// The value node of the member `name` whose key node is in `from..<to`; the cursor moves past it.
    private func member(_ name: inout MemberName, from: Int, to end: Int) -> Int? {
        var keyNode = from
        while keyNode < end {
            let valueNode = keyNode + 1
            let next = document.after(valueNode)
            if document.string(keyNode, equals: &name) {
                cursor = next
                return valueNode
            }
            keyNode = next
        }
        return nil
    }
}

/// The name of a member looked for, and whether it is ASCII, found out only when a comparison needs it (a key
/// with other bytes): most lookups find their member at the first key they compare, with the same bytes.
private struct MemberName {
    let string: String
    private var asciiFound: Bool?

    init(_ string: String) { self.string = string }

    var isASCII: Bool {
        mutating get {
            if let asciiFound { return asciiFound }
            let ascii = string.withUTF8Bytes { utf8 in utf8.allSatisfy { $0 < 0x80 } }
            asciiFound = ascii
            return ascii
        }
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: ValueDecoder

    var codingPath: [any CodingKey] { decoder.codingPath }

    var allKeys: [Key] {
        let document = decoder.document
        var keys: [Key] = []
        keys.reserveCapacity(Int(document.nodes[decoder.node].count))
        // A key the object has twice is listed once, as `JSONDecoder` lists it.
        let keyTwice = document.nodes[decoder.node].flags.contains(.keyTwice)
        var seen = Set<String>()
        var keyNode = decoder.node + 1
        while keyNode < Int(document.nodes[decoder.node].end) {
            let name = document.string(keyNode)
            if !keyTwice || seen.insert(name).inserted, let key = Key(stringValue: name) { keys.append(key) }
            keyNode = document.after(keyNode + 1)
        }
        return keys
    }

    func contains(_ key: Key) -> Bool { decoder.member(key.stringValue) != nil }

    private func value(_ key: Key) throws -> Int {
        guard let index = decoder.member(key.stringValue) else {
            throw DecodingError.keyNotFound(
                key,
                .init(codingPath: decoder.codingPath, debugDescription: "No value associated with key \(key) (\"\(key.stringValue)\")."))
        }
        return index
    }

    /// The member's node when it is there and not null.
    private func present(_ key: Key) -> Int? {
        guard let index = decoder.member(key.stringValue), decoder.document.kind(index) != .null else { return nil }
        return index
    }

    func decodeNil(forKey key: Key) throws -> Bool { decoder.document.kind(try value(key)) == .null }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decoder.bool(at: value(key), key: key) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decoder.string(at: value(key), key: key) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decoder.floatingPoint(type, at: value(key), key: key) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decoder.floatingPoint(type, at: value(key), key: key) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decoder.integer(type, at: value(key), key: key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decoder.integer(type, at: value(key), key: key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decoder.integer(type, at: value(key), key: key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decoder.integer(type, at: value(key), key: key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decoder.integer(type, at: value(key), key: key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decoder.integer(type, at: value(key), key: key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decoder.integer(type, at: value(key), key: key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decoder.integer(type, at: value(key), key: key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decoder.integer(type, at: value(key), key: key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decoder.integer(type, at: value(key), key: key) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try decoder.unwrap(type, at: value(key), key: key) }

    // The types the contract's optional members have, and the generic one; the protocol's defaults serve the
    // other types, with one lookup more.
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try present(key).map { try decoder.bool(at: $0, key: key) } }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        try present(key).map { try decoder.string(at: $0, key: key) }
    }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? {
        try present(key).map { try decoder.floatingPoint(type, at: $0, key: key) }
    }
    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? {
        try present(key).map { try decoder.floatingPoint(type, at: $0, key: key) }
    }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        try present(key).map { try decoder.integer(type, at: $0, key: key) }
    }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? {
        try present(key).map { try decoder.integer(type, at: $0, key: key) }
    }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        try present(key).map { try decoder.unwrap(type, at: $0, key: key) }
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(document: decoder.document, node: value(key), parent: decoder, key: key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try ValueDecoder(document: decoder.document, node: value(key), parent: decoder, key: key).unkeyedContainer()
    }

    /// As `JSONDecoder`: a member that is not there gives a decoder of null.
    func superDecoder() throws -> any Decoder { superDecoder(named: SuperKey()) }
    func superDecoder(forKey key: Key) throws -> any Decoder { superDecoder(named: key) }

    private func superDecoder(named key: any CodingKey) -> any Decoder {
        ValueDecoder(document: decoder.document, node: decoder.member(key.stringValue) ?? -1, parent: decoder, key: key)
    }
}

/// The key `superDecoder()` reads, as `JSONDecoder` names it.
private struct SuperKey: CodingKey {
    var stringValue: String { "super" }
    var intValue: Int? { nil }
    init() {}
    init?(stringValue: String) { nil }
    init?(intValue: Int) { nil }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let decoder: ValueDecoder
    /// The node of the next element.
    private var next: Int
    private(set) var currentIndex = 0

    init(decoder: ValueDecoder) {
        self.decoder = decoder
        next = decoder.node + 1
    }

    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { Int(decoder.document.nodes[decoder.node].count) }
    var isAtEnd: Bool { currentIndex >= count! }

    /// The next element's node, the container moved past it.
    private mutating func take(_ type: Any.Type) throws -> (index: Int, key: IndexKey) {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                type, .init(codingPath: codingPath + [IndexKey(currentIndex)], debugDescription: "Unkeyed container is at end."))
        }
        let element = (next, IndexKey(currentIndex))
        next = decoder.document.after(next)
        currentIndex += 1
        return element
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                Any?.self, .init(codingPath: codingPath + [IndexKey(currentIndex)], debugDescription: "Unkeyed container is at end."))
        }
        guard decoder.document.kind(next) == .null else { return false }
        _ = try take(Any?.self)
        return true
    }

    // Each reads the element before moving past it, so that a refused element is still the next one.
    mutating func decode(_ type: Bool.Type) throws -> Bool { try element(type) { try $0.bool(at: $1, key: $2) } }
    mutating func decode(_ type: String.Type) throws -> String { try element(type) { try $0.string(at: $1, key: $2) } }
    mutating func decode(_ type: Double.Type) throws -> Double { try element(type) { try $0.floatingPoint(type, at: $1, key: $2) } }
    mutating func decode(_ type: Float.Type) throws -> Float { try element(type) { try $0.floatingPoint(type, at: $1, key: $2) } }
    mutating func decode(_ type: Int.Type) throws -> Int { try element(type) { try $0.integer(type, at: $1, key: $2) } }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try element(type) { try $0.integer(type, at: $1, key: $2) } }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try element(type) { try $0.integer(type, at: $1, key: $2) } }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try element(type) { try $0.integer(type, at: $1, key: $2) } }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try element(type) { try $0.integer(type, at: $1, key: $2) } }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try element(type) { try $0.integer(type, at: $1, key: $2) } }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try element(type) { try $0.integer(type, at: $1, key: $2) } }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try element(type) { try $0.integer(type, at: $1, key: $2) } }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try element(type) { try $0.integer(type, at: $1, key: $2) } }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try element(type) { try $0.integer(type, at: $1, key: $2) } }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try element(type) { try $0.unwrap(type, at: $1, key: $2) } }

    private mutating func element<T>(_ type: T.Type, _ read: (ValueDecoder, Int, IndexKey) throws -> T) throws -> T {
        if isAtEnd { _ = try take(type) }  // throws: at end
        let value = try read(decoder, next, IndexKey(currentIndex))
        _ = try take(type)
        return value
    }

    // As `JSONDecoder`'s: nil at the end (the index still moves past it, as JSONDecoder's does) or on null.
    mutating func decodeIfPresent(_ type: Bool.Type) throws -> Bool? { try present { try $0.decode(type) } }
    mutating func decodeIfPresent(_ type: String.Type) throws -> String? { try present { try $0.decode(type) } }
    mutating func decodeIfPresent(_ type: Double.Type) throws -> Double? { try present { try $0.decode(type) } }
    mutating func decodeIfPresent(_ type: Float.Type) throws -> Float? { try present { try $0.decode(type) } }
    mutating func decodeIfPresent(_ type: Int.Type) throws -> Int? { try present { try $0.decode(type) } }
    mutating func decodeIfPresent(_ type: Int8.Type) throws -> Int8? { try present { try $0.decode(type) } }
    mutating func decodeIfPresent(_ type: Int16.Type) throws -> Int16? { try present { try $0.decode(type) } }
    mutating func decodeIfPresent(_ type: Int32.Type) throws -> Int32? { try present { try $0.decode(type) } }
    mutating func decodeIfPresent(_ type: Int64.Type) throws -> Int64? { try present { try $0.decode(type) } }
    mutating func decodeIfPresent(_ type: UInt.Type) throws -> UInt? { try present { try $0.decode(type) } }
    mutating func decodeIfPresent(_ type: UInt8.Type) throws -> UInt8? { try present { try $0.decode(type) } }
    mutating func decodeIfPresent(_ type: UInt16.Type) throws -> UInt16? { try present { try $0.decode(type) } }
    mutating func decodeIfPresent(_ type: UInt32.Type) throws -> UInt32? { try present { try $0.decode(type) } }
    mutating func decodeIfPresent(_ type: UInt64.Type) throws -> UInt64? { try present { try $0.decode(type) } }
    mutating func decodeIfPresent<T: Decodable>(_ type: T.Type) throws -> T? { try present { try $0.decode(type) } }

    private mutating func present<T>(_ read: (inout Self) throws -> T) throws -> T? {
        if isAtEnd {
            currentIndex += 1
            return nil
        }
        return try decodeNil() ? nil : read(&self)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try element(KeyedDecodingContainer<NestedKey>.self) {
            try ValueDecoder(document: $0.document, node: $1, parent: $0, key: $2).container(keyedBy: type)
        }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try element((any UnkeyedDecodingContainer).self) {
            try ValueDecoder(document: $0.document, node: $1, parent: $0, key: $2).unkeyedContainer()
        }
    }

    mutating func superDecoder() throws -> any Decoder {
        let (index, key) = try take((any Decoder).self)
        return ValueDecoder(document: decoder.document, node: index, parent: decoder, key: key)
    }
}
