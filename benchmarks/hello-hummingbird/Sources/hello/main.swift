import Foundation
import Hummingbird

// HOST and PORT as the services read them; nothing else is configurable.
let environment = ProcessInfo.processInfo.environment
let host = environment["HOST"] ?? "127.0.0.1"
let port = environment["PORT"].flatMap(Int.init) ?? 8080

let router = Router()
router.get("/health/live") { _, _ -> Response in
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
}

let app = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "hello-hummingbird"))
try await app.runService()
