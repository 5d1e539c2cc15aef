import Synchronization

/// A token bucket per client address for POSTs (unsubscribe and preference centre): `perMinute` requests a minute,
/// up to `perMinute` at once. Addresses not seen for a while are forgotten when the table grows.
final class PostRateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var at: ContinuousClock.Instant
    }

    private let perMinute: Double
    private let buckets = Mutex<[String: Bucket]>([:])
    /// The most addresses tracked before idle ones are dropped.
    static let maxAddresses = 50_000

    init(perMinute: Int) {
        self.perMinute = Double(perMinute)
    }

    /// nil when `address` may post now, else the seconds until it may.
    func admit(_ address: String, now: ContinuousClock.Instant = .now) -> Int? {
        buckets.withLock { table in
            var bucket = table[address] ?? Bucket(tokens: perMinute, at: now)
            let elapsed = now - bucket.at
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(perMinute, bucket.tokens + seconds * perMinute / 60)
            bucket.at = now
            defer {
                if table.count > Self.maxAddresses {
                    table = table.filter { now - $0.value.at < .seconds(60) }
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
