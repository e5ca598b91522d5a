import CodeDomain
import CodeMCP
import CodeRuntime
import CodeTestSupport
import Foundation
import Testing

/// code-mcp through its HTTP layer, against a live code-api and code-worker.
@Suite("MCP server", .serialized)
struct MCPServerTests {
    @Test func sessionsAuthenticationAndOriginRules() async throws {
        try await withLiveStack { stack in
            try await withMCP(
                stack.mcpSettings {
                    $0.allowedOrigins = ["http://localhost:6274"]
                    $0.allowedHosts = ["127.0.0.1", "mcp"]
                }
            ) { url, _ in
                // No token, or a wrong one: 401 with a Bearer challenge.
                for token in [nil, "wrong-token-0123456789"] as [String?] {
                    let reply = try await RawMCPClient(url: url, token: token).call(1, "tools/list")
                    #expect(reply.status == 401)
                    #expect(reply.headers["WWW-Authenticate"].first == "Bearer")
                }
                let anonymous = RawMCPClient(url: url, token: stack.token)
                // A present but disallowed Origin: 403. An allowed one, or none: accepted.
                _ = try await anonymous.initialized()  // no Origin: not a browser, allowed
                var hostile = anonymous
                hostile.extraHeaders = [("Origin", "http://evil.example")]
                #expect(try await hostile.call(1, "tools/list").status == 403)
                var inspector = anonymous
                inspector.extraHeaders = [("Origin", "http://localhost:6274")]
                _ = try await inspector.initialized()
                // A Host outside the allowlist: 421 (DNS rebinding protection); a configured one works.
                var rebinding = anonymous
                rebinding.extraHeaders = [("Host", "attacker.example:3000")]
                #expect(try await rebinding.call(1, "tools/list").status == 421)
                var inCluster = anonymous
                inCluster.extraHeaders = [("Host", "mcp:3000")]
                _ = try await inCluster.initialized()

                // A session: requests route to it; an unknown id is 404; DELETE ends it.
                let client = try await anonymous.initialized()
                #expect(client.sessionID != nil)
                let tools = try await client.call(2, "tools/list")
                #expect(tools.status == 200)
                var unknown = client
                unknown.sessionID = "no-such-session"
                #expect(try await unknown.call(3, "tools/list").status == 404)
                #expect(try await client.send(.DELETE).status == 200)
                #expect(try await client.call(4, "tools/list").status == 404)
                var missing = client
                missing.sessionID = nil
                #expect(try await missing.call(5, "tools/list").status == 400, "no session header and not initialize")
            }
        }
    }

    @Test func sessionsAreCappedAndExpireWhenIdle() async throws {
        try await withLiveStack { stack in
            try await withMCP(
                stack.mcpSettings {
                    $0.maxSessions = 2
                    $0.sessionIdleTimeout = .seconds(1)
                }
            ) { url, runtime in
                let before = String(decoding: runtime.metrics.exposition(), as: UTF8.self)
                #expect(before.contains("code_mcp_sessions_rejected_total 0"), "exported before the first refusal")
                let base = RawMCPClient(url: url, token: stack.token)
                let first = try await base.initialized()
                _ = try await base.initialized()
                let refused = try await base.post([
                    "jsonrpc": "2.0", "id": 0, "method": "initialize",
                    "params": [
                        "protocolVersion": "2025-11-25", "capabilities": [:] as [String: Any], "clientInfo": ["name": "x", "version": "1"],
                    ],
                ])
                #expect(refused.status == 503)
                let metrics = String(decoding: runtime.metrics.exposition(), as: UTF8.self)
                #expect(metrics.contains("code_mcp_sessions_open 2"))
                #expect(metrics.contains("code_mcp_sessions_limit 2"), "the limit is exported for the saturation alert")
                #expect(metrics.contains("code_mcp_sessions_rejected_total 1"))
                // Idle sessions expire; their ids are then unknown and there is room again.
                try await Task.sleep(for: .milliseconds(1800))
                #expect(try await first.call(1, "tools/list").status == 404)
                _ = try await base.initialized()
            }
        }
    }

    @Test func serviceHealthReportsAServiceThatIsNotRunning() async throws {
        try await withLiveStack { stack in
            // Nothing listens on this port: the probe's connection is refused.
            let stopped = URL(string: "http://127.0.0.1:\(freePort())")!
            try await withMCP(stack.mcpSettings { $0.workerURL = stopped }) { url, _ in
                let client = try await RawMCPClient(url: url, token: stack.token).initialized()
                let health = try #require(try await client.tool(1, "service_health")["structuredContent"] as? [String: any Sendable])
                let worker = try #require(health["worker"] as? [String: any Sendable])
                // Told by the refused connection (HealthProbeTests: without waiting for the probe's deadline).
                #expect(worker["status"] as? String == "unreachable")
                #expect((worker["error"] as? String)?.contains(stopped.absoluteString) == true)
                #expect((health["api"] as? [String: any Sendable])?["status"] as? String == "ready")
            }
        }
    }

    @Test func toolsHaveSchemasAndWorkAgainstTheAPI() async throws {
        try await withLiveStack { stack in
            try await withMCP(stack.mcpSettings()) { url, runtime in
                let client = try await RawMCPClient(url: url, token: stack.token).initialized()
                let listed = try #require(try await client.call(1, "tools/list").result(1)?["tools"] as? [[String: any Sendable]])
                #expect(
                    Set(listed.compactMap { $0["name"] as? String }) == [
                        "list_deployments", "get_deployment", "create_deployment", "cancel_deployment", "get_manifests", "service_health",
                    ])
                #expect(listed.allSatisfy { $0["inputSchema"] is [String: any Sendable] && $0["outputSchema"] is [String: any Sendable] })

                // dry_run: validation and policy without creating.
                let dryRun = try await client.tool(
                    2, "create_deployment", ["service": "web", "image": "ghcr.io/acme/web:1.0", "environment": "staging", "dry_run": true])
                #expect(dryRun["isError"] as? Bool == false)
                #expect((dryRun["structuredContent"] as? [String: any Sendable])?["valid"] as? Bool == true)
                let refused = try await client.tool(
                    3, "create_deployment", ["service": "web", "image": "nginx", "environment": "production", "dry_run": true])
                #expect(refused["isError"] as? Bool == true)
                let problem = try #require(refused["structuredContent"] as? [String: any Sendable])
                #expect(problem["code"] as? String == "policy_violation")
                #expect(
                    (problem["violations"] as? [[String: any Sendable]])?.compactMap { $0["rule"] as? String } == [
                        "production-requires-digest", "no-latest-outside-development",
                    ])
                let content = try #require((refused["content"] as? [[String: any Sendable]])?.first?["text"] as? String)
                #expect(content.contains("policy_violation"), "the same JSON as text")
                #expect(
                    try await client.tool(4, "list_deployments")["structuredContent"].flatMap {
                        ($0 as? [String: any Sendable])?["items"] as? [Any]
                    }?.isEmpty == true)

                // wait: follows the deployment to its end.
                let waited = try await client.tool(
                    5, "create_deployment",
                    ["service": "web", "image": "ghcr.io/acme/web:1.0", "environment": "staging", "replicas": 2, "wait": true])
                let outcome = try #require(waited["structuredContent"] as? [String: any Sendable])
                let deployment = try #require(outcome["deployment"] as? [String: any Sendable])
                let id = try #require(deployment["id"] as? String)
                #expect(deployment["status"] as? String == "succeeded")
                #expect((outcome["events"] as? [[String: any Sendable]])?.last?["step"] as? String == "finish")

                let got = try #require(
                    try await client.tool(6, "get_deployment", ["id": id])["structuredContent"] as? [String: any Sendable])
                #expect((got["deployment"] as? [String: any Sendable])?["id"] as? String == id)
                #expect(((got["events"] as? [Any])?.count ?? 0) > 5)
                let manifests = try #require(
                    try await client.tool(7, "get_manifests", ["id": id])["structuredContent"] as? [String: any Sendable])
                #expect((manifests["kubernetes"] as? String)?.contains("runAsNonRoot: true") == true)
                let listedNow = try await client.tool(8, "list_deployments", ["status": "succeeded", "limit": 5])
                #expect(((listedNow["structuredContent"] as? [String: any Sendable])?["items"] as? [Any])?.count == 1)

                let finished = try await client.tool(9, "cancel_deployment", ["id": id])
                #expect(finished["isError"] as? Bool == true, "a finished deployment cannot be cancelled")
                #expect((finished["structuredContent"] as? [String: any Sendable])?["code"] as? String == "deployment_finished")
                let missing = try await client.tool(10, "get_deployment", ["id": "dep_missing"])
                #expect(missing["isError"] as? Bool == true)
                #expect((missing["structuredContent"] as? [String: any Sendable])?["code"] as? String == "not_found")

                let health = try #require(try await client.tool(11, "service_health")["structuredContent"] as? [String: any Sendable])
                for service in ["api", "worker", "mcp"] {
                    #expect((health[service] as? [String: any Sendable])?["status"] as? String == "ready", "\(service)")
                }

                let metrics = String(decoding: runtime.metrics.exposition(), as: UTF8.self)
                #expect(metrics.contains(#"code_mcp_tool_calls_total{tool="create_deployment",outcome="ok"} 2"#))
                #expect(metrics.contains(#"code_mcp_tool_calls_total{tool="create_deployment",outcome="error"} 1"#))
                #expect(metrics.contains(#"code_mcp_tool_call_duration_seconds_count{tool="service_health"} 1"#))
            }
        }
    }

    @Test func requestIDReachesTheAPI() async throws {
        try await withLiveStack { stack in
            try await withMCP(stack.mcpSettings()) { url, _ in
                var client = try await RawMCPClient(url: url, token: stack.token).initialized()
                client.extraHeaders = [("X-Request-ID", "mcp-trace-42")]
                let created = try await client.tool(
                    1, "create_deployment", ["service": "traced", "image": "ghcr.io/acme/traced:1.0", "environment": "development"])
                #expect(created["isError"] as? Bool == false)
                // code-api's audit log records the request id code-mcp passed on.
                let audit = try await LoopbackHTTP.request(
                    .GET, stack.apiURL.absoluteString + "/v1/audit?limit=10", headers: [("Authorization", "Bearer \(stack.adminKey)")])
                let entries = try #require(try audit.json()["items"] as? [[String: Any]])
                #expect(
                    entries.contains { $0["request_id"] as? String == "mcp-trace-42" && $0["action"] as? String == "deployment.create" })
            }
        }
    }

    @Test func cancelStopsARunningDeployment() async throws {
        try await withLiveStack(step: .seconds(30)) { stack in
            try await withMCP(stack.mcpSettings()) { url, _ in
                let client = try await RawMCPClient(url: url, token: stack.token).initialized()
                let created = try #require(
                    try await client.tool(
                        1, "create_deployment", ["service": "slow", "image": "ghcr.io/acme/slow:1.0", "environment": "development"])[
                            "structuredContent"] as? [String: any Sendable])
                let id = try #require((created["deployment"] as? [String: any Sendable])?["id"] as? String)
                var status = ""
                for attempt in 0..<200 where status != "running" {
                    let got = try await client.tool(100 + attempt, "get_deployment", ["id": id])
                    status =
                        ((got["structuredContent"] as? [String: any Sendable])?["deployment"] as? [String: any Sendable])?["status"]
                        as? String ?? ""
                    try await Task.sleep(for: .milliseconds(25))
                }
                let cancelled = try #require(
                    try await client.tool(2, "cancel_deployment", ["id": id])["structuredContent"] as? [String: any Sendable])
                #expect(cancelled["cancelled_now"] as? Bool == false, "a running deployment is cancelled by its worker")
                #expect((cancelled["deployment"] as? [String: any Sendable])?["cancel_requested"] as? Bool == true)
            }
        }
    }

    /// `notifications/cancelled` stops a tool call that is waiting: its stream ends without an answer (the
    /// specification's rule), long before the wait would have, and the session goes on.
    @Test func aCancelledToolCallEndsWithoutAnAnswer() async throws {
        try await withLiveStack(step: .seconds(30)) { stack in
            try await withMCP(stack.mcpSettings()) { url, _ in
                let client = try await RawMCPClient(url: url, token: stack.token).initialized()
                let started = ContinuousClock.now
                async let waiting = client.call(
                    1, "tools/call",
                    [
                        "name": "create_deployment",
                        "arguments": ["service": "slow", "image": "ghcr.io/acme/slow:1.0", "environment": "development", "wait": true],
                    ])
                // The call is in flight once its deployment exists.
                var listed = 0
                for attempt in 0..<200 where listed == 0 {
                    let page = try await client.tool(100 + attempt, "list_deployments", ["service": "slow"])
                    listed = ((page["structuredContent"] as? [String: any Sendable])?["items"] as? [Any])?.count ?? 0
                    if listed == 0 { try await Task.sleep(for: .milliseconds(25)) }
                }
                #expect(listed == 1)
                // Its id is in use: another request with it is refused rather than taking over its stream.
                let reused = try await client.call(1, "tools/call", ["name": "list_deployments", "arguments": [:] as [String: Any]])
                #expect(reused.status == 400 && reused.errorCode == -32600, "\(reused.text)")
                let notified = try await client.post([
                    "jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": 1, "reason": "test"],
                ])
                #expect(notified.status == 202)
                let reply = try await waiting
                #expect(reply.response(1) == nil, "a cancelled request gets no answer: \(reply.text)")
                #expect(ContinuousClock.now - started < .seconds(20), "the wait (30 s) was cut short")
                let after = try await client.tool(2, "list_deployments", ["service": "slow"])
                #expect(after["isError"] as? Bool == false)
            }
        }
    }

    @Test func invalidCallsAreJSONRPCErrors() async throws {
        try await withLiveStack { stack in
            try await withMCP(stack.mcpSettings()) { url, _ in
                let client = try await RawMCPClient(url: url, token: stack.token).initialized()
                let cases: [(String, [String: Any])] = [
                    ("no_such_tool", [:]),
                    ("get_deployment", [:]),
                    ("get_deployment", ["id": 42]),
                    ("get_deployment", ["id": "../keys"]),
                    ("list_deployments", ["colour": "blue"]),
                    ("create_deployment", ["service": "web"]),
                ]
                for (index, (name, arguments)) in cases.enumerated() {
                    let reply = try await client.call(index + 1, "tools/call", ["name": name, "arguments": arguments])
                    let error = reply.response(index + 1)?["error"] as? [String: any Sendable]
                    #expect(error?["code"] as? Int == -32602, "\(name) \(arguments): \(reply.text)")
                }
            }
        }
    }

    @Test func resourcesPromptsAndLogging() async throws {
        try await withLiveStack { stack in
            try await withMCP(stack.mcpSettings()) { url, _ in
                let client = try await RawMCPClient(url: url, token: stack.token).initialized()
                let resources = try await client.call(1, "resources/list").result(1)?["resources"] as? [[String: any Sendable]]
                #expect(resources?.compactMap { $0["uri"] as? String } == ["code://policy"])
                let templates =
                    try await client.call(2, "resources/templates/list").result(2)?["resourceTemplates"] as? [[String: any Sendable]]
                #expect(templates?.compactMap { $0["uriTemplate"] as? String } == ["code://deployments/{id}"])
                let policy =
                    try await client.call(3, "resources/read", ["uri": "code://policy"]).result(3)?["contents"] as? [[String: any Sendable]]
                #expect((policy?.first?["text"] as? String)?.contains("production-requires-digest") == true)

                let created = try #require(
                    try await client.tool(
                        4, "create_deployment", ["service": "web", "image": "ghcr.io/acme/web:2.0", "environment": "staging", "wait": true])[
                            "structuredContent"] as? [String: any Sendable])
                let id = try #require((created["deployment"] as? [String: any Sendable])?["id"] as? String)
                let deployment =
                    try await client.call(5, "resources/read", ["uri": "code://deployments/\(id)"]).result(5)?["contents"]
                    as? [[String: any Sendable]]
                #expect((deployment?.first?["text"] as? String)?.contains(id) == true)
                let unknown = try await client.call(6, "resources/read", ["uri": "code://nothing"])
                #expect((unknown.response(6)?["error"] as? [String: any Sendable])?["code"] as? Int == -32602)

                let prompts = try await client.call(7, "prompts/list").result(7)?["prompts"] as? [[String: any Sendable]]
                #expect(Set(prompts?.compactMap { $0["name"] as? String } ?? []) == ["plan_deployment", "investigate_failed_deployment"])
                let plan = try await client.call(
                    8, "prompts/get",
                    ["name": "plan_deployment", "arguments": ["service": "web", "image": "nginx:1", "environment": "production"]])
                #expect(plan.text.contains("production-requires-digest"))
                let investigate = try await client.call(
                    9, "prompts/get", ["name": "investigate_failed_deployment", "arguments": ["id": id]])
                #expect(investigate.text.contains("render finished"))
                let missingArgument = try await client.call(
                    10, "prompts/get", ["name": "plan_deployment", "arguments": ["service": "web"]])
                #expect((missingArgument.response(10)?["error"] as? [String: any Sendable])?["code"] as? Int == -32602)

                let level = try await client.call(11, "logging/setLevel", ["level": "warning"])
                #expect(level.result(11) != nil, "logging/setLevel is honoured: \(level.text)")
            }
        }
    }
}
