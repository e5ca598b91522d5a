/// Pages are read with `LIMIT limit + 1`: the extra row only tells that another page follows, and the
/// cursor is the position (`seq`) of the last row shown. Positions only grow, so a cursor stays valid
/// while rows are inserted.
extension StorePage {
    static func rowLimit(_ limit: Int) -> Int { limit + 1 }

    init<Row>(rows: [Row], limit: Int, position: (Row) -> Int64, item: (Row) throws -> Item) rethrows {
        let shown = rows.prefix(limit)
        items = try shown.map(item)
        next = rows.count > limit ? shown.last.map(position) : nil
    }
}
