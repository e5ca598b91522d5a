/// The 128 bits of an RFC 9562 UUID as two big-endian halves: request ids (version 4) and deployment ids
/// (version 7) set the same version and variant bits and write the same bytes.
public struct UUIDBits: Sendable {
    public let high: UInt64
    public let low: UInt64

    /// `high` and `low` with `version` in bits 12-15 of `high` (byte 6's high nibble) and the variant, 0b10,
    /// in the top two bits of `low` (byte 8's).
    public init(version: UInt64, high: UInt64, low: UInt64) {
        self.high = high & ~0xF000 | (version & 0xF) << 12
        self.low = low & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
    }

    /// 8-4-4-4-12 lowercase hex digits.
    public var text: String { withBytes { LowercaseHex.uuidString(of: $0) } }

    /// `prefix`, then 32 lowercase hex digits.
    public func hex(prefix: String) -> String { withBytes { LowercaseHex.string(prefix: prefix, of: $0) } }

    private func withBytes(_ body: (UnsafeRawBufferPointer) -> String) -> String {
        withUnsafeBytes(of: (high.bigEndian, low.bigEndian), body)
    }
}
