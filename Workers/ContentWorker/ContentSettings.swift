import FleetRuntime
import Foundation

/// The content worker's configuration, from the environment (`FLEET_CONTENT_*`); ``settings`` declares each variable.
public struct ContentSettings: Sendable {
    /// Event names and their weights: an interaction's strength (a person's strongest event with an item counts).
    public var eventWeights: [String: Double]
    /// The weight of a purchase (an event with an amount).
    public var purchaseWeight: Double
    public var weights: Recommender.Weights
    public var halfLifeDays: Double

    public init(eventWeights: [String: Double] = ["rated": 1, "add_to_cart": 0.5, "product_viewed": 0.25], purchaseWeight: Double = 1,
                weights: Recommender.Weights = .hybrid, halfLifeDays: Double = 0) {
        self.eventWeights = eventWeights
        self.purchaseWeight = purchaseWeight
        self.weights = weights
        self.halfLifeDays = halfLifeDays
    }

    public static let settings: [Setting] = [
        Setting(environment: "FLEET_CONTENT_EVENTS", defaultValue: "`rated:1,add_to_cart:0.5,product_viewed:0.25`", scope: "kind content",
                summary: "The events the recommender learns from, `name:weight` comma-separated (an event whose `properties.items` name skus); purchases (events with an amount) always count, weight 1."),
        Setting(environment: "FLEET_CONTENT_HYBRID", defaultValue: "`0.5,0.3,0.2`", scope: "kind content",
                summary: "The hybrid's weights of item-item, content and popularity (tuned on MovieLens' validation split)."),
        Setting(environment: "FLEET_CONTENT_HALF_LIFE_DAYS", defaultValue: "`0` (no time decay)", scope: "kind content",
                summary: "Time decay of a person's interactions: weight × 0.5^(age / half-life), age counted from their newest."),
    ]

    /// The settings of `environment`; a wrong value throws ``ContentError`` naming the variable.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(ContentError) -> ContentSettings {
        var s = ContentSettings()
        if let raw = environment["FLEET_CONTENT_EVENTS"], !raw.isEmpty {
            var weights: [String: Double] = [:]
            for pair in raw.split(separator: ",") {
                let kv = pair.split(separator: ":")
                guard kv.count == 2, !kv[0].isEmpty, let w = Double(kv[1]), w > 0 else {
                    throw ContentError("content_configuration", "FLEET_CONTENT_EVENTS must be name:weight pairs, comma-separated (weights > 0)")
                }
                weights[String(kv[0])] = w
            }
            s.eventWeights = weights
        }
        if let raw = environment["FLEET_CONTENT_HYBRID"], !raw.isEmpty {
            let parts = raw.split(separator: ",").compactMap { Double($0) }
            guard parts.count == 3, parts.allSatisfy({ $0 >= 0 }), parts.contains(where: { $0 > 0 }) else {
                throw ContentError("content_configuration", "FLEET_CONTENT_HYBRID must be three weights >= 0 (item,content,popularity)")
            }
            s.weights = .init(item: parts[0], content: parts[1], popularity: parts[2])
        }
        if let raw = environment["FLEET_CONTENT_HALF_LIFE_DAYS"], !raw.isEmpty {
            guard let d = Double(raw), d >= 0 else { throw ContentError("content_configuration", "FLEET_CONTENT_HALF_LIFE_DAYS must be a number >= 0") }
            s.halfLifeDays = d
        }
        return s
    }
}
