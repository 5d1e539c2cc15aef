/// Per-kind settings of the runtime.
public struct KindSettings: Sendable, Hashable {
    public var retry: RetryPolicy
    /// A run longer than this is cancelled and counts as a retryable `timeout` failure.
    public var timeout: Duration

    public init(retry: RetryPolicy = RetryPolicy(), timeout: Duration = .seconds(60)) {
        self.retry = retry
        self.timeout = timeout
    }
}

import FleetCore
