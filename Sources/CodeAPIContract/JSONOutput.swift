/// The bytes `ContractJSONEncoder` writes: memory it owns, written through a pointer and doubled when full.
///
/// Why not an `[UInt8]`, as before: every append to an array checks that its storage is uniquely referenced
/// (a call into the runtime) and its capacity, byte by byte for the punctuation, and an encoded list of 20
/// deployments makes about 2,000 appends. Here an append is a capacity check and a store, and a string a
/// single check and copy. Not copyable, so that the memory has one owner, which frees it once.
struct JSONOutput: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        precondition(capacity > 0, "an output needs room for a byte")
        base = .allocate(capacity: capacity)
        self.capacity = capacity
    }

    deinit {
        base.deallocate()
    }

    /// The bytes written, copied into an array.
    func array() -> [UInt8] {
        Array(UnsafeBufferPointer(start: base, count: count))
    }

    mutating func append(_ byte: UInt8) {
        if count == capacity { grow(toHold: count + 1) }
        base[count] = byte
        count += 1
    }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        if capacity - count < bytes.count { grow(toHold: count + bytes.count) }
        (base + count).initialize(from: source, count: bytes.count)
        count += bytes.count
    }

    /// ASCII punctuation such as `{}` and `u00`.
    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append($0) }
    }

    /// `bytes` between double quotes, for a string that needs no escape.
    mutating func appendQuoted(_ bytes: UnsafeBufferPointer<UInt8>) {
        if capacity - count < bytes.count + 2 { grow(toHold: count + bytes.count + 2) }
        base[count] = UInt8(ascii: "\"")
        if let source = bytes.baseAddress { (base + count + 1).initialize(from: source, count: bytes.count) }
        base[count + 1 + bytes.count] = UInt8(ascii: "\"")
        count += bytes.count + 2
    }

    private mutating func grow(toHold needed: Int) {
        let newCapacity = max(needed, capacity * 2)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.initialize(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }
}

/// Which bytes a JSON string escapes (RFC 8259: the control characters, `"` and `\`), and whether a string
/// has any.
enum JSONEscaping {
    static func isEscaped(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    /// Whether any byte of `utf8` is escaped, tested eight bytes at a time: a string of eight bytes or more
    /// word by word, its last word overlapping the one before (no byte loop for the tail); a shorter one (most
    /// keys) in a word of spaces.
    static func isNeeded(in utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        let bytes = UnsafeRawBufferPointer(utf8)
        guard bytes.count >= 8 else {
            var word: UInt64 = 0x2020_2020_2020_2020
            withUnsafeMutableBytes(of: &word) { word in
                for index in bytes.indices { word[index] = bytes[index] }
            }
            return hasEscapedByte(word)
        }
        var offset = 0
        while offset + 8 < bytes.count {
            if hasEscapedByte(bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) { return true }
            offset += 8
        }
        return hasEscapedByte(bytes.loadUnaligned(fromByteOffset: bytes.count - 8, as: UInt64.self))
    }

    /// Whether one of the word's eight bytes is escaped, by the bit tricks for "has a byte below n" and "has a
    /// zero byte" (after XOR with `"` and with `\`): exact answers to whether the word has such a byte, though
    /// not which one, which the caller's byte loop finds. Bytes of 0x80 and above (UTF-8's multi-byte
    /// sequences) never match.
    static func hasEscapedByte(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quotes = word ^ (ones &* UInt64(UInt8(ascii: "\"")))
        let backslashes = word ^ (ones &* UInt64(UInt8(ascii: "\\")))
        let control = (word &- ones &* 0x20) & ~word
        let quote = (quotes &- ones) & ~quotes
        let backslash = (backslashes &- ones) & ~backslashes
        return (control | quote | backslash) & 0x8080_8080_8080_8080 != 0
    }
}
