import CodeAPIContract
import CodeDomain
import CodeRuntime

/// `/v1/audit` (admin) and `/v1/policy` (viewer).
extension APIHandlers {
    func listAudit(_ input: Operations.ListAudit.Input) async throws -> Operations.ListAudit.Output {
        try Identity.require(.admin)
        var parameters = ListParameters()
        let limit = parameters.limit(input.query.limit, default: 50)
        let before = parameters.cursor(input.query.cursor)
        try parameters.validate()
        let page = try await store.auditEntries(limit: limit, before: before)
        return .ok(
            .init(body: .json(.init(items: try page.items.map(Components.Schemas.AuditEntry.init), nextCursor: Cursor.encode(page.next)))))
    }

    func getPolicy(_ input: Operations.GetPolicy.Input) async throws -> Operations.GetPolicy.Output {
        try Identity.require(.viewer)
        let rules = DeploymentPolicy.rules.map {
            Components.Schemas.Policy.RulesPayloadPayload(id: $0.id, title: $0.title, description: $0.description)
        }
        return .ok(.init(body: .json(.init(rules: rules, allowedRegistries: policy.allowedRegistries?.sorted()))))
    }
}
