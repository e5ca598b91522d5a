import Testing

@testable import CodeDomain

/// `withUTF8Bytes` (UTF8Bytes.swift): the bytes hashed for every key and token are the text's UTF-8,
/// for whole strings and for slices of a header, which are read in place.
@Suite("UTF-8 bytes of text")
struct UTF8BytesTests {
    @Test(arguments: ["", "code_abc", "clé 🙂", "a\u{301}", String(repeating: "x", count: 1_000)])
    func aStringsBytesAreItsUTF8(text: String) {
        #expect(text.withUTF8Bytes { Array($0) } == Array(text.utf8))
    }

    @Test(arguments: [
        ("Bearer code_abc", 7, 15), ("Bearer clé 🙂 x", 7, 14), ("Bearer 🙂", 7, 8), ("xyz", 1, 1),
    ])
    func aSubstringsBytesAreItsOwnNotItsBase(header: String, start: Int, end: Int) {
        let slice = header[header.index(header.startIndex, offsetBy: start)..<header.index(header.startIndex, offsetBy: end)]
        let bytes = slice.withUTF8Bytes { Array($0) }
        #expect(bytes == Array(slice.utf8))
        #expect(bytes.count < header.utf8.count)
    }

    @Test func aThrownErrorComesThrough() {
        struct Refused: Error {}
        #expect(throws: Refused.self) { try "abc".withUTF8Bytes { _ in throw Refused() } }
    }
}
