import FleetStore

extension ProfileWriter {
    /// Creates the campaign, or returns the one already there under its id (a second run of the same send).
    func createCampaign(_ record: CampaignRecord) throws -> CampaignRecord {
        try database.withStatement(
            """
            INSERT INTO campaigns (id, kind, template, segment, name, created_at) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO NOTHING
            """
        ) { s in
            try s.bind(record.id, at: 1)
            try s.bind(record.kind, at: 2)
            try s.bind(record.template, at: 3)
            try s.bind(record.segment, at: 4)
            if let name = record.name { try s.bind(name, at: 5) } else { try s.bindNull(at: 5) }
            try s.bind(record.createdAt, at: 6)
            try s.run()
        }
        return try CampaignRecord.read(id: record.id, in: database) ?? record
    }

    /// Records jobs of a campaign the broker confirmed, in one transaction.
    func recordCampaignJobs(_ campaignID: String, _ jobs: [CampaignJob], now: Int64) throws {
        try database.transaction {
            for job in jobs {
                try database.withStatement(
                    """
                    INSERT INTO campaign_jobs (campaign_id, profile_id, not_before, confirmed_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (campaign_id, profile_id) DO NOTHING
                    """
                ) { s in
                    try s.bind(campaignID, at: 1)
                    try s.bind(job.profileID, at: 2)
                    try s.bind(job.notBefore, at: 3)
                    try s.bind(now, at: 4)
                    try s.run()
                }
            }
        }
    }

    /// Marks a campaign cancelled; returns false when the store has no such campaign.
    func cancelCampaign(_ id: String, now: Int64) throws -> Bool {
        try database.withStatement("UPDATE campaigns SET cancelled_at = coalesce(cancelled_at, ?) WHERE id = ?") { s in
            try s.bind(now, at: 1)
            try s.bind(id, at: 2)
            try s.run()
            return database.changes > 0
        }
    }
}
