import FleetCampaign
import FleetCore
import FleetMarketing
import FleetRuntime
import Foundation
import ProfileStore
import Synchronization

/// The `content` kind: trains the recommendation model from the store's events and catalog, and generates
/// recommendation blocks per person and slot, which the email templates read as `content.<slot>`. See
/// Workers/ContentWorker/README.md.
///
/// Outcomes: `train` → `succeeded` (`output`: `version`, `items`, `people`, `interactions`, `features`,
/// `train_ms`); `recommend` → `succeeded` (`output`: the block: `slot`, `items` [{sku, name, price, currency,
/// category, url, score}], `model_version`, `strategy` `hybrid` or `popularity` (cold start), `expires_at`);
/// `dead` with `empty_catalog` (train with no catalog), `no_model` (recommend before any train),
/// `profile_not_found`, `invalid_parameters`; `copy` → `succeeded` (`output`: the block: `slot`, `template`, `output`,
/// `text` or `fields`, `source` `model`, `cache` or `fallback`, `usage`, `calls`, `latency_ms`, `model`, `prompt_hash`,
/// `expires_at`), `failed` (retried) with `llm_unavailable`, `llm_throttled`, `llm_timeout`, `llm_malformed`, `dead` with
/// `template_not_found`, `template_error`, `prompt_personal_data`, `copy_invalid_output`, `llm_rejected`,
/// `llm_not_configured`.
public struct ContentHandler: JobHandler {
    public typealias Parameters = ContentParameters

    public let kind = "content"
    public let store: ProfileStore
    public let settings: ContentSettings
    private let cache = ModelCache()
    let bandit: BanditStats
    /// The `copy` op's prompt templates (`<templates>/content/<name>/`).
    public let copyCatalog: CopyTemplateCatalog
    /// The model endpoint's client, when `settings.llm` names one.
    let chat: ChatClient?

    public init(store: ProfileStore, settings: ContentSettings) {
        self.store = store
        self.settings = settings
        bandit = BanditStats(store: store)
        copyCatalog = CopyTemplateCatalog(directory: settings.templatesDirectory)
        chat = settings.llm.map { ChatClient(baseURL: $0.url, key: $0.key, timeout: $0.timeout, caFile: $0.caFile) }
    }

    /// Closes the model endpoint's connections (a client of its own, for `FLEET_CONTENT_LLM_CA_FILE`).
    public func shutdown() async {
        await chat?.shutdown()
    }

    public func handle(_ parameters: ContentParameters, context: JobContext) async throws -> JobOutcome {
        switch parameters.operation {
        case .train(let k): return try await train(k: k, context: context)
        case .recommend(let profileID, let slot, let n, let ttl, let rules):
            return try await recommend(profileID: profileID, slot: slot, n: n, ttlSeconds: ttl, rules: rules, context: context)
        case .choose(let profileID, let campaignID, let arms, let metric, let explore):
            let counted = try await bandit.arms(campaignID: campaignID, names: arms, metric: metric)
            guard let chosen = ThompsonBandit(explore: explore).choose(counted, campaignID: campaignID, profileID: profileID) else {
                throw JobError.permanent(JobError.invalidParameters, "'data.arms' is empty")
            }
            let detail: [JSONValue] = counted.map { arm in
                ["name": .string(arm.name), "successes": .int(Int64(arm.successes)), "trials": .int(Int64(arm.trials)),
                 "sample": .double(((chosen.samples[arm.name] ?? 0) * 1e6).rounded() / 1e6)]
            }
            return .succeeded(output: ["variant": .string(chosen.arm), "campaign_id": .string(campaignID), "metric": .string(metric.rawValue),
                                       "arms": .array(detail)])
        case .copy(let request):
            return try await copy(request, context: context)
        }
    }

    /// Trains on every interaction and the catalog, and stores the model as a new version.
    func train(k: Int, context: JobContext) async throws -> JobOutcome {
        let weights = settings.eventWeights, purchase = settings.purchaseWeight
        let (interactions, catalog) = try await store.read { reader in
            (try reader.interactions(weights: weights, purchaseWeight: purchase), try reader.catalog())
        }
        guard !catalog.isEmpty else { throw JobError.permanent("empty_catalog", "the catalog is empty: import it first (fleet catalog import)") }
        context.logger.info("content: training", metadata: ["content.interactions": "\(interactions.count)", "content.items": "\(catalog.count)"])
        let started = ContinuousClock.now
        let model = RecommendationTrainer(k: k).train(interactions: interactions, catalog: catalog, now: Int64(context.now.timeIntervalSince1970 * 1000))
        let trainMs = (ContinuousClock.now - started).milliseconds
        let people = Set(interactions.map(\.profileID)).count
        let summary: JSONObject = ["items": .int(Int64(model.items.count)), "people": .int(Int64(people)),
                                   "interactions": .int(Int64(interactions.count)), "features": .int(Int64(model.featureCount)),
                                   "k": .int(Int64(k)), "train_ms": .int(trainMs)]
        let version = try await store.saveModel(model.encoded(), summary: .object(summary))
        context.logger.info("content: model stored", metadata: ["content.version": "\(version)", "content.train_ms": "\(trainMs)"])
        var out = summary
        out["version"] = .int(version)
        return .succeeded(output: .object(out))
    }

    /// The newest model, decoded once per version: on a reader's queue, under the cache's lock, so that jobs
    /// arriving together wait for one decode instead of each making its own copy (64 copies of MovieLens' model
    /// took 580 MB at concurrency 64).
    func recommender() async throws -> (version: Int64, recommender: Recommender)? {
        let cache = self.cache, weights = settings.weights, halfLife = settings.halfLifeDays
        return try await store.read { reader in
            guard let version = try reader.latestModelVersion() else { return nil }
            return try cache.load(version: version) {
                guard let bytes = try reader.model(version: version), let model = RecommendationModel(decoding: bytes) else {
                    throw JobError.permanent("no_model", "model version \(version) cannot be read: train again")
                }
                return Recommender(model: model, weights: weights, halfLifeDays: halfLife)
            }
        }
    }

    func recommend(profileID: String, slot: String, n: Int, ttlSeconds: Int, rules: Recommender.Rules, context: JobContext) async throws -> JobOutcome {
        guard let (version, recommender) = try await recommender() else {
            throw JobError.permanent("no_model", "no recommendation model yet: run a train job first")
        }
        let weights = settings.eventWeights, purchase = settings.purchaseWeight
        let read = try await store.read { reader -> (String, [Interaction])? in
            // No segments: the block does not need them, and evaluating every defined segment is a query each.
            guard let view = try reader.view(id: profileID, segments: []) else { return nil }
            return (view.id, try reader.interactions(weights: weights, purchaseWeight: purchase, profileID: view.id))
        }
        guard let (id, interactions) = read else { throw JobError.permanent("profile_not_found", "no profile with the job's profile_id") }
        let (ranked, cold) = recommender.recommend(interactions, n: n, rules: rules)
        let model = recommender.model
        let items: [JSONValue] = ranked.map { r in
            let item = model.items[Int(r.item)]
            var o: JSONObject = ["sku": .string(item.sku), "name": .string(item.name)]
            o["price"] = item.price.map { .double($0) } ?? .null
            o["currency"] = item.currency.map { .string($0) } ?? .null
            o["category"] = item.category.map { .string($0) } ?? .null
            o["url"] = item.url.map { .string($0) } ?? .null
            o["score"] = .double((r.score * 1e6).rounded() / 1e6)
            return .object(o)
        }
        let expires = context.now.addingTimeInterval(Double(ttlSeconds))
        let block: JSONObject = ["slot": .string(slot), "items": .array(items), "model_version": .int(version),
                                 "strategy": cold ? "popularity" : "hybrid", "expires_at": .string(Timestamp.format(expires))]
        try await store.saveContentBlock(profileID: id, slot: slot, block: .object(block), modelVersion: version,
                                         expiresAt: Int64(expires.timeIntervalSince1970 * 1000))
        return .succeeded(output: .object(block))
    }

    /// Expired blocks and cached model answers are deleted by the worker's retention sweep.
    public func prune(now: Date, retention: Duration) async throws -> [String: Int] {
        let ms = Int64(now.timeIntervalSince1970 * 1000)
        return ["content_blocks": try await store.pruneContentBlocks(before: ms), "llm_cache": try await store.pruneCachedAnswers(before: ms)]
    }
}

/// The decoded newest model, shared by the handler's copies.
final class ModelCache: Sendable {
    private let state = Mutex<(version: Int64, recommender: Recommender)?>(nil)

    /// The cached model of `version`, or the one `make` decodes (under the lock: one decode at a time).
    func load(version: Int64, _ make: () throws -> Recommender) throws -> (version: Int64, recommender: Recommender) {
        try state.withLock { cached in
            if let c = cached, c.version == version { return c }
            let made = (version, try make())
            cached = made
            return made
        }
    }
}
