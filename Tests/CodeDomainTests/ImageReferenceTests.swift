import CodeDomain
import Testing

@Suite("OCI image references")
struct ImageReferenceTests {
    static let digest = "sha256:" + String(repeating: "ab", count: 32)

    @Test(
        arguments: [
            ("nginx", "docker.io", "library/nginx", nil, nil),
            ("nginx:1.25", "docker.io", "library/nginx", "1.25", nil),
            ("acme/web:v2", "docker.io", "acme/web", "v2", nil),
            ("ghcr.io/acme/web:1.2.3", "ghcr.io", "acme/web", "1.2.3", nil),
            ("localhost:5000/team/app:dev", "localhost:5000", "team/app", "dev", nil),
            ("localhost/app", "localhost", "app", nil, nil),
            ("registry.example.com/a/b/c", "registry.example.com", "a/b/c", nil, nil),
            ("my-registry:443/my_image__x/sub.part-name:Tag_1.0-rc", "my-registry:443", "my_image__x/sub.part-name", "Tag_1.0-rc", nil),
            ("ghcr.io/acme/web@\(digest)", "ghcr.io", "acme/web", nil, digest),
            ("ghcr.io/acme/web:1.0@\(digest)", "ghcr.io", "acme/web", "1.0", digest),
        ] as [(String, String, String, String?, String?)])
    func parsesValidReferences(text: String, registry: String, repository: String, tag: String?, digest: String?) throws {
        let reference = try ImageReference(parsing: text)
        #expect(reference.registry == registry)
        #expect(reference.repository == repository)
        #expect(reference.tag == tag)
        #expect(reference.digest == digest)
    }

    @Test(arguments: [
        ("", ImageReference.ParseError.empty),
        ("Nginx", .invalidRepository("Nginx")),
        ("acme//web", .invalidRepository("acme//web")),
        ("acme/web-", .invalidRepository("acme/web-")),
        ("acme/.web", .invalidRepository("acme/.web")),
        ("acme/web:", .invalidTag("")),
        ("acme/web:-bad", .invalidTag("-bad")),
        ("acme/web:\(String(repeating: "a", count: 129))", .invalidTag(String(repeating: "a", count: 129))),
        ("acme/web@sha256:abc", .invalidDigest("sha256:abc")),
        ("acme/web@sha256:\(String(repeating: "A", count: 64))", .invalidDigest("sha256:\(String(repeating: "A", count: 64))")),
        ("bad_host.com:80/app", .invalidRegistry("bad_host.com:80")),
        ("registry.io:99999/app", .invalidRegistry("registry.io:99999")),
        ("a/" + String(repeating: "b", count: 260), .tooLong),
    ])
    func rejectsInvalidReferences(text: String, error: ImageReference.ParseError) {
        #expect(throws: error) { try ImageReference(parsing: text) }
    }

    @Test func canonicalDescriptionRoundTrips() throws {
        let reference = try ImageReference(parsing: "nginx:1.25")
        #expect(reference.description == "docker.io/library/nginx:1.25")
        #expect(try ImageReference(parsing: reference.description) == reference)
    }
}
