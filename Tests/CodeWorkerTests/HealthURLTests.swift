import CodeDomain
import CodeRuntime
import CodeStore
import CodeTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing

@testable import CodeWorker

/// A health endpoint on loopback that counts its calls: `/healthz` answers `status` (with a body that
/// must never reach an event), `/redirect` sends to `/elsewhere`, which counts what reaches it.
final class HealthTarget: Sendable {
    let status: HTTPResponse.Status
    let healthCalls = NIOLockedValueBox(0)
    let elsewhereCalls = NIOLockedValueBox(0)
    static let body = "internal-detail-of-the-target"

    init(status: HTTPResponse.Status = .ok) {
        self.status = status
    }

    func application() -> some ApplicationProtocol {
        let router = Router()
        router.get("/healthz") { _, _ -> Response in
            self.healthCalls.withLockedValue { $0 += 1 }
            return Response(status: self.status, body: .init(byteBuffer: ByteBuffer(string: Self.body)))
        }
        router.get("/redirect") { _, _ -> Response in
            self.healthCalls.withLockedValue { $0 += 1 }
            return Response(status: .found, headers: [.location: "/elsewhere"])
        }
        router.get("/elsewhere") { _, _ -> Response in
            self.elsewhereCalls.withLockedValue { $0 += 1 }
            return Response(status: .ok)
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: { _ in })
    }
}

/// `health_url` is the deployment author's, not the operator's: the worker must not let it reach
/// loopback, private networks, link-local metadata or internal names unless `CODE_HEALTH_URL_ALLOW` says so.
@Suite("health_url egress")
struct HealthURLTests {
    static func allow(
        _ entries: [String], timeout: Duration = .seconds(2), interval: Duration = .milliseconds(50)
    ) -> @Sendable (inout WorkerSettings) -> Void {
        { settings in
            settings.healthURLAllowlist = try! HealthURLAllowlist(parsing: entries)
            settings.verifyTimeout = timeout
            settings.verifyInterval = interval
        }
    }

    @Test func loopbackIsRejectedByDefaultWithoutAConnection() async throws {
        let target = HealthTarget()
        try await target.application().test(.live) { client in
            try await withWorker(.sqlite, configure: Self.allow([])) { worker in
                let queued = try await worker.enqueue(healthURL: "http://127.0.0.1:\(client.port!)/healthz")
                let finished = try await worker.waitUntilFinished(queued.id)
                #expect(finished.status == .failed)
                #expect(finished.error == "health_url rejected: address not allowed")
                #expect(target.healthCalls.withLockedValue { $0 } == 0, "no request reaches a rejected address")
                let verify = try await worker.events(queued.id).filter { $0.step == "verify" }.map(\.message)
                #expect(verify.last == "verify failed: health_url rejected: address not allowed")
            }
        }
    }

    @Test(arguments: ["127.0.0.1", "127.0.0.1/32", "127.0.0.0/8"])
    func anAllowlistedAddressOrBlockIsPolled(entry: String) async throws {
        let target = HealthTarget()
        try await target.application().test(.live) { client in
            try await withWorker(.sqlite, configure: Self.allow([entry])) { worker in
                let queued = try await worker.enqueue(healthURL: "http://127.0.0.1:\(client.port!)/healthz")
                let finished = try await worker.waitUntilFinished(queued.id)
                #expect(finished.status == .succeeded)
                #expect(target.healthCalls.withLockedValue { $0 } == 1)
                let messages = try await worker.events(queued.id).filter { $0.step == "verify" }.map(\.message)
                #expect(messages.contains("health_url answered HTTP 200 (healthy) after 1 poll(s)"), "\(messages)")
                #expect(!messages.joined().contains(HealthTarget.body))
            }
        }
    }

    @Test func anAllowlistedNameMayResolveToLoopback() async throws {
        let target = HealthTarget()
        try await target.application().test(.live) { client in
            try await withWorker(.sqlite, configure: Self.allow(["localhost"])) { worker in
                let queued = try await worker.enqueue(healthURL: "http://localhost:\(client.port!)/healthz")
                let finished = try await worker.waitUntilFinished(queued.id)
                #expect(finished.status == .succeeded, "\(finished.error ?? "")")
            }
        }
    }

    /// None of these may be connected to; the error names no resolved address.
    @Test(arguments: [
        "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/healthz", "http://172.16.0.1/", "http://192.168.1.1/",
        "http://100.64.0.1/", "http://0.0.0.0/", "http://[::1]/", "http://[fd00::1]/healthz", "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/", "http://[::ffff:169.254.169.254]/", "http://224.0.0.1/", "http://localhost/healthz",
        "http://code-api:8000/health/ready", "http://code-api./",
    ])
    func internalAddressesAndNamesAreRejected(url: String) async throws {
        try await withWorker(.sqlite, configure: Self.allow([])) { worker in
            let queued = try await worker.enqueue(healthURL: url)
            let finished = try await worker.waitUntilFinished(queued.id)
            #expect(finished.status == .failed)
            #expect(finished.error?.hasPrefix("health_url rejected: ") == true, "\(finished.error ?? "")")
            #expect(finished.attempt == 1, "a rejected health_url is final, not retried")
            let text = try await worker.events(queued.id).map(\.message).joined(separator: "\n")
            #expect(!text.contains("127.0.0.1") && !text.contains("::1"), "no resolved address in events: \(text)")
        }
    }

    @Test func aRedirectIsNotFollowedAndCountsAsUnhealthy() async throws {
        let target = HealthTarget()
        try await target.application().test(.live) { client in
            try await withWorker(.sqlite, configure: Self.allow(["127.0.0.1"], timeout: .seconds(2), interval: .seconds(3))) {
                worker in
                let queued = try await worker.enqueue(healthURL: "http://127.0.0.1:\(client.port!)/redirect")
                let finished = try await worker.waitUntilFinished(queued.id)
                #expect(finished.status == .failed)
                #expect(finished.error?.contains("last: HTTP 302") == true, "\(finished.error ?? "")")
                #expect(target.healthCalls.withLockedValue { $0 } >= 1)
                #expect(target.elsewhereCalls.withLockedValue { $0 } == 0, "the redirect was not followed")
            }
        }
    }

    @Test func eventsRecordTheStatusNeitherTheBodyNorErrorText() async throws {
        let target = HealthTarget(status: .serviceUnavailable)
        try await target.application().test(.live) { client in
            // One poll each (the interval outlasts the window), so that `last` is that poll's outcome. A window
            // of 2 s: in a loaded test run the target here took longer than 0.5 s to answer.
            try await withWorker(.sqlite, configure: Self.allow(["127.0.0.1"], timeout: .seconds(2), interval: .seconds(3))) {
                worker in
                let unhealthy = try await worker.enqueue(healthURL: "http://127.0.0.1:\(client.port!)/healthz")
                let closedPort = freePort()
                let unreachable = try await worker.enqueue(healthURL: "http://127.0.0.1:\(closedPort)/healthz")
                let failed = try await worker.waitUntilFinished(unhealthy.id)
                #expect(failed.error?.hasSuffix("last: HTTP 503 (unhealthy))") == true, "\(failed.error ?? "")")
                let refused = try await worker.waitUntilFinished(unreachable.id)
                #expect(refused.error?.hasSuffix("last: no connection)") == true, "\(refused.error ?? "")")
                for id in [unhealthy.id, unreachable.id] {
                    let text = try await worker.events(id).map(\.message).joined(separator: "\n")
                    #expect(!text.contains(HealthTarget.body))
                    #expect(!text.contains("\(closedPort)") && !text.contains("errno") && !text.contains("refused"), "\(text)")
                }
            }
        }
    }

    // MARK: The guard's rules

    @Test func addressClasses() {
        let blocked = [
            "127.0.0.1", "127.255.0.1", "0.0.0.0", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.0.1", "100.64.0.1",
            "169.254.169.254", "224.0.0.251", "255.255.255.255", "::", "::1", "fc00::1", "fd00::1", "fe80::1", "ff02::1",
            "::ffff:10.0.0.1", "::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1",
        ]
        let open = ["1.1.1.1", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"]
        for address in blocked { #expect(!HealthURLGuard.isPublic(IPAddress(address)!), "\(address)") }
        for address in open { #expect(HealthURLGuard.isPublic(IPAddress(address)!), "\(address)") }
    }

    @Test func allowlistEntries() throws {
        let allowlist = try HealthURLAllowlist(parsing: ["10.20.0.0/16", "fd00:1::/64", "127.0.0.1", "Receiver", "status.example."])
        #expect(allowlist.permits(IPAddress("10.20.3.4")!))
        #expect(!allowlist.permits(IPAddress("10.21.0.1")!))
        #expect(allowlist.permits(IPAddress("::ffff:10.20.0.9")!), "a mapped address is judged as IPv4")
        #expect(allowlist.permits(IPAddress("fd00:1::5")!))
        #expect(!allowlist.permits(IPAddress("127.0.0.2")!))
        #expect(allowlist.permits(hostName: "receiver") && allowlist.permits(hostName: "STATUS.example"))
        for bad in ["10.0.0.0/33", "10.0.0.0/x", "http://x", "a b", "", "fe80::1%eth0"] {
            #expect(throws: HealthURLAllowlist.InvalidEntry.self) { try HealthURLAllowlist(parsing: [bad]) }
        }
    }

    @Test func vettingPinsTheResolvedAddress() async {
        let vetting = HealthURLGuard(allowlist: try! HealthURLAllowlist(parsing: ["localhost"]))
        #expect(await vetting.vet(URL(string: "http://localhost:1/")!) == .connect(host: "localhost", pinnedAddress: "127.0.0.1"))
        #expect(await vetting.vet(URL(string: "ftp://example.com/")!) == .rejected(reason: HealthURLGuard.schemeNotAllowed))
        #expect(await HealthURLGuard(allowlist: .none).vet(URL(string: "http://no-such-name.invalid/")!) == .unresolved)
    }
}
