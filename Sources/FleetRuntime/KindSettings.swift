import FleetCore

/// Per-kind settings of the runtime.
public struct KindSettings: Sendable {
    /// The default retry strategy's settings (attempts, backoff), as the CLI and config file set them.
    public var retry: RetryPolicy
    /// A strategy of the kind's own instead of ``retry`` (it sees each error), or nil.
    public var customRetry: (any JobRetryStrategy)?
    /// A run longer than this is cancelled and counts as a retryable `timeout` failure.
    public var timeout: Duration

    public init(retry: RetryPolicy = RetryPolicy(), customRetry: (any JobRetryStrategy)? = nil, timeout: Duration = .seconds(60)) {
        self.retry = retry
        self.customRetry = customRetry
        self.timeout = timeout
    }

    /// The strategy the runtime asks.
    public var retryStrategy: any JobRetryStrategy { customRetry ?? retry }
}
