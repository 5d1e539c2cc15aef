import Foundation

/// Where the CPU of a benchmark's timed runs goes: CPU µs per job of the broker (when it runs on this machine),
/// of this process (the result consumer, and the raw pipe's thread in the raw runs) and of the worker, and how
/// many cores they kept busy together. On a machine whose cores the broker and the worker share, a run that
/// keeps every core busy is bound by that sum, which is what the email bench's targets are then measured against.
struct CPUBudget {
    /// One timed run.
    struct Sample {
        var brokerMicros: Double?
        var benchMicros: Double
        var workerMicros: Double?
        var cores: Double
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
            let broker = brokerPID.flatMap(ProcessCPU.seconds(pid:)).flatMap { now in self.broker.map { now - $0 } }
            let bench = ProcessCPU.usage() - self.bench
            return Sample(brokerMicros: broker.map { $0 * perJob }, benchMicros: bench * perJob,
                          workerMicros: workerSeconds.map { $0 * perJob },
                          cores: ((broker ?? 0) + bench + (workerSeconds ?? 0)) / wall)
        }
    }

    /// The broker's process, when it listens on this machine; nil otherwise (its CPU is then not counted).
    let brokerPID: pid_t?
    private(set) var samples: [String: [Sample]] = [:]

    init(host: String, port: Int) {
        brokerPID = ProcessCPU.isLoopback(host) ? ProcessCPU.listener(port: port) : nil
    }

    func start() -> Meter {
        Meter(brokerPID: brokerPID, broker: brokerPID.flatMap(ProcessCPU.seconds(pid:)),
              bench: ProcessCPU.usage(), started: .now)
    }

    mutating func record(_ sample: Sample, as run: String) {
        samples[run, default: []].append(sample)
    }

    /// The median of one column of a run's samples, or nil.
    func median(_ run: String, _ column: (Sample) -> Double?) -> Double? {
        let values = (samples[run] ?? []).compactMap(column)
        return values.isEmpty ? nil : BenchWorker.median(values)
    }

    /// The table (medians of the rounds) and what the `measured` run could cost per job to reach `ratio` of the
    /// `reference` run (and `peerFactor` times the peer's rate) at the same number of busy cores. The broker's and
    /// this process's share is taken at its lowest of `measured` and `baseline` (the runtime with no work, at a
    /// higher rate, where the broker's CPU per job is lower), so the worker's room is an upper bound.
    func report(runs: [(key: String, label: String)], reference: String, measured: String, baseline: String, ratio: Double,
                peerRate: Double?, peerFactor: Double) -> [String] {
        guard brokerPID != nil else {
            return ["CPU budget: not measured (the broker does not listen on this machine, or its process cannot be read)"]
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        func us(_ v: Double?) -> String { v.map { String(format: "%.0f", $0) } ?? "–" }
        var lines = ["CPU per job in µs (medians of the rounds; all three processes' CPU over the run's wall time gives the cores busy, of \(cores)):",
                     "| run | broker | bench process | worker | all | cores busy |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for run in runs {
            lines.append("| \(run.label) | \(us(median(run.key, \.brokerMicros))) | \(us(median(run.key, \.benchMicros))) | \(us(median(run.key, \.workerMicros))) | \(us(median(run.key, \.totalMicros))) | \(String(format: "%.2f", median(run.key, \.cores) ?? .nan)) |")
        }
        func around(_ run: String) -> Double? {
            guard let broker = median(run, \.brokerMicros) else { return nil }
            return broker + (median(run, \.benchMicros) ?? 0)
        }
        guard let referenceTotal = median(reference, \.totalMicros), let referenceCores = median(reference, \.cores),
              let measuredAround = around(measured), let worker = median(measured, \.workerMicros),
              let measuredCores = median(measured, \.cores) else { return lines }
        let baselineAround = around(baseline) ?? measuredAround
        let least = min(measuredAround, baselineAround), most = max(measuredAround, baselineAround)
        let baselineWorker = median(baseline, \.workerMicros).map { String(format: "%.0f", $0) } ?? "–"
        func budget(_ allowed: Double, _ what: String) -> String {
            let left = allowed - least
            return String(format: "%@ needs (b) to cost at most %.0f µs per job in all at %.2f busy cores; the broker and bench process take %.0f to %.0f of that (at (b0)'s and at (b)'s rate), which leaves %@ for the worker: (b0)'s worker, with no email work, uses %@, (b)'s %.0f",
                          what, allowed, measuredCores, least, most, left > 0 ? String(format: "at most %.0f µs", left) : "nothing",
                          baselineWorker, worker)
        }
        // rate = cores busy / CPU per job, so b = ratio * a needs total_b <= cores_b * total_a / (ratio * cores_a).
        lines.append(budget(measuredCores * referenceTotal / (ratio * referenceCores), String(format: "b/a >= %.2f", ratio)))
        if let peerRate, peerRate > 0 {
            let rate = peerFactor * peerRate
            lines.append(budget(measuredCores * 1e6 / rate, String(format: "b/c >= %.0f (%.0f jobs/s)", peerFactor, rate)))
        }
        return lines
    }
}
