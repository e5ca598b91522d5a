import Testing

@testable import CodeDomain

/// The character classes the names and image references are checked with (ImageReference.swift): by the
/// ASCII value, and the same answers as the Unicode properties they replaced, on every ASCII character
/// and on letters and digits outside ASCII.
@Suite("ASCII character classes")
struct ASCIICharacterClassTests {
    @Test func everyASCIICharacterIsClassedAsByItsUnicodeProperties() {
        for value in UInt8(0)...UInt8(127) {
            let character = Character(Unicode.Scalar(value))
            #expect(character.isASCIIAlphanumeric == (character.isLetter || character.isNumber), "\(value)")
            #expect(character.isLowercaseAlphanumeric == (character.isNumber || (character.isLetter && character.isLowercase)), "\(value)")
        }
    }

    @Test(arguments: ["é", "ß", "Ａ", "٣", "½", "e\u{301}", "\r\n", "🙂"])
    func lettersAndDigitsOutsideASCIIAreNeither(text: String) {
        let character = Character(text)
        #expect(!character.isASCIIAlphanumeric)
        #expect(!character.isLowercaseAlphanumeric)
    }
}
