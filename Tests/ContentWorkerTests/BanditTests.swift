@testable import ContentWorker
import FleetCore
import FleetMarketing
import FleetRuntime
import FleetTestSupport
import Foundation
import Logging
import ProfileStore
import Testing

@Suite("Variant bandit (Thompson sampling)")
struct BanditTests {
    @Test("the better arm gets most people, the exploration floor keeps the other in play; the same person and counts get the same arm")
    func thompson() {
        let arms = [ThompsonBandit.Arm(name: "a", successes: 5, trials: 100), ThompsonBandit.Arm(name: "b", successes: 30, trials: 100)]
        let bandit = ThompsonBandit(explore: 0.1)
        var counts: [String: Int] = [:]
        for i in 0..<2000 { counts[bandit.choose(arms, campaignID: "c", profileID: "p\(i)")!.arm, default: 0] += 1 }
        // b wins nearly every sample; a gets about half the 10% explored.
        #expect(counts["b", default: 0] > 1800 && counts["a", default: 0] > 40, "\(counts)")
        #expect(bandit.choose(arms, campaignID: "c", profileID: "p7")!.arm == bandit.choose(arms, campaignID: "c", profileID: "p7")!.arm)
        // No data yet: both arms are tried about equally.
        let fresh = [ThompsonBandit.Arm(name: "a", successes: 0, trials: 0), ThompsonBandit.Arm(name: "b", successes: 0, trials: 0)]
        var split: [String: Int] = [:]
        for i in 0..<2000 { split[ThompsonBandit(explore: 0).choose(fresh, campaignID: "c", profileID: "p\(i)")!.arm, default: 0] += 1 }
        #expect((800...1200).contains(split["a", default: 0]), "\(split)")
        #expect(ThompsonBandit().choose([], campaignID: "c", profileID: "p") == nil)
    }

    @Test("campaign variants \"bandit\" with arms: parsed for the email kind; bad arms, metric or explore name the field")
    func parameters() throws {
        func assigner(_ campaign: JSONObject) throws(JobParameterError) -> VariantAssigner { try VariantAssigner(campaign: campaign) }
        let a = try assigner(["id": "c", "variants": "bandit", "arms": ["a", "b", "c"], "explore": 0.2, "bandit_metric": "opens", "holdout": 0.1])
        #expect(a.bandit && a.variants.map(\.name) == ["a", "b", "c"] && a.explore == 0.2 && a.banditMetric == "opens")
        for (bad, field) in [(["id": "c", "variants": "bandit"] as JSONObject, "campaign.arms"), (["id": "c", "variants": "bandit", "arms": ["a", "b"], "explore": 2], "campaign.explore"),
                             (["id": "c", "variants": "bandit", "arms": ["a", "b"], "bandit_metric": "sales"], "campaign.bandit_metric"), (["id": "c", "variants": "thompson"], "campaign.variants")] {
            #expect(throws: JobParameterError.self) { try assigner(bad) }
            do { _ = try assigner(bad) } catch { #expect(error.field == field, "\(bad)") }
        }
    }

    @Test("the content worker's choose: an arm of the list, with each arm's counts and sample; a campaign without results explores")
    func choose() async throws {
        let dir = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = ProfileStore(path: dir.appendingPathComponent("fleet.sqlite").path)
        defer { store.close() }
        let handler = ContentHandler(store: store, settings: ContentSettings())
        let job = JobEnvelope(id: "ch-1", kind: "content", data: ["op": "choose", "arms": ["subject-a", "subject-b"]],
                              fields: ["profile_id": "p1", "campaign": "spring"])
        guard case .succeeded(let out) = try await handler.handle(job: job, context: JobContext(job: job, logger: Logger(label: "t"))) else {
            Issue.record("choose failed"); return
        }
        #expect(["subject-a", "subject-b"].contains(out["variant"]?.stringValue ?? ""))
        #expect(out["arms"]?.arrayValue?.count == 2 && out["arms"]?.arrayValue?.allSatisfy { $0["trials"] == 0 } == true)
        let bad = JobEnvelope(id: "ch-2", kind: "content", data: ["op": "choose", "arms": ["only"]], fields: ["profile_id": "p1", "campaign": "spring"])
        await #expect(throws: JobError.self) { try await handler.handle(job: bad, context: JobContext(job: bad, logger: Logger(label: "t"))) }
    }
}
