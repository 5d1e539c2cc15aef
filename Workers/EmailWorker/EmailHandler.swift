import FleetCore
import FleetRuntime
import FleetStore
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
    public let kind = "email"
    public let store: ProfileStore
    public let ledger: EmailLedger
    public let settings: EmailSettings
    public let catalog: EmailTemplateCatalog
    public let signer: UnsubscribeSigner
    public let recommender: CatalogRecommender
    let composer: EmailComposer
    let pool: SMTPPool?
    let outbox: OutboxWriter?

    /// A handler on the store file at `storePath`.
    public init(storePath: String, settings: EmailSettings, logger: Logger = Logger(label: "fleet.email")) {
        self.init(store: ProfileStore(path: storePath, logger: logger), ledger: EmailLedger(path: storePath), settings: settings)
    }

    public init(store: ProfileStore, ledger: EmailLedger, settings: EmailSettings) {
        self.store = store
        self.ledger = ledger
        self.settings = settings
        catalog = EmailTemplateCatalog(directory: settings.templatesDirectory)
        signer = UnsubscribeSigner(secret: settings.secret, baseURL: settings.baseURL)
        recommender = CatalogRecommender(ledger: ledger)
        composer = EmailComposer(
            catalog: catalog, decorator: LinkDecorator(parameters: settings.utm, skipPrefixes: [signer.baseURL]),
            pixelURL: settings.pixelURL)
        switch settings.delivery {
        case .smtp(let smtp): pool = SMTPPool(settings: smtp); outbox = nil
        case .outbox(let dir): pool = nil; outbox = OutboxWriter(directory: dir)
        case .result: pool = nil; outbox = nil
        }
    }

    /// What a job asks for, decoded.
    struct Request: Sendable {
        var templateName: String
        var profileID: String
        var campaign: JSONObject
        var campaignID: String
        var data: JSONValue
    }

    static func request(_ job: JobEnvelope) throws(JobError) -> Request {
        let data = job.data
        guard let template = job.template ?? data["template"]?.stringValue else {
            throw .permanent("invalid_email_job", "an email job needs 'template'")
        }
        guard let profileID = job.profileID ?? data["profile_id"]?.stringValue, !profileID.isEmpty else {
            throw .permanent("invalid_email_job", "an email job needs 'profile_id'")
        }
        var campaign = JSONObject()
        switch job.campaign {
        case .string(let id)?: campaign["id"] = .string(id)
        case .object(let o)?: campaign = o
        default: break
        }
        if case .object(let extra)? = data["campaign"] {
            for (k, v) in extra where campaign[k] == nil { campaign[k] = v }
        }
        let campaignID = campaign["id"]?.stringValue ?? "none"
        campaign["id"] = .string(campaignID)
        return Request(templateName: template, profileID: profileID, campaign: campaign, campaignID: campaignID, data: data)
    }

    /// The person as the handler needs them, read in one hop to a reader queue.
    struct Person: Sendable {
        var view: ProfileView?
        var profileSuppressed: Bool
        var emailSuppressed: Bool
    }

    func person(_ profileID: String) async throws(JobError) -> Person {
        do {
            return try await store.read { reader in
                let view = try reader.view(id: profileID)
                let profileSuppressed = view == nil ? try reader.isSuppressed(address: profileID, channel: .profile) : false
                let emailSuppressed = try view?.email.map { try reader.isSuppressed(address: $0, channel: .email) } ?? false
                return Person(view: view, profileSuppressed: profileSuppressed, emailSuppressed: emailSuppressed)
            }
        } catch {
            throw .retryable("store_unavailable", "cannot read the profile store: \(error)")
        }
    }

    public func handle(_ job: JobEnvelope, context: JobContext) async throws -> JobOutcome {
        let request = try Self.request(job)
        if pool != nil, let state = try? await ledger.deliveryState(jobID: job.id), state == .accepted {
            return .succeeded(output: ["already_sent": true, "delivery": "smtp",
                                       "message_id": .string(messageID(job.id, from: nil))])
        }
        let person = try await person(request.profileID)
        guard let view = person.view else {
            if person.profileSuppressed { return .suppressed(reason: "erased") }
            throw JobError.permanent("profile_not_found", "no profile with the job's profile_id")
        }
        guard let email = view.email, !email.isEmpty else { return .suppressed(reason: "no_email") }
        var template: EmailTemplate
        do { template = try catalog.template(named: request.templateName) } catch { throw error.jobError }
        let meta = template.metadata
        if person.emailSuppressed { return .suppressed(reason: "suppressed_address") }
        if meta.category == .marketing {
            switch view.consent(channel: "email", topic: meta.subscriptionGroup) {
            case false?: return .suppressed(reason: "opted_out", output: ["group": .string(meta.subscriptionGroup)])
            case nil where settings.requireOptIn: return .suppressed(reason: "no_consent", output: ["group": .string(meta.subscriptionGroup)])
            default: break
            }
        }
        let assigner: VariantAssigner
        do { assigner = try VariantAssigner(campaign: request.campaign) } catch { throw error.jobError }
        let variant: VariantAssigner.Variant
        switch assigner.assign(campaignID: request.campaignID, profileID: view.id, forced: job.data["variant"]?.stringValue) {
        case .holdout:
            return .suppressed(reason: "holdout", output: ["variant": "holdout", "campaign_id": .string(request.campaignID)])
        case .variant(let v): variant = v
        }
        if let other = variant.template, other != template.name {
            do { template = try catalog.template(named: other) } catch { throw error.jobError }
        }
        let links = signer.links(profileID: view.id, group: template.metadata.subscriptionGroup, campaignID: request.campaignID)
        let environment = try await environment(request: request, view: view, variant: variant, links: links)
        let rendered: EmailComposer.Rendered
        do {
            switch try composer.render(template, environment: environment) {
            case .aborted(let reason):
                return .suppressed(reason: "abort_message", output: ["message": .string(reason), "variant": .string(variant.name)])
            case .rendered(let r): rendered = r
            }
        } catch {
            throw error.jobError
        }
        if meta.category == .marketing, let outcome = try await frequencyCap(job: job, request: request, view: view) {
            return outcome
        }
        let messageID = messageID(job.id, from: meta.from)
        var extra: [(String, String)] = [("X-Campaign-ID", request.campaignID), ("X-Campaign-Variant", variant.name), ("X-Fleet-Job-ID", job.id)]
        if let name = request.campaign["name"]?.stringValue { extra.append(("X-Campaign-Name", name)) }
        let group = meta.subscriptionGroup.isEmpty ? "all" : meta.subscriptionGroup
        let message = MIMEMessage(
            from: meta.from, to: email, replyTo: meta.replyTo, subject: rendered.subject, preheader: rendered.preheader,
            text: rendered.text, html: rendered.html, date: Date(), messageID: messageID,
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
                output["file"] = .string(try await outbox!.write(jobID: job.id, bytes: bytes))
            } catch let e as EmailError {
                throw e.jobError
            }
        case .smtp:
            output["delivery"] = "smtp"
            for (k, v) in try await deliverSMTP(job: job, from: meta.from, to: email, messageID: messageID, bytes: bytes, context: context) {
                output[k] = v
            }
        }
        return .succeeded(output: .object(output))
    }

    func messageID(_ jobID: String, from: String?) -> String {
        MIMEMessage.messageID(jobID: jobID, domain: from.map(MIMEMessage.domain(of:)) ?? "fleet.invalid")
    }

    /// The template context.
    func environment(request: Request, view: ProfileView, variant: VariantAssigner.Variant,
                     links: (unsubscribe: String, preferences: String)) async throws -> LiquidObject {
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
        let recommendations = (try? await recommender.recommendations(for: profile.objectValue ?? JSONObject())) ?? []
        env["recommendations"] = .array(recommendations.map(LiquidBridge.liquid))
        return env
    }

    /// The frequency cap: nil to go on, else the outcome (deferred or suppressed).
    func frequencyCap(job: JobEnvelope, request: Request, view: ProfileView) async throws -> JobOutcome? {
        let limit = request.campaign["frequency_cap"]?.intValue.map(Int.init) ?? settings.frequencyCap
        guard limit > 0 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = view.timezone.flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "UTC")!
        let now = Date()
        let c = calendar.dateComponents([.year, .month, .day], from: now)
        let day = String(format: "%04d-%02d-%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0)
        let allowed: Bool
        do {
            allowed = try await ledger.reserve(jobID: job.id, profileID: view.id, day: day, limit: limit)
        } catch {
            throw JobError.retryable("store_unavailable", "cannot check the frequency cap: \(error)")
        }
        if allowed { return nil }
        if request.campaign["cap_action"]?.stringValue == "defer" {
            let midnight = calendar.date(byAdding: .day, value: 1, to: calendar.startOfDay(for: now)) ?? now.addingTimeInterval(86_400)
            return .deferred(until: midnight.addingTimeInterval(60), reason: "frequency_cap")
        }
        return .suppressed(reason: "frequency_cap", output: ["limit": .int(Int64(limit)), "day": .string(day)])
    }

    /// Sends through the pool; records `sending` before the end of DATA and `accepted` right after the 250.
    func deliverSMTP(job: JobEnvelope, from: String, to: String, messageID: String, bytes: [UInt8], context: JobContext) async throws -> JSONObject {
        let ledger = self.ledger
        let jobID = job.id
        do {
            let accepted = try await pool!.send(from: MIMEMessage.address(of: from), to: to, message: bytes) {
                try await ledger.record(jobID: jobID, messageID: messageID, state: .sending)
            }
            try await ledger.record(jobID: jobID, messageID: messageID, state: .accepted)
            let window = ContinuousClock.now - accepted.at
            let us = window.components.seconds * 1_000_000 + window.components.attoseconds / 1_000_000_000_000
            return JSONObject(["relay_reply": .int(Int64(accepted.reply.code)), "duplicate_window_us": .int(us),
                               "smtp_tls": .bool(accepted.tls)])
        } catch let error as SMTPError {
            if !error.isTransient {
                if error.stage == "rcpt" || (550...553).contains(error.replyCode ?? 0) {
                    try? await ledger.suppress(email: to, reason: "hard_bounce")
                }
                try? await ledger.forget(jobID: jobID)
                context.logger.warning("relay rejected a message", metadata: ["smtp.code": "\(error.replyCode ?? 0)", "smtp.stage": "\(error.stage ?? "")"])
                throw JobError.permanent(error.code, error.message)
            }
            throw JobError.retryable(error.code, error.message)
        }
    }

    /// The personalized html of `template` for a profile (for `fleet email preview`).
    public func preview(template name: String, profileID: String, variant: String?, campaign: JSONObject = JSONObject(["id": "preview"])) async throws -> String {
        var data = JSONObject()
        if let variant { data["variant"] = .string(variant) }
        let job = JobEnvelope(id: "preview", kind: "email", profileID: profileID, template: name, campaign: .object(campaign), data: .object(data))
        let request = try Self.request(job)
        let person = try await person(profileID)
        guard let view = person.view else { throw EmailError("profile_not_found", "no profile '\(profileID)'") }
        var template = try catalog.template(named: name)
        let assigner = try VariantAssigner(campaign: request.campaign)
        var chosen = VariantAssigner.Variant(name: "default", weight: 1)
        if case .variant(let v) = assigner.assign(campaignID: request.campaignID, profileID: view.id, forced: variant) { chosen = v }
        if let other = chosen.template { template = try catalog.template(named: other) }
        let links = signer.links(profileID: view.id, group: template.metadata.subscriptionGroup, campaignID: request.campaignID)
        let env = try await environment(request: request, view: view, variant: chosen, links: links)
        switch try composer.render(template, environment: env) {
        case .rendered(let r): return r.html
        case .aborted(let reason): throw EmailError("aborted", "the template aborted: \(reason)")
        }
    }
}
