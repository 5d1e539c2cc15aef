import CSQLite
import Foundation
import Testing

@testable import FleetStore

@Suite struct JobLedgerTests {
    private static func entry(
        _ id: String, attempt: Int = 1, status: String = "succeeded", finishedAt: Date = Date()
    ) -> LedgerEntry {
        LedgerEntry(
            jobID: id, kind: "resize-image", status: status, attempt: attempt,
            result: Array("{\"job\":\"\(id)\",\"attempt\":\(attempt),\"ok\":\"✓\"}".utf8), finishedAt: finishedAt)
    }

    @Test func recordAndLookup() async throws {
        let directory = try TemporaryDirectory()
        let ledger = try JobLedger(path: directory.path("ledger.sqlite"))
        defer { ledger.close() }
        let finished = Date(timeIntervalSince1970: 1_700_000_000.25)
        let entry = Self.entry("job-1", attempt: 3, finishedAt: finished)

        #expect(try await ledger.lookup("job-1") == nil)
        let stored = try await ledger.record(entry)
        #expect(stored == entry)
        #expect(try await ledger.lookup("job-1") == entry)
        #expect(try await ledger.lookup(["job-1", "job-2"]) == ["job-1": entry])
        #expect(try await ledger.lookup([]) == [:])
        #expect(try await ledger.count() == 1)

        // What record returns is exactly what lookup returns, whatever the date's precision.
        let now = try await ledger.record(Self.entry("job-now"))
        #expect(try await ledger.lookup("job-now") == now)
    }

    /// Commits leave the WAL to a background checkpoint: the main file takes the new pages soon after, while the
    /// WAL is still far below the size at which a commit would checkpoint it itself.
    @Test func theWALIsCheckpointedInTheBackground() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("ledger.sqlite")
        let ledger = try JobLedger(path: path)
        defer { ledger.close() }
        let big = [UInt8](repeating: UInt8(ascii: "x"), count: 2000)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    try await ledger.record(LedgerEntry(jobID: "job-\(i)", kind: "k", status: "succeeded", attempt: 1,
                                                        result: big, finishedAt: Date()))
                }
            }
            try await group.waitForAll()
        }
        // 200 rows of 2 KB: 400 KB in the WAL (about 100 pages of the 4,000 that make a commit checkpoint).
        func mainFileSize() -> Int {
            ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while mainFileSize() < 400_000 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(mainFileSize() >= 400_000, "the main file did not take the WAL's pages: no background checkpoint")
        #expect(try await ledger.count() == 200)
    }

    @Test func firstFinalResultWins() async throws {
        let directory = try TemporaryDirectory()
        let ledger = try JobLedger(path: directory.path("ledger.sqlite"))
        defer { ledger.close() }
        let first = Self.entry("job-1", attempt: 1, status: "succeeded")
        let second = Self.entry("job-1", attempt: 2, status: "dead")
        let kept = try await ledger.record(first)
        let again = try await ledger.record(second)
        #expect(again == kept)
        #expect(again.attempt == 1)
        #expect(try await ledger.lookup("job-1") == kept)
        #expect(try await ledger.count() == 1)

        // Same id twice within one batch: the first enqueued wins for both callers.
        async let a = ledger.record(Self.entry("job-2", attempt: 1))
        async let b = ledger.record(Self.entry("job-2", attempt: 2))
        let (ra, rb) = try await (a, b)
        #expect(ra == rb)
    }

    @Test func concurrentRecordsAreGroupCommittedAndDurable() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("ledger.sqlite")
        let ledger = try JobLedger(path: path)
        defer { ledger.close() }
        let total = 2000
        let finished = Date(timeIntervalSince1970: 1_700_000_000)
        let commitsBefore = ledger.commitCount

        let returned = try await withThrowingTaskGroup(of: LedgerEntry.self) { group in
            for index in 0..<total {
                group.addTask {
                    try await ledger.record(Self.entry("job-\(index)", attempt: index % 5 + 1, finishedAt: finished))
                }
            }
            var returned: [String: LedgerEntry] = [:]
            for try await entry in group {
                returned[entry.jobID] = entry
            }
            return returned
        }
        #expect(returned.count == total)

        let commits = ledger.commitCount - commitsBefore
        #expect(commits >= 1)
        #expect(commits < total / 10, "group commit did not batch: \(commits) commits for \(total) records")

        // Visible, byte for byte, from a second ledger opened on the same file (as another process would).
        let other = try JobLedger(path: path)
        defer { other.close() }
        #expect(try await other.count() == total)
        let ids = (0..<total).map { "job-\($0)" }
        let seen = try await other.lookup(ids)
        #expect(seen.count == total)
        #expect(seen == returned)
    }

    @Test func concurrentLookupsAreBatched() async throws {
        let directory = try TemporaryDirectory()
        let ledger = try JobLedger(path: directory.path("ledger.sqlite"))
        defer { ledger.close() }
        for index in 0..<300 {
            try await ledger.record(Self.entry("job-\(index)"))
        }
        let flushesBefore = ledger.flushCount
        let hits = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<1000 {
                group.addTask { try await ledger.lookup(["job-\(index % 600)", "job-\(index % 7)"]).count }
            }
            return try await group.reduce(0, +)
        }
        // index % 600 < 300 for half the indexes; index % 7 always hits.
        let expected = (0..<1000).reduce(0) { sum, index in
            let a = index % 600, b = index % 7
            return sum + (a < 300 ? 1 : 0) + (a == b ? 0 : 1)
        }
        #expect(hits == expected)
        #expect(ledger.flushCount - flushesBefore < 100)
    }

    @Test func twoLedgersOnOneFileKeepOneEntryPerID() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("ledger.sqlite")
        let first = try JobLedger(path: path)
        let second = try JobLedger(path: path)
        defer {
            first.close()
            second.close()
        }
        let total = 500
        let results = try await withThrowingTaskGroup(of: (Int, LedgerEntry).self) { group in
            for index in 0..<total {
                group.addTask { (0, try await first.record(Self.entry("job-\(index)", attempt: 1))) }
                group.addTask { (1, try await second.record(Self.entry("job-\(index)", attempt: 2))) }
            }
            var results: [[String: LedgerEntry]] = [[:], [:]]
            for try await (ledger, entry) in group {
                results[ledger][entry.jobID] = entry
            }
            return results
        }
        #expect(try await first.count() == total)
        #expect(try await second.count() == total)
        // Both "processes" were told the same winner for every id, and it is what is stored.
        #expect(results[0] == results[1])
        let stored = try await first.lookup((0..<total).map { "job-\($0)" })
        #expect(stored == results[0])
    }

    @Test func pruneDeletesOldEntries() async throws {
        let directory = try TemporaryDirectory()
        let ledger = try JobLedger(path: directory.path("ledger.sqlite"))
        defer { ledger.close() }
        let cutoff = Date(timeIntervalSince1970: 1_700_000_000)
        // More old entries than one prune chunk, to cover the re-queued continuation.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<4500 {
                group.addTask {
                    try await ledger.record(Self.entry("old-\(index)", finishedAt: cutoff - 1 - Double(index)))
                }
            }
            for index in 0..<10 {
                group.addTask { try await ledger.record(Self.entry("new-\(index)", finishedAt: cutoff + 1)) }
            }
            try await group.waitForAll()
        }
        #expect(try await ledger.prune(finishedBefore: cutoff).jobs == 4500)
        #expect(try await ledger.count() == 10)
        #expect(try await ledger.prune(finishedBefore: cutoff).jobs == 0)
        #expect(try await ledger.lookup("new-0") != nil)
    }

    @Test func operationsAfterCloseThrow() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("ledger.sqlite")
        let ledger = try JobLedger(path: path)
        try await ledger.record(Self.entry("job-1"))
        ledger.close()
        ledger.close()
        await #expect(throws: JobLedger.closedError) { try await ledger.lookup("job-1") }
        await #expect(throws: JobLedger.closedError) { try await ledger.lookup([]) }
        await #expect(throws: JobLedger.closedError) { try await ledger.record(Self.entry("job-2")) }
        await #expect(throws: JobLedger.closedError) { try await ledger.count() }
        await #expect(throws: JobLedger.closedError) { try await ledger.prune(finishedBefore: Date()) }

        // Racing close: every operation either completes (and is durable) or throws the closed error; none hangs.
        let racing = try JobLedger(path: path)
        let outcomes = await withTaskGroup(of: (String, Bool).self) { group in
            for index in 0..<200 {
                group.addTask {
                    do {
                        try await racing.record(Self.entry("race-\(index)"))
                        return ("race-\(index)", true)
                    } catch {
                        #expect(error as? SQLiteError == JobLedger.closedError)
                        return ("race-\(index)", false)
                    }
                }
            }
            group.addTask {
                racing.close()
                return ("", false)
            }
            var outcomes: [String: Bool] = [:]
            for await (id, recorded) in group where !id.isEmpty {
                outcomes[id] = recorded
            }
            return outcomes
        }
        let check = try JobLedger(path: path)
        defer { check.close() }
        let stored = try await check.lookup(Array(outcomes.keys))
        for (id, recorded) in outcomes {
            #expect((stored[id] != nil) == recorded, "\(id)")
        }
        #expect(try await check.lookup("job-1") != nil)
    }
}

@Suite struct JobLedgerMigrationTests {
    @Test func aFirstSchemaLedgerKeepsItsEntriesThroughTheAppendOrderMigration() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("old.sqlite")
        // A ledger file as the first release wrote it: only the first migration, with entries in it.
        do {
            let database = try SQLiteDatabase(path: path)
            defer { database.close() }
            try Migrator([JobLedger.migrator.migrations[0]]).migrate(database)
            try database.execute("""
                INSERT INTO fleet_job_ledger VALUES ('old-2', 'noop', 'dead', 3, x'7b7d', 1700000200.5);
                INSERT INTO fleet_job_ledger VALUES ('old-1', 'noop', 'succeeded', 1, x'5b5d', 1700000100.25);
                """)
        }
        let ledger = try JobLedger(path: path)
        defer { ledger.close() }
        #expect(try await ledger.count() == 2)
        let found = try await ledger.lookup(["old-1", "old-2"])
        #expect(found["old-1"] == LedgerEntry(
            jobID: "old-1", kind: "noop", status: "succeeded", attempt: 1, result: Array("[]".utf8),
            finishedAt: Date(timeIntervalSince1970: 1_700_000_100.25)))
        #expect(found["old-2"]?.status == "dead")
        // The first final result still wins after the migration, and retention still prunes the oldest.
        let kept = try await ledger.record(LedgerEntry(
            jobID: "old-1", kind: "noop", status: "dead", attempt: 2, result: [], finishedAt: Date()))
        #expect(kept.status == "succeeded")
        #expect(try await ledger.prune(finishedBefore: Date(timeIntervalSince1970: 1_700_000_150)).jobs == 1)
        #expect(try await ledger.lookup("old-1") == nil)
        #expect(try await ledger.lookup("old-2") != nil)
    }
}
