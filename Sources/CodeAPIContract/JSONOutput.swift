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

    /// `bytes` between double quotes, the bytes JSON escapes escaped (`JSONEscaping`; `\n` and the other short
    /// forms where there is one, `\u00XX` for the other controls), for a string that needs it.
    ///
    /// code-mcp's tool answers carry code-api's JSON as a string, a quote every seven bytes or so: copying each
    /// run between two escapes and appending each escape, with a capacity check per append, cost about 22
    /// instructions per byte of such a page, this about 10 (callgrind, the two loops alone). Room for the
    /// longest escape of every byte is made once per stretch of at most 1,024 bytes, and the bytes go eight at
    /// a time: each word is stored whole, and the output moves on by its bytes before the first escaped one (all
    /// eight when it has none), so the bytes after that one are written again from where the next word starts.
    /// A word is read and stored only while eight bytes of the stretch are left, whose room (six bytes each)
    /// holds it.
    mutating func appendQuotedEscaping(_ bytes: UnsafeBufferPointer<UInt8>) {
        append(UInt8(ascii: "\""))
        guard let source = bytes.baseAddress else { return append(UInt8(ascii: "\"")) }
        var index = 0
        while index < bytes.count {
            let end = min(index + 1024, bytes.count)
            let longest = (end - index) * 6
            if capacity - count < longest { grow(toHold: count + longest) }
            let target = base
            var written = count
            while index < end {
                if end - index >= 8 {
                    let word = UnsafeRawPointer(source + index).loadUnaligned(as: UInt64.self)
                    UnsafeMutableRawPointer(target + written).storeBytes(of: word, as: UInt64.self)
                    let escaped = JSONEscaping.escapedBytes(UInt64(littleEndian: word))
                    let plain = escaped == 0 ? 8 : escaped.trailingZeroBitCount / 8
                    index += plain
                    written += plain
                    if plain == 8 { continue }
                } else if !JSONEscaping.isEscaped(source[index]) {
                    target[written] = source[index]
                    index += 1
                    written += 1
                    continue
                }
                written += Self.writeEscape(of: source[index], at: target + written)
                index += 1
            }
            count = written
        }
        append(UInt8(ascii: "\""))
    }

    /// Writes the escape of `byte`, which `JSONEscaping.isEscaped`, at `target`; returns its length (2 or 6).
    private static func writeEscape(of byte: UInt8, at target: UnsafeMutablePointer<UInt8>) -> Int {
        target[0] = UInt8(ascii: "\\")
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): target[1] = byte
        case 0x08: target[1] = UInt8(ascii: "b")
        case 0x0C: target[1] = UInt8(ascii: "f")
        case 0x0A: target[1] = UInt8(ascii: "n")
        case 0x0D: target[1] = UInt8(ascii: "r")
        case 0x09: target[1] = UInt8(ascii: "t")
        default:
            // \u00XX in lowercase hexadecimal, as JSONEncoder writes \u001f.
            target[1] = UInt8(ascii: "u")
            target[2] = UInt8(ascii: "0")
            target[3] = UInt8(ascii: "0")
            target[4] = hexDigit(byte >> 4)
            target[5] = hexDigit(byte & 0xF)
            return 6
        }
        return 2
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
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

    /// Whether one of the word's eight bytes is escaped: whether `escapedBytes(word)` has a bit set.
    static func hasEscapedByte(_ word: UInt64) -> Bool {
        escapedBytes(word) != 0
    }

    /// The high bit of each escaped byte of `word`, by the bit tricks for "has a byte below n" and "has a zero
    /// byte" (after XOR with `"` and with `\`). Exact for the least significant escaped byte: a borrow runs only
    /// towards the more significant bytes, so a byte above an escaped one may be marked too, one below never.
    /// So the result is not zero exactly when the word has such a byte, and for a word loaded in little-endian
    /// order its lowest set bit names the first (`trailingZeroBitCount / 8`). Bytes of 0x80 and above (UTF-8's
    /// multi-byte sequences) are never marked.
    static func escapedBytes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quotes = word ^ (ones &* UInt64(UInt8(ascii: "\"")))
        let backslashes = word ^ (ones &* UInt64(UInt8(ascii: "\\")))
        let control = (word &- ones &* 0x20) & ~word
        let quote = (quotes &- ones) & ~quotes
        let backslash = (backslashes &- ones) & ~backslashes
        return (control | quote | backslash) & 0x8080_8080_8080_8080
    }
}
