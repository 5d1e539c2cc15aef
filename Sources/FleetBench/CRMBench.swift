import FleetBackoff
import AMQPClient
import FleetAMQP
import FleetCore
import FleetStore
import Foundation
import ProfileStore

/// `fleet bench crm`: CRM sync throughput through the broker with a real `fleet worker --kinds crm`
/// (batches of 100 ops, then batches of 1), read-model reads/s on one thread, and, in the same run, raw SQLite
/// inserts and point reads with the same durability settings (WAL, synchronous=NORMAL, secure_delete).
public struct CRMBench: Sendable {
    /// Identify ops in the batched run (the batch-of-1 run uses a tenth, at least 1,000).
    var ops: Int
    /// The worker's concurrency and prefetch.
    var concurrency: Int
    var prefetch: Int
    /// The broker's URL (the worker's `FLEET_AMQP_URL`) and its parsed configuration.
    var amqpURL: String
    var amqp: AMQPConfiguration
    /// Whether this executable is a debug build (the report warns: measure a release build).
    var debugBuild: Bool
    /// Where the report and the figures go.
    var output: BenchOutput
    /// A PostgreSQL database (`postgres://...`): the two sync runs again with the worker's store there.
    var postgres: String?

    public init(ops: Int, concurrency: Int, prefetch: Int, amqpURL: String, amqp: AMQPConfiguration, debugBuild: Bool,
                output: BenchOutput, postgres: String? = nil) {
        self.postgres = postgres
        self.ops = ops
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.amqpURL = amqpURL
        self.amqp = amqp
        self.debugBuild = debugBuild
        self.output = output
    }

    /// Runs the benchmark on `connection` (the publisher's and the result consumer's) and prints the report, then with
    /// `--json` the figures.
    public func run(connection: AMQPConnection) async throws {
        let prefix = "fleet-bench-crm-\(UUID().uuidString.prefix(6).lowercased())"
        let topology = FleetTopology(prefix: prefix, kinds: ["crm"])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(prefix)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = directory.appendingPathComponent("fleet.sqlite").path
        // Created and migrated here, so the workers' start-up (not measured) only opens it.
        let created = ProfileStore(path: store)
        try await created.open()
        created.close()
        try await connection.declare(topology.declarations, redeclareOnReconnect: false)
        let results = try await ResultTap.start(connection, queue: topology.resultsQueue)
        output.line("fleet bench crm: \(ops) identify ops per run (profiles of 8 traits, 10,000 profiles), \(debugBuild ? "debug" : "release") build, broker \(amqp.redactedURL)")
        output.line("sync timing: a fresh worker is started and consuming first (start-up not measured); then from the first publish to the last result")
        if debugBuild { output.line("warning: this is a debug build; measure with 'swift build -c release'") }
        var worker: BenchWorker?
        defer {
            worker?.stop()
        }
        do {
            // (1) batches of 100 through the broker.
            let batched = try await sync(connection, topology: topology, results: results, batch: 100, count: ops, tag: "b100",
                                         startWorker: { worker = try startWorker(prefix: prefix, store: store) })
            worker?.stop()
            // (2) batches of 1, with a fresh worker on the same store.
            let singles = try await sync(connection, topology: topology, results: results, batch: 1, count: max(1000, ops / 10),
                                         tag: "b1", startWorker: { worker = try startWorker(prefix: prefix, store: store) })
            // (1b, 2b) the same on PostgreSQL (op ids of this run's own: the database may hold earlier runs').
            var onPostgres: (batched: Double, singles: Double)?
            if let postgres {
                worker?.stop()
                let b = try await sync(connection, topology: topology, results: results, batch: 100, count: ops, tag: "pg100-\(prefix)",
                                       startWorker: { worker = try startWorker(prefix: prefix, store: postgres) })
                worker?.stop()
                let s = try await sync(connection, topology: topology, results: results, batch: 1, count: max(1000, ops / 10),
                                       tag: "pg1-\(prefix)", startWorker: { worker = try startWorker(prefix: prefix, store: postgres) })
                onPostgres = (b, s)
            }
            // (3) read-model reads on one dedicated thread.
            let reads = try await onThread { try readModelRate(store: store, profiles: min(10_000, ops), seconds: 2) }
            // (4) raw SQLite, same pragmas, same run.
            let raw = try await onThread { try rawSQLite(directory: directory, rows: ops) }
            worker?.stop()
            await results.stop()
            await connection.delete(topology.declarations)

            let f = BenchFormat.thousands
            output.line()
            output.line("| measure | per second | raw SQLite, same settings | ratio |")
            output.line("| --- | ---: | ---: | ---: |")
            output.line("| CRM sync, batches of 100, end to end | \(f(batched)) ops/s | \(f(raw.inserts100)) inserts/s (100 per txn) | \(String(format: "%.2f", batched / raw.inserts100)) |")
            output.line("| CRM sync, batches of 1, end to end | \(f(singles)) ops/s | \(f(raw.inserts1)) inserts/s (1 per txn) | \(String(format: "%.2f", singles / raw.inserts1)) |")
            output.line("| read model (ProfileView by id), one thread | \(f(reads)) reads/s | \(f(raw.reads)) point reads/s | \(String(format: "%.2f", reads / raw.reads)) |")
            if let onPostgres {
                output.line("| CRM sync on PostgreSQL, batches of 100 | \(f(onPostgres.batched)) ops/s | on SQLite: \(f(batched)) ops/s | \(String(format: "%.2f", onPostgres.batched / batched)) |")
                output.line("| CRM sync on PostgreSQL, batches of 1 | \(f(onPostgres.singles)) ops/s | on SQLite: \(f(singles)) ops/s | \(String(format: "%.2f", onPostgres.singles / singles)) |")
            }
            output.line()
            output.line("targets: batched sync >= 20,000 ops/s: \(batched >= 20_000 ? "met" : "NOT met"); read model >= 100,000 reads/s: \(reads >= 100_000 ? "met" : "NOT met")")

            var figures = JSONObject()
            figures["ops"] = .count(ops)
            figures["sync_batch100_ops_per_s"] = .number(batched, places: 1)
            figures["sync_batch1_ops_per_s"] = .number(singles, places: 1)
            figures["read_model_reads_per_s"] = .number(reads, places: 1)
            figures["raw_inserts_batch100_per_s"] = .number(raw.inserts100, places: 1)
            figures["raw_inserts_batch1_per_s"] = .number(raw.inserts1, places: 1)
            figures["raw_reads_per_s"] = .number(raw.reads, places: 1)
            figures["sync_batch100_vs_raw_ratio"] = .number(batched / raw.inserts100, places: 3)
            figures["sync_batch1_vs_raw_ratio"] = .number(singles / raw.inserts1, places: 3)
            figures["read_model_vs_raw_ratio"] = .number(reads / raw.reads, places: 3)
            if let onPostgres {
                figures["pg_sync_batch100_ops_per_s"] = .number(onPostgres.batched, places: 1)
                figures["pg_sync_batch1_ops_per_s"] = .number(onPostgres.singles, places: 1)
            }
            output.figures(figures)
        } catch {
            worker?.stop()
            await results.stop()
            await connection.delete(topology.declarations)
            throw error
        }
    }

    /// Runs `count` identify ops in jobs of `batch` through a fresh worker: ops/s.
    ///
    /// Timing: the job bodies are built first (untimed), the worker is started and the bench waits until it
    /// consumes the job queue (its connection, topology and store are ready: start-up is not measured), then the
    /// clock runs from the first publish to the last result, so publishing, the broker, the worker, the store,
    /// the result and the ack are all inside the measured window.
    private func sync(_ connection: AMQPConnection, topology: FleetTopology, results: ResultTap, batch: Int, count: Int,
                      tag: String, startWorker: () throws -> Void) async throws -> Double {
        let jobs = count / batch
        let base = Int64(1_700_000_000_000)
        let cities = ["berlin", "paris", "lyon", "madrid"]
        var bodies: [(id: String, body: [UInt8])] = []
        bodies.reserveCapacity(jobs)
        for j in 0..<jobs {
            var ops: [JSONValue] = []
            for i in 0..<batch {
                let n = j * batch + i
                var traits = JSONObject()
                traits["first_name"] = .string("name\(n % 977)")
                traits["city"] = .string(cities[n % cities.count])
                traits["tier"] = .string(n % 3 == 0 ? "gold" : "silver")
                traits["points"] = .int(Int64(n % 1000))
                traits["locale"] = "de"
                traits["email_opt_in"] = .bool(n % 2 == 0)
                traits["signup_at"] = "2024-01-10T10:00:00Z"
                traits["run"] = .string(tag)
                var op = JSONObject()
                op["op"] = "identify"
                op["op_id"] = .string("\(tag)-\(n)")
                op["profile_id"] = .string("p\(n % 10_000)")
                op["timestamp"] = .int(base + Int64(n))
                op["traits"] = .object(traits)
                ops.append(.object(op))
            }
            let data: JSONValue = batch == 1 ? ops[0] : ["op": "batch", "ops": .array(ops)]
            let id = "\(tag)-job-\(j)"
            bodies.append((id, JSONValue.object(JSONObject(["id": .string(id), "kind": "crm", "data": data])).serialized()))
        }
        results.reset(expecting: jobs)
        try startWorker()
        try await BenchWorker.waitForConsumer(connection, queue: topology.queue(forKind: "crm"))
        let started = ContinuousClock.now
        try await BenchJobs.publish(connection, bodies, exchange: topology.jobsExchange, routingKey: "crm", kind: "crm")
        let run = try await results.wait()
        let seconds = max(1e-9, started.duration(to: run.last).seconds)
        return Double(run.count * batch) / seconds
    }

    private func startWorker(prefix: String, store: String) throws -> BenchWorker {
        try BenchWorker.start(kinds: "crm", concurrency: concurrency, prefetch: prefetch, prefix: prefix, store: store, amqpURL: amqpURL)
    }

    /// Reads random profiles' read models (by id, segments evaluated: none defined) for `seconds`.
    private func readModelRate(store: String, profiles: Int, seconds: Double) throws -> Double {
        let reader = try ProfileReader(path: store)
        defer { reader.close() }
        var rng = SystemRandomNumberGenerator()
        let ids = (0..<4096).map { _ in "p\(Int.random(in: 0..<profiles, using: &rng))" }
        let start = ContinuousClock.now
        var n = 0
        var found = 0
        while start.duration(to: .now).seconds < seconds {
            for _ in 0..<1000 {
                if try reader.view(id: ids[n & 4095]) != nil { found += 1 }
                n += 1
            }
        }
        guard found == n else { throw BenchError("read model bench: \(n - found) profiles missing") }
        return Double(n) / start.duration(to: .now).seconds
    }

    /// Raw SQLite with the store's settings: inserts of the same JSON rows (100 per transaction, then 1), then point
    /// reads by id.
    private func rawSQLite(directory: URL, rows: Int) throws -> (inserts100: Double, inserts1: Double, reads: Double) {
        let db = try SQLiteDatabase(path: directory.appendingPathComponent("raw.sqlite").path)
        defer { db.close() }
        try db.execute("""
            PRAGMA secure_delete=ON;
            CREATE TABLE raw (id TEXT NOT NULL UNIQUE, traits TEXT NOT NULL, updated_at INTEGER NOT NULL);
            """)
        let traits = #"{"first_name":"name1","city":"berlin","tier":"gold","points":1,"locale":"de","email_opt_in":true,"signup_at":"2024-01-10T10:00:00Z","run":"raw"}"#
        func insert(_ n: Int) throws {
            try db.withStatement("INSERT INTO raw (id, traits, updated_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET traits = excluded.traits, updated_at = excluded.updated_at") { s in
                try s.bind("p\(n % 10_000)", at: 1)
                try s.bind(traits, at: 2)
                try s.bind(n, at: 3)
                try s.run()
            }
        }
        var start = ContinuousClock.now
        var n = 0
        while n < rows {
            try db.transaction { for _ in 0..<100 { try insert(n); n += 1 } }
        }
        let inserts100 = Double(n) / start.duration(to: .now).seconds
        start = .now
        let singles = max(1000, rows / 10)
        for i in 0..<singles { try db.transaction { try insert(i) } }
        let inserts1 = Double(singles) / start.duration(to: .now).seconds
        start = .now
        var reads = 0
        var rng = SystemRandomNumberGenerator()
        let ids = (0..<4096).map { _ in "p\(Int.random(in: 0..<10_000, using: &rng))" }
        while start.duration(to: .now).seconds < 2 {
            for _ in 0..<1000 {
                _ = try db.withStatement("SELECT traits, updated_at FROM raw WHERE id = ?") { s -> Bool in
                    try s.bind(ids[reads & 4095], at: 1)
                    guard try s.step() else { return false }
                    return s.string(at: 0) != nil
                }
                reads += 1
            }
        }
        return (inserts100, inserts1, Double(reads) / start.duration(to: .now).seconds)
    }

    /// Runs blocking work on a thread of its own (never on the cooperative pool).
    private func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.stackSize = 1 << 22
            thread.start()
        }
    }
}
