// icu-data-subset: writes the part of ICU's data that the CODE services use, as an assembly file
// that defines ICU's data symbol, so that the release binary links it instead of the whole.
//
//   swiftc -O docker/icu-data-subset.swift -o icu-data-subset
//   icu-data-subset lib_FoundationICU.a-member.dat icudt76_dat OUT_DIR
//
// Why: full Foundation links `_FoundationICU`, whose data (`icudt76_dat`, 34 MB: every locale's
// names, calendars, collation and units, 200 character-set converters, CJK and Thai dictionaries)
// is compiled into its own archive member. docker/Dockerfile's icu-data stage assembles this
// tool's output as an object defining the same symbol and puts it in the archive in that member's
// place (`ar r`), so every link takes the subset. ICU reads the symbol as a "common data" package
// (a table of contents of named items) and looks each item up by name: an item left out is a
// resource ICU reports missing, and ICU falls back from a locale to its parent, then to the
// default locale and at last to `root`, as it does for any locale it has no data for.
//
// What is kept (docs/containers.md, "ICU's data: root, English and what no locale owns"): every
// item that is not tied to one locale (time zones, likely subtags, plural rules, Unicode names,
// normalization tables for IDNA and NFKC, the root collation and the break rules), and of the
// per-locale items only `root` and English (`en` and its regional variants; services run with the
// POSIX locale, which ICU maps to en_US_POSIX).
// Left out: the other locales (in every tree: names, calendars, currencies, units, collation,
// spell-out rules), the table-driven character-set converters (`*.cnv`: the services speak
// UTF-8, and ICU's UTF-8/16/32, ASCII and Latin-1 converters are code, not data), the word-break
// dictionaries of CJK, Thai, Lao, Khmer and Burmese (`*.dict`), and transliteration.
//
// The package format (ICU's udata.cpp, "common data"): a header whose first two bytes are its
// length, then a uint32 item count and per item two uint32 offsets (its name and its data), both
// from the end of the header; item names are sorted, and each item's data is 16-byte aligned.
// The output keeps the input's header, the order of the names and the alignment.

import Foundation

struct CommonData {
    struct Item {
        var name: String
        var data: Data
    }

    var header: Data
    var items: [Item]

    init(_ bytes: Data) throws {
        let bytes = Data(bytes)  // indices from 0
        guard bytes.count > 32 else { throw Failure("too short for an ICU data package") }
        let headerSize = Int(bytes.uint16(at: 0))
        // UDataInfo after the two magic bytes 0xda 0x27: isBigEndian at 8, dataFormat "CmnD" at 12.
        guard bytes[2] == 0xDA, bytes[3] == 0x27, bytes[8] == 0,
            bytes[12..<16] == Data("CmnD".utf8)
        else { throw Failure("not a little-endian ICU common data package (CmnD)") }
        let count = Int(bytes.uint32(at: headerSize))
        guard count > 0, headerSize + 4 + 8 * count <= bytes.count else {
            throw Failure("table of contents out of bounds")
        }
        let offsets = (0..<count).map { index in
            (
                name: headerSize + Int(bytes.uint32(at: headerSize + 4 + 8 * index)),
                data: headerSize + Int(bytes.uint32(at: headerSize + 8 + 8 * index))
            )
        }
        header = bytes[0..<headerSize]
        items = try offsets.indices.map { index in
            let nameStart = offsets[index].name
            guard let nameEnd = bytes[nameStart...].firstIndex(of: 0) else {
                throw Failure("unterminated item name")
            }
            let dataEnd = index + 1 < count ? offsets[index + 1].data : bytes.count
            guard offsets[index].data <= dataEnd else { throw Failure("item data out of order") }
            return Item(
                name: String(decoding: bytes[nameStart..<nameEnd], as: UTF8.self),
                data: bytes[offsets[index].data..<dataEnd])
        }
    }

    func serialized() -> Data {
        var tableSize = 4 + 8 * items.count
        let namesStart = tableSize
        var names = Data()
        var nameOffsets: [Int] = []
        for item in items {
            nameOffsets.append(namesStart + names.count)
            names.append(contentsOf: Array(item.name.utf8) + [0])
        }
        tableSize += names.count
        var body = Data()
        var dataOffsets: [Int] = []
        var position = header.count + tableSize
        for item in items {
            let padding = (16 - position % 16) % 16
            body.append(Data(count: padding))
            position += padding
            dataOffsets.append(position - header.count)
            body.append(item.data)
            position += item.data.count
        }
        var output = Data(header)
        output.appendUInt32(UInt32(items.count))
        for index in items.indices {
            output.appendUInt32(UInt32(nameOffsets[index]))
            output.appendUInt32(UInt32(dataOffsets[index]))
        }
        output.append(names)
        output.append(body)
        return output
    }
}

/// Whether the services need an item: its path under the package's tree (`icudt76l/coll/en.res`).
func isKept(_ name: String) -> Bool {
    let path = name.split(separator: "/").dropFirst().map(String.init)
    guard let file = path.last else { return false }
    let tree = path.dropLast().first
    if tree == "translit" { return false }
    if file.hasSuffix(".cnv") || file.hasSuffix(".dict") { return false }
    guard file.hasSuffix(".res"), let locale = localeName(file) else { return true }
    return locale == "root" || locale == "en" || locale.hasPrefix("en_")
}

/// The locale a resource bundle is for (`de_CH.res` -> `de_CH`), or nil for a bundle that is not
/// one locale's (`supplementalData.res`, `pool.res`, `res_index.res`, `tzdbNames.res`).
func localeName(_ file: String) -> String? {
    let stem = String(file.dropLast(".res".count))
    if stem == "root" { return stem }
    if stem == "res_index" { return nil }
    let parts = stem.split(separator: "_", omittingEmptySubsequences: false)
    let language = parts[0]
    guard (2...3).contains(language.count), language.allSatisfy({ $0.isASCII && $0.isLowercase }),
        parts.dropFirst().allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } })
    else { return nil }
    return stem
}

struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Data {
    func uint16(at offset: Int) -> UInt16 { UInt16(self[offset]) | UInt16(self[offset + 1]) << 8 }
    func uint32(at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(self[offset + $1]) << (8 * $1) }
    }
    mutating func appendUInt32(_ value: UInt32) {
        append(contentsOf: (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) })
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 4 else {
    FileHandle.standardError.write(Data("usage: icu-data-subset PACKAGE.dat SYMBOL OUT_DIR\n".utf8))
    exit(2)
}
do {
    let (input, symbol, outDirectory) = (arguments[1], arguments[2], URL(fileURLWithPath: arguments[3]))
    let packageBytes = try Data(contentsOf: URL(fileURLWithPath: input))
    let package = try CommonData(packageBytes)
    var subset = package
    subset.items = package.items.filter { isKept($0.name) }
    // Every item is a data file of its own, with the header ICU checks when it loads one: its
    // length in two bytes, then the magic bytes 0xda 0x27.
    let malformed = subset.items.first { item in
        item.data.count < 4 || Array(item.data.dropFirst(2).prefix(2)) != [0xDA, 0x27]
    }
    if let malformed {
        throw Failure("item \(malformed.name) has no ICU data header")
    }
    let bytes = subset.serialized()
    // Read back: the output must parse to the same kept items, byte for byte.
    let check = try CommonData(bytes)
    guard check.items.map(\.name) == subset.items.map(\.name),
        zip(check.items, subset.items).allSatisfy({ $0.data == $1.data })
    else { throw Failure("the written package does not read back") }
    try bytes.write(to: outDirectory.appendingPathComponent("\(symbol).dat"))
    // An assembly file for the target's own assembler (x86_64 and aarch64 alike): the symbol in
    // read-only data, 16-byte aligned as ICU's own, with its size for the symbol table.
    let assembly = """
        .section .rodata.\(symbol),"a"
        .globl \(symbol)
        .type \(symbol), %object
        .balign 16
        \(symbol):
        .incbin "\(symbol).dat"
        .size \(symbol), . - \(symbol)
        .section .note.GNU-stack,"",%progbits

        """
    try Data(assembly.utf8).write(to: outDirectory.appendingPathComponent("\(symbol).S"))
    let keptBytes = subset.items.reduce(0) { $0 + $1.data.count }
    print(
        "icu-data-subset: \(symbol): kept \(subset.items.count) of \(package.items.count) items, "
            + "\(bytes.count) of \(packageBytes.count) bytes "
            + "(item data \(keptBytes) bytes)")
} catch {
    FileHandle.standardError.write(Data("icu-data-subset: \(error)\n".utf8))
    exit(1)
}
