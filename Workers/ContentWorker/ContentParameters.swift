import FleetCampaign
import FleetCore
import FleetMarketing
import FleetRuntime

/// The parameters of a `content` job (Docs/contract/content-job.schema.json): `data.op` and the op's fields.
///
/// - `train`: `data.k` (neighbours kept per item, 1 to 1000, default 100).
/// - `recommend`: `profile_id` (top level or `data`), `data.slot` (`[a-z0-9_]`, 1 to 64), `data.n` (1 to 100,
///   default 10), `data.ttl_seconds` (how long the block serves templates, default 7 days), `data.rules`
///   (`exclude_seen` (default true), `max_per_category`, `min_price`, `max_price`, `categories`).
///
/// - `choose`: `profile_id`, `campaign` (an id, or an object with `id`), `data.arms` (at least two variant names),
///   `data.metric` (`clicks` (default) or `opens`), `data.explore` (0 to 1, default 0.1).
///
/// - `copy`: `profile_id`, `data.template` (a directory under `Templates/content/`), `data.slot` (default: the template's
///   name with `-` as `_`), `data.vars` (an object the prompt reads as `vars`), `data.ttl_seconds` (the block's life,
///   default the template's).
public struct ContentParameters: JobParameters {
    public enum Operation: Sendable {
        case train(k: Int)
        case recommend(profileID: String, slot: String, n: Int, ttlSeconds: Int, rules: Recommender.Rules)
        case choose(profileID: String, campaignID: String, arms: [String], metric: BanditStats.Metric, explore: Double)
        case copy(ContentHandler.CopyRequest)
    }

    public var operation: Operation

    public init(job: JobEnvelope) throws(JobParameterError) {
        guard let op = try Self.string("op", of: job) else { throw .missing("data.op") }
        func int(_ name: String, _ fallback: Int, _ range: ClosedRange<Int>) throws(JobParameterError) -> Int {
            guard let v = job.data[name], v != .null else { return fallback }
            guard let n = v.intValue, range.contains(Int(n)) else {
                throw JobParameterError(field: "data.\(name)", "must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return Int(n)
        }
        switch op {
        case "train":
            operation = .train(k: try int("k", 100, 1...1000))
        case "recommend":
            guard let profileID = try Self.string("profile_id", of: job), !profileID.isEmpty else { throw .missing("profile_id") }
            guard let slot = try Self.string("slot", of: job) else { throw .missing("data.slot") }
            guard (1...64).contains(slot.utf8.count), slot.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }) else {
                throw JobParameterError(field: "data.slot", "must be 1 to 64 of a-z, 0-9 and _")
            }
            var rules = Recommender.Rules()
            switch job.data["rules"] {
            case nil, .null?: break
            case .object(let r)?:
                if let v = r["exclude_seen"] {
                    guard let b = v.boolValue else { throw .wrongType("data.rules.exclude_seen", expected: "a boolean", got: v) }
                    rules.excludeSeen = b
                }
                if let v = r["max_per_category"], v != .null {
                    guard let n = v.intValue, n >= 1 else { throw JobParameterError(field: "data.rules.max_per_category", "must be an integer >= 1") }
                    rules.maxPerCategory = Int(n)
                }
                for (key, path) in [("min_price", \Recommender.Rules.minPrice), ("max_price", \Recommender.Rules.maxPrice)] {
                    guard let v = r[key], v != .null else { continue }
                    switch v {
                    case .int(let i): rules[keyPath: path] = Double(i)
                    case .double(let d): rules[keyPath: path] = d
                    default: throw .wrongType("data.rules.\(key)", expected: "a number", got: v)
                    }
                }
                if let v = r["categories"], v != .null {
                    guard let list = v.arrayValue?.compactMap(\.stringValue), list.count == v.arrayValue?.count else {
                        throw .wrongType("data.rules.categories", expected: "an array of strings", got: v)
                    }
                    rules.categories = Set(list)
                }
            case let other?: throw .wrongType("data.rules", expected: "an object", got: other)
            }
            operation = .recommend(profileID: profileID, slot: slot, n: try int("n", 10, 1...100),
                                   ttlSeconds: try int("ttl_seconds", 7 * 86_400, 1...366 * 86_400), rules: rules)
        case "choose":
            guard let profileID = try Self.string("profile_id", of: job), !profileID.isEmpty else { throw .missing("profile_id") }
            let campaignID: String
            switch job.fields["campaign"] ?? job.data["campaign"] {
            case .string(let id)?: campaignID = id
            case .object(let o)?:
                guard let id = o["id"]?.stringValue else { throw JobParameterError(field: "campaign.id", "is required") }
                campaignID = id
            default: throw .missing("campaign")
            }
            guard case .array(let list)? = job.data["arms"], list.count >= 2, list.allSatisfy({ ($0.stringValue ?? "").isEmpty == false }) else {
                throw JobParameterError(field: "data.arms", "must list at least two variant names")
            }
            let metric: BanditStats.Metric
            switch job.data["metric"] {
            case nil, .null?: metric = .clicks
            case .string(let m)?:
                guard let known = BanditStats.Metric(rawValue: m) else { throw JobParameterError(field: "data.metric", "must be \"clicks\" or \"opens\"") }
                metric = known
            case let other?: throw .wrongType("data.metric", expected: "a string", got: other)
            }
            var explore = 0.1
            switch job.data["explore"] {
            case nil, .null?: break
            case .int(let i)? where (0...1).contains(i): explore = Double(i)
            case .double(let d)? where (0...1).contains(d): explore = d
            default: throw JobParameterError(field: "data.explore", "must be a number from 0 to 1")
            }
            operation = .choose(profileID: profileID, campaignID: campaignID, arms: list.compactMap(\.stringValue), metric: metric, explore: explore)
        case "copy":
            guard let profileID = try Self.string("profile_id", of: job), !profileID.isEmpty else { throw .missing("profile_id") }
            guard let template = try Self.string("template", of: job), !template.isEmpty else { throw .missing("data.template") }
            guard LiquidErrorText.isValidTemplateName(template) else {
                throw JobParameterError(field: "data.template", "must be 1 to 100 of a-z, 0-9, - and _")
            }
            let slot = try Self.string("slot", of: job) ?? String(template.map { $0 == "-" ? "_" : $0 })
            guard (1...64).contains(slot.utf8.count), slot.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }) else {
                throw JobParameterError(field: "data.slot", "must be 1 to 64 of a-z, 0-9 and _")
            }
            let vars: JSONValue
            switch job.data["vars"] {
            case nil, .null?: vars = .object(JSONObject())
            case .object(let o)?: vars = .object(o)
            case let other?: throw .wrongType("data.vars", expected: "an object", got: other)
            }
            let ttl: Int? = job.data["ttl_seconds"] == nil || job.data["ttl_seconds"] == .null ? nil : try int("ttl_seconds", 0, 1...366 * 86_400)
            operation = .copy(ContentHandler.CopyRequest(profileID: profileID, template: template, slot: slot, vars: vars, ttlSeconds: ttl))
        default:
            throw JobParameterError(field: "data.op", "must be \"train\", \"recommend\", \"copy\" or \"choose\"")
        }
    }
}
