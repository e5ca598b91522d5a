import CodeDomain
import Crypto
import Foundation

/// API key secrets: `code_` and 43 characters of URL-safe base64 (32 random bytes). Only a SHA-256 hash
/// is stored. A fast hash is right here, unlike for passwords: the secret has 256 bits of entropy, so
/// there is nothing to guess, and lookups by hash stay cheap on every request.
public enum APIKeySecret {
    public static let scheme = "code_"
    public static let randomByteCount = 32
    /// Characters of the secret kept in clear to tell keys apart (`code_` and 7 more).
    public static let prefixLength = 12

    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<randomByteCount).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return scheme + base64URL(bytes)
    }

    /// Whether `text` has the shape of a key (so that malformed tokens are rejected without a lookup).
    public static func isWellFormed(_ text: String) -> Bool {
        guard text.hasPrefix(scheme) else { return false }
        // Counted in bytes: every byte allowed is a character of its own, and counting characters walks
        // grapheme boundaries.
        let body = text.utf8.dropFirst(scheme.utf8.count)
        return (43...512).contains(body.count)
            && body.allSatisfy { byte in
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            }
    }

    /// The lowercase hex SHA-256 of the secret, as stored. Runs on every authenticated request, so the
    /// digest is hashed from the string's UTF-8 in place and hex-encoded by table (`LowercaseHex`).
    public static func hash(_ secret: String) -> String {
        LowercaseHex.string(of: secret.withUTF8Bytes { SHA256.hash(data: $0) })
    }

    public static func prefix(of secret: String) -> String { String(secret.prefix(prefixLength)) }

    /// Compares two hashes in time independent of where they differ.
    public static func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
        // Over the strings' UTF-8 in place: copying each into an array cost two allocations a request.
        lhs.withUTF8Bytes { left in
            rhs.withUTF8Bytes { right in
                guard left.count == right.count else { return false }
                var difference: UInt8 = 0
                for index in left.indices {
                    difference |= left[index] ^ right[index]
                }
                return difference == 0
            }
        }
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
