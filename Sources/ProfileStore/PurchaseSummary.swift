/// A profile's purchases, kept up to date on `track` of purchases (denormalized: no scan on reads).
public struct PurchaseSummary: Sendable, Hashable {
    public var orderCount: Int
    /// The sum of the purchases' amounts (currencies are not converted).
    public var lifetimeValue: Double
    /// The newest purchase's time (milliseconds since the epoch), amount and currency.
    public var lastPurchaseAt: Int64?
    public var lastPurchaseAmount: Double?
    public var lastPurchaseCurrency: String?

    public init(orderCount: Int = 0, lifetimeValue: Double = 0, lastPurchaseAt: Int64? = nil,
                lastPurchaseAmount: Double? = nil, lastPurchaseCurrency: String? = nil) {
        self.orderCount = orderCount
        self.lifetimeValue = lifetimeValue
        self.lastPurchaseAt = lastPurchaseAt
        self.lastPurchaseAmount = lastPurchaseAmount
        self.lastPurchaseCurrency = lastPurchaseCurrency
    }
}
