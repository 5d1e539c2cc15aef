import FleetBackoff
import Foundation
import Synchronization

/// The CPU time of the processes a program starts (its descendants: the Celery peer's worker process and its pool
/// processes), read from /proc while the program runs. The program's own CPU (the peer's `run.py`, which enqueues
/// the jobs and collects the results) is not counted.
///
/// Two readings; the figure is the larger:
/// - every 250 ms, the descendants' CPU summed over their /proc entries (each process's own, plus that of its
///   children it has reaped), the largest sum seen: it misses what they used after the last reading;
/// - when the program has exited, before it is reaped, its reaped children's CPU (/proc/PID/stat fields 16 and 17):
///   every descendant's whole CPU, to its exit, once each was waited for up the tree, as a worker that stops its
///   pool and is then waited for by the program is.
final class ProcessTreeCPU: Sendable {
    private struct State {
        var largest = 0.0
        var seen = false
        var stopped = false
    }

    let root: pid_t
    private let state = Mutex(State())

    /// Starts reading the descendants of `root` on a thread of its own.
    init(root: pid_t) {
        self.root = root
        let thread = Thread { [self] in sample() }
        thread.name = "fleet.bench.peercpu"
        thread.start()
    }

    private func sample() {
        while !state.withLock(\.stopped) {
            let below = ProcessCPU.descendants(of: root)
            let sum = below.values.reduce(0) { $0 + $1.seconds + $1.reapedChildrenSeconds }
            state.withLock { s in
                guard !s.stopped, !below.isEmpty else { return }
                s.seen = true
                s.largest = max(s.largest, sum)
            }
            usleep(250_000)
        }
    }

    /// Stops reading and returns the descendants' CPU seconds, or nil when none was seen and none was reaped. Call it
    /// once the program has exited and before it is reaped (``ChildSpawn/waitUntilExited(_:)``), for the second
    /// reading; later, only the first is left.
    func finish() -> Double? {
        let reaped = ProcessCPU.stat(pid: root)?.reapedChildrenSeconds
        let (largest, seen) = state.withLock { s in
            s.stopped = true
            return (s.largest, s.seen)
        }
        guard seen || (reaped ?? 0) > 0 else { return nil }
        return max(largest, reaped ?? 0)
    }
}
