import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// A loopback port that was free a moment ago, for a server a test starts. Chosen from 10000-19999, below
/// the kernel's ephemeral range (`ip_local_port_range`), where outgoing connections and binds to port 0
/// take theirs: a port read back from a bind to port 0 could be taken by any test's next outgoing
/// connection before the server binds it ("Address already in use"). (The project's fixed ports, such as
/// the test PostgreSQL server's 25432, are above that band.) Never the same port twice in one test
/// process. Where the ephemeral range leaves too little room below it, a bind to port 0 decides.
public func freePort() -> Int {
    let band = 10_000..<max(10_000, min(20_000, ephemeralPortRangeStart()))
    guard band.count >= 1_000 else { return portFromTheKernel() }
    for _ in 0..<1_000 {
        let port = Int.random(in: band)
        guard handedOutPorts.withLockedValue({ $0.insert(port).inserted }) else { continue }
        if canBind(port: port) { return port }
    }
    return portFromTheKernel()
}

private let handedOutPorts = NIOLockedValueBox(Set<Int>())

/// The first port of the kernel's ephemeral range (Linux's default 32768 where it cannot be read).
private func ephemeralPortRangeStart() -> Int {
    let range = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
    return range?.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32_768
}

/// Whether a socket can bind this loopback port now (nothing listens on it or holds it).
private func canBind(port: Int) -> Bool { bindLoopback(port: port) != nil }

/// A port the kernel picks (a bind to port 0, read back).
private func portFromTheKernel() -> Int {
    guard let port = bindLoopback(port: 0) else { preconditionFailure("bind() to a loopback port failed") }
    return port
}

/// Binds a TCP socket to 127.0.0.1 at `port` (0: any), closes it, and returns the port it had; nil if the
/// bind failed.
private func bindLoopback(port: Int) -> Int? {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    precondition(descriptor >= 0, "socket() failed")
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
    }
    guard bound == 0 else { return nil }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Where `swift build` put the executables: next to the test bundle, unless `CODE_BIN_DIR` says otherwise.
public func executableURL(_ name: String) -> URL {
    if let directory = ProcessInfo.processInfo.environment["CODE_BIN_DIR"] {
        return URL(fileURLWithPath: directory).appendingPathComponent(name)
    }
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    // On Linux the runner is `<products>/code-servicesPackageTests.xctest`; elsewhere it may sit inside a bundle.
    while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent(name).path),
        directory.pathComponents.count > 2
    {
        directory.deleteLastPathComponent()
    }
    return directory.appendingPathComponent(name)
}

/// A service executable running as a child process, with its output captured.
public final class ServiceProcess: @unchecked Sendable {
    public let name: String
    public let process = Process()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let capturedOutput = NIOLockedValueBox(Data())
    private let capturedError = NIOLockedValueBox(Data())
    public let launchedAt: ContinuousClock.Instant

    /// Starts `name` with `environment` added to a minimal environment (PATH only), so the host's own
    /// variables cannot change what the test sees.
    public init(_ name: String, arguments: [String] = [], environment: [String: String]) throws {
        self.name = name
        process.executableURL = executableURL(name)
        process.arguments = arguments
        process.environment = ["PATH": "/usr/bin:/bin", "LOG_FORMAT": "json"].merging(environment) { _, new in new }
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        Self.capture(stdoutPipe, into: capturedOutput)
        Self.capture(stderrPipe, into: capturedError)
        launchedAt = .now
        try process.run()
    }

    private static func capture(
        _ pipe: Pipe,
        into captured: NIOLockedValueBox<Data>
    ) {
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            // Empty data is the end of the stream: without clearing the handler it would be called again
            // and again for as long as the handle lives.
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            captured.withLockedValue { $0.append(data) }
        }
    }

    public var standardOutput: String { String(decoding: capturedOutput.withLockedValue { $0 }, as: UTF8.self) }
    public var standardError: String { String(decoding: capturedError.withLockedValue { $0 }, as: UTF8.self) }

    public var isRunning: Bool { process.isRunning }

    public func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits up to `timeout` for the process to exit; returns its status, or nil if it is still running.
    public func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        // Let the readability handlers drain the pipes.
        try? await Task.sleep(for: .milliseconds(50))
        return process.terminationStatus
    }

    /// Kills the process if it is still running. Call in `defer`.
    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit {
        stop()
    }

    /// Runs a command to completion (bounded by `timeout`) and returns its status and output.
    public static func run(
        _ name: String,
        arguments: [String] = [],
        environment: [String: String] = [:],
        timeout: Duration = .seconds(30)
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        let child = try ServiceProcess(name, arguments: arguments, environment: environment)
        defer { child.stop() }
        guard let status = await child.waitForExit(timeout: timeout) else {
            throw ProcessTimeout(command: ([name] + arguments).joined(separator: " "), timeout: timeout)
        }
        return (status, child.standardOutput, child.standardError)
    }
}

public struct ProcessTimeout: Error, CustomStringConvertible {
    public let command: String
    public let timeout: Duration
    public init(command: String, timeout: Duration) {
        self.command = command
        self.timeout = timeout
    }
    public var description: String { "\(command) did not finish within \(timeout)" }
}

/// Whether a new TCP connection to 127.0.0.1:`port` is accepted now (a fresh socket, never a pooled
/// HTTP connection).
public func acceptsConnections(port: Int) -> Bool {
    (try? RawConnection(port: port)) != nil
}
