import FleetStore

extension ProfileReader {
    /// A page of `segment`'s members in id order after `after`: their ids and `timezone` traits, and the last id
    /// scanned (nil when the store has no more profiles). Scans `limit` profiles, not `limit` members.
    public func memberPage(of segment: Segment, after: String?, limit: Int = 1000, now: Int64 = ProfileStore.nowMillis())
        throws -> (members: [(id: String, timezone: String?)], last: String?) {
        let page = try profileIDs(after: after, limit: limit)
        var members: [(id: String, timezone: String?)] = []
        for id in page {
            guard let view = try loadView(id: id) else { continue }
            if try !evaluate([segment], for: view, now: now).isEmpty { members.append((id, view.timezone)) }
        }
        return (members, page.last)
    }

    /// The campaign `id`, if `fleet campaign send` created it.
    public func campaign(id: String) throws -> CampaignRecord? {
        try CampaignRecord.read(id: id, in: database)
    }

    /// Whether the campaign `id` was cancelled (false for a campaign the store does not know).
    public func isCampaignCancelled(_ id: String) throws -> Bool {
        try database.withStatement("SELECT 1 FROM campaigns WHERE id = ? AND cancelled_at IS NOT NULL") { s in
            try s.bind(id, at: 1)
            return try s.step()
        }
    }

    /// The jobs of campaign `id` the broker confirmed (by earlier runs of the send), in `not_before` order.
    public func confirmedJobs(ofCampaign id: String) throws -> [CampaignJob] {
        try database.withStatement("SELECT profile_id, not_before FROM campaign_jobs WHERE campaign_id = ? ORDER BY not_before") { s in
            try s.bind(id, at: 1)
            var jobs: [CampaignJob] = []
            while try s.step() { if let p = s.string(at: 0) { jobs.append(CampaignJob(profileID: p, notBefore: s.int64(at: 1))) } }
            return jobs
        }
    }

    /// Jobs of campaign `id` confirmed, and of those how many may not run before `now` (milliseconds).
    public func campaignJobCounts(_ id: String, now: Int64) throws -> (confirmed: Int, notYetDue: Int) {
        try database.withStatement(
            "SELECT count(*), coalesce(sum(not_before > ?), 0) FROM campaign_jobs WHERE campaign_id = ?"
        ) { s in
            try s.bind(now, at: 1)
            try s.bind(id, at: 2)
            guard try s.step() else { return (0, 0) }
            return (s.int(at: 0), s.int(at: 1))
        }
    }
}
