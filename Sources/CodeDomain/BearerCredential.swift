/// The credential of an `Authorization: Bearer <credential>` header value, read the one way code-api's
/// keys, code-worker's keys and code-mcp's tokens are all read: the scheme `Bearer` in any case, at least
/// one space (RFC 6750's `"Bearer" 1*SP b64token`), then the credential without the spaces and tabs around
/// it.
///
/// Read over the value's UTF-8 bytes: `trimmingCharacters(in:)` and `lowercased()`, which each reader did
/// before, go through `NSString` on Linux and were 2.5 % of code-api's CPU on an authenticated GET
/// (docs/performance.md, twenty-third round).
public enum BearerCredential {
    /// The credential, or nil when the value is not `Bearer` and a non-empty credential.
    public static func of(authorization value: String) -> Substring? {
        let bytes = value.utf8
        var index = bytes.startIndex
        for expected in "bearer".utf8 {
            // ASCII letters only: setting 0x20 lowers an upper-case letter and leaves a lower-case one.
            guard index != bytes.endIndex, bytes[index] | 0x20 == expected else { return nil }
            index = bytes.index(after: index)
        }
        guard index != bytes.endIndex, bytes[index] == UInt8(ascii: " ") else { return nil }
        while index != bytes.endIndex, isSpaceOrTab(bytes[index]) { index = bytes.index(after: index) }
        var end = bytes.endIndex
        while end != index, isSpaceOrTab(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        // Both ends sit next to ASCII bytes, so they are boundaries of Unicode scalars, which is all that
        // slicing a String needs (not always of characters: a combining mark after the space starts the
        // credential).
        return index == end ? nil : value[index..<end]
    }

    private static func isSpaceOrTab(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }
}
