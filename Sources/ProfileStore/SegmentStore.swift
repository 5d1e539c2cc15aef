import FleetCore

/// Segments on either backend: named rules over the read model (traits, events in a window, consents), defined by
/// `fleet segment define` and evaluated for one profile (its view's `segments`) or over the whole store.
///
/// `ProfileStore` (SQLite) and `PostgresProfileStore` implement it; Tests/FleetPostgresTests/ProfileBackendTests
/// runs one suite against both.
public protocol SegmentStore: Sendable {
    /// Defines (or redefines) a segment from its JSON rule (checked first: a bad rule throws `invalid_value`).
    func defineSegment(name: String, rule: JSONValue) async throws

    /// Removes a segment; returns whether it existed.
    func removeSegment(name: String) async throws -> Bool

    /// The profiles in the segment `name`: how many, and the first `limit` ids in id order; nil when no such segment.
    func segmentMembers(named name: String, limit: Int) async throws -> (count: Int, ids: [String])?
}

extension ProfileStore: SegmentStore {
    public func segmentMembers(named name: String, limit: Int) async throws -> (count: Int, ids: [String])? {
        try await read { reader -> (Int, [String])? in
            guard let segment = try reader.segment(named: name) else { return nil }
            let found = try reader.members(of: segment, limit: limit)
            return (found.count, found.ids)
        }
    }
}

/// Everything both backends of the profile store offer so far (the CRM side, frequency caps, segments, the catalog).
public typealias ProfileBackend = ProfileOperationStore & FrequencyCapStore & SegmentStore & CatalogStore
