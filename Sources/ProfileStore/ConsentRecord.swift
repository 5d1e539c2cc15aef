/// A consent: opted in or out of one subscription group (`topic`, `""` for the whole channel) of a channel.
public struct ConsentRecord: Sendable, Hashable {
    public var channel: String
    public var topic: String
    public var optedIn: Bool
    /// The source's time of the change, in milliseconds since the epoch.
    public var updatedAt: Int64
    public var source: String?

    public init(channel: String, topic: String, optedIn: Bool, updatedAt: Int64, source: String?) {
        self.channel = channel
        self.topic = topic
        self.optedIn = optedIn
        self.updatedAt = updatedAt
        self.source = source
    }
}
