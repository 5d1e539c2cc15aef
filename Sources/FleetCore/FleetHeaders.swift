/// The AMQP headers the fleet sets on jobs and dead letters (Docs/contract/README.md).
public enum FleetHeaders {
    /// The attempt a copy of a job is for (1 when absent).
    public static let attempt = "x-fleet-attempt"
    /// How many of the runs before this copy ended `deferred` (0 when absent): they do not count toward the
    /// retry limit.
    public static let deferrals = "x-fleet-deferrals"
    /// Routes a copy on the delay exchange to its tier (`"4s"`). Not `x-` prefixed: RabbitMQ's headers
    /// exchange ignores binding keys that start with `x-`, so such a binding would match every message.
    public static let delay = "fleet-delay"
    /// Set by `fleet dlq replay`: a dead job sent back to run again.
    public static let replay = "x-fleet-replay"
    public static let errorCode = "x-fleet-error-code"
    public static let errorMessage = "x-fleet-error-message"
    public static let deadAt = "x-fleet-dead-at"
    public static let worker = "x-fleet-worker"
    public static let originalRoutingKey = "x-fleet-original-routing-key"
    public static let queue = "x-fleet-queue"
}
