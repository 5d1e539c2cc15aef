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
    /// One kind's counters, found with one lookup by kind (they are touched several times per job).
    private final class KindCounters: Sendable {
        let received: Counter
        let duplicates: Counter
        let timer: Timer
        let uncertain: Counter
        /// By ``JobStatus`` in `allCases` order.
        let results: [Counter]

        init(kind: String) {
            received = Counter(label: "fleet_jobs_received_total", dimensions: [("kind", kind)])
            duplicates = Counter(label: "fleet_jobs_duplicate_total", dimensions: [("kind", kind)])
            timer = Timer(label: "fleet_job_run_seconds", dimensions: [("kind", kind)], preferredDisplayUnit: .seconds)
            uncertain = Counter(label: "fleet_effects_uncertain_total", dimensions: [("kind", kind)])
            results = JobStatus.allCases.map {
                Counter(label: "fleet_jobs_total", dimensions: [("kind", kind), ("status", $0.rawValue)])
            }
        }

        func result(_ status: JobStatus) -> Counter {
            results[JobStatus.allCases.firstIndex(of: status)!]
        }
    }

    private let kinds: [String: KindCounters]
    private let unknown: KindCounters
    private let dead = Mutex<[Key: Counter]>([:])
    private let unroutable = Counter(label: "fleet_results_unroutable_total")
    private let prunedRows = Mutex<[String: Counter]>([:])

    init(kinds: [String]) {
        var counters: [String: KindCounters] = [:]
        for kind in Set(kinds) where kind != "unknown" { counters[kind] = KindCounters(kind: kind) }
        self.kinds = counters
        self.unknown = KindCounters(kind: "unknown")
    }

    private func counters(_ kind: String) -> KindCounters { kinds[kind] ?? unknown }

    func uncertainEffects(kind: String, count: Int) { counters(kind).uncertain.increment(by: count) }

    func pruned(table: String, rows: Int) {
        let counter = prunedRows.withLock { cache -> Counter in
            if let c = cache[table] { return c }
            let c = Counter(label: "fleet_store_pruned_rows_total", dimensions: [("table", table)])
            cache[table] = c
            return c
        }
        counter.increment(by: rows)
    }

    func received(kind: String) { counters(kind).received.increment() }
    func duplicate(kind: String) { counters(kind).duplicates.increment() }
    func ran(kind: String, seconds: Double) { counters(kind).timer.recordNanoseconds(Int64(seconds * 1e9)) }
    func finished(kind: String, status: JobStatus) { counters(kind).result(status).increment() }
    func unroutableResult() { unroutable.increment() }
    func deadLettered(kind: String, code: String) {
        let key = Key(kind: kinds[kind] == nil ? "unknown" : kind, status: code)
        let counter = dead.withLock { cache -> Counter in
            if let c = cache[key] { return c }
            let c = Counter(label: "fleet_jobs_dead_total", dimensions: [("kind", key.kind), ("code", code)])
            cache[key] = c
            return c
        }
        counter.increment()
    }
}
