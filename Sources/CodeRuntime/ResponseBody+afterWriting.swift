import Hummingbird

extension ResponseBody {
    /// The same body, calling `completion` once it has been written or writing failed. (Hummingbird has
    /// this as `withPostWriteClosure`, but only for its own package.)
    func afterWriting(_ completion: @escaping @Sendable () -> Void) -> ResponseBody {
        let body = self
        return ResponseBody(contentLength: body.contentLength) { writer in
            defer { completion() }
            try await body.write(writer)
        }
    }
}
