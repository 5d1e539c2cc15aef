/// One frequency cap: at most `limit` messages per person per local day on `channels` together (empty: the
/// channel of the message being counted). A limit of 0 is no cap.
public struct CapLimit: Sendable, Hashable {
    public var channels: [String]
    public var limit: Int

    public init(channels: [String] = [], limit: Int) {
        self.channels = channels
        self.limit = limit
    }
}
