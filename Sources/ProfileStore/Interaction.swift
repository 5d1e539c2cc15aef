/// One person's interaction with a catalog item, as the recommendation trainer reads them from the events: an
/// event of a weighted name (or a purchase: an event with an amount) whose `properties.items` name the sku.
public struct Interaction: Sendable, Hashable {
    public var profileID: String
    public var sku: String
    /// Milliseconds since the epoch.
    public var occurredAt: Int64
    /// The event's weight (its name's, or the purchase weight).
    public var weight: Double

    public init(profileID: String, sku: String, occurredAt: Int64, weight: Double) {
        self.profileID = profileID
        self.sku = sku
        self.occurredAt = occurredAt
        self.weight = weight
    }
}
