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

/// One MCP session: its own `Server` and Streamable HTTP transport.
final class MCPSession: Sendable {
    let id: String
    let server: Server
    let transport: StatefulHTTPServerTransport
    /// `logging/setLevel`: log notifications below this level are not sent.
    let logLevel = NIOLockedValueBox(LogLevel.info)

    init(id: String, server: Server, transport: StatefulHTTPServerTransport) {
        self.id = id
        self.server = server
        self.transport = transport
    }
}

struct FixedSessionID: SessionIDGenerator {
    let id: String
    func generateSessionID() -> String { id }
}
