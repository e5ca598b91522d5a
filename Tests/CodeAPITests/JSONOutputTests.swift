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
        var generator = SystemRandomNumberGenerator()
        for round in 0..<2_000 {
            let chunk = (0..<Int.random(in: 0...70, using: &generator)).map { _ in UInt8.random(in: 0x20...0x7E, using: &generator) }
            switch round % 4 {
            case 0:
                output.append(UInt8(round & 0x7F))
                expected.append(UInt8(round & 0x7F))
            case 1:
                chunk.withUnsafeBufferPointer { output.append($0) }
                expected += chunk
            case 2:
                chunk.withUnsafeBufferPointer { output.appendQuoted($0) }
                expected += [UInt8(ascii: "\"")] + chunk + [UInt8(ascii: "\"")]
            default:
                output.append("u00")
                expected += Array("u00".utf8)
            }
            #expect(output.count == expected.count)
        }
        #expect(output.array() == expected)
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
