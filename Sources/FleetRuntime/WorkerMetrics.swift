import FleetCore
import Metrics
import Synchronization

/// The runtime's metrics (swift-metrics; exported by the CLI with swift-prometheus). Labels are bounded:
/// kind, status and error code, never a job, profile or address.
///
/// - `fleet_jobs_received_total{kind}`: deliveries taken from the kind's queue.
/// - `fleet_jobs_total{kind,status}`: results by status.
/// - `fleet_jobs_dead_total{kind,code}`: dead-lettered jobs by error code.
/// - `fleet_jobs_duplicate_total{kind}`: deliveries of jobs that already had a final result (a redelivery after a
///   crash, or a second copy the scheduler published), answered by re-publishing the stored result.
/// - `fleet_job_run_seconds{kind}`: handler run time.
/// - `fleet_results_unroutable_total`: results no queue was bound for.
/// - `fleet_effects_uncertain_total{kind}`: external effects found uncertain (an earlier run recorded the intent
///   and no completion) and not repeated.
/// - `fleet_store_pruned_rows_total{table}`: rows deleted by the retention sweep.
final class WorkerMetrics: Sendable {
    private struct Key: Hashable { let kind: String; let status: String }
    private let received: [String: Counter]
    private let results: [Key: Counter]
    private let duplicates: [String: Counter]
    private let timers: [String: Timer]
    private let dead = Mutex<[Key: Counter]>([:])
    private let unroutable = Counter(label: "fleet_results_unroutable_total")
    private let uncertain: [String: Counter]
    private let prunedRows = Mutex<[String: Counter]>([:])

    init(kinds: [String]) {
        var received: [String: Counter] = [:]
        var results: [Key: Counter] = [:]
        var duplicates: [String: Counter] = [:]
        var timers: [String: Timer] = [:]
        var uncertain: [String: Counter] = [:]
        for kind in Set(kinds + ["unknown"]) {
            uncertain[kind] = Counter(label: "fleet_effects_uncertain_total", dimensions: [("kind", kind)])
            received[kind] = Counter(label: "fleet_jobs_received_total", dimensions: [("kind", kind)])
            duplicates[kind] = Counter(label: "fleet_jobs_duplicate_total", dimensions: [("kind", kind)])
            timers[kind] = Timer(label: "fleet_job_run_seconds", dimensions: [("kind", kind)], preferredDisplayUnit: .seconds)
            for status in JobStatus.allCases {
                results[Key(kind: kind, status: status.rawValue)] = Counter(
                    label: "fleet_jobs_total", dimensions: [("kind", kind), ("status", status.rawValue)])
            }
        }
        self.received = received
        self.results = results
        self.duplicates = duplicates
        self.timers = timers
        self.uncertain = uncertain
    }

    func uncertainEffects(kind: String, count: Int) { (uncertain[kind] ?? uncertain["unknown"])?.increment(by: count) }

    func pruned(table: String, rows: Int) {
        let counter = prunedRows.withLock { cache -> Counter in
            if let c = cache[table] { return c }
            let c = Counter(label: "fleet_store_pruned_rows_total", dimensions: [("table", table)])
            cache[table] = c
            return c
        }
        counter.increment(by: rows)
    }

    func received(kind: String) { (received[kind] ?? received["unknown"])?.increment() }
    func duplicate(kind: String) { (duplicates[kind] ?? duplicates["unknown"])?.increment() }
    func ran(kind: String, seconds: Double) {
        (timers[kind] ?? timers["unknown"])?.recordNanoseconds(Int64(seconds * 1e9))
    }
    func finished(kind: String, status: JobStatus) {
        (results[Key(kind: kind, status: status.rawValue)] ?? results[Key(kind: "unknown", status: status.rawValue)])?.increment()
    }
    func unroutableResult() { unroutable.increment() }
    func deadLettered(kind: String, code: String) {
        let key = Key(kind: received[kind] == nil ? "unknown" : kind, status: code)
        let counter = dead.withLock { cache -> Counter in
            if let c = cache[key] { return c }
            let c = Counter(label: "fleet_jobs_dead_total", dimensions: [("kind", key.kind), ("code", code)])
            cache[key] = c
            return c
        }
        counter.increment()
    }
}
