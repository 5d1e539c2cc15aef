import Synchronization

/// Enforces per-job timeouts for a whole worker with one sweeping task, instead of a timer task per job.
///
/// A job runs its handler inside ``withDeadline(_:_:)``, which registers the running task; the sweep
/// (``run()``, ten times a second) cancels tasks past their deadline and marks them timed out.
/// Registration and cancellation happen under one lock, and a job unregisters before its task ends,
/// so the sweep never touches a finished task.
final class JobWatchdog: Sendable {
    private struct Entry: @unchecked Sendable {
        let deadline: ContinuousClock.Instant
        let task: UnsafeCurrentTask
        var timedOut = false
    }

    private struct State {
        var next: UInt64 = 0
        var entries: [UInt64: Entry] = [:]
    }

    private let state = Mutex(State())
    private let interval: Duration

    init(interval: Duration = .milliseconds(100)) {
        self.interval = interval
    }

    /// Runs `body`; returns its result and whether the deadline cancelled it.
    func withDeadline<T: Sendable>(_ timeout: Duration, _ body: () async -> T) async -> (T, timedOut: Bool) {
        let deadline = ContinuousClock.now + timeout
        let id: UInt64? = withUnsafeCurrentTask { task in
            guard let task else { return nil }
            return state.withLock { s in
                s.next += 1
                s.entries[s.next] = Entry(deadline: deadline, task: task)
                return s.next
            }
        }
        let result = await body()
        guard let id else { return (result, false) }
        let timedOut = state.withLock { s in s.entries.removeValue(forKey: id)?.timedOut ?? false }
        return (result, timedOut)
    }

    /// Sweeps until cancelled.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let now = ContinuousClock.now
            state.withLock { s in
                for (id, entry) in s.entries where !entry.timedOut && entry.deadline <= now {
                    s.entries[id]?.timedOut = true
                    entry.task.cancel()
                }
            }
        }
    }
}
