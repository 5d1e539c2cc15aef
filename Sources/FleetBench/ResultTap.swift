import FleetBackoff
import AMQPClient
import Synchronization

/// Counts results as they arrive on one consumer: first and last arrival, and arrival time per job id.
final class ResultTap: Sendable {
    struct Run {
        var count: Int
        var first: ContinuousClock.Instant
        var last: ContinuousClock.Instant
        var arrivals: [String: ContinuousClock.Instant]
        /// Body bytes of all the results counted.
        var bytes: Int
        /// Results whose status is `succeeded` (their message id ends `:succeeded`).
        var succeeded = 0

        /// Mean body size of a result.
        var meanBytes: Int { count > 0 ? bytes / count : 0 }

        /// Results per second from the first to the last result.
        var rate: Double { Double(count - 1) / max(1e-9, first.duration(to: last).seconds) }

        func latencies(sentAt sent: [String: ContinuousClock.Instant]) -> (p50: Double, p99: Double) {
            var values: [Double] = []
            for (id, at) in arrivals { if let s = sent[id] { values.append(s.duration(to: at).seconds * 1000) } }
            values.sort()
            guard !values.isEmpty else { return (.nan, .nan) }
            return (values[values.count / 2], values[min(values.count - 1, values.count * 99 / 100)])
        }
    }

    private struct State {
        var expected = 0
        var count = 0
        var bytes = 0
        var succeeded = 0
        var first: ContinuousClock.Instant?
        var last: ContinuousClock.Instant?
        var arrivals: [String: ContinuousClock.Instant] = [:]
        var done: CheckedContinuation<Run, any Error>?
        var finished: Run?
    }

    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let consumer = Mutex<AMQPConsumer?>(nil)

    static func start(_ connection: AMQPConnection, queue: String) async throws -> ResultTap {
        let tap = ResultTap()
        let consumer = try await connection.consume(queue: queue, prefetch: 2000)
        let task = Task {
            for await delivery in consumer {
                let now = ContinuousClock.now
                connection.ack(delivery)
                let messageID = delivery.properties.messageID
                let id = messageID.map { String($0.prefix { $0 != ":" }) } ?? ""
                tap.record(id: id, bytes: delivery.body.count, succeeded: messageID?.hasSuffix(":succeeded") == true, at: now)
            }
        }
        tap.task.withLock { $0 = task }
        tap.consumer.withLock { $0 = consumer }
        return tap
    }

    private func record(id: String, bytes: Int, succeeded: Bool, at now: ContinuousClock.Instant) {
        let resume: (CheckedContinuation<Run, any Error>, Run)? = state.withLock { s in
            s.count += 1
            s.bytes += bytes
            if succeeded { s.succeeded += 1 }
            if s.first == nil { s.first = now }
            s.last = now
            s.arrivals[id] = now
            guard s.count == s.expected, let first = s.first else { return nil }
            let run = Run(count: s.count, first: first, last: now, arrivals: s.arrivals, bytes: s.bytes, succeeded: s.succeeded)
            if let done = s.done {
                s.done = nil
                return (done, run)
            }
            s.finished = run
            return nil
        }
        if let (continuation, run) = resume { continuation.resume(returning: run) }
    }

    func reset(expecting count: Int) {
        state.withLock { $0 = State(expected: count) }
    }

    func wait() async throws -> Run {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Run? = state.withLock { s in
                if let run = s.finished { return run }
                s.done = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Waits for the expected results while `alive()` holds (polled every 50 ms; arrival times are exact); throws
    /// naming `what` when it stops holding first (a worker that died would otherwise be waited for forever).
    func wait(while alive: () -> Bool, what: String) async throws -> Run {
        while true {
            let (run, count, expected) = state.withLock { ($0.finished, $0.count, $0.expected) }
            if let run { return run }
            guard alive() else { throw BenchError("\(what) exited with \(count) of \(expected) results in") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Cancels the consumer (before its queue is deleted, so the broker does not cancel it) and the task.
    func stop() async {
        if let consumer = consumer.withLock({ $0 }) { await consumer.cancel() }
        task.withLock { $0?.cancel() }
    }
}
