import Foundation
import Testing

@testable import FleetStore

@Suite struct MigratorTests {
    private static let first = Migrator.Migration("create log", sql: "CREATE TABLE log (name TEXT NOT NULL)")
    private static let second = Migrator.Migration("log one") { database in
        try database.execute("INSERT INTO log VALUES ('one')")
    }
    private static let third = Migrator.Migration("log two", sql: "INSERT INTO log VALUES ('two')")

    private static func log(_ database: SQLiteDatabase) throws -> [String] {
        try database.withStatement("SELECT name FROM log ORDER BY rowid") { statement in
            var names: [String] = []
            while try statement.step() { names.append(statement.string(at: 0) ?? "") }
            return names
        }
    }

    @Test func appliesEachMigrationOnce() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("db.sqlite")
        do {
            let database = try SQLiteDatabase(path: path)
            defer { database.close() }
            let migrator = Migrator([Self.first, Self.second])
            #expect(try migrator.migrate(database) == ["create log", "log one"])
            #expect(try migrator.migrate(database) == [])
            #expect(try database.userVersion() == 2)
        }
        // Reopened with one more migration: only the new one runs.
        let database = try SQLiteDatabase(path: path)
        defer { database.close() }
        var migrator = Migrator([Self.first, Self.second])
        migrator.register(Self.third)
        #expect(try migrator.migrate(database) == ["log two"])
        #expect(try migrator.migrate(database) == [])
        #expect(try database.userVersion() == 3)
        #expect(try Self.log(database) == ["one", "two"])
    }

    @Test func failingMigrationRollsBackEverything() throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteDatabase(path: directory.path("db.sqlite"))
        defer { database.close() }
        let broken = Migrator.Migration("broken", sql: "INSERT INTO missing VALUES (1)")
        let error = #expect(throws: SQLiteError.self) {
            try Migrator([Self.first, Self.second, broken]).migrate(database)
        }
        #expect(error?.message.contains("broken") == true)
        #expect(try database.userVersion() == 0)
        #expect(throws: SQLiteError.self) { try Self.log(database) }
    }

    @Test func refusesNewerSchema() throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteDatabase(path: directory.path("db.sqlite"))
        defer { database.close() }
        try Migrator([Self.first, Self.second]).migrate(database)
        #expect(throws: SQLiteError.self) { try Migrator([Self.first]).migrate(database) }
    }
}
