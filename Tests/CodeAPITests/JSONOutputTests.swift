import Foundation
import Testing

@testable import CodeAPIContract

/// The encoder's output buffer and its test for strings that need escaping (JSONOutput.swift).
@Suite("JSON output")
struct JSONOutputTests {
    static func needsEscaping(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { JSONEscaping.isNeeded(in: $0) }
    }

    /// Every byte value at every position of words and tails, among plain ASCII and among bytes of 0x80 and
    /// above (whose high bits and borrows the word test must not take for a match).
    @Test(arguments: [UInt8(ascii: "a"), 0x80, 0xFF, 0x21, 0x5D] as [UInt8])
    func findsAnEscapedByteWhereverItIs(filler: UInt8) {
        var wrong: [String] = []
        for length in 1...17 {
            for position in 0..<length {
                for byte in UInt8.min...UInt8.max {
                    var bytes = [UInt8](repeating: filler, count: length)
                    bytes[position] = byte
                    if Self.needsEscaping(bytes) != JSONEscaping.isEscaped(byte) {
                        wrong.append("byte \(byte) at \(position) of \(length)")
                    }
                }
            }
        }
        #expect(wrong.isEmpty, "among \(filler): \(wrong.prefix(10))")
    }

    @Test
    func agreesWithTheByteLoopOnRandomText() {
        var generator = SystemRandomNumberGenerator()
        var wrong: [[UInt8]] = []
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...40, using: &generator)
            // Mostly bytes that need no escape, so that a lone escaped byte is common.
            let bytes = (0..<length).map { _ in
                Int.random(in: 0..<8, using: &generator) == 0
                    ? UInt8.random(in: .min ... .max, using: &generator) : UInt8.random(in: 0x20...0xFF, using: &generator)
            }
            if Self.needsEscaping(bytes) != bytes.contains(where: JSONEscaping.isEscaped) { wrong.append(bytes) }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
        #expect(!Self.needsEscaping([]))
    }

    /// `escapedBytes`' lowest set bit names a word's first escaped byte: every byte value at every position
    /// of the word, among fillers that are plain ASCII, beyond ASCII and at the edges of the control range,
    /// alone and with a second escaped byte after it (a borrow of the bit tricks runs towards later bytes, so a
    /// second match must not move the first).
    @Test(arguments: [UInt8(ascii: "a"), 0x80, 0xFF, 0x21, 0x20, 0x5D, 0x23] as [UInt8])
    func findsTheFirstEscapedByteOfAWord(filler: UInt8) {
        var wrong: [String] = []
        for position in 0..<8 {
            for byte in UInt8.min...UInt8.max {
                for second in [nil] + Array(position + 1..<8) {
                    for secondByte in [0x00, 0x1F, UInt8(ascii: "\""), UInt8(ascii: "\\")] {
                        var bytes = [UInt8](repeating: filler, count: 8)
                        bytes[position] = byte
                        if let second { bytes[second] = secondByte }
                        let expected = bytes.firstIndex(where: JSONEscaping.isEscaped) ?? 8
                        let word = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                        let escaped = JSONEscaping.escapedBytes(word)
                        let found = escaped == 0 ? 8 : escaped.trailingZeroBitCount / 8
                        if found != expected { wrong.append("\(bytes): \(found), not \(expected)") }
                    }
                }
            }
        }
        #expect(wrong.isEmpty, "among \(filler): \(wrong.prefix(10))")
    }

    @Test
    func escapedBytesAreExactlyTheControlsQuoteAndBackslash() {
        let escaped = Set((UInt8.min...UInt8.max).filter(JSONEscaping.isEscaped))
        #expect(escaped == Set(0..<0x20).union([UInt8(ascii: "\""), UInt8(ascii: "\\")]))
    }

    /// Appends of every kind from a capacity of one byte, growing many times: the same bytes as an array.
    @Test
    func growsAndKeepsWhatWasWritten() {
        var output = JSONOutput(capacity: 1)
        var expected: [UInt8] = []
        var generator = ContractJSONDecoderTests.SplitMix64(state: 0x0013_0042)
        let dense: [UInt8] = [UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x0A, 0x01, UInt8(ascii: "a"), 0xC3, 0xA9]
        for round in 0..<2_000 {
            let chunk = (0..<Int.random(in: 0...70, using: &generator)).map { _ in UInt8.random(in: 0x20...0x7E, using: &generator) }
            switch round % 5 {
            case 0:
                output.append(UInt8(round & 0x7F))
                expected.append(UInt8(round & 0x7F))
            case 1:
                chunk.withUnsafeBufferPointer { output.append($0) }
                expected += chunk
            case 2:
                chunk.withUnsafeBufferPointer { output.appendQuoted($0) }
                expected += [UInt8(ascii: "\"")] + chunk + [UInt8(ascii: "\"")]
            case 4:
                // Escapes dense enough to need more room than the bytes they escape.
                let escaping = chunk.map { dense[Int($0) % dense.count] }
                escaping.withUnsafeBufferPointer { output.appendQuotedEscaping($0) }
                expected += [UInt8(ascii: "\"")] + Self.escapedByteByByte(escaping) + [UInt8(ascii: "\"")]
            default:
                output.append("u00")
                expected += Array("u00".utf8)
            }
            #expect(output.count == expected.count)
        }
        #expect(output.array() == expected)
    }

    /// Through the encoder: strings dense with escapes (as code-mcp's tool answers are, JSON inside a string),
    /// bytes beyond ASCII among them, written as a byte-by-byte escape writes them.
    @Test
    func stringsDenseWithEscapesAreWrittenAsAByteLoopWritesThem() throws {
        let alphabet = Array("\"\\\n\t\r\u{00}\u{01}\u{08}\u{0C}\u{1F}\u{7F} a:{}/é€😀".unicodeScalars)
        var generator = ContractJSONDecoderTests.SplitMix64(state: 0x0013_0027)
        // Most of them short, every position of a word's worth of them; some longer than the stretches of
        // 1,024 bytes the output makes room for at once and than its first capacity.
        for round in 0..<3_000 {
            let length = round % 100 == 0 ? Int.random(in: 1_000...6_000, using: &generator) : Int.random(in: 0...48, using: &generator)
            var text = String.UnicodeScalarView()
            for _ in 0..<length { text.append(alphabet.randomElement(using: &generator)!) }
            let string = String(text)
            let written = try ContractJSONEncoder().encode([string])
            #expect(
                written == Array(#"[""#.utf8) + Self.escapedByteByByte(Array(string.utf8)) + Array(#""]"#.utf8),
                "\(string.debugDescription)")
        }
    }

    /// RFC 8259's escapes, one byte at a time: the short forms where there is one, \u00XX for other controls.
    static func escapedByteByByte(_ bytes: [UInt8]) -> [UInt8] {
        var escaped: [UInt8] = []
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): escaped += Array(#"\""#.utf8)
            case UInt8(ascii: "\\"): escaped += Array(#"\\"#.utf8)
            case 0x08: escaped += Array(#"\b"#.utf8)
            case 0x0C: escaped += Array(#"\f"#.utf8)
            case 0x0A: escaped += Array(#"\n"#.utf8)
            case 0x0D: escaped += Array(#"\r"#.utf8)
            case 0x09: escaped += Array(#"\t"#.utf8)
            case ..<0x20: escaped += Array(#"\u00"#.utf8) + Array((String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16)).utf8)
            default: escaped.append(byte)
            }
        }
        return escaped
    }

    /// Through the encoder: a string with each escaped character at each position (around the eight-byte
    /// words) reads back as written.
    @Test(arguments: ["\"", "\\", "\n", "\u{01}", "\u{1F}", "\t"])
    func stringsWithAnEscapeAnywhereReadBack(escaped: String) throws {
        let plain = "abcdefghijklmnopqrstuvwxyz"
        for position in 0...plain.count {
            var text = plain
            text.insert(contentsOf: escaped, at: text.index(text.startIndex, offsetBy: position))
            let written = try ContractJSONEncoder().encode(["text": text])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(written)) as? [String: String])
            #expect(object["text"] == text, "\(escaped.debugDescription) at \(position)")
        }
    }
}
