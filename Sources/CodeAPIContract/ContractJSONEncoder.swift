import Foundation
import OpenAPIRuntime

/// Encodes a value as the contract's JSON (`Configuration.contract`: compact, slashes unescaped, timestamps
/// by the date transcoder), writing each key and value to one buffer (`JSONOutput`) as `encode(to:)` reaches it.
///
/// Why not Foundation's `JSONEncoder`, as the OpenAPI runtime uses: it builds every object as a tree of boxed
/// values first (a class instance per value, a dictionary per object) and writes the tree after; that was
/// 46 % of the CPU a list of 20 deployments cost code-api (docs/performance.md, nineteenth round). This
/// encoder keeps no tree: an object or array is open from its first member to the next write at its own
/// depth or above, which then closes it. That is how `Encodable` types use their containers (a
/// container is finished before its parent writes again), the generated types included. A write this
/// cannot place (into a container after its parent wrote again, a value's place filled twice, an encoder
/// used after its value) throws an `EncodingError`, where `JSONEncoder` takes some and stops the process on
/// others.
///
/// Output is what `JSONEncoder` with the same options writes, read back as JSON (tested over every
/// response schema): keys in the order they are encoded, a nested value that encodes nothing as `{}`,
/// non-finite floating-point numbers refused. `Date`, `Data` (base64), `URL` and `Decimal` are written
/// as `JSONEncoder` writes them by default, dates through the transcoder. Unlike `JSONEncoder`: a key
/// encoded twice into one object is written twice (`JSONEncoder` keeps the last; finding out would mean
/// keeping each object's keys, which is what this encoder saves), `codingPath` is always empty (keeping
/// one would cost an array per nested value), and `Int128` and `UInt128` are refused, as the protocol's
/// default does.
public struct ContractJSONEncoder: Sendable {
    /// The runtime's options this encoder writes as: compact, keys in the order encoded, slashes unescaped.
    public static let options: JSONEncodingOptions = [.withoutEscapingSlashes]

    public let dateTranscoder: any DateTranscoder

    public init(dateTranscoder: any DateTranscoder = ContractDateTranscoder()) {
        self.dateTranscoder = dateTranscoder
    }

    public func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let sink = JSONSink(dateTranscoder: dateTranscoder)
        guard try sink.write(value, depth: 0) else {
            throw EncodingError.invalidValue(
                value, .init(codingPath: [], debugDescription: "Top-level \(T.self) did not encode any values."))
        }
        sink.close(deeperThan: 0)
        if let misuse = sink.misuse { throw misuse }
        return sink.output.array()
    }
}

/// The bytes written so far and the objects and arrays still open, innermost last.
private final class JSONSink {
    struct OpenContainer {
        /// The value that opened it: a second `container(keyedBy:)` of the same encoder adds to it.
        let owner: Int
        let closer: UInt8
        var members = 0
    }

    // Unchecked: the sink belongs to one `encode` call on one thread, and the runtime's checks of
    // exclusive access on every append were 9 % of a list's CPU (swift_beginAccess and its access set).
    // A deployment is about 500 bytes: most answers fit without growing, a page of 20 after three.
    @exclusivity(unchecked) var output = JSONOutput(capacity: 2048)
    @exclusivity(unchecked) var open: [OpenContainer] = []
    /// Members whose value was handed to a `superEncoder()`: the container's index, and where the value
    /// starts. A super encoder may encode nothing, and then the member's value is `{}`, as `JSONEncoder`
    /// writes it; the next write in that container or above finds out.
    @exclusivity(unchecked) private var superValues: [(index: Int, start: Int)] = []
    @exclusivity(unchecked) private var values = 0
    /// The value whose encoder may open a container or write a single value now (0: none). A member's key
    /// ends the value before it, and a value written fills its place.
    @exclusivity(unchecked) private var currentValue = 0
    /// The first write out of order: into a container after its parent wrote again, or into a value's place
    /// after the value was written. What is written after it is garbage; `encode` throws this instead.
    @exclusivity(unchecked) private(set) var misuse: EncodingError?
    let dateTranscoder: any DateTranscoder

    init(dateTranscoder: any DateTranscoder) {
        self.dateTranscoder = dateTranscoder
    }

    /// A new place for a value, whose encoder gets the returned id.
    func newValue() -> Int {
        values += 1
        currentValue = values
        return values
    }

    /// Claims the place of value `id` for what its encoder writes now; out of order, a misuse.
    func fill(_ id: Int) {
        if currentValue != id { misused("a value written after its place was filled or passed") }
        currentValue = 0
    }

    func misused(_ what: String) {
        if misuse == nil {
            misuse = .invalidValue(what, .init(codingPath: [], debugDescription: "Out of order: \(what); this encoder writes as it goes."))
        }
    }

    /// Closes the containers opened at `depth` or deeper: a write at a lower depth means they are done.
    func close(deeperThan depth: Int) {
        if !superValues.isEmpty { endSuperValues(from: depth) }
        while open.count > depth { output.append(open.removeLast().closer) }
    }

    func awaitSuperValue(of index: Int) {
        superValues.append((index, output.count))
    }

    private func endSuperValues(from index: Int) {
        while let last = superValues.last, last.index >= index {
            close(deeperThan: last.index + 1)
            if output.count == last.start { output.append("{}") }
            superValues.removeLast()
        }
    }

    /// The object or array (by its `closer`) the value `owner` writes at `depth`: the one it opened
    /// already, or a new one.
    func container(depth: Int, owner: Int, closer: UInt8) {
        if open.count > depth, open[depth].owner == owner {
            if open[depth].closer != closer { misused("an object and an array for one value") }
            close(deeperThan: depth + 1)
            return
        }
        fill(owner)
        close(deeperThan: depth)
        output.append(closer == UInt8(ascii: "}") ? UInt8(ascii: "{") : UInt8(ascii: "["))
        open.append(OpenContainer(owner: owner, closer: closer))
    }

    /// Whether the container at `index` opened by `owner` is still open.
    func isOpen(_ index: Int, owner: Int) -> Bool {
        index < open.count && open[index].owner == owner
    }

    /// Starts the next member of the container at `index`: closes what its last member left open, then
    /// the separator.
    func member(of index: Int, owner: Int) {
        if !superValues.isEmpty { endSuperValues(from: index) }
        close(deeperThan: index + 1)
        currentValue = 0
        guard isOpen(index, owner: owner) else { return misused("a member written into a container already closed") }
        if open[index].members > 0 { output.append(UInt8(ascii: ",")) }
        open[index].members += 1
    }

    func key(_ key: String, of index: Int, owner: Int) {
        member(of: index, owner: owner)
        string(key)
        output.append(UInt8(ascii: ":"))
    }

    /// Writes `value` as the value at `depth`; false if it encoded nothing (then nothing was written).
    @discardableResult
    func write<T: Encodable>(_ value: T, depth: Int) throws -> Bool {
        // The types JSONEncoder writes in a way of its own rather than by their `encode(to:)`, and String,
        // the commonest value reached through a generic call (an array's elements, a dictionary's values).
        if T.self == String.self {
            close(deeperThan: depth)
            string(value as! String)
        } else if T.self == Date.self {
            close(deeperThan: depth)
            string(try dateTranscoder.encode(value as! Date))
        } else if T.self == URL.self {
            close(deeperThan: depth)
            string((value as! URL).absoluteString)
        } else if T.self == Data.self {
            close(deeperThan: depth)
            string((value as! Data).base64EncodedString())
        } else if T.self == Decimal.self {
            close(deeperThan: depth)
            raw((value as! Decimal).description)
        } else {
            let start = output.count
            try value.encode(to: StreamingEncoder(sink: self, depth: depth, id: newValue()))
            guard output.count > start else {
                if depth == 0 { return false }
                output.append("{}")
                return true
            }
        }
        return true
    }

    func raw(_ text: String) {
        var text = text
        text.withUTF8 { output.append($0) }
    }

    func integer(_ value: some BinaryInteger) {
        raw(String(value))
    }

    func floatingPoint<F: BinaryFloatingPoint & LosslessStringConvertible>(_ value: F) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "Unable to encode \(value) directly in JSON."))
        }
        var text = value.description
        // Integral values as JSONEncoder writes them: 2, not 2.0.
        if text.hasSuffix(".0") { text.removeLast(2) }
        raw(text)
    }

    func string(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            // Most strings (every key, ids, names, timestamps) need no escape: found eight bytes at a time,
            // then written in one copy.
            guard JSONEscaping.isNeeded(in: utf8) else { return output.appendQuoted(utf8) }
            output.appendQuotedEscaping(utf8)
        }
    }
}

/// The encoder of one value at one depth.
private struct StreamingEncoder: Encoder {
    let sink: JSONSink
    let depth: Int
    let id: Int

    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        sink.container(depth: depth, owner: id, closer: UInt8(ascii: "}"))
        return KeyedEncodingContainer(ObjectContainer<Key>(sink: sink, index: depth, owner: id))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        sink.container(depth: depth, owner: id, closer: UInt8(ascii: "]"))
        return ArrayContainer(sink: sink, index: depth, owner: id)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        ValueContainer(sink: sink, depth: depth, id: id)
    }
}

private struct ObjectContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let sink: JSONSink
    /// The object's place in `sink.open`, and the value that opened it.
    let index: Int
    let owner: Int

    var codingPath: [any CodingKey] { [] }

    /// The place of the member `key`, whose key is written when it is taken.
    private func member(_ key: Key) -> MemberPlace {
        MemberPlace(sink: sink, index: index, owner: owner, key: key.stringValue)
    }

    mutating func encodeNil(forKey key: Key) throws { try member(key).encodeNil() }
    mutating func encode(_ value: Bool, forKey key: Key) throws { try member(key).encode(value) }
    mutating func encode(_ value: String, forKey key: Key) throws { try member(key).encode(value) }
    mutating func encode(_ value: Double, forKey key: Key) throws { try member(key).encode(value) }
    mutating func encode(_ value: Float, forKey key: Key) throws { try member(key).encode(value) }
    mutating func encode(_ value: Int, forKey key: Key) throws { try member(key).encode(value) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { try member(key).encode(value) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { try member(key).encode(value) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try member(key).encode(value) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { try member(key).encode(value) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try member(key).encode(value) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { try member(key).encode(value) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { try member(key).encode(value) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { try member(key).encode(value) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try member(key).encode(value) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try member(key).encode(value) }

    // The optionals the generated types write with `encodeIfPresent`, here rather than through the
    // protocol's default implementation, which looks up the metadata of each `Optional<T>` at run time.
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }

    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }

    mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }

    mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }

    mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }

    mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        sink.key(key.stringValue, of: index, owner: owner)
        return StreamingEncoder(sink: sink, depth: index + 1, id: sink.newValue()).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        sink.key(key.stringValue, of: index, owner: owner)
        return StreamingEncoder(sink: sink, depth: index + 1, id: sink.newValue()).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        sink.key("super", of: index, owner: owner)  // JSONEncoder's key for it
        sink.awaitSuperValue(of: index)
        return StreamingEncoder(sink: sink, depth: index + 1, id: sink.newValue())
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        sink.key(key.stringValue, of: index, owner: owner)
        sink.awaitSuperValue(of: index)
        return StreamingEncoder(sink: sink, depth: index + 1, id: sink.newValue())
    }
}

/// The values of an object, an array and a single value are written the same way once their place is
/// taken: a member's key, a new element, or the value's own place. One implementation of the containers'
/// primitive requirements for all three.
private protocol ValuePlace {
    var sink: JSONSink { get }
    /// The depth of the value, for a value encoded by its own `encode(to:)`.
    var valueDepth: Int { get }
    /// Takes the place of the next value, before it is written.
    func take()
}

// Not `mutating`: a method that is not satisfies the containers' `mutating` requirements, and a member's
// place (a temporary) can then write itself.
extension ValuePlace {
    func encodeNil() throws {
        take()
        sink.raw("null")
    }

    func encode(_ value: Bool) throws {
        take()
        sink.raw(value ? "true" : "false")
    }

    func encode(_ value: String) throws {
        take()
        sink.string(value)
    }

    func encode(_ value: Double) throws {
        take()
        try sink.floatingPoint(value)
    }

    func encode(_ value: Float) throws {
        take()
        try sink.floatingPoint(value)
    }

    func encode(_ value: Int) throws { integer(value) }
    func encode(_ value: Int8) throws { integer(value) }
    func encode(_ value: Int16) throws { integer(value) }
    func encode(_ value: Int32) throws { integer(value) }
    func encode(_ value: Int64) throws { integer(value) }
    func encode(_ value: UInt) throws { integer(value) }
    func encode(_ value: UInt8) throws { integer(value) }
    func encode(_ value: UInt16) throws { integer(value) }
    func encode(_ value: UInt32) throws { integer(value) }
    func encode(_ value: UInt64) throws { integer(value) }

    private func integer(_ value: some BinaryInteger) {
        take()
        sink.integer(value)
    }

    func encode<T: Encodable>(_ value: T) throws {
        take()
        try sink.write(value, depth: valueDepth)
    }
}

/// A member of an object: its key is written when its place is taken.
/// Not generic over the key type: a generic place's metadata was looked up at run time for every member.
private struct MemberPlace: ValuePlace {
    let sink: JSONSink
    /// The object's place in `sink.open`, and the value that opened it.
    let index: Int
    let owner: Int
    let key: String

    var valueDepth: Int { index + 1 }

    func take() {
        sink.key(key, of: index, owner: owner)
    }
}

private struct ArrayContainer: UnkeyedEncodingContainer, ValuePlace {
    let sink: JSONSink
    /// The array's place in `sink.open`, and the value that opened it.
    let index: Int
    let owner: Int

    var codingPath: [any CodingKey] { [] }
    var count: Int { sink.isOpen(index, owner: owner) ? sink.open[index].members : 0 }
    var valueDepth: Int { index + 1 }

    func take() {
        sink.member(of: index, owner: owner)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        sink.member(of: index, owner: owner)
        return StreamingEncoder(sink: sink, depth: index + 1, id: sink.newValue()).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        sink.member(of: index, owner: owner)
        return StreamingEncoder(sink: sink, depth: index + 1, id: sink.newValue()).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        sink.member(of: index, owner: owner)
        sink.awaitSuperValue(of: index)
        return StreamingEncoder(sink: sink, depth: index + 1, id: sink.newValue())
    }
}

private struct ValueContainer: SingleValueEncodingContainer, ValuePlace {
    let sink: JSONSink
    let depth: Int
    /// The value whose place this fills, once.
    let id: Int

    var codingPath: [any CodingKey] { [] }
    var valueDepth: Int { depth }

    func take() {
        sink.fill(id)
        sink.close(deeperThan: depth)
    }
}
