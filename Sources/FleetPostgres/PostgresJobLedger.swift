import FleetCore
import FleetStore
import Foundation
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The job ledger and effects journal on a PostgreSQL server that the workers of many hosts share
/// (`FLEET_STORE=postgres://...`): a job finished on one host is answered from here when its copy reaches another,
/// and an effect claimed by one host's run is not performed by another's.
///
/// A `Service`: run it in the worker's `ServiceGroup` before the worker (it runs postgres-nio's connection pool) and
/// ``migrate()`` before the first job. Final results are group-committed (one statement for those that arrive
/// together); every other operation is one statement or one transaction on a pooled connection. The server's row
/// locks and `ON CONFLICT` give the same first-writer-wins rules as the SQLite ledger's `BEGIN IMMEDIATE`.
public final class PostgresJobLedger: JobLedgerStore, Service {
    public let client: PostgresClient
    public let url: PostgresURL
    private let logger: Logger
    private let closed = Atomic<Bool>(false)
    /// Set when the pool's `run()` is about to start (``prepare()`` waits for it).
    private let running = Atomic<Bool>(false)
    /// Final results waiting for the next group commit, and whether a flush is under way.
    private let pending = Mutex<(records: [(LedgerEntry, CheckedContinuation<LedgerEntry, any Error>)], flushing: Bool)>(([], false))
    /// Wakes the flush loop.
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>

    /// The schema, by migration name (recorded in `fleet_migrations`; named as the SQLite ledger's where the tables match).
    public static let migrator = PostgresMigrator(lockKey: 0x666C_6565_7401, [
        .init("create fleet_job_ledger", ["""
            CREATE TABLE fleet_job_ledger (
                job_id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                status TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                result BYTEA NOT NULL,
                finished_at DOUBLE PRECISION NOT NULL
            )
            """, "CREATE INDEX fleet_job_ledger_finished_at ON fleet_job_ledger (finished_at)"]),
        .init("create fleet_effects", ["""
            CREATE TABLE fleet_effects (
                job_id TEXT NOT NULL,
                key TEXT NOT NULL,
                done BOOLEAN NOT NULL,
                result BYTEA,
                updated_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (job_id, key)
            )
            """, "CREATE INDEX fleet_effects_updated_at ON fleet_effects (updated_at)"]),
    ])

    public init(url: PostgresURL, logger: Logger = Logger(label: "fleet.ledger")) {
        self.url = url
        var logger = logger
        logger[metadataKey: "ledger.url"] = "\(url)"
        self.logger = logger
        client = PostgresClient(configuration: url.configuration, backgroundLogger: logger)
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Runs the connection pool and the group commit of final results until the service group shuts down (or the
    /// task is cancelled); records still waiting then fail with `JobLedger.closedError` (their jobs are not acked and
    /// come back).
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    self.running.store(true, ordering: .releasing)
                    await self.client.run()
                }
                group.addTask { await self.flushLoop() }
                await group.next()
                group.cancelAll()
            }
        }
        // Nothing flushes from now on: later records fail at once instead of waiting for a flush that never comes.
        closed.store(true, ordering: .relaxed)
        let left = pending.withLock { p in
            defer { p = ([], false) }
            return p.records
        }
        for (_, continuation) in left { continuation.resume(throwing: JobLedger.closedError) }
    }

    /// One flush at a time: records arriving meanwhile wait for the next, so that under load one statement commits
    /// many jobs (measured with `fleet bench --ledger`: README, "The runtime").
    private func flushLoop() async {
        for await _ in wakes {
            while true {
                let batch = pending.withLock { p -> [(LedgerEntry, CheckedContinuation<LedgerEntry, any Error>)] in
                    let b = p.records
                    p.records = []
                    if b.isEmpty { p.flushing = false }
                    return b
                }
                if batch.isEmpty { break }
                await flush(batch)
            }
        }
    }

    /// Inserts a batch of final results in one statement; the entries that conflicted (recorded before, or twice in
    /// the batch) get the stored one.
    private func flush(_ batch: [(LedgerEntry, CheckedContinuation<LedgerEntry, any Error>)]) async {
        // One row per job id (a second copy of an id gets the stored entry), in job id order so that batches of two
        // hosts overlapping in ids take their row locks in the same order.
        var firsts = Set<String>()
        let entries = batch.map(\.0).filter { firsts.insert($0.jobID).inserted }.sorted { $0.jobID < $1.jobID }
        do {
            let rows = try await client.query("""
                INSERT INTO fleet_job_ledger (job_id, kind, status, attempt, result, finished_at)
                SELECT * FROM unnest(\(entries.map(\.jobID))::text[], \(entries.map(\.kind))::text[], \(entries.map(\.status))::text[],
                                     \(entries.map(\.attempt))::int8[], \(entries.map { ByteBuffer(bytes: $0.result) })::bytea[],
                                     \(entries.map(\.finishedAt.timeIntervalSince1970))::float8[])
                ON CONFLICT (job_id) DO NOTHING RETURNING job_id
                """, logger: logger)
            var inserted = Set<String>()
            for try await id in rows.decode(String.self) { inserted.insert(id) }
            // The first copy of an inserted id won; every other record (stored before, or a later copy in this batch)
            // gets the stored entry.
            var won = Set<String>()
            var conflicted = Set<String>()
            for (entry, _) in batch {
                if inserted.contains(entry.jobID), won.insert(entry.jobID).inserted { continue }
                conflicted.insert(entry.jobID)
            }
            let stored = conflicted.isEmpty ? [:] : try await select(Array(conflicted))
            var answered = Set<String>()
            for (entry, continuation) in batch {
                if inserted.contains(entry.jobID), answered.insert(entry.jobID).inserted {
                    var e = entry
                    e.finishedAt = Date(timeIntervalSince1970: entry.finishedAt.timeIntervalSince1970)
                    continuation.resume(returning: e)
                } else if let existing = stored[entry.jobID] {
                    continuation.resume(returning: existing)
                } else {
                    continuation.resume(throwing: PostgresLedgerError("ledger entry \(entry.jobID) conflicted but cannot be read back"))
                }
            }
        } catch {
            logger.error("Job ledger group commit failed", metadata: ["records": "\(batch.count)", "error": "\(String(reflecting: type(of: error)))"])
            for (_, continuation) in batch { continuation.resume(throwing: error) }
        }
    }

    /// Migrates the schema before the worker's first job, once the pool runs (the service group starts this service
    /// and the worker together: without the wait, postgres-nio warns of a lease before `run()`).
    public func prepare() async throws {
        while !running.load(ordering: .acquiring) {
            try await Task.sleep(for: .milliseconds(1))
        }
        try await migrate()
    }

    /// Creates or updates the schema (safe when many workers start at once).
    public func migrate() async throws {
        let applied = try await Self.migrator.migrate(client, logger: logger)
        if !applied.isEmpty { logger.info("Migrated job ledger", metadata: ["migrations": "\(applied)"]) }
    }

    private func checkOpen() throws {
        if closed.load(ordering: .relaxed) { throw JobLedger.closedError }
    }

    private static func entry(_ row: (String, String, String, Int, ByteBuffer, Double)) -> LedgerEntry {
        LedgerEntry(jobID: row.0, kind: row.1, status: row.2, attempt: row.3, result: Array(row.4.readableBytesView),
                    finishedAt: Date(timeIntervalSince1970: row.5))
    }

    public func lookup(_ ids: [String]) async throws -> [String: LedgerEntry] {
        try checkOpen()
        return try await select(ids)
    }

    /// The stored entries of `ids` (also after ``close()``: a flush under way reads its conflicts back).
    private func select(_ ids: [String]) async throws -> [String: LedgerEntry] {
        guard !ids.isEmpty else { return [:] }
        var out: [String: LedgerEntry] = [:]
        let rows = try await client.query("""
            SELECT job_id, kind, status, attempt, result, finished_at FROM fleet_job_ledger WHERE job_id = ANY(\(ids))
            """, logger: logger)
        for try await row in rows.decode((String, String, String, Int, ByteBuffer, Double).self) {
            out[row.0] = Self.entry(row)
        }
        return out
    }

    public func record(_ entry: LedgerEntry, effectsDone: [(key: String, result: [UInt8])]) async throws -> LedgerEntry {
        try checkOpen()
        let now = Date().timeIntervalSince1970
        let finished = entry.finishedAt.timeIntervalSince1970
        if effectsDone.isEmpty {
            // The group commit: one statement for the results that arrive together.
            return try await withCheckedThrowingContinuation { continuation in
                let start = pending.withLock { p -> Bool? in
                    // Checked under the lock that run() drains under: a record is either flushed or failed.
                    if closed.load(ordering: .relaxed) { return nil }
                    p.records.append((entry, continuation))
                    if p.flushing { return false }
                    p.flushing = true
                    return true
                }
                switch start {
                case nil: continuation.resume(throwing: JobLedger.closedError)
                case true?: wake.yield()
                case false?: break
                }
            }
        }
        return try await client.withTransaction(logger: logger) { connection in
            for effect in effectsDone {
                try await Self.writeDone(jobID: entry.jobID, key: effect.key, result: effect.result, at: now, on: connection, logger: logger)
            }
            let inserted = try await connection.query("""
                INSERT INTO fleet_job_ledger (job_id, kind, status, attempt, result, finished_at)
                VALUES (\(entry.jobID), \(entry.kind), \(entry.status), \(entry.attempt), \(ByteBuffer(bytes: entry.result)), \(finished))
                ON CONFLICT (job_id) DO NOTHING RETURNING job_id
                """, logger: logger)
            var won = false
            for try await _ in inserted.decode(String.self) { won = true }
            if won {
                var stored = entry
                stored.finishedAt = Date(timeIntervalSince1970: finished)
                return stored
            }
            // Another attempt or host recorded it first: its entry stands.
            let rows = try await connection.query("""
                SELECT job_id, kind, status, attempt, result, finished_at FROM fleet_job_ledger WHERE job_id = \(entry.jobID)
                """, logger: logger)
            for try await row in rows.decode((String, String, String, Int, ByteBuffer, Double).self) { return Self.entry(row) }
            throw PostgresLedgerError("ledger entry \(entry.jobID) conflicted but cannot be read back")
        }
    }

    public func forgetDead(_ id: String) async throws -> Bool {
        try checkOpen()
        let rows = try await client.query("DELETE FROM fleet_job_ledger WHERE job_id = \(id) AND status = 'dead' RETURNING job_id", logger: logger)
        var removed = false
        for try await _ in rows.decode(String.self) { removed = true }
        return removed
    }

    public func prune(finishedBefore date: Date) async throws -> (jobs: Int, effects: Int) {
        try checkOpen()
        let cutoff = date.timeIntervalSince1970
        let jobs = try await client.query("WITH d AS (DELETE FROM fleet_job_ledger WHERE finished_at < \(cutoff) RETURNING 1) SELECT count(*) FROM d",
                                          logger: logger)
        let effects = try await client.query("WITH d AS (DELETE FROM fleet_effects WHERE updated_at < \(cutoff) RETURNING 1) SELECT count(*) FROM d",
                                             logger: logger)
        var counts = (0, 0)
        for try await n in jobs.decode(Int.self) { counts.0 = n }
        for try await n in effects.decode(Int.self) { counts.1 = n }
        return counts
    }

    public func effects(jobID: String) async throws -> [String: EffectRecord] {
        try checkOpen()
        var out: [String: EffectRecord] = [:]
        let rows = try await client.query("SELECT key, done, result, updated_at FROM fleet_effects WHERE job_id = \(jobID)", logger: logger)
        for try await (key, done, result, updated) in rows.decode((String, Bool, ByteBuffer?, Double).self) {
            out[key] = EffectRecord(key: key, isDone: done, result: result.map { Array($0.readableBytesView) },
                                    updatedAt: Date(timeIntervalSince1970: updated))
        }
        return out
    }

    public func recordEffectIntent(jobID: String, key: String) async throws -> EffectRecord? {
        try checkOpen()
        // A record found on conflict can be gone by the time it is read (its intent forgotten): then claim again.
        for _ in 0..<3 {
            let now = Date().timeIntervalSince1970
            let rows = try await client.query("""
                INSERT INTO fleet_effects (job_id, key, done, result, updated_at) VALUES (\(jobID), \(key), false, NULL, \(now))
                ON CONFLICT (job_id, key) DO NOTHING RETURNING key
                """, logger: logger)
            var claimed = false
            for try await _ in rows.decode(String.self) { claimed = true }
            if claimed { return nil }
            // Claimed before: by an earlier run, or by a run of the same job id on another host.
            if let existing = try await effects(jobID: jobID)[key] { return existing }
        }
        throw PostgresLedgerError("effect \(key) of job \(jobID) keeps changing: claimed and forgotten under this run")
    }

    public func recordEffectDone(jobID: String, key: String, result: [UInt8]) async throws {
        try checkOpen()
        try await client.withConnection { connection in
            try await Self.writeDone(jobID: jobID, key: key, result: result, at: Date().timeIntervalSince1970, on: connection, logger: logger)
        }
    }

    public func forgetEffect(jobID: String, key: String) async throws {
        try checkOpen()
        try await client.query("DELETE FROM fleet_effects WHERE job_id = \(jobID) AND key = \(key) AND NOT done", logger: logger)
    }

    public func count() async throws -> Int {
        try checkOpen()
        for try await n in try await client.query("SELECT count(*) FROM fleet_job_ledger", logger: logger).decode(Int.self) { return n }
        return 0
    }

    /// Refuses later operations; the pool closes when the service group stops the service.
    public func close() {
        closed.store(true, ordering: .relaxed)
    }

    private static func writeDone(jobID: String, key: String, result: [UInt8], at now: Double, on connection: PostgresConnection,
                                  logger: Logger) async throws {
        try await connection.query("""
            INSERT INTO fleet_effects (job_id, key, done, result, updated_at) VALUES (\(jobID), \(key), true, \(ByteBuffer(bytes: result)), \(now))
            ON CONFLICT (job_id, key) DO UPDATE SET done = true, result = excluded.result, updated_at = excluded.updated_at
            """, logger: logger)
    }
}

/// A ledger operation on PostgreSQL that failed for a reason of its own (not the server's error).
public struct PostgresLedgerError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension PSQLError: JobErrorConvertible {
    /// A server that could not be used (down, refused, a failed statement): retryable `store_unavailable`, whatever
    /// handler met it. The message holds the server's SQLSTATE, never a query's values.
    public var jobError: JobError {
        JobError.retryable(JobError.storeUnavailable, "the store is unavailable: PostgreSQL \(code)\(serverInfo?[.sqlState].map { " SQLSTATE \($0)" } ?? "")")
    }
}

extension PostgresLedgerError: JobErrorConvertible {
    public var jobError: JobError { JobError.retryable(JobError.storeUnavailable, "the store is unavailable: \(message)") }
}
