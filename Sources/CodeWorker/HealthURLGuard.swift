import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address, as the resolver returns it.
struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    let bytes: [UInt8]

    init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// A numeric address in the strict forms of `inet_pton` (no `127.1`, no hex); brackets around IPv6 are accepted.
    init?(_ text: String) {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        var v4 = in_addr()
        if inet_pton(AF_INET, String(text), &v4) == 1 {
            self.bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, String(text), &v6) == 1 {
            self.bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }

    var isIPv4: Bool { bytes.count == 4 }

    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it stands for: the kernel
    /// connects to that IPv4 address, so it is judged as one.
    var unmapped: IPAddress {
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            return IPAddress(bytes: Array(bytes[12..<16]))!
        }
        return self
    }

    var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var copy = bytes
        let family = isIPv4 ? AF_INET : AF_INET6
        guard inet_ntop(family, &copy, &buffer, socklen_t(buffer.count)) != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An address block in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address is a block of one.
struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    let base: IPAddress
    let prefixLength: Int

    init(_ base: IPAddress, _ prefixLength: Int) {
        self.base = base
        self.prefixLength = prefixLength
    }

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let maximum = address.bytes.count * 8
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...maximum).contains(length), parts[1].allSatisfy(\.isASCII) else { return nil }
            self.init(address, length)
        } else {
            self.init(address, maximum)
        }
    }

    /// Shorthand for the tables below; the literals are known to parse.
    fileprivate static func block(_ text: String) -> IPNetwork { IPNetwork(text)! }

    func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == base.bytes.count else { return false }
        var remaining = prefixLength
        for (candidate, reference) in zip(address.bytes, base.bytes) where remaining > 0 {
            let bits = min(remaining, 8)
            let mask: UInt8 = bits == 8 ? 0xff : ~(0xff >> UInt8(bits))
            if candidate & mask != reference & mask { return false }
            remaining -= bits
        }
        return true
    }

    var description: String { "\(base)/\(prefixLength)" }
}

/// What `CODE_HEALTH_URL_ALLOW` permits beyond public addresses: address blocks (CIDR or single
/// addresses) and host names (exact, case-insensitive; such a name may resolve to any address, and may
/// be a single label like a compose service name).
public struct HealthURLAllowlist: Sendable, Equatable {
    var networks: [IPNetwork]
    var hostNames: Set<String>

    /// Public addresses only: no exception.
    public static let none = HealthURLAllowlist(networks: [], hostNames: [])

    init(networks: [IPNetwork], hostNames: Set<String>) {
        self.networks = networks
        self.hostNames = hostNames
    }

    /// Comma-separated entries, e.g. `10.20.0.0/16, fd00:1::/64, 127.0.0.1, receiver, status.internal.example`.
    public init(parsing entries: [String]) throws(InvalidEntry) {
        var networks: [IPNetwork] = []
        var hostNames: Set<String> = []
        for entry in entries {
            if let network = IPNetwork(entry) {
                networks.append(network)
            } else if let name = HealthURLGuard.normalizedHostName(entry), !entry.contains("/") {
                hostNames.insert(name)
            } else {
                throw InvalidEntry(entry: entry)
            }
        }
        self.init(networks: networks, hostNames: hostNames)
    }

    public struct InvalidEntry: Error, Sendable, CustomStringConvertible {
        public let entry: String
        public var description: String { "'\(entry)' is neither an address, a CIDR block nor a host name" }
    }

    func permits(_ address: IPAddress) -> Bool {
        let address = address.unmapped
        return networks.contains { $0.contains(address) }
    }

    func permits(hostName: String) -> Bool {
        HealthURLGuard.normalizedHostName(hostName).map(hostNames.contains) ?? false
    }
}

/// Decides, before every poll of a deployment's `health_url`, where the worker may connect: the URL's
/// host is resolved here, every address it resolves to must be public (or allowlisted), and the
/// request then goes to the vetted address only (`dnsOverride`), so a second DNS answer cannot send it
/// elsewhere. Each poll resolves again, so a name that turns private later (DNS rebinding) is caught.
struct HealthURLGuard: Sendable {
    let allowlist: HealthURLAllowlist
    /// Longest wait for the resolver; a name that does not resolve in time counts as not resolved.
    var resolveTimeout: Duration = .seconds(5)

    enum Verdict: Sendable, Equatable {
        /// Connect to `host`; through `pinnedAddress` when the host is a name (nil for an address literal).
        case connect(host: String, pinnedAddress: String?)
        /// Never connect: the deployment fails with `reason`, which names no address.
        case rejected(reason: String)
        /// The name does not resolve (now): a failed poll, tried again at the next one.
        case unresolved
    }

    static let addressNotAllowed = "health_url rejected: address not allowed"
    static let internalNameNotAllowed = "health_url rejected: internal host name not allowed"
    static let schemeNotAllowed = "health_url rejected: only http and https are allowed"

    func vet(_ url: URL) async -> Verdict {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            return .rejected(reason: Self.schemeNotAllowed)
        }
        guard let rawHost = url.host, !rawHost.isEmpty else { return .rejected(reason: Self.addressNotAllowed) }
        // The key async-http-client looks `dnsOverride` up with: the URL's host without IPv6 brackets.
        let host = rawHost.hasPrefix("[") && rawHost.hasSuffix("]") ? String(rawHost.dropFirst().dropLast()) : rawHost
        if let literal = IPAddress(host) {
            return Self.isPublic(literal) || allowlist.permits(literal)
                ? .connect(host: host, pinnedAddress: nil) : .rejected(reason: Self.addressNotAllowed)
        }
        let namedByOperator = allowlist.permits(hostName: host)
        guard let name = Self.normalizedHostName(host) else { return .rejected(reason: Self.addressNotAllowed) }
        // A single label (`code-api`, `localhost`, `db`) is a name of the local network or a search
        // domain: internal by nature, whatever it resolves to.
        if !namedByOperator, !name.contains(".") { return .rejected(reason: Self.internalNameNotAllowed) }
        guard let addresses = await Self.resolve(host, timeout: resolveTimeout), let first = addresses.first else {
            return .unresolved
        }
        // Any disallowed answer rejects the name, not only the one that would be used: which one a
        // resolver puts first is the name owner's choice.
        if !namedByOperator, addresses.contains(where: { !Self.isPublic($0) && !allowlist.permits($0) }) {
            return .rejected(reason: Self.addressNotAllowed)
        }
        // One address only (no happy eyeballs across the vetted set): IPv4 first, which every network
        // the worker runs in (compose, Kubernetes) routes.
        return .connect(host: host, pinnedAddress: (addresses.first(where: \.isIPv4) ?? first).description)
    }

    /// A host name in lower case without a trailing dot, or nil if it is not one (letters, digits, '-'
    /// and '_' in dot-separated labels of 1-63 characters).
    static func normalizedHostName(_ text: String) -> String? {
        var name = text.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...253).contains(name.utf8.count),
            labels.allSatisfy({ label in
                (1...63).contains(label.utf8.count) && label.utf8.allSatisfy { $0.isASCIIHostCharacter }
            })
        else { return nil }
        return name
    }

    // MARK: Address classes

    /// Blocks a request from the worker must never reach on its own: this host, private and shared
    /// networks, link-local (cloud metadata at 169.254.169.254), multicast, reserved and documentation
    /// ranges. IPv4-mapped IPv6 is judged as its IPv4 address; NAT64 and 6to4 addresses by the IPv4
    /// address they embed.
    static let blockedIPv4: [IPNetwork] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",
        "240.0.0.0/4",
    ].map(IPNetwork.block)

    static let blockedIPv6: [IPNetwork] = [
        "::/96",  // unspecified, loopback, IPv4-compatible
        "100::/64",  // discard
        "2001::/32",  // Teredo (embeds an obfuscated IPv4 address)
        "2001:db8::/32",  // documentation
        "fc00::/7",  // unique local
        "fe80::/10",  // link-local
        "fec0::/10",  // site-local (deprecated)
        "ff00::/8",  // multicast
    ].map(IPNetwork.block)

    static func isPublic(_ address: IPAddress) -> Bool {
        let address = address.unmapped
        if address.isIPv4 { return !blockedIPv4.contains { $0.contains(address) } }
        // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address inside.
        if IPNetwork.block("64:ff9b::/96").contains(address) {
            return isPublic(IPAddress(bytes: Array(address.bytes[12..<16]))!)
        }
        if IPNetwork.block("2002::/16").contains(address) {
            return isPublic(IPAddress(bytes: Array(address.bytes[2..<6]))!)
        }
        return !blockedIPv6.contains { $0.contains(address) }
    }

    // MARK: Resolution

    /// Every address `host` resolves to (getaddrinfo, both families), or nil if it does not resolve
    /// within `timeout`. getaddrinfo blocks, so it runs on a Dispatch worker thread, never on the
    /// cooperative pool or an event loop; a lookup that outlives the timeout is abandoned.
    static func resolve(_ host: String, timeout: Duration) async -> [IPAddress]? {
        let continuation = ResolveContinuation()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (waiting: CheckedContinuation<[IPAddress]?, Never>) in
                continuation.set(waiting)
                DispatchQueue.global().async { continuation.resume(with: lookUp(host)) }
                let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
                DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { continuation.resume(with: nil) }
            }
        } onCancel: {
            continuation.resume(with: nil)
        }
    }

    private static func lookUp(_ host: String) -> [IPAddress]? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(first) }
        var addresses: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let socketAddress = entry.pointee.ai_addr {
                switch Int32(entry.pointee.ai_family) {
                case AF_INET:
                    socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        var raw = $0.pointee.sin_addr
                        addresses.append(IPAddress(bytes: withUnsafeBytes(of: &raw) { Array($0) })!)
                    }
                case AF_INET6:
                    socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                        var raw = $0.pointee.sin6_addr
                        addresses.append(IPAddress(bytes: withUnsafeBytes(of: &raw) { Array($0) })!)
                    }
                default:
                    break
                }
            }
            cursor = entry.pointee.ai_next
        }
        var seen = Set<IPAddress>()
        return addresses.filter { seen.insert($0).inserted }
    }
}

/// A continuation resumed once: by the lookup, the timeout or cancellation, whichever comes first.
private final class ResolveContinuation: @unchecked Sendable {
    // Guarded by `lock`.
    private var waiting: CheckedContinuation<[IPAddress]?, Never>?
    private var early: [IPAddress]??
    private let lock = NSLock()

    func set(_ continuation: CheckedContinuation<[IPAddress]?, Never>) {
        lock.lock()
        if let early {
            lock.unlock()
            continuation.resume(returning: early)
            return
        }
        waiting = continuation
        lock.unlock()
    }

    func resume(with value: [IPAddress]?) {
        lock.lock()
        guard let continuation = waiting else {
            // Cancelled before `set`: remember, so that `set` resumes at once.
            if early == nil { early = .some(value) }
            lock.unlock()
            return
        }
        waiting = nil
        lock.unlock()
        continuation.resume(returning: value)
    }
}

extension UInt8 {
    fileprivate var isASCIIHostCharacter: Bool {
        (0x30...0x39).contains(self) || (0x61...0x7a).contains(self) || self == 0x2d || self == 0x5f
    }
}
