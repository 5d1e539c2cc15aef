import Synchronization

/// A token bucket per key (a client address, or a link token) for POSTs (unsubscribe and preference centre):
/// `perMinute` requests a minute, up to `perMinute` at once. The table is bounded: past ``maxKeys`` keys, those
/// idle for a minute are dropped, and if that leaves more than three quarters, all are (a flood of new keys then
/// starts from full buckets: the bound wins over the limit).
final class PostRateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var at: ContinuousClock.Instant
    }

    private let perMinute: Double
    private let clock: @Sendable () -> ContinuousClock.Instant
    private let buckets = Mutex<[String: Bucket]>([:])
    /// The most keys tracked before idle ones are dropped.
    static let maxKeys = 50_000

    /// The key of a client address: IPv6 addresses by their /64 (one host's network), IPv4 as they are.
    static func addressKey(_ address: String) -> String {
        guard address.contains(":"), let bytes = AddressRange.parse(address), bytes.count == 16 else { return address }
        return bytes[0..<8].map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
    }

    init(perMinute: Int, clock: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.perMinute = Double(perMinute)
        self.clock = clock
    }

    /// nil when `address` may post now, else the seconds until it may.
    func admit(_ address: String) -> Int? {
        let now = clock()
        return buckets.withLock { table in
            var bucket = table[address] ?? Bucket(tokens: perMinute, at: now)
            let elapsed = now - bucket.at
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(perMinute, bucket.tokens + seconds * perMinute / 60)
            bucket.at = now
            defer {
                if table.count > Self.maxKeys {
                    table = table.filter { now - $0.value.at < .seconds(60) }
                    if table.count > Self.maxKeys * 3 / 4 { table.removeAll(keepingCapacity: true) }
                }
            }
            guard bucket.tokens >= 1 else {
                table[address] = bucket
                return Int(((1 - bucket.tokens) * 60 / perMinute).rounded(.up))
            }
            bucket.tokens -= 1
            table[address] = bucket
            return nil
        }
    }
}
