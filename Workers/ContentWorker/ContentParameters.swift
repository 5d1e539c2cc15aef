import FleetCore
import FleetRuntime

/// The parameters of a `content` job (Docs/contract/content-job.schema.json): `data.op` and the op's fields.
///
/// - `train`: `data.k` (neighbours kept per item, 1 to 1000, default 100).
/// - `recommend`: `profile_id` (top level or `data`), `data.slot` (`[a-z0-9_]`, 1 to 64), `data.n` (1 to 100,
///   default 10), `data.ttl_seconds` (how long the block serves templates, default 7 days), `data.rules`
///   (`exclude_seen` (default true), `max_per_category`, `min_price`, `max_price`, `categories`).
///
/// `copy` and `choose` are not built yet: such a job is `dead` / `unsupported_op`.
public struct ContentParameters: JobParameters {
    public enum Operation: Sendable {
        case train(k: Int)
        case recommend(profileID: String, slot: String, n: Int, ttlSeconds: Int, rules: Recommender.Rules)
        case unsupported(String)
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
        case "copy", "choose":
            operation = .unsupported(op)
        default:
            throw JobParameterError(field: "data.op", "must be \"train\", \"recommend\", \"copy\" or \"choose\"")
        }
    }
}
