import Yams

/// Encodes a manifest to YAML with its mapping keys sorted: what Yams' `YAMLEncoder` writes with
/// `sortKeys`, at a fraction of its cost.
///
/// The worker's profile put 27 % of its CPU per deployment in `YAMLEncoder`: it asks Yams' default
/// resolver for the tag of every string, key or value, and for a plain word that means all seven of its
/// ICU regular expressions failing one after another. Here the resolver is asked only about a string
/// whose first character could begin something other than a string (a number, a bool, null, a
/// timestamp, `<<`, `=`); such a string is single-quoted, as Yams does. Two differences, on purpose:
/// keys are quoted by the same rule (Yams left a key such as `on` plain, which reads back as a bool),
/// and so are `y`, `Y`, `n` and `N`, which Yams reads as strings but YAML 1.1 readers such as go-yaml v2
/// (kubectl's, through sigs.k8s.io/yaml) read as bools.
///
/// Every tag is made with one shared `Constructor`: Yams' `Tag(_:)` and `Tag.implicit` build a new
/// `Constructor.default`, three dictionaries of closures, for each node (11 % of the worker's CPU in the
/// eleventh round's profile).
struct ManifestYAMLEncoder {
    /// Yams' default constructor, built once. Safe to share between threads: its three maps are
    /// `private let`s, set in its initialiser and only read after.
    nonisolated(unsafe) private static let constructor = Constructor()

    /// A tag of this name with Yams' default resolver and the shared constructor. A new `Tag` for each
    /// node, as Yams makes them: an implicit tag's name is overwritten when it is resolved.
    static func tag(_ name: Tag.Name) -> Tag { Tag(name, .default, constructor) }

    static var null: Node.Scalar { Node.Scalar("null", tag(.null)) }

    func encode(_ value: some Encodable) throws -> String {
        let root = NodeBuilder()
        try value.encode(to: NodeEncoder(builder: root, codingPath: []))
        return try Yams.serialize(node: root.node())
    }

    /// The scalar of a string: plain where it reads back as a string, single-quoted where it would not.
    static func scalar(_ string: String) -> Node.Scalar {
        Node.Scalar(string, tag(.str), readsBackAsString(string) ? .any : .singleQuoted)
    }

    static func readsBackAsString(_ string: String) -> Bool {
        let utf8 = string.utf8
        guard let first = utf8.first, let last = utf8.last else { return false }  // the empty scalar is null
        if utf8.count == 1, "yYnN".utf8.contains(first) { return false }
        switch first {
        // Digits, signs, "." (.5, .inf, .nan), "~", "<<" and "=": numbers, timestamps and the rest.
        // A byte that none of those rules has in its pattern (the `M` of `256M`, the `s` of `10s`, the `/`
        // of a path) makes it a string without asking the resolver, unless it is a line terminator, which
        // ICU's `$` may match before, or part of a non-ASCII character (NEL, LS and PS are line terminators).
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "~"), UInt8(ascii: "<"), UInt8(ascii: "="):
            if utf8.contains(where: { $0 < 0x80 && !(0x0A...0x0D).contains($0) && !numberRuleBytes[Int($0)] }) { return true }
            return resolvesToString(string)
        // yes/no, true/false, on/off and null, in their three spellings: the only rules of Yams' resolver
        // that a letter can begin. Each is a whole-word match (`^(?:...)$`), and ICU's `$` also matches
        // before a line terminator that ends the text (LF, VT, FF, CR, NEL, LS, PS), so a string that
        // ends in one of those or in any non-ASCII byte is left to the resolver; any other can only match
        // by being one of the words.
        case UInt8(ascii: "y"), UInt8(ascii: "Y"), UInt8(ascii: "n"), UInt8(ascii: "N"), UInt8(ascii: "t"), UInt8(ascii: "T"),
            UInt8(ascii: "f"), UInt8(ascii: "F"), UInt8(ascii: "o"), UInt8(ascii: "O"):
            guard last < 0x80, !(0x0A...0x0D).contains(last) else { return resolvesToString(string) }
            return !boolAndNullWords.contains(string)
        default:
            return true
        }
    }

    /// For each ASCII byte, whether a rule of Yams' default resolver that a string beginning with a digit,
    /// a sign, `.`, `~`, `<` or `=` can match has it in its pattern: `int` (`0b`, `0o`, `0x` and hex digits,
    /// `_`, `:`), `float` (`e`/`E`, `.inf` and `.nan` in their three spellings), `timestamp` (`-`, `:`, `T`/`t`,
    /// space, tab, `Z`), `merge`, `value` and the `~` of `null`.
    static let numberRuleBytes: [Bool] = {
        var table = [Bool](repeating: false, count: 128)
        for byte in "0123456789+-._:~<= \tabcdefABCDEFoxinINtTZ".utf8 { table[Int(byte)] = true }
        return table
    }()

    /// The words of Yams' default `bool` and `null` rules (Resolver.Rule.bool, .null).
    private static let boolAndNullWords: Set<String> = [
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL",
    ]

    /// What Yams' default resolver, seven ICU regular expressions, says of the plain scalar.
    static func resolvesToString(_ string: String) -> Bool {
        Resolver.default.resolveTag(of: Node(string, tag(.implicit))) == .str
    }
}

/// What has been encoded at one place in the document; a reference, so that nested containers fill in
/// their parent's node.
private final class NodeBuilder {
    enum Kind { case unset, scalar, mapping, sequence }
    private(set) var kind = Kind.unset
    private var scalar: Node.Scalar?
    private var children: [String: NodeBuilder] = [:]
    private var items: [NodeBuilder] = []

    func set(_ scalar: Node.Scalar) {
        kind = .scalar
        self.scalar = scalar
    }

    func becomeMapping() { kind = .mapping }
    func becomeSequence() { kind = .sequence }

    func child(forKey key: String) -> NodeBuilder {
        let child = NodeBuilder()
        kind = .mapping
        children[key] = child
        return child
    }

    func appendChild() -> NodeBuilder {
        let child = NodeBuilder()
        kind = .sequence
        items.append(child)
        return child
    }

    var count: Int { items.count }

    func node() -> Node {
        switch kind {
        case .scalar:
            return .scalar(scalar ?? ManifestYAMLEncoder.null)
        case .sequence:
            return .sequence(Node.Sequence(items.map { $0.node() }, ManifestYAMLEncoder.tag(.implicit), .any))
        case .mapping, .unset:
            let pairs = children.sorted { $0.key < $1.key }.map { (Node.scalar(ManifestYAMLEncoder.scalar($0.key)), $0.value.node()) }
            return .mapping(Node.Mapping(pairs, ManifestYAMLEncoder.tag(.implicit), .any))
        }
    }
}

private struct NodeEncoder: Encoder {
    let builder: NodeBuilder
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        builder.becomeMapping()
        return KeyedEncodingContainer(KeyedContainer(builder: builder, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        builder.becomeSequence()
        return UnkeyedContainer(builder: builder, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueContainer(builder: builder, codingPath: codingPath)
    }

    /// Every encode funnels here: strings get their quoting decided, integers and bools (the manifests'
    /// other scalars) are written as Yams' `box()` writes them, with the shared constructor; the other
    /// values Yams knows (floats, dates) are boxed as `YAMLEncoder` boxes them, anything else encodes
    /// itself into this place.
    static func encode(_ value: some Encodable, into builder: NodeBuilder, codingPath: [any CodingKey]) throws {
        if let string = value as? String {
            builder.set(ManifestYAMLEncoder.scalar(string))
        } else if let integer = value as? Int {
            builder.set(Node.Scalar(String(integer), ManifestYAMLEncoder.tag(.int)))
        } else if let bool = value as? Bool {
            builder.set(Node.Scalar(bool ? "true" : "false", ManifestYAMLEncoder.tag(.bool)))
        } else if let known = value as? any YAMLEncodable, case .scalar(let scalar) = known.box() {
            builder.set(scalar)
        } else {
            try value.encode(to: NodeEncoder(builder: builder, codingPath: codingPath))
        }
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let builder: NodeBuilder
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws {
        builder.child(forKey: key.stringValue).set(ManifestYAMLEncoder.null)
    }

    mutating func encode(_ value: some Encodable, forKey key: Key) throws {
        try NodeEncoder.encode(value, into: builder.child(forKey: key.stringValue), codingPath: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        NodeEncoder(builder: builder.child(forKey: key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        NodeEncoder(builder: builder.child(forKey: key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        NodeEncoder(builder: builder.child(forKey: "super"), codingPath: codingPath)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        NodeEncoder(builder: builder.child(forKey: key.stringValue), codingPath: codingPath + [key])
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let builder: NodeBuilder
    let codingPath: [any CodingKey]
    var count: Int { builder.count }

    mutating func encodeNil() throws { builder.appendChild().set(ManifestYAMLEncoder.null) }

    mutating func encode(_ value: some Encodable) throws {
        try NodeEncoder.encode(value, into: builder.appendChild(), codingPath: codingPath)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        NodeEncoder(builder: builder.appendChild(), codingPath: codingPath).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        NodeEncoder(builder: builder.appendChild(), codingPath: codingPath).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { NodeEncoder(builder: builder.appendChild(), codingPath: codingPath) }
}

private struct SingleValueContainer: SingleValueEncodingContainer {
    let builder: NodeBuilder
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { builder.set(ManifestYAMLEncoder.null) }

    mutating func encode(_ value: some Encodable) throws {
        try NodeEncoder.encode(value, into: builder, codingPath: codingPath)
    }
}
