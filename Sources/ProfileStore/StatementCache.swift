import FleetStore

/// The prepared statements of one connection, held in numbered slots: using one costs an array index, not a hash
/// of its SQL text (as `SQLiteDatabase.withStatement` does), which matters on paths run 100,000 times a second.
///
/// Not thread-safe: confined with its connection. `close()` finalizes the statements (do it before closing the
/// connection, which otherwise stays open until they are finalized).
final class StatementCache {
    /// A statement's slot and SQL text (one `static let` per statement).
    struct Query: Sendable {
        let slot: Int
        let sql: String
    }

    private let database: SQLiteDatabase
    private var slots: [SQLiteStatement?]

    init(database: SQLiteDatabase, slots: Int) {
        self.database = database
        self.slots = Array(repeating: nil, count: slots)
    }

    /// Runs `body` with the statement of `query` (prepared on first use), reset and with no bindings; it is reset
    /// again afterwards (ending its implicit read transaction), so `body` may stop stepping early.
    @inline(__always)
    func with<Result>(_ query: Query, _ body: (SQLiteStatement) throws -> Result) throws -> Result {
        let statement: SQLiteStatement
        if let prepared = slots[query.slot] {
            statement = prepared
            statement.clearBindings()
        } else {
            statement = try database.prepare(query.sql)
            slots[query.slot] = statement
        }
        defer { statement.reset() }
        return try body(statement)
    }

    /// Finalizes every statement.
    func close() {
        for case let statement? in slots { statement.finalize() }
        slots = Array(repeating: nil, count: slots.count)
    }
}
