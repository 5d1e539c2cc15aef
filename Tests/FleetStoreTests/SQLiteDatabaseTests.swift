import CSQLite
import Foundation
import Testing

@testable import FleetStore

@Suite struct SQLiteDatabaseTests {
    @Test func opensInWALModeWithPragmas() throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteDatabase(path: directory.path("db.sqlite"), busyTimeout: 1234)
        defer { database.close() }
        #expect(database.journalMode == "wal")
        let synchronous = try database.withStatement("PRAGMA synchronous") { try $0.step() ? $0.int(at: 0) : -1 }
        #expect(synchronous == 1)  // NORMAL
        let foreignKeys = try database.withStatement("PRAGMA foreign_keys") { try $0.step() ? $0.int(at: 0) : -1 }
        #expect(foreignKeys == 1)
        let timeout = try database.withStatement("PRAGMA busy_timeout") { try $0.step() ? $0.int(at: 0) : -1 }
        #expect(timeout == 1234)
    }

    @Test func openWithoutCreateFailsForMissingFile() throws {
        let directory = try TemporaryDirectory()
        #expect(throws: SQLiteError.self) {
            try SQLiteDatabase(path: directory.path("missing.sqlite"), create: false)
        }
    }

    @Test func bindAndReadRoundTrip() throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteDatabase(path: directory.path("db.sqlite"))
        defer { database.close() }
        try database.execute("CREATE TABLE t (i INTEGER, d REAL, s TEXT, b BLOB, n TEXT)")

        let texts = ["", "plain", "héllo wörld", "日本語テキスト", "emoji 👩‍👩‍👧‍👦🚀", "e\u{301}", "nul\u{0}inside", "'; DROP TABLE t; --"]
        let blobs: [[UInt8]] = [[], [0], [0, 1, 2, 255], Array(repeating: 0xAB, count: 100_000)]
        let integers: [Int64] = [0, -1, .min, .max]
        let doubles: [Double] = [0, -0.5, .pi, 1e300, 1_700_000_000.123456]

        var rows: [(Int64, Double, String, [UInt8])] = []
        for (index, text) in texts.enumerated() {
            rows.append((integers[index % integers.count], doubles[index % doubles.count], text, blobs[index % blobs.count]))
        }
        for row in rows {
            try database.withStatement("INSERT INTO t (i, d, s, b, n) VALUES (?, ?, ?, ?, ?)") { statement in
                try statement.bind(row.0, at: 1)
                try statement.bind(row.1, at: 2)
                try statement.bind(row.2, at: 3)
                try statement.bind(row.3, at: 4)
                try statement.bindNull(at: 5)
                #expect(try statement.step() == false)
            }
        }
        #expect(database.cachedStatementCount == 1)

        var read: [(Int64, Double, String?, [UInt8]?, Bool)] = []
        try database.withStatement("SELECT i, d, s, b, n FROM t ORDER BY rowid") { statement in
            #expect(statement.columnCount == 5)
            while try statement.step() {
                read.append((
                    statement.int64(at: 0), statement.double(at: 1), statement.string(at: 2), statement.blob(at: 3),
                    statement.isNull(at: 4)
                ))
                #expect(statement.string(at: 4) == nil)
                #expect(statement.blob(at: 4) == nil)
            }
        }
        try #require(read.count == rows.count)
        for (expected, actual) in zip(rows, read) {
            #expect(actual.0 == expected.0)
            #expect(actual.1 == expected.1)
            #expect(actual.2 == expected.2)
            #expect(actual.3 == expected.3)
            #expect(actual.4)
        }
        // The empty string and the empty blob are stored as such, not as NULL.
        let types = try database.withStatement("SELECT typeof(s), typeof(b) FROM t WHERE s = ''") { statement in
            try statement.step() ? [statement.string(at: 0), statement.string(at: 1)] : []
        }
        #expect(types == ["text", "blob"])
    }

    @Test func statementCacheReusesStatements() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        defer { database.close() }
        let first = try database.withStatement("SELECT 1") { ObjectIdentifier($0) }
        let second = try database.withStatement("SELECT 1") { ObjectIdentifier($0) }
        let other = try database.withStatement("SELECT 2") { ObjectIdentifier($0) }
        #expect(first == second)
        #expect(first != other)
        #expect(database.cachedStatementCount == 2)
    }

    @Test func errorsCarryCodeAndSQL() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        defer { database.close() }
        try database.execute("CREATE TABLE t (id TEXT PRIMARY KEY)")
        try database.execute("INSERT INTO t VALUES ('a')")
        let sql = "INSERT INTO t VALUES (?)"
        let error = #expect(throws: SQLiteError.self) {
            try database.withStatement(sql) { statement in
                try statement.bind("a", at: 1)
                try statement.run()
            }
        }
        #expect(error?.code == SQLITE_CONSTRAINT)
        #expect(error?.sql == sql)
        let syntax = #expect(throws: SQLiteError.self) { try database.prepare("SELEC nonsense") }
        #expect(syntax?.code == SQLITE_ERROR)
        #expect(throws: SQLiteError.self) { try database.prepare("SELECT 1; SELECT 2") }
        #expect(throws: SQLiteError.self) {
            try database.withStatement("SELECT ?") { try $0.bind(1, at: 2) }
        }
    }

    @Test func transactionCommitsAndRollsBack() throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteDatabase(path: directory.path("db.sqlite"))
        defer { database.close() }
        try database.execute("CREATE TABLE t (v INTEGER)")
        try database.transaction {
            try database.execute("INSERT INTO t VALUES (1)")
        }
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try database.transaction {
                try database.execute("INSERT INTO t VALUES (2)")
                throw Boom()
            }
        }
        #expect(!database.isInTransaction)
        let values = try database.withStatement("SELECT v FROM t") { statement in
            var values: [Int] = []
            while try statement.step() { values.append(statement.int(at: 0)) }
            return values
        }
        #expect(values == [1])
    }

    @Test func userVersionAndClose() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("db.sqlite")
        let database = try SQLiteDatabase(path: path)
        #expect(try database.userVersion() == 0)
        try database.setUserVersion(7)
        database.close()
        database.close()
        #expect(!database.isOpen)
        let error = #expect(throws: SQLiteError.self) { try database.userVersion() }
        #expect(error?.code == SQLITE_MISUSE)
        let reopened = try SQLiteDatabase(path: path, create: false)
        defer { reopened.close() }
        #expect(try reopened.userVersion() == 7)
    }
}
