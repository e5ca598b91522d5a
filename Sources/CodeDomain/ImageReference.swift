/// An OCI image reference, `[registry/]repository[:tag][@digest]`, parsed by the grammar of the
/// distribution project's `reference` package (the one Docker and containerd use).
///
/// `nginx` becomes registry `docker.io`, repository `library/nginx`, no tag and no digest: the policy
/// needs to see what a runtime would actually pull, not what was typed.
public struct ImageReference: Sendable, Hashable, Codable, CustomStringConvertible {
    public let registry: String
    public let repository: String
    public let tag: String?
    public let digest: String?

    public static let defaultRegistry = "docker.io"
    /// The reference grammar caps the name (registry and repository) at 255 characters.
    public static let maximumNameLength = 255

    public init(registry: String, repository: String, tag: String?, digest: String?) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// Canonical form: `registry/repository[:tag][@digest]`.
    public var description: String {
        "\(registry)/\(repository)" + (tag.map { ":\($0)" } ?? "") + (digest.map { "@\($0)" } ?? "")
    }

    public var isDigestPinned: Bool { digest != nil }

    enum CodingKeys: String, CodingKey {
        case registry, repository, tag, digest
    }

    public func encode(to encoder: any Encoder) throws {
        // Explicit nulls, so the API's JSON always has the four keys the OpenAPI document promises.
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(registry, forKey: .registry)
        try container.encode(repository, forKey: .repository)
        try container.encode(tag, forKey: .tag)
        try container.encode(digest, forKey: .digest)
    }

    public enum ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        case empty
        case tooLong
        case invalidRegistry(String)
        case invalidRepository(String)
        case invalidTag(String)
        case invalidDigest(String)

        public var description: String {
            switch self {
            case .empty: "is empty"
            case .tooLong: "is longer than \(ImageReference.maximumNameLength) characters"
            case .invalidRegistry(let value): "has an invalid registry '\(value)'"
            case .invalidRepository(let value): "has an invalid repository '\(value)' (lowercase letters, digits and separators)"
            case .invalidTag(let value): "has an invalid tag '\(value)'"
            case .invalidDigest(let value): "has an invalid digest '\(value)' (expected algorithm:hex, e.g. sha256:<64 hex>)"
            }
        }
    }

    public init(parsing text: String) throws(ParseError) {
        guard !text.isEmpty else { throw .empty }
        var remainder = Substring(text)

        var digest: String?
        if let at = remainder.firstIndex(of: "@") {
            let candidate = String(remainder[remainder.index(after: at)...])
            guard Self.isDigest(candidate) else { throw .invalidDigest(candidate) }
            digest = candidate
            remainder = remainder[..<at]
        }

        // A tag follows the last ':' that comes after the last '/' (a ':' before it belongs to a registry port).
        var tag: String?
        let lastSlash = remainder.lastIndex(of: "/")
        if let colon = remainder.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let candidate = String(remainder[remainder.index(after: colon)...])
            guard Self.isTag(candidate) else { throw .invalidTag(candidate) }
            tag = candidate
            remainder = remainder[..<colon]
        }

        guard remainder.count <= Self.maximumNameLength else { throw .tooLong }
        guard !remainder.isEmpty else { throw .invalidRepository("") }

        var components = remainder.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var registry = Self.defaultRegistry
        if components.count > 1, let first = components.first, Self.looksLikeRegistry(first) {
            guard Self.isRegistry(first) else { throw .invalidRegistry(first) }
            registry = first
            components.removeFirst()
        }
        guard components.allSatisfy(Self.isPathComponent) else {
            throw .invalidRepository(components.joined(separator: "/"))
        }
        // Docker Hub's official images live under `library/`.
        if registry == Self.defaultRegistry, components.count == 1 {
            components.insert("library", at: 0)
        }
        self.init(registry: registry, repository: components.joined(separator: "/"), tag: tag, digest: digest)
    }

    // MARK: Grammar

    /// The first component is a registry when it has a '.', a ':' or is `localhost` (as Docker decides).
    private static func looksLikeRegistry(_ component: String) -> Bool {
        component.contains(".") || component.contains(":") || component == "localhost"
    }

    /// `host[:port]`: host labels of letters, digits and inner hyphens, separated by dots; port digits.
    private static func isRegistry(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let host = parts.first, !host.isEmpty else { return false }
        if parts.count == 2 {
            guard let port = Int(parts[1]), (1...65535).contains(port) else { return false }
        }
        return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard let first = label.first, let last = label.last, label.count <= 63 else { return false }
            return first.isASCIIAlphanumeric && last.isASCIIAlphanumeric
                && label.allSatisfy { $0.isASCIIAlphanumeric || $0 == "-" }
        }
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    private static func isPathComponent(_ component: String) -> Bool {
        let characters = Array(component)
        guard let first = characters.first, let last = characters.last,
            first.isLowercaseAlphanumeric, last.isLowercaseAlphanumeric
        else { return false }
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character.isLowercaseAlphanumeric {
                index += 1
                continue
            }
            // A separator run: '.', '_' or '__', or one or more '-'.
            var end = index
            while end < characters.count, !characters[end].isLowercaseAlphanumeric { end += 1 }
            let separator = String(characters[index..<end])
            guard separator == "." || separator == "_" || separator == "__" || separator.allSatisfy({ $0 == "-" }) else {
                return false
            }
            index = end
        }
        return true
    }

    /// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
    private static func isTag(_ tag: String) -> Bool {
        guard let first = tag.first, tag.count <= 128, first.isASCIIAlphanumeric || first == "_" else { return false }
        return tag.allSatisfy { $0.isASCIIAlphanumeric || $0 == "_" || $0 == "." || $0 == "-" }
    }

    /// `algorithm:hex`; sha256 and sha512 must have their exact lengths.
    private static func isDigest(_ digest: String) -> Bool {
        let parts = digest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        let algorithm = parts[0]
        let hex = parts[1]
        guard !algorithm.isEmpty,
            algorithm.allSatisfy({ $0.isLowercaseAlphanumeric || "+._-".contains($0) }),
            hex.count >= 32,
            hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase })
        else { return false }
        switch algorithm {
        case "sha256": return hex.count == 64
        case "sha512": return hex.count == 128
        default: return true
        }
    }
}

extension Character {
    // By the ASCII value, not `isLetter` / `isNumber`: those look up Unicode properties for every
    // character, and validating a create's names and image spent 1 % of its CPU there.
    var isASCIIAlphanumeric: Bool {
        guard let byte = asciiValue else { return false }
        // `| 0x20` maps A-Z onto a-z and nothing else onto a-z.
        return Self.asciiDigits.contains(byte) || Self.asciiLowercase.contains(byte | 0x20)
    }

    var isLowercaseAlphanumeric: Bool {
        guard let byte = asciiValue else { return false }
        return Self.asciiDigits.contains(byte) || Self.asciiLowercase.contains(byte)
    }

    private static let asciiDigits = UInt8(ascii: "0")...UInt8(ascii: "9")
    private static let asciiLowercase = UInt8(ascii: "a")...UInt8(ascii: "z")
}
