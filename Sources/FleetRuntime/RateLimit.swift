import Foundation

/// A sending rate, as relays and providers state them: a count per second, minute or hour (`50/s`, `3000/m`,
/// `100000/h`).
public struct RateLimit: Sendable, Hashable, CustomStringConvertible {
    /// How many per ``interval``.
    public var count: Int
    /// The interval, in seconds: 1, 60 or 3600.
    public var intervalSeconds: Int

    public init(count: Int, intervalSeconds: Int) {
        self.count = count
        self.intervalSeconds = intervalSeconds
    }

    /// Parses `N/s`, `N/m` or `N/h` (also `N/sec`, `N/min`, `N/hour`; N a positive integer). Nil otherwise.
    public init?(parsing text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).lowercased().split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let n = Int(parts[0]), n > 0 else { return nil }
        switch parts[1] {
        case "s", "sec", "second": intervalSeconds = 1
        case "m", "min", "minute": intervalSeconds = 60
        case "h", "hour": intervalSeconds = 3600
        default: return nil
        }
        count = n
    }

    /// Per second.
    public var perSecond: Double { Double(count) / Double(intervalSeconds) }

    public var description: String { "\(count)/\(intervalSeconds == 1 ? "s" : intervalSeconds == 60 ? "m" : "h")" }
}

