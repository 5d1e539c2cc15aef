import FleetMarketing
import Foundation
import ProfileStore
import Synchronization

/// What each variant of a campaign got so far, for the variant bandit: trials are the variant's delivered mails,
/// successes the mails with a click (`clicks`) or a human open (`opens`), counted as `fleet campaign report` counts
/// them (the workers' ledger and the store's `email_clicked` / `email_opened` events). Loaded at most every
/// `refresh` per campaign and shared by the jobs of a process: the report reads every result of the campaign.
public final class BanditStats: Sendable {
    public enum Metric: String, Sendable, CaseIterable {
        case clicks, opens
    }

    private let store: ProfileStore
    private let refresh: Duration
    private let cache = Mutex<[String: (groups: [String: CampaignReport.Group], at: ContinuousClock.Instant)]>([:])

    public init(store: ProfileStore, refresh: Duration = .seconds(30)) {
        self.store = store
        self.refresh = refresh
    }

    /// The arms `names` of `campaignID` with their counts (0 for a campaign or variant with no results yet).
    public func arms(campaignID: String, names: [String], metric: Metric) async throws -> [ThompsonBandit.Arm] {
        let now = ContinuousClock.now
        var groups = cache.withLock { c -> [String: CampaignReport.Group]? in
            guard let hit = c[campaignID], now - hit.at < refresh else { return nil }
            return hit.groups
        }
        if groups == nil {
            let report = try await CampaignReport.load(campaignID: campaignID, store: store, storePath: store.path, options: .init())
            var loaded: [String: CampaignReport.Group] = [:]
            for g in report?.groups ?? [] where !g.isHoldout { loaded[g.name] = g }
            groups = loaded
            cache.withLock { $0[campaignID] = (loaded, now) }
        }
        return names.map { name in
            let g = groups?[name]
            let successes = metric == .clicks ? (g?.clickers ?? 0) : (g?.humanOpens ?? 0)
            return ThompsonBandit.Arm(name: name, successes: successes, trials: g?.delivered ?? 0)
        }
    }
}
