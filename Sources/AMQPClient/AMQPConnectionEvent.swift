/// Something that happened to a connection, for logs, metrics and tests.
public enum AMQPConnectionEvent: Sendable, Equatable {
    /// Connected (again); `generation` counts connections from 1.
    case connected(generation: UInt64)
    /// The connection was lost; the client reconnects by itself.
    case disconnected(generation: UInt64, reason: String)
    /// The broker blocked publishing (a memory or disk alarm).
    case blocked(reason: String)
    case unblocked
    /// A consumer was cancelled by the broker (its queue was deleted, say).
    case consumerCancelled(queue: String)
}
