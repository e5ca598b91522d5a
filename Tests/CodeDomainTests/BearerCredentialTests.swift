import Foundation
import Testing

@testable import CodeDomain

/// `Authorization: Bearer <credential>` as code-api, code-worker and code-mcp read it (BearerCredential.swift).
@Suite("Bearer credentials")
struct BearerCredentialTests {
    @Test(arguments: [
        ("Bearer code_abc", "code_abc"),
        ("bearer code_abc", "code_abc"),
        ("BEARER code_abc", "code_abc"),
        ("bEaReR code_abc", "code_abc"),
        ("Bearer   code_abc", "code_abc"),
        ("Bearer code_abc \t ", "code_abc"),
        ("Bearer \t code_abc", "code_abc"),
        ("Bearer a b", "a b"),
        ("Bearer clé", "clé"),
        ("Bearer 🙂", "🙂"),
        // Only spaces and tabs are trimmed: a no-break space is part of the credential (and fails its check).
        ("Bearer \u{A0}code_abc", "\u{A0}code_abc"),
        // The space is found by its byte: a combining mark after it starts the credential (the readings
        // before compared characters, and the space and the mark were one).
        ("Bearer \u{301}x", "\u{301}x"),
    ])
    func readsTheCredential(header: String, credential: String) {
        #expect(BearerCredential.of(authorization: header).map(String.init) == credential)
    }

    @Test(arguments: [
        "", "Bearer", "Bearer ", "Bearer  \t ", "Bearercode_abc", "Bearer\tcode_abc", "Basic dXNlcjpwYXNz",
        // A space before the scheme (HTTP's parsers drop it from a header's value before anyone reads it).
        " Bearer code_abc", "Bearé code_abc", "Bearer\u{A0}code_abc", "Token code_abc", "Bea",
    ])
    func refusesAnythingElse(header: String) {
        #expect(BearerCredential.of(authorization: header) == nil)
    }

    /// Over random ASCII values, the same credential as the reading it replaced (`lowercased()` of the first
    /// seven characters, then `trimmingCharacters(in: .whitespaces)`), an empty one being none.
    @Test func readsWhatTheFoundationReadingRead() {
        func replaced(_ header: String) -> String? {
            guard header.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
            let credential = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
            return credential.isEmpty ? nil : credential
        }
        let schemes = ["Bearer", "bearer", "BEARER", "bEARER", "Beare", "Bearer\t", "x", ""]
        let pieces = ["Bearer", "r", " ", "  ", "\t", "code_", "x", "-", "_", "A", "\u{A0}", ":"]
        var generator = SystemRandomNumberGenerator()
        var accepted = 0
        for _ in 0..<5_000 {
            let count = Int.random(in: 0...5, using: &generator)
            let header =
                schemes.randomElement(using: &generator)! + (0..<count).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let read = BearerCredential.of(authorization: header).map(String.init)
            // The replaced reading trimmed a no-break space too; both readings are compared without one.
            if header.contains("\u{A0}") { continue }
            #expect(read == replaced(header), "\(header.debugDescription)")
            if read != nil { accepted += 1 }
        }
        // The pieces make both kinds of value often: the comparison covered credentials, not only refusals.
        #expect(accepted > 100)
    }
}
