import Metrics
import Synchronization

/// Counters by their dimension values, made once: `Counter(label:dimensions:)` goes through the metrics factory's
/// lock and lookup each time (about 2% of a click's CPU in `fleet bench serve`'s profile, for two counters).
final class CounterCache: Sendable {
    private let label: String
    private let names: [String]
    private let counters = Mutex<[[String]: Counter]>([:])

    init(label: String, dimensions names: [String]) {
        self.label = label
        self.names = names
    }

    func increment(_ values: [String]) {
        let counter = counters.withLock { table in
            if let c = table[values] { return c }
            let c = Counter(label: label, dimensions: Array(zip(names, values)))
            table[values] = c
            return c
        }
        counter.increment()
    }
}
