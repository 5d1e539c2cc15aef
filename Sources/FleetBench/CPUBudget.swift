import FleetBackoff
import FleetCore
import Foundation

/// Where the CPU of a benchmark's timed runs goes: CPU µs per job of the broker (when it runs on this machine),
/// of this process (the result consumer, and the raw pipe's thread in the raw runs) and of the worker, and how
/// many cores they kept busy together. A run's rate is its busy cores over its CPU per job, every process
/// counted; on a machine whose cores the broker and the worker share, that bounds what a worker may spend per job.
struct CPUBudget {
    /// One timed run. Without a broker reading, its total and its cores busy are unknown.
    struct Sample {
        var brokerMicros: Double?
        var benchMicros: Double
        var workerMicros: Double?
        var cores: Double?
        var totalMicros: Double? { brokerMicros.map { $0 + benchMicros + (workerMicros ?? 0) } }
    }

    /// CPU readings at the start of a run.
    struct Meter {
        let brokerPID: pid_t?
        let broker: Double?
        let bench: Double
        let started: ContinuousClock.Instant

        /// The run's sample over `jobs` jobs; `workerSeconds`: the worker's CPU over the run, if one ran.
        func finish(jobs: Int, workerSeconds: Double? = nil) -> Sample {
            let wall = max(1e-9, started.duration(to: .now).seconds)
            let perJob = 1e6 / Double(max(1, jobs))
            // A broker that went away (or a pid reused since) reads as missing, not as a negative CPU time.
            let broker = brokerPID.flatMap(ProcessCPU.seconds(pid:)).flatMap { now in self.broker.map { now - $0 } }
                .flatMap { $0 >= 0 ? $0 : nil }
            let bench = ProcessCPU.usage() - self.bench
            return Sample(brokerMicros: broker.map { $0 * perJob }, benchMicros: bench * perJob,
                          workerMicros: workerSeconds.map { $0 * perJob },
                          cores: broker.map { ($0 + bench + (workerSeconds ?? 0)) / wall })
        }
    }

    /// The broker's process, when it listens on this machine; nil otherwise (its CPU is then not counted).
    let brokerPID: pid_t?
    /// The samples of each run, by the run's key.
    private(set) var samples: [String: [Sample]] = [:]

    /// Finds the broker of `host`:`port` when the host is a loopback address (found once, before the runs).
    /// A scan that finds nothing is repeated twice: /proc/net/tcp is read in pages, and a listener can be missed
    /// while many sockets open and close (seen once in a full test run on 2 busy cores).
    init(host: String, port: Int) {
        var pid: pid_t?
        if ProcessCPU.isLoopback(host) {
            for attempt in 0..<3 {
                pid = ProcessCPU.listener(port: port)
                if pid != nil { break }
                if attempt < 2 { usleep(100_000) }
            }
        }
        brokerPID = pid
    }

    /// Takes the readings a run starts from.
    func start() -> Meter {
        Meter(brokerPID: brokerPID, broker: brokerPID.flatMap(ProcessCPU.seconds(pid:)),
              bench: ProcessCPU.usage(), started: .now)
    }

    /// Keeps a run's sample under the run's key (one per round).
    mutating func record(_ sample: Sample, as run: String) {
        samples[run, default: []].append(sample)
    }

    /// The median of one column of a run's samples, or nil.
    func median(_ run: String, _ column: (Sample) -> Double?) -> Double? {
        let values = (samples[run] ?? []).compactMap(column)
        return values.isEmpty ? nil : BenchWorker.median(values)
    }

    /// Each run's medians (µs per job; null when not measured) by the run's key, for the figures.
    func figures(runs: [String]) -> JSONObject {
        var figures = JSONObject()
        for run in runs {
            var row = JSONObject()
            row["broker_us"] = .number(median(run, \.brokerMicros), places: 1)
            row["bench_us"] = .number(median(run, \.benchMicros), places: 1)
            row["worker_us"] = .number(median(run, \.workerMicros), places: 1)
            row["all_us"] = .number(median(run, \.totalMicros), places: 1)
            row["cores_busy"] = .number(median(run, \.cores), places: 2)
            figures[run] = .object(row)
        }
        return figures
    }

    /// The table (medians of the rounds) and how much CPU per job the `measured` run could spend to reach `ratio` of
    /// the `reference` run's rate (and `peerFactor` times the peer's rate). The allowance is generous to the worker:
    /// every core of the machine busy, and the broker's and this process's share at its lowest of `measured` and
    /// `baseline` (the runtime with no work, at a higher rate); the figure at the run's own busy cores follows it.
    func report(runs: [(key: String, label: String)], reference: String, measured: String, baseline: String, ratio: Double,
                peerRate: Double?, peerFactor: Double) -> [String] {
        guard brokerPID != nil else {
            return ["CPU budget: not measured (no process of this machine was found listening on the broker's port: its URL's host is not a loopback address, or the process cannot be read)"]
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        func us(_ v: Double?) -> String { v.map { String(format: "%.0f", $0) } ?? "–" }
        var lines = ["CPU per job in µs (medians of the rounds; all three processes' CPU over the run's wall time gives the cores busy, of \(cores)):",
                     "| run | broker | bench process | worker | all | cores busy |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for run in runs {
            lines.append("| \(run.label) | \(us(median(run.key, \.brokerMicros))) | \(us(median(run.key, \.benchMicros))) | \(us(median(run.key, \.workerMicros))) | \(us(median(run.key, \.totalMicros))) | \(median(run.key, \.cores).map { String(format: "%.2f", $0) } ?? "–") |")
        }
        // The broker's and this process's share of a run, from the samples that have both.
        func share(_ run: String) -> Double? { median(run) { s in s.brokerMicros.map { $0 + s.benchMicros } } }
        guard let referenceTotal = median(reference, \.totalMicros), let referenceCores = median(reference, \.cores),
              let measuredShare = share(measured), let worker = median(measured, \.workerMicros),
              let measuredCores = median(measured, \.cores) else { return lines }
        let baselineShare = share(baseline)
        let lowest = min(measuredShare, baselineShare ?? measuredShare)
        let (measuredLabel, baselineLabel) = ("(\(measured))", "(\(baseline))")
        let lowestRun = lowest < measuredShare ? baselineLabel : measuredLabel
        let baselineWorker = median(baseline, \.workerMicros).map { String(format: "%.0f", $0) } ?? "–"
        func room(_ left: Double) -> String { left > 0 ? String(format: "at most %.0f µs", left) : String(format: "nothing (%.0f µs)", left) }
        // perCore: the CPU per job allowed for each busy core.
        func budget(_ what: String, perCore: Double) -> String {
            let allowed = perCore * Double(cores), atOwn = perCore * measuredCores
            return String(format: "%@ allows %@ at most %.0f µs per job in all with all %d cores busy (%.0f at its own %.2f). Less the broker's and bench process's share at its lowest (%.0f, in %@; %.0f in %@), the worker may use %@ (%@). %@'s worker, with no email work, uses %@; %@'s %.0f.",
                          what, measuredLabel, allowed, cores, atOwn, measuredCores, lowest, lowestRun, measuredShare, measuredLabel,
                          room(allowed - lowest), room(atOwn - lowest), baselineLabel, baselineWorker, measuredLabel, worker)
        }
        // rate = cores busy / CPU per job, so b = ratio * a needs total_b <= cores_b * total_a / (ratio * cores_a).
        lines.append(budget(String(format: "b/a >= %.2f", ratio), perCore: referenceTotal / (ratio * referenceCores)))
        if let peerRate, peerRate > 0 {
            let rate = peerFactor * peerRate
            lines.append(budget(String(format: "b/c >= %.0f (%.0f jobs/s)", peerFactor, rate), perCore: 1e6 / rate))
        }
        return lines
    }
}
