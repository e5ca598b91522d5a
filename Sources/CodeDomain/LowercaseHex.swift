import Foundation  // ContiguousBytes

/// Bytes as lowercase hexadecimal, written by table into one string: the stored hash of every request's
/// key, every new deployment's id and every generated request id are made this way (`String(format:
/// "%02x")` per byte was most of the key hash's time). On raw bytes, not a generic sequence: a generic
/// function called from another module runs unspecialised, through witness tables, byte by byte.
public enum LowercaseHex {
    /// `prefix`, then two digits for each byte.
    public static func string(prefix: String = "", of bytes: UnsafeRawBufferPointer) -> String {
        let prefix = prefix.utf8
        return String(unsafeUninitializedCapacity: prefix.count + 2 * bytes.count) { buffer in
            var index = 0
            for byte in prefix {
                buffer[index] = byte
                index += 1
            }
            for byte in bytes { index = put(byte, into: buffer, at: index) }
            return index
        }
    }

    /// A digest or any other contiguous bytes (swift-crypto's digests and authentication codes), `prefix`
    /// first. Inlinable, so that it is specialised where it is called rather than run through witness tables.
    @inlinable
    public static func string(prefix: String = "", of bytes: some ContiguousBytes) -> String {
        bytes.withUnsafeBytes { string(prefix: prefix, of: $0) }
    }

    /// 16 bytes as a UUID's text: 8-4-4-4-12 lowercase hex digits.
    public static func uuidString(of bytes: UnsafeRawBufferPointer) -> String {
        precondition(bytes.count == 16, "a UUID is 16 bytes")
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var index = 0
            for (position, byte) in bytes.enumerated() {
                if position == 4 || position == 6 || position == 8 || position == 10 {
                    buffer[index] = UInt8(ascii: "-")
                    index += 1
                }
                index = put(byte, into: buffer, at: index)
            }
            return index
        }
    }

    /// Writes `byte`'s two digits at `index`; answers the index after them.
    private static func put(_ byte: UInt8, into buffer: UnsafeMutableBufferPointer<UInt8>, at index: Int) -> Int {
        buffer[index] = digits[Int(byte >> 4)]
        buffer[index + 1] = digits[Int(byte & 0x0f)]
        return index + 2
    }

    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)
}
