import CodeRuntime
import Foundation
import Logging
import MCP
import Metrics
import NIOConcurrencyHelpers
import ServiceLifecycle

/// A handler's way back to its session without keeping it alive: the session owns the server, whose
/// handlers would otherwise own the session.
struct WeakSession: Sendable {
    private let box: NIOLockedValueBox<Reference>

    private struct Reference: Sendable {
        weak var session: MCPSession?
    }

    init(_ session: MCPSession) {
        box = NIOLockedValueBox(Reference(session: session))
    }

    var session: MCPSession? { box.withLockedValue { $0.session } }
}

/// One MCP session: its own `Server` and Streamable HTTP transport, and the client whose token opened it.
final class MCPSession: Sendable {
    let id: String
    let client: MCPClientIdentity
    let server: Server
    let transport: SessionTransport
    /// `logging/setLevel`: log notifications below this level are not sent.
    let logLevel = NIOLockedValueBox(LogLevel.info)

    init(id: String, client: MCPClientIdentity, server: Server, transport: SessionTransport) {
        self.id = id
        self.client = client
        self.server = server
        self.transport = transport
    }
}
