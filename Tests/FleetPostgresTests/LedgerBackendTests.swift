import FleetCore
import FleetPostgres
import FleetRuntime
import FleetStore
import FleetTestSupport
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization
import Testing

/// The job ledger and effects journal, one suite over both backends: SQLite (two ledgers on one file, as two
/// processes of one host) and PostgreSQL (two ledgers with pools of their own on one database, as two hosts; a
/// database per test on the cluster `Ops/scripts/test.sh` starts).
@Suite("Job ledger on SQLite and PostgreSQL", .timeLimit(.minutes(2)))
struct LedgerBackendTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }
    }

    static let logger: Logger = {
        var l = Logger(label: "fleet.test")
        l.logLevel = .warning
        return l
    }()

    /// Runs `body` with two ledgers ("hosts") on one fresh store of `backend`.
    static func withLedgers<T: Sendable>(_ backend: Backend,
                                         _ body: @Sendable (any JobLedgerStore, any JobLedgerStore) async throws -> T) async throws -> T {
        switch backend {
        case .sqlite:
            let dir = try TestEnvironment.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let path = dir.appendingPathComponent("ledger.sqlite").path
            let a = try JobLedger(path: path), b = try JobLedger(path: path)
            defer { a.close(); b.close() }
            return try await body(a, b)
        case .postgres:
            return try await PostgresDatabase.withFresh { url in
                let a = PostgresJobLedger(url: url, logger: logger), b = PostgresJobLedger(url: url, logger: logger)
                return try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try? await a.run() }
                    group.addTask { try? await b.run() }
                    defer { group.cancelAll() }
                    try await a.prepare()
                    try await b.prepare()
                    return try await body(a, b)
                }
            }
        }
    }

    /// 20 calls of `body` at once, alternating between the two ledgers; their results.
    static func race<T: Sendable>(_ a: any JobLedgerStore, _ b: any JobLedgerStore,
                                  _ body: @escaping @Sendable (any JobLedgerStore, Int) async throws -> T) async throws -> [T] {
        try await withThrowingTaskGroup(of: T.self) { group in
            for i in 0..<20 {
                let ledger = i % 2 == 0 ? a : b
                group.addTask { try await body(ledger, i) }
            }
            return try await group.reduce(into: [T]()) { $0.append($1) }
        }
    }

    static func entry(_ id: String, status: String = "succeeded", attempt: Int = 1, result: String = "{}") -> LedgerEntry {
        LedgerEntry(jobID: id, kind: "test", status: status, attempt: attempt, result: Array(result.utf8),
                    finishedAt: Date(timeIntervalSince1970: 1_796_000_000.25))
    }

    @Test("the first final result wins, on either host; lookups of many ids; only dead entries are forgotten", arguments: Backend.allCases)
    func firstResultWins(_ backend: Backend) async throws {
        try await Self.withLedgers(backend) { a, b in
            let first = try await a.record(Self.entry("j1", result: "{\"n\":1}"))
            let second = try await b.record(Self.entry("j1", status: "dead", attempt: 2, result: "{\"n\":2}"))
            #expect(first == second && second.attempt == 1 && second.result == Array("{\"n\":1}".utf8))
            #expect(first.finishedAt == Date(timeIntervalSince1970: 1_796_000_000.25))
            try await b.record(Self.entry("j2", status: "dead"))
            let found = try await a.lookup(["j1", "j2", "nope"])
            #expect(Set(found.keys) == ["j1", "j2"] && found["j2"]?.status == "dead")
            #expect(try await a.forgetDead("j1") == false)
            #expect(try await b.forgetDead("j2") == true)
            #expect(try await a.lookup("j2") == nil)
            #expect(try await a.count() == 1)
        }
    }

    @Test("two hosts recording one job id at once both get the one stored entry", arguments: Backend.allCases)
    func concurrentRecords(_ backend: Backend) async throws {
        try await Self.withLedgers(backend) { a, b in
            let winners = try await Self.race(a, b) { ledger, i in try await ledger.record(Self.entry("race", attempt: i + 1)) }
            #expect(Set(winners.map(\.attempt)).count == 1, "\(winners.map(\.attempt))")
            #expect(try await a.lookup("race")?.attempt == winners[0].attempt)
        }
    }

    @Test("an effect's intent is claimed by exactly one of many concurrent runs across hosts; its completion and result are seen by all; forget removes an intent, never a completion", arguments: Backend.allCases)
    func effectClaims(_ backend: Backend) async throws {
        try await Self.withLedgers(backend) { a, b in
            let claims = try await Self.race(a, b) { ledger, _ in try await ledger.recordEffectIntent(jobID: "j", key: "smtp:x") == nil }
            #expect(claims.filter { $0 }.count == 1)
            let intent = try await b.effects(jobID: "j")["smtp:x"]
            #expect(intent?.isDone == false && intent?.result == nil)
            try await a.recordEffectDone(jobID: "j", key: "smtp:x", result: Array("250 ok".utf8))
            let done = try await b.recordEffectIntent(jobID: "j", key: "smtp:x")
            #expect(done?.isDone == true && done?.result == Array("250 ok".utf8))
            try await b.forgetEffect(jobID: "j", key: "smtp:x")
            #expect(try await a.effects(jobID: "j")["smtp:x"]?.isDone == true, "a completion is never forgotten")
            #expect(try await a.recordEffectIntent(jobID: "j", key: "push:y") == nil)
            try await a.forgetEffect(jobID: "j", key: "push:y")
            #expect(try await b.effects(jobID: "j")["push:y"] == nil)
            // Completions recorded with the final result, in its transaction.
            try await b.record(Self.entry("k"), effectsDone: [(key: "llm:z", result: Array("{}".utf8))])
            #expect(try await a.effects(jobID: "k")["llm:z"]?.isDone == true)
        }
    }

    @Test("prune deletes the entries and effect records older than the cutoff, and keeps the rest", arguments: Backend.allCases)
    func prune(_ backend: Backend) async throws {
        try await Self.withLedgers(backend) { a, b in
            var old = Self.entry("old")
            old.finishedAt = Date(timeIntervalSince1970: 1_000)
            try await a.record(old)
            try await a.record(Self.entry("new"))
            _ = try await b.recordEffectIntent(jobID: "new", key: "e")
            let (jobs, effects) = try await b.prune(finishedBefore: Date(timeIntervalSince1970: 2_000))
            #expect(jobs == 1 && effects == 0)
            #expect(try await a.count() == 1)
            #expect(try await a.lookup("new") != nil)
            // Past both the entry's finish (fixed) and the effect record's write (the clock's now).
            let cutoff = max(Date(), Date(timeIntervalSince1970: 1_796_000_001)).addingTimeInterval(60)
            let later = try await a.prune(finishedBefore: cutoff)
            #expect(later.jobs == 1 && later.effects == 1)
        }
    }
}
