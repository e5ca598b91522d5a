import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A plain TCP connection to 127.0.0.1, for what an HTTP client library will not do: send half a request,
/// stay silent, and watch whether the server closes the connection.
public final class RawConnection: @unchecked Sendable {
    private let descriptor: Int32

    public init(port: Int) throws {
        // The socket is stored only once it is connected: a class whose stored properties are all set runs
        // `deinit` even when its `init` throws, and that second `close` would close whatever descriptor the
        // process (NIO, say) opened with the same number in between.
        let connecting = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard connecting >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(connecting, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(connecting)
            throw POSIXError(.ECONNREFUSED)
        }
        descriptor = connecting
    }

    deinit { close(descriptor) }

    public func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// What arrives within `timeout`: bytes until the server closes the connection, the text contains
    /// `marker`, or the time is up. `closed` says whether the server closed it.
    ///
    /// The wait blocks a thread of its own, never one of Swift concurrency's: those are as many as the
    /// cores, and a few connections waiting seconds for a server's timeout starved every other test of the
    /// run (timers that fired on time resumed their tasks a second or more late).
    public func receive(within timeout: Duration, until marker: String? = nil) async -> (text: String, closed: Bool) {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: self.blockingReceive(within: timeout, until: marker)) }.start()
        }
    }

    private func blockingReceive(within timeout: Duration, until marker: String?) -> (text: String, closed: Bool) {
        let deadline = ContinuousClock.now + timeout
        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let left = deadline - ContinuousClock.now
            let milliseconds = Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            guard poll(&poller, 1, milliseconds) > 0 else { continue }
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count <= 0 { return (String(decoding: received, as: UTF8.self), true) }
            received += buffer[0..<count]
            if let marker, String(decoding: received, as: UTF8.self).contains(marker) { break }
        }
        return (String(decoding: received, as: UTF8.self), false)
    }
}
