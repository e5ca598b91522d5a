/// Bytes as lowercase hexadecimal, written by table into one string: the stored hash of every request's
/// key and every new deployment's id are made this way (`String(format: "%02x")` per byte was most of
/// the key hash's time).
public enum LowercaseHex {
    /// `prefix`, then two digits for each of the first `count` bytes of `bytes`.
    public static func string(prefix: String = "", of bytes: some Sequence<UInt8>, count: Int) -> String {
        let prefix = prefix.utf8
        return String(unsafeUninitializedCapacity: prefix.count + 2 * count) { buffer in
            var index = 0
            for byte in prefix {
                buffer[index] = byte
                index += 1
            }
            for byte in bytes {
                guard index + 2 <= buffer.count else { break }
                buffer[index] = digits[Int(byte >> 4)]
                buffer[index + 1] = digits[Int(byte & 0x0f)]
                index += 2
            }
            return index
        }
    }

    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)
}
