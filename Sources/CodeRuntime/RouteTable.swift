import NIOConcurrencyHelpers

/// The routes of a router, by path template, to answer 405 with `Allow` for a known path and an unknown
/// method (Hummingbird's router answers 404 for both). Filled once the routes are registered.
public final class RouteTable: Sendable {
    private let templates = NIOLockedValueBox<[(segments: [Substring], methods: [String])]>([])

    public init() {}

    func load(_ routes: [(path: String, method: String)]) {
        var byPath: [String: Set<String>] = [:]
        for route in routes { byPath[route.path, default: []].insert(route.method) }
        templates.withLockedValue { templates in
            templates = byPath.map { path, methods in (path.split(separator: "/"), methods.sorted()) }
        }
    }

    /// Methods of the route template that `path` matches, `{name}` matching any one segment. Where several
    /// match, the router would pick the one with literal segments first, so that one answers.
    func methods(matching path: String) -> [String] {
        let segments = path.split(separator: "/")
        func isCapture(_ pattern: Substring) -> Bool { pattern.hasPrefix("{") && pattern.hasSuffix("}") }
        let matching = templates.withLockedValue { templates in
            templates.filter { template in
                template.segments.count == segments.count
                    && zip(template.segments, segments).allSatisfy { pattern, segment in isCapture(pattern) || pattern == segment }
            }
        }
        // Literal segments win from the left, as in Hummingbird's trie.
        let best = matching.max { lhs, rhs in
            let left = lhs.segments.map { isCapture($0) ? 0 : 1 }
            let right = rhs.segments.map { isCapture($0) ? 0 : 1 }
            return left.lexicographicallyPrecedes(right)
        }
        return best?.methods ?? []
    }
}
