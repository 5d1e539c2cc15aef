import Foundation

extension ProfileStore {
    /// Creates the campaign, or returns the one already stored under its id.
    public func createCampaign(_ record: CampaignRecord) async throws -> CampaignRecord {
        try await onWriter { try $0.createCampaign(record) }
    }

    /// Records jobs of campaign `campaignID` that the broker confirmed.
    public func recordCampaignJobs(_ campaignID: String, _ jobs: [CampaignJob]) async throws {
        guard !jobs.isEmpty else { return }
        let now = Self.nowMillis()
        try await onWriter { try $0.recordCampaignJobs(campaignID, jobs, now: now) }
    }

    /// Cancels a campaign: its jobs not yet run end `suppressed` with reason `cancelled`. False when the store
    /// has no campaign `id`.
    public func cancelCampaign(_ id: String) async throws -> Bool {
        let now = Self.nowMillis()
        return try await onWriter { try $0.cancelCampaign(id, now: now) }
    }
}
