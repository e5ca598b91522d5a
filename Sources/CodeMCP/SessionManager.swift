import CodeRuntime
import Foundation
import Logging
import MCP
import Metrics
import NIOConcurrencyHelpers
import ServiceLifecycle
import Tracing

/// Creates, routes to, expires and caps MCP sessions. One `Server` per session, as the SDK intends;
/// sessions end on DELETE, after `MCP_SESSION_IDLE_TIMEOUT` without requests, `MCP_SESSION_MAX_LIFETIME`
/// after they opened, and on shutdown. A session answers only the token that opened it: for any other
/// token its id does not exist (404).
actor SessionManager: Service {
    private struct Entry {
        let session: MCPSession
        let opened: ContinuousClock.Instant
        var lastActivity: ContinuousClock.Instant
    }

    private var sessions: [String: Entry] = [:]
    /// Sessions being opened: `open` awaits, and the actor serves other requests meanwhile, so the cap
    /// counts these too.
    private var opening = 0
    private let settings: MCPSettings
    private let handlers: MCPHandlers
    private let logger: Logger
    private let metrics: MCPMetrics

    init(settings: MCPSettings, handlers: MCPHandlers, logger: Logger, metrics: MCPMetrics) {
        self.settings = settings
        self.handlers = handlers
        self.logger = logger
        self.metrics = metrics
        metrics.sessionsLimit.record(settings.maxSessions)
    }

    func handle(_ request: MCP.HTTPRequest, client: MCPClientIdentity) async -> MCP.HTTPResponse {
        let sessionID = request.header(HTTPHeaderName.sessionID)
        if let sessionID, let entry = sessions[sessionID], entry.session.client.isSameClient(as: client) {
            sessions[sessionID]?.lastActivity = .now
            let response = await entry.session.transport.handleRequest(request)
            if request.method.uppercased() == "DELETE", response.statusCode == 200 {
                await close(sessionID, reason: "deleted by the client")
            }
            return response
        }
        if let sessionID {
            return .error(statusCode: 404, .invalidRequest("Not Found: session \(sessionID) does not exist or expired"))
        }
        // Only a valid `initialize` opens a session: anything else is refused before one exists.
        let missingSession = MCP.HTTPResponse.error(
            statusCode: 400, .invalidRequest("Bad Request: missing \(HTTPHeaderName.sessionID) header"))
        guard request.method.uppercased() == "POST" else { return missingSession }
        let envelope = JSONRPCEnvelope(request.body ?? Data())
        if let refusal = envelope.refusal(sessionID: nil) { return refusal }
        guard envelope.isInitializeRequest else { return missingSession }
        guard sessions.count + opening < settings.maxSessions else {
            logger.warning("session limit reached", metadata: ["limit": .stringConvertible(settings.maxSessions)])
            metrics.sessionsRejected.increment()
            return .error(
                statusCode: 503, .internalError("Service Unavailable: the server holds its maximum of \(settings.maxSessions) sessions"),
                extraHeaders: ["Retry-After": "5"])
        }
        return await open(request, client: client)
    }

    private func open(_ request: MCP.HTTPRequest, client: MCPClientIdentity) async -> MCP.HTTPResponse {
        opening += 1
        let id = UUID().uuidString.lowercased()
        let transport = SessionTransport(
            sessionID: id,
            // Host and Origin are checked before a request reaches a session (see MCPEndpoint).
            validationPipeline: StandardValidationPipeline(validators: [
                AcceptHeaderValidator(mode: .sseRequired), ContentTypeValidator(), ProtocolVersionValidator(), SessionValidator(),
            ]),
            replayByteBudget: settings.sessionReplayBytes,
            logger: logger
        )
        let server = Server(
            name: "code-mcp",
            version: BuildInfo.version,
            title: "CODE services",
            instructions:
                "Operate CODE services deployments: list, inspect, create (with dry_run and wait), cancel, read manifests and health.",
            capabilities: .init(
                logging: .init(), prompts: .init(listChanged: false), resources: .init(subscribe: false, listChanged: false),
                tools: .init(listChanged: false))
        )
        let session = MCPSession(id: id, client: client, server: server, transport: transport)
        await register(on: session)
        do {
            // The session's message loop outlives this (initialize) request: it must not inherit the request's
            // span, or every later message would be logged and traced under it. Handlers take the context of
            // the request that carried their message (`traced`).
            try await ServiceContext.$current.withValue(nil) { try await server.start(transport: transport) }
        } catch {
            opening -= 1
            logger.error("could not start an MCP session", metadata: ["error": .string("\(error)")])
            return .error(statusCode: 500, .internalError("could not start a session"))
        }
        opening -= 1
        sessions[id] = Entry(session: session, opened: .now, lastActivity: .now)
        metrics.sessionsOpen.increment()
        let response = await transport.handleRequest(request)
        if case .error = response {
            await close(id, reason: "initialization failed")
        } else {
            logger.info(
                "MCP session opened",
                metadata: ["session_id": .string(id), "client": .string(client.label), "sessions": .stringConvertible(sessions.count)])
        }
        return response
    }

    private func close(_ id: String, reason: String) async {
        guard let entry = sessions.removeValue(forKey: id) else { return }
        await entry.session.server.stop()
        metrics.sessionsOpen.decrement()
        logger.info(
            "MCP session closed",
            metadata: ["session_id": .string(id), "client": .string(entry.session.client.label), "reason": .string(reason)])
    }

    /// Closes sessions idle for longer than `MCP_SESSION_IDLE_TIMEOUT`, and those open for longer than
    /// `MCP_SESSION_MAX_LIFETIME` however busy: whatever a session accumulates lasts no longer than that.
    func expireSessions() async {
        for id in Array(sessions.keys) {
            // `close` awaits, and a request may have reached a session meanwhile: look at each afresh.
            guard let entry = sessions[id] else { continue }
            let now = ContinuousClock.now
            if now - entry.opened > settings.sessionMaxLifetime {
                await close(id, reason: "open for longer than \(settings.sessionMaxLifetime)")
            } else if now - entry.lastActivity > settings.sessionIdleTimeout {
                await close(id, reason: "idle for longer than \(settings.sessionIdleTimeout)")
            }
        }
    }

    func closeAll(reason: String) async {
        for id in Array(sessions.keys) {
            await close(id, reason: reason)
        }
    }

    nonisolated func run() async throws {
        let sweep = min(settings.sessionIdleTimeout / 4, settings.sessionMaxLifetime / 4, .seconds(30))
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: sweep)
                await self.expireSessions()
            }
        }
        await closeAll(reason: "server shutting down")
    }

    // MARK: Handlers

    private func register(on session: MCPSession) async {
        let handlers = self.handlers
        let metrics = self.metrics
        let server = session.server
        let weak = WeakSession(session)
        let client = session.client
        await server.withMethodHandler(ListTools.self) { _ in ListTools.Result(tools: handlers.catalog.tools) }
        // tools/call is answered by the transport, not through the SDK's dispatch: see DirectRequests.
        await session.transport.answerDirectly(
            DirectRequests { params, http in
                let start = ContinuousClock.now
                let requestID = Self.requestID(http)
                let reporter = MCPHandlers.Reporter(
                    notify: { progress, message in
                        guard let token = params._meta?.progressToken, let session = weak.session else { return }
                        try? await session.server.notify(
                            ProgressNotification.message(.init(progressToken: token, progress: progress, total: nil, message: message)))
                    },
                    log: { level, message in
                        guard let session = weak.session, Self.allows(level, minimum: session.logLevel.withLockedValue { $0 }) else {
                            return
                        }
                        try? await session.server.log(level: level, logger: "code-mcp", data: .string(message))
                    }
                )
                do {
                    // Span names are bounded: a client's unknown tool name is not one.
                    let known = handlers.catalog.names.contains(params.name)
                    let result = try await Self.traced("tools/call \(known ? params.name : "unknown")", http: http) { span in
                        span?.attributes["mcp.method.name"] = "tools/call"
                        span?.attributes["gen_ai.tool.name"] = params.name
                        let result = try await MCPClientIdentity.$current.withValue(client) {
                            try await handlers.call(params.name, arguments: params.arguments, requestID: requestID, reporter: reporter)
                        }
                        if result.isError { span?.setStatus(.init(code: .error)) }
                        return result
                    }
                    metrics.recordToolCall(
                        params.name, known: handlers.catalog.names, outcome: result.isError ? "error" : "ok", since: start)
                    return result
                } catch {
                    metrics.recordToolCall(params.name, known: handlers.catalog.names, outcome: "invalid", since: start)
                    throw error
                }
            })
        await server.withMethodHandler(ListResources.self) { _ in ListResources.Result(resources: MCPHandlers.resources) }
        await server.withMethodHandler(ListResourceTemplates.self) { _ in
            ListResourceTemplates.Result(templates: MCPHandlers.resourceTemplates)
        }
        await server.withMethodHandler(ReadResource.self) { params in
            let http = Server.currentHandlerContext?.httpContext
            return try await Self.traced("resources/read", http: http) { _ in
                try await MCPClientIdentity.$current.withValue(client) {
                    try await handlers.read(params.uri, requestID: Self.requestID(http))
                }
            }
        }
        await server.withMethodHandler(ListPrompts.self) { _ in ListPrompts.Result(prompts: MCPHandlers.prompts) }
        await server.withMethodHandler(GetPrompt.self) { params in
            let http = Server.currentHandlerContext?.httpContext
            return try await Self.traced("prompts/get \(params.name)", http: http) { _ in
                try await MCPClientIdentity.$current.withValue(client) {
                    try await handlers.prompt(params.name, arguments: params.arguments, requestID: Self.requestID(http))
                }
            }
        }
        await server.withMethodHandler(SetLoggingLevel.self) { params in
            weak.session?.logLevel.withLockedValue { $0 = params.level }
            return Empty()
        }
    }

    /// The request id of the HTTP request a handler serves (`http`): the one the runtime's telemetry
    /// middleware accepted or generated, which `MCPEndpoint` puts in place of whatever the client sent.
    static func requestID(_ http: MCP.HTTPRequest?) -> String? {
        http?.header(MCPEndpoint.requestIDHeader).flatMap {
            RequestIdentifier.isAcceptable($0) ? $0 : nil
        }
    }

    /// A span for a handler, a child of the span of the HTTP request that carried the message (`MCPEndpoint`
    /// passes it on as `traceparent`); the API calls the handler makes are its children.
    static func traced<T>(_ name: String, http: MCP.HTTPRequest?, _ operation: ((any Span)?) async throws -> T) async throws -> T {
        let traceParent = http?.header(TraceParent.headerName)
        guard let traceParent else { return try await operation(nil) }
        return try await withSpan(name, continuing: traceParent, ofKind: .internal, operation)
    }

    /// Severity order of MCP log levels (RFC 5424).
    static func allows(_ level: LogLevel, minimum: LogLevel) -> Bool {
        let order: [LogLevel] = [.debug, .info, .notice, .warning, .error, .critical, .alert, .emergency]
        return (order.firstIndex(of: level) ?? 0) >= (order.firstIndex(of: minimum) ?? 0)
    }
}
