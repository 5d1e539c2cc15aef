import Crypto
import FleetCore
import FleetRuntime
import Foundation

/// Deterministic A/B assignment: a campaign's variants with weights and an optional holdout share.
///
/// The bucket of a person is the first 8 bytes of SHA-256(`campaign_id:profile_id`) as a fraction in [0, 1):
/// the same person always gets the same variant of a campaign, independently across campaigns. The holdout
/// (control group: no message) takes the lowest `holdout` share; the rest is split by weight.
///
/// Campaign JSON: `"variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}], "holdout": 0.1`.
public struct VariantAssigner: Sendable, Hashable {
    /// A variant and its weight.
    public struct Variant: Sendable, Hashable {
        public var name: String
        public var weight: Double
        /// Overrides: another template for this variant, a subject line.
        public var template: String?
        public var subject: String?

        public init(name: String, weight: Double, template: String? = nil, subject: String? = nil) {
            self.name = name
            self.weight = weight
            self.template = template
            self.subject = subject
        }
    }

    /// What a person gets.
    public enum Assignment: Sendable, Hashable {
        case variant(Variant)
        case holdout
    }

    public var variants: [Variant]
    public var holdout: Double
    /// `"variants": "bandit"`: the arms (`campaign.arms`) are chosen per person by ``ThompsonBandit`` over the
    /// campaign's results so far (by a worker that supports it: the email worker); ``assign(campaignID:profileID:forced:)``
    /// still decides the holdout, and splits the arms evenly for workers that do not.
    public var bandit = false
    /// `campaign.bandit_metric`: `clicks` (the default) or `opens`.
    public var banditMetric = "clicks"
    /// `campaign.explore`: the bandit's exploration floor (default 0.1).
    public var explore = 0.1

    public init(variants: [Variant], holdout: Double = 0) {
        self.variants = variants
        self.holdout = min(max(holdout, 0), 1)
    }

    /// The assigner of a campaign object (no variants: one variant named `default`).
    /// Wrong values throw ``JobParameterError`` naming the field (`campaign.variants`, `campaign.holdout`).
    public init(campaign: JSONObject) throws(JobParameterError) {
        var list: [Variant] = []
        var bandit = false
        var raw = campaign["variants"]
        if case .string("bandit")? = raw {
            guard case .array(let arms)? = campaign["arms"], arms.count >= 2 else {
                throw JobParameterError(field: "campaign.arms", "must list at least two variants when 'variants' is \"bandit\"")
            }
            raw = .array(arms)
            bandit = true
        }
        if let raw {
            guard case .array(let items) = raw else { throw JobParameterError(field: "campaign.variants", "must be an array or \"bandit\"") }
            for item in items {
                switch item {
                case .string(let name): list.append(Variant(name: name, weight: 1))
                case .object(let o):
                    guard let name = o["name"]?.stringValue, !name.isEmpty else {
                        throw JobParameterError(field: "campaign.variants", message: "each of 'campaign.variants' needs a 'name'")
                    }
                    var weight = 1.0
                    if let w = o["weight"] {
                        switch w {
                        case .int(let i): weight = Double(i)
                        case .double(let d): weight = d
                        default: throw JobParameterError(field: "campaign.variants", message: "the weights of 'campaign.variants' must be numbers")
                        }
                    }
                    guard weight >= 0 else { throw JobParameterError(field: "campaign.variants", message: "the weights of 'campaign.variants' must not be negative") }
                    list.append(Variant(name: name, weight: weight, template: o["template"]?.stringValue, subject: o["subject"]?.stringValue))
                default: throw JobParameterError(field: "campaign.variants", message: "each of 'campaign.variants' is a name or an object with 'name'")
                }
            }
        }
        if list.isEmpty { list = [Variant(name: "default", weight: 1)] }
        guard list.contains(where: { $0.weight > 0 }) else { throw JobParameterError(field: "campaign.variants", message: "all weights of 'campaign.variants' are 0") }
        var holdout = 0.0
        switch campaign["holdout"] {
        case .int(let i)?: holdout = Double(i)
        case .double(let d)?: holdout = d
        case nil, .null?: break
        default: throw JobParameterError(field: "campaign.holdout", "must be a number between 0 and 1")
        }
        guard (0...1).contains(holdout) else { throw JobParameterError(field: "campaign.holdout", "must be between 0 and 1") }
        self.init(variants: list, holdout: holdout)
        self.bandit = bandit
        if bandit {
            switch campaign["bandit_metric"] {
            case nil, .null?, .string("clicks")?: banditMetric = "clicks"
            case .string("opens")?: banditMetric = "opens"
            default: throw JobParameterError(field: "campaign.bandit_metric", "must be \"clicks\" or \"opens\"")
            }
            switch campaign["explore"] {
            case nil, .null?: break
            case .int(let i)? where (0...1).contains(i): explore = Double(i)
            case .double(let d)? where (0...1).contains(d): explore = d
            default: throw JobParameterError(field: "campaign.explore", "must be a number from 0 to 1")
            }
        }
    }

    /// The bucket of a person in a campaign, in [0, 1).
    public static func bucket(campaignID: String, profileID: String) -> Double {
        let digest = SHA256.hash(data: Data("\(campaignID):\(profileID)".utf8))
        var x: UInt64 = 0
        for b in digest.prefix(8) { x = x << 8 | UInt64(b) }
        return Double(x >> 11) / Double(UInt64(1) << 53)
    }

    /// The assignment of a person (or the variant named `forced`, for previews).
    public func assign(campaignID: String, profileID: String, forced: String? = nil) -> Assignment {
        if let forced {
            if forced == "holdout" { return .holdout }
            return .variant(variants.first { $0.name == forced } ?? Variant(name: forced, weight: 1))
        }
        let u = Self.bucket(campaignID: campaignID, profileID: profileID)
        if u < holdout { return .holdout }
        let v = holdout < 1 ? (u - holdout) / (1 - holdout) : 0
        let total = variants.reduce(0) { $0 + $1.weight }
        var acc = 0.0
        for variant in variants where variant.weight > 0 {
            acc += variant.weight / total
            if v < acc { return .variant(variant) }
        }
        return .variant(variants.last { $0.weight > 0 }!)
    }
}
