import FleetBackoff
import FleetCampaign
import FleetCore
import FleetLinks
import FleetMarketing
import FleetRuntime
import Foundation
import Liquid
import Logging
import ProfileStore

/// The `email` kind: renders a personalized campaign message for one person and delivers it.
///
/// A job: `{"id", "kind": "email", "profile_id", "template", "campaign": id or {id, name, variants, holdout,
/// frequency_cap, cap_action}, "data": {...}}` (`data.campaign` is merged into the campaign; `data.profile_id`
/// and `data.template` are accepted too). See Workers/EmailWorker/README.md.
///
/// Outcomes: `succeeded` (`output`: template, campaign_id, variant, subject, message_id, bytes, delivery details); `suppressed` with
/// `output.reason` `opted_out`, `no_consent`, `suppressed_address`, `erased`, `no_email`, `holdout`,
/// `frequency_cap`, `abort_message`; `deferred` by the frequency cap (`cap_action: "defer"`) until 00:01 of the
/// person's next local day; `dead` for template errors (`template_error`, with file, line and column), a missing
/// profile or template, and relay rejections (`smtp_rejected`, which also suppresses a hard-bounced address);
/// `failed` (retried with backoff) for 4xx replies, an unreachable relay and TLS failures (`smtp_tls_unavailable`:
/// STARTTLS required and not offered; `smtp_tls_failed`: handshake or certificate check).
public struct EmailHandler: JobHandler {
    public typealias Parameters = EmailParameters

    public let kind = "email"
    /// The profile store: SQLite (`ProfileStore`) or PostgreSQL (`FLEET_STORE=postgres://`).
    public let store: any EmailStore
    public let settings: EmailSettings
    public let catalog: EmailTemplateCatalog
    /// Signs the mails' links (`fleet serve` answers them).
    public let links: LinkSigner
    public let recommender: CatalogRecommender
    /// The campaigns' results so far, for `"variants": "bandit"` (read from the campaign report, SQLite only so far:
    /// nil on PostgreSQL, where a bandit campaign's variants are split as a fixed A/B test's).
    let banditStats: BanditStats?
    let composer: EmailComposer
    let pool: SMTPPool?
    /// The relay's sending rate (`FLEET_EMAIL_SMTP_RATE`), per worker process.
    let rateLimiter: TokenBucket?
    let outbox: OutboxWriter?

    /// The key of a job's mail in the effects journal: one message per job.
    static let effectKey = "smtp"

    /// A handler on the profile store at `storePath` (its own store object: for previews and benchmarks; a
    /// worker shares one ``ProfileStore`` between its handlers through ``init(store:settings:)``).
    public init(storePath: String, settings: EmailSettings, logger: Logger = Logger(label: "fleet.email")) {
        self.init(store: ProfileStore(path: storePath, logger: logger), settings: settings)
    }

    public init(store: any EmailStore, settings: EmailSettings) {
        self.store = store
        self.settings = settings
        catalog = EmailTemplateCatalog(directory: settings.templatesDirectory)
        links = settings.links
        recommender = CatalogRecommender(store: store)
        banditStats = (store as? ProfileStore).map { BanditStats(store: $0) }
        composer = EmailComposer(
            catalog: catalog, decorator: LinkDecorator(parameters: settings.utm, skipPrefixes: [links.publicURL + "/"]))
        switch settings.delivery {
        case .smtp(let smtp): pool = SMTPPool(settings: smtp); outbox = nil; rateLimiter = smtp.rate.map { TokenBucket(rate: $0) }
        case .outbox(let dir): pool = nil; outbox = OutboxWriter(directory: dir); rateLimiter = nil
        case .result: pool = nil; outbox = nil; rateLimiter = nil
        }
    }

    /// The person as the handler needs them, read in one hop to a reader queue.
    struct Person: Sendable {
        var view: ProfileView?
        var profileSuppressed: Bool
        var emailSuppressed: Bool
        /// `fleet campaign cancel` cancelled the job's campaign.
        var campaignCancelled = false
        /// The content worker's unexpired blocks for the person, by slot (`content.<slot>` in templates).
        var content: [String: JSONValue] = [:]
    }

    /// Reads the person. A store that cannot be read is `store_unavailable` (retried), by its errors' mapping.
    /// With a campaign id, also whether that campaign was cancelled (the same read).
    func person(_ profileID: String, campaignID: String? = nil) async throws -> Person {
        let read = try await store.person(id: profileID, campaignID: campaignID, now: ProfileStore.nowMillis())
        return Person(view: read.view, profileSuppressed: read.profileSuppressed, emailSuppressed: read.emailSuppressed,
                      campaignCancelled: read.campaignCancelled, content: read.content)
    }

    public func handle(_ request: EmailParameters, context: JobContext) async throws -> JobOutcome {
        var template: EmailTemplate
        do { template = try catalog.template(named: request.templateName) } catch { throw error.jobError }
        if pool != nil, let prior = try await context.recordedEffect(Self.effectKey) {
            switch prior {
            case .alreadyDone(let output):
                // Sent by an earlier run: the job's result is that run's, whatever has changed since.
                var out = output.objectValue ?? JSONObject()
                out["already_sent"] = true
                return .succeeded(output: .object(out))
            case .uncertain where !template.metadata.resendIfUncertain:
                // The relay may or may not have the message: not sent again (the runtime adds `effect_uncertain`).
                return .succeeded(output: ["delivery": "smtp", "message_id": .string(messageID(context.jobID, from: template.metadata.from)),
                                           "template": .string(template.name), "campaign_id": .string(request.campaignID)])
            case .uncertain, .performed:
                break  // resend (the template asks for it)
            }
        }
        let person = try await person(request.profileID, campaignID: request.campaignID == "none" ? nil : request.campaignID)
        if person.campaignCancelled {
            return .suppressed(reason: "cancelled", output: ["campaign_id": .string(request.campaignID)])
        }
        guard let view = person.view else {
            if person.profileSuppressed { return .suppressed(reason: "erased") }
            throw JobError.permanent("profile_not_found", "no profile with the job's profile_id")
        }
        guard let email = view.email, !email.isEmpty else { return .suppressed(reason: "no_email") }
        let meta = template.metadata
        if person.emailSuppressed { return .suppressed(reason: "suppressed_address") }
        if meta.category == .marketing {
            switch view.consent(channel: "email", topic: meta.subscriptionGroup) {
            case false?: return .suppressed(reason: "opted_out", output: ["group": .string(meta.subscriptionGroup)])
            case nil where settings.requireOptIn: return .suppressed(reason: "no_consent", output: ["group": .string(meta.subscriptionGroup)])
            default: break
            }
        }
        var variant: VariantAssigner.Variant
        switch request.assigner.assign(campaignID: request.campaignID, profileID: view.id, forced: request.forcedVariant) {
        case .holdout:
            return .suppressed(reason: "holdout", output: ["variant": "holdout", "campaign_id": .string(request.campaignID)])
        case .variant(let v): variant = v
        }
        if request.assigner.bandit && request.forcedVariant == nil {
            variant = try await banditVariant(request, profileID: view.id) ?? variant
        }
        if let other = variant.template, other != template.name {
            do { template = try catalog.template(named: other) } catch { throw error.jobError }
        }
        let token = self.links.token(.subscription(profileID: view.id, group: template.metadata.subscriptionGroup,
                                                   campaignID: request.campaignID), now: context.now)
        let links = (unsubscribe: self.links.unsubscribeURL(token: token), preferences: self.links.preferencesURL(token: token))
        let environment = try await environment(request: request, view: view, variant: variant, links: links, content: person.content)
        let rendered: EmailComposer.Rendered
        do {
            switch try composer.render(template, environment: environment, tracking: tracking(context: context, profileID: view.id,
                                                                                               campaignID: request.campaignID, variant: variant.name)) {
            case .aborted(let reason):
                return .suppressed(reason: "abort_message", output: ["message": .string(reason), "variant": .string(variant.name)])
            case .rendered(let r): rendered = r
            }
        } catch {
            throw error.jobError
        }
        if let rateLimiter {
            // Before the frequency cap counts the mail: a job sent to its slot has nothing to undo.
            switch rateLimiter.admit(key: context.jobID) {
            case .now: break
            case .wait(let wait): try await Task.sleep(for: wait)
            case .later(let wait):
                return .deferred(until: context.now.addingTimeInterval(wait.seconds), reason: "smtp_rate")
            }
        }
        if meta.category == .marketing, let outcome = try await frequencyCap(request: request, view: view, variant: variant.name, context: context) {
            return outcome
        }
        let messageID = messageID(context.jobID, from: meta.from)
        var extra: [(String, String)] = [("X-Campaign-ID", request.campaignID), ("X-Campaign-Variant", variant.name), ("X-Fleet-Job-ID", context.jobID)]
        if let name = request.campaign["name"]?.stringValue { extra.append(("X-Campaign-Name", name)) }
        let group = meta.subscriptionGroup.isEmpty ? "all" : meta.subscriptionGroup
        let message = MIMEMessage(
            from: meta.from, to: email, replyTo: meta.replyTo, subject: rendered.subject, preheader: rendered.preheader,
            text: rendered.text, html: rendered.html, date: context.now, messageID: messageID,
            listUnsubscribeURL: links.unsubscribe,
            listID: "\(meta.listName ?? group) <\(group).\(MIMEMessage.domain(of: meta.from))>", extraHeaders: extra)
        let bytes = message.encoded()
        var output = JSONObject()
        output["template"] = .string(template.name)
        output["campaign_id"] = .string(request.campaignID)
        output["variant"] = .string(variant.name)
        output["subject"] = .string(rendered.subject)
        output["message_id"] = .string(messageID)
        output["bytes"] = .int(Int64(bytes.count))
        switch settings.delivery {
        case .result:
            output["delivery"] = "result"
            output["mime"] = .string(String(decoding: bytes, as: UTF8.self))
        case .outbox:
            output["delivery"] = "outbox"
            do {
                output["file"] = .string(try await outbox!.write(jobID: context.jobID, bytes: bytes))
            } catch let e as EmailError {
                throw e.jobError
            }
        case .smtp:
            output["delivery"] = "smtp"
            return .succeeded(output: try await deliverSMTP(
                output: output, from: meta.from, to: email, bytes: bytes, resend: meta.resendIfUncertain, context: context))
        }
        return .succeeded(output: .object(output))
    }

    /// `"variants": "bandit"`: the arm Thompson sampling picks for the person over the campaign's results so far.
    func banditVariant(_ request: EmailParameters, profileID: String) async throws -> VariantAssigner.Variant? {
        let assigner = request.assigner
        guard let banditStats else { return nil }
        let arms = try await banditStats.arms(campaignID: request.campaignID, names: assigner.variants.map(\.name),
                                              metric: BanditStats.Metric(rawValue: assigner.banditMetric) ?? .clicks)
        guard let chosen = ThompsonBandit(explore: assigner.explore).choose(arms, campaignID: request.campaignID, profileID: profileID) else { return nil }
        return assigner.variants.first { $0.name == chosen.arm }
    }

    /// The open pixel and tracked links of one message, as the settings ask.
    func tracking(context: JobContext, profileID: String, campaignID: String, variant: String) -> EmailComposer.Tracking {
        guard settings.trackOpens || settings.trackClicks else { return EmailComposer.Tracking() }
        let message = LinkClaims.Message(messageID: context.jobID, profileID: profileID, campaignID: campaignID, variant: variant)
        let links = self.links, now = context.now
        return EmailComposer.Tracking(
            pixelURL: settings.trackOpens ? links.openURL(message, now: now) : nil,
            click: settings.trackClicks ? { index, url in
                // `fleet serve` refuses tokens over 4 KiB: a link that long stays untracked rather than broken.
                let tracked = links.clickURL(message, link: index, url: url, now: now)
                return tracked.utf8.count - links.publicURL.utf8.count <= 4000 ? tracked : url
            } : nil)
    }

    func messageID(_ jobID: String, from: String?) -> String {
        MIMEMessage.messageID(jobID: jobID, domain: from.map(MIMEMessage.domain(of:)) ?? "fleet.invalid")
    }

    /// The template context.
    /// The content block whose items are the mail's `recommendations` when the person has one.
    static let recommendationSlot = "email_hero"

    func environment(request: EmailParameters, view: ProfileView, variant: VariantAssigner.Variant,
                     links: (unsubscribe: String, preferences: String), content: [String: JSONValue] = [:]) async throws -> LiquidObject {
        var env = LiquidObject()
        let profile = view.templateValue
        env["profile"] = LiquidBridge.liquid(profile)
        var campaign = LiquidBridge.object(request.campaign)
        campaign["variant"] = .string(variant.name)
        if let subject = variant.subject { campaign["subject"] = .string(subject) }
        env["campaign"] = .object(campaign)
        env["data"] = LiquidBridge.liquid(request.data)
        env["unsubscribe_url"] = .string(links.unsubscribe)
        env["preferences_url"] = .string(links.preferences)
        var blocks = LiquidObject()
        for (slot, block) in content.sorted(by: { $0.key < $1.key }) { blocks[slot] = LiquidBridge.liquid(block) }
        env["content"] = .object(blocks)
        if let items = content[Self.recommendationSlot]?["items"]?.arrayValue, !items.isEmpty {
            env["recommendations"] = .array(items.map(LiquidBridge.liquid))
        } else {
            let recommendations = (try? await recommender.recommendations(for: profile.objectValue ?? JSONObject())) ?? []
            env["recommendations"] = .array(recommendations.map(LiquidBridge.liquid))
        }
        return env
    }

    /// The frequency caps (this channel's and the cross-channel one): nil to go on, else the outcome (deferred or
    /// suppressed); see ``FrequencyCap``.
    func frequencyCap(request: EmailParameters, view: ProfileView, variant: String, context: JobContext) async throws -> JobOutcome? {
        let cap = FrequencyCap(channelLimit: request.frequencyCap ?? settings.frequencyCap, allChannelsLimit: settings.frequencyCapAllChannels)
        return try await cap.admit(store: store, channel: "email", jobID: context.jobID, profileID: view.id, timezone: view.timezone,
                                   deferWhenCapped: request.deferWhenCapped, now: context.now, output: ["variant": .string(variant)])
    }

    /// Sends through the pool as an effect of the job: the intent is recorded just before the final `.` of DATA,
    /// the completion (with the job's output) right after the relay's 2xx. Returns the output with the relay's
    /// answer.
    func deliverSMTP(output: JSONObject, from: String, to: String, bytes: [UInt8], resend: Bool, context: JobContext) async throws -> JSONValue {
        let pool = self.pool!
        do {
            let result = try await context.effect(Self.effectKey, ifUncertain: resend ? .redo : .skip, recordsIntent: true) { intent in
                let accepted = try await pool.send(from: MIMEMessage.address(of: from), to: to, message: bytes) {
                    try await intent.record()
                }
                let window = ContinuousClock.now - accepted.at
                var out = output
                out["relay_reply"] = .int(Int64(accepted.reply.code))
                out["duplicate_window_us"] = .int(window.components.seconds * 1_000_000 + window.components.attoseconds / 1_000_000_000_000)
                out["smtp_tls"] = .bool(accepted.tls)
                return .object(out)
            }
            switch result {
            case .performed(let out): return out
            case .alreadyDone(let out):
                var o = out.objectValue ?? JSONObject()
                o["already_sent"] = true
                return .object(o)
            case .uncertain: return .object(output)
            }
        } catch let error as SMTPError {
            if !error.isTransient {
                if error.stage == "rcpt" || (550...553).contains(error.replyCode ?? 0) {
                    try? await store.suppress(address: to, channel: .email, reason: "hard_bounce")
                }
                try? await store.releaseCap(jobID: context.jobID, channel: "email")
                context.logger.warning("relay rejected a message", metadata: ["smtp.code": "\(error.replyCode ?? 0)", "smtp.stage": "\(error.stage ?? "")"])
                throw JobError.permanent(error.code, error.message)
            }
            throw JobError.retryable(error.code, error.message)
        }
    }

    /// Frequency-cap rows serve one local day: older than two days they are pruned, whatever the ledger's retention.
    public func prune(now: Date, retention: Duration) async throws -> [String: Int] {
        ["caps": try await store.pruneCaps(before: now.addingTimeInterval(-2 * 86_400))]
    }

    /// The personalized html of `template` for a profile (for `fleet email preview`).
    public func preview(template name: String, profileID: String, variant: String?, campaign: JSONObject = JSONObject(["id": "preview"])) async throws -> String {
        var data = JSONObject()
        if let variant { data["variant"] = .string(variant) }
        let job = JobEnvelope(id: "preview", kind: "email", data: .object(data),
                              fields: ["profile_id": .string(profileID), "template": .string(name), "campaign": .object(campaign)])
        let request: EmailParameters
        do { request = try EmailParameters(job: job) } catch { throw EmailError(JobError.invalidParameters, error.message) }
        let person = try await person(profileID)
        guard let view = person.view else { throw EmailError("profile_not_found", "no profile '\(profileID)'") }
        var template = try catalog.template(named: name)
        var chosen = VariantAssigner.Variant(name: "default", weight: 1)
        if case .variant(let v) = request.assigner.assign(campaignID: request.campaignID, profileID: view.id, forced: variant) { chosen = v }
        if let other = chosen.template { template = try catalog.template(named: other) }
        let token = self.links.token(.subscription(profileID: view.id, group: template.metadata.subscriptionGroup, campaignID: request.campaignID))
        let links = (unsubscribe: self.links.unsubscribeURL(token: token), preferences: self.links.preferencesURL(token: token))
        let env = try await environment(request: request, view: view, variant: chosen, links: links, content: person.content)
        switch try composer.render(template, environment: env) {
        case .rendered(let r): return r.html
        case .aborted(let reason): throw EmailError("aborted", "the template aborted: \(reason)")
        }
    }
}
