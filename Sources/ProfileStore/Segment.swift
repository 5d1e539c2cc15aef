/// A named segment: a rule evaluated for one profile (the read model) or over the whole store.
public struct Segment: Sendable, Hashable {
    public var name: String
    public var rule: SegmentRule

    public init(name: String, rule: SegmentRule) {
        self.name = name
        self.rule = rule
    }
}
