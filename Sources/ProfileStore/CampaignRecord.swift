import FleetStore
import Foundation

/// A campaign fanned out by `fleet campaign send`, as the profile store keeps it: what it sends to whom, and
/// whether it was cancelled. Its jobs (one per member, id `<campaign id>:<profile id>`) are recorded as their
/// publishes are confirmed, so that a second run enqueues nothing twice.
public struct CampaignRecord: Sendable, Hashable {
    public var id: String
    /// `email` or `push`.
    public var kind: String
    public var template: String
    public var segment: String
    public var name: String?
    /// Milliseconds since the epoch.
    public var createdAt: Int64
    /// When `fleet campaign cancel` cancelled it (milliseconds since the epoch); nil while it runs.
    public var cancelledAt: Int64?

    public init(id: String, kind: String, template: String, segment: String, name: String? = nil, createdAt: Int64,
                cancelledAt: Int64? = nil) {
        self.id = id
        self.kind = kind
        self.template = template
        self.segment = segment
        self.name = name
        self.createdAt = createdAt
        self.cancelledAt = cancelledAt
    }
}

extension CampaignRecord {
    /// The campaign `id` as stored, if it is.
    static func read(id: String, in database: SQLiteDatabase) throws -> CampaignRecord? {
        try database.withStatement("SELECT kind, template, segment, name, created_at, cancelled_at FROM campaigns WHERE id = ?") { s in
            try s.bind(id, at: 1)
            guard try s.step() else { return nil }
            return CampaignRecord(id: id, kind: s.string(at: 0) ?? "", template: s.string(at: 1) ?? "", segment: s.string(at: 2) ?? "",
                                  name: s.string(at: 3), createdAt: s.int64(at: 4), cancelledAt: s.isNull(at: 5) ? nil : s.int64(at: 5))
        }
    }
}

/// A member's job of a campaign, confirmed by the broker.
public struct CampaignJob: Sendable, Hashable {
    public var profileID: String
    /// When the job may run (milliseconds since the epoch).
    public var notBefore: Int64

    public init(profileID: String, notBefore: Int64) {
        self.profileID = profileID
        self.notBefore = notBefore
    }
}
