import FleetCore

/// A segment's rule, parsed from JSON:
///
/// - `{"all": [rule, ...]}`, `{"any": [rule, ...]}`, `{"not": rule}`
/// - `{"trait": "tier", "op": "eq", "value": "gold"}`; ops `eq`, `ne`, `gt`, `gte`, `lt`, `lte`, `in` (value
///   an array), `contains` (string or array trait), `exists`, `missing`
/// - `{"event": "purchase", "op": "gte", "count": 2, "within_days": 30}` (events of that name, in the last
///   `within_days` days if given; op default `gte`)
/// - `{"consent": "email", "topic": "newsletter", "opted_in": true}` (topic optional; `opted_in` default true)
/// - `{"purchases": "order_count" | "lifetime_value", "op": "gte", "value": 100}`
public indirect enum SegmentRule: Sendable, Hashable {
    case all([SegmentRule])
    case any([SegmentRule])
    case not(SegmentRule)
    case trait(key: String, op: Comparison, value: JSONValue)
    case eventCount(name: String, op: Comparison, count: Int64, withinDays: Int?)
    case consent(channel: String, topic: String, optedIn: Bool)
    case purchases(field: String, op: Comparison, value: Double)

    /// Comparisons.
    public enum Comparison: String, Sendable, Hashable {
        case eq, ne, gt, gte, lt, lte
        case `in`, contains, exists, missing
    }

    /// Parses a rule.
    public init(json: JSONValue) throws(ProfileStoreError) {
        guard case .object(let o) = json else { throw .wrongType("rule", expected: "an object") }
        func op(_ fallback: Comparison) throws(ProfileStoreError) -> Comparison {
            guard let name = o["op"] else { return fallback }
            guard let text = name.stringValue, let c = Comparison(rawValue: text) else {
                throw .invalidValue("op", "must be one of eq, ne, gt, gte, lt, lte, in, contains, exists, missing")
            }
            return c
        }
        if case .array(let rules)? = o["all"] {
            var parsed: [SegmentRule] = []
            for r in rules { parsed.append(try SegmentRule(json: r)) }
            self = .all(parsed)
        } else if case .array(let rules)? = o["any"] {
            var parsed: [SegmentRule] = []
            for r in rules { parsed.append(try SegmentRule(json: r)) }
            self = .any(parsed)
        } else if let inner = o["not"] {
            self = .not(try SegmentRule(json: inner))
        } else if let key = o["trait"]?.stringValue {
            self = .trait(key: key, op: try op(.eq), value: o["value"] ?? .null)
        } else if let name = o["event"]?.stringValue {
            let count = o["count"]?.intValue ?? 1
            let days = o["within_days"]?.intValue.map { Int($0) }
            self = .eventCount(name: name, op: try op(.gte), count: count, withinDays: days)
        } else if let channel = o["consent"]?.stringValue {
            self = .consent(channel: channel, topic: o["topic"]?.stringValue ?? "", optedIn: o["opted_in"]?.boolValue ?? true)
        } else if let field = o["purchases"]?.stringValue {
            guard field == "order_count" || field == "lifetime_value" else {
                throw .invalidValue("purchases", "must be order_count or lifetime_value")
            }
            guard let value = Self.number(o["value"]) else { throw .missingField("value") }
            self = .purchases(field: field, op: try op(.gte), value: value)
        } else {
            throw .invalidValue("rule", "needs one of all, any, not, trait, event, consent, purchases")
        }
    }

    /// Whether `view` matches; `eventCount(name, sinceMillis)` counts the profile's events.
    public func matches(_ view: ProfileView, now: Int64, eventCount: (String, Int64?) throws -> Int64) rethrows -> Bool {
        switch self {
        case .all(let rules):
            for r in rules where !(try r.matches(view, now: now, eventCount: eventCount)) { return false }
            return true
        case .any(let rules):
            for r in rules where try r.matches(view, now: now, eventCount: eventCount) { return true }
            return false
        case .not(let rule):
            return !(try rule.matches(view, now: now, eventCount: eventCount))
        case .trait(let key, let op, let value):
            let actual: JSONValue? = view.traits[key] ?? (key == "email" ? view.email.map { .string($0) } : nil)
            return Self.compare(actual, op, value)
        case .eventCount(let name, let op, let count, let days):
            let since = days.map { now - Int64($0) * 86_400_000 }
            let n = try eventCount(name, since)
            return Self.compare(.int(n), op, .int(count))
        case .consent(let channel, let topic, let optedIn):
            return view.consent(channel: channel, topic: topic) == optedIn
        case .purchases(let field, let op, let value):
            let actual = field == "order_count" ? Double(view.purchases.orderCount) : view.purchases.lifetimeValue
            return Self.compare(.double(actual), op, .double(value))
        }
    }

    /// The event names whose counts the rule needs (none: no query).
    public var needsEvents: Bool {
        switch self {
        case .all(let r), .any(let r): r.contains(where: \.needsEvents)
        case .not(let r): r.needsEvents
        case .eventCount: true
        default: false
        }
    }

    static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .int(let i)?: Double(i)
        case .double(let d)?: d
        default: nil
        }
    }

    static func compare(_ actual: JSONValue?, _ op: Comparison, _ expected: JSONValue) -> Bool {
        switch op {
        case .exists: return actual != nil && actual != .null
        case .missing: return actual == nil || actual == .null
        case .in:
            guard case .array(let options) = expected, let actual else { return false }
            return options.contains { equal(actual, $0) }
        case .contains:
            switch actual {
            case .string(let s)?: return expected.stringValue.map { s.contains($0) } ?? false
            case .array(let a)?: return a.contains { equal($0, expected) }
            default: return false
            }
        case .eq: return actual.map { equal($0, expected) } ?? false
        case .ne: return !(actual.map { equal($0, expected) } ?? false)
        case .gt, .gte, .lt, .lte:
            guard let actual else { return false }
            let order: Int
            if let a = number(actual), let b = number(expected) {
                order = a < b ? -1 : (a > b ? 1 : 0)
            } else if let a = actual.stringValue, let b = expected.stringValue {
                order = a < b ? -1 : (a > b ? 1 : 0)
            } else {
                return false
            }
            switch op {
            case .gt: return order > 0
            case .gte: return order >= 0
            case .lt: return order < 0
            default: return order <= 0
            }
        }
    }

    private static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = number(a), let y = number(b) { return x == y }
        return a == b
    }
}
