import FleetCore
import FleetMarketing
import FleetRuntime
import Foundation
import Liquid
import Logging
import ProfileStore

/// The `push` kind: renders a personalized notification for one person and sends it to each of their active
/// devices through APNs (iOS) and FCM (Android). See Workers/PushWorker/README.md.
///
/// Outcomes: `succeeded` (`output.devices`: per device its id (a hash, never the token), platform, app and status:
/// `delivered` with the apns-id or FCM message name, `invalid` (pruned), `rejected` with the service's reason);
/// `suppressed` with `output.reason` `opted_out`, `no_consent`, `erased`, `no_devices`, `devices_invalid`, `holdout`,
/// `frequency_cap`, `quiet_hours` (campaign `quiet_action: drop`), `abort_message`, `cancelled`; `deferred` to the
/// end of the person's quiet hours (reason `quiet_hours`) or their next local day (`frequency_cap` with
/// `cap_action: defer`); `dead` for template errors, a missing profile or template, `payload_too_large`, and
/// `push_rejected` (every device refused for a reason a retry does not fix); `failed` (retried through the delay
/// queues, after the service's Retry-After when it gave one) with `push_throttled` or `push_unavailable` when a
/// device got 429/5xx or the service could not be reached: the retry sends only to the devices still without an
/// answer (each device's push is an effect in the job's journal).
public struct PushHandler: JobHandler {
    public typealias Parameters = PushParameters

    public let kind = "push"
    public let store: ProfileStore
    public let settings: PushSettings
    public let catalog: PushTemplateCatalog
    let composer: PushComposer
    let sender: PushSender

    public init(store: ProfileStore, settings: PushSettings) throws {
        self.store = store
        self.settings = settings
        catalog = PushTemplateCatalog(directory: settings.templatesDirectory)
        composer = PushComposer(catalog: catalog)
        sender = try PushSender(settings: settings)
    }

    /// The person as the handler needs them, read in one hop.
    struct Person: Sendable {
        var view: ProfileView?
        var profileSuppressed: Bool
        var campaignCancelled: Bool
        /// The content worker's unexpired blocks for the person, by slot (`content.<slot>` in templates).
        var content: [String: JSONValue] = [:]
    }

    func person(_ profileID: String, campaignID: String?) async throws -> Person {
        try await store.read { reader in
            let view = try reader.view(id: profileID)
            let profileSuppressed = view == nil ? try reader.isSuppressed(address: profileID, channel: .profile) : false
            let cancelled = try campaignID.map { try reader.isCampaignCancelled($0) } ?? false
            let content = try view.map { try reader.contentBlocks(profileID: $0.id, now: ProfileStore.nowMillis()) } ?? [:]
            return Person(view: view, profileSuppressed: profileSuppressed, campaignCancelled: cancelled, content: content)
        }
    }

    /// A job's push, ready to send: the payloads and the headers' values.
    struct Prepared: Sendable {
        var template: PushTemplate
        var variant: String
        var payloads: PushComposer.Payloads
        var ttlSeconds: Int
        var collapseKey: String?
        /// The campaign's or template's collapse key, else one of the job's own (a UUID from its id): a resend of the
        /// job replaces its notification on the device instead of adding a second (apns-collapse-id, FCM tag).
        var collapseID: String
    }

    public func handle(_ request: PushParameters, context: JobContext) async throws -> JobOutcome {
        var template: PushTemplate
        do { template = try catalog.template(named: request.templateName) } catch { throw JobError.converting(error) }
        let campaignID = request.campaign.id
        let person = try await person(request.profileID, campaignID: campaignID == "none" ? nil : campaignID)
        if person.campaignCancelled { return .suppressed(reason: "cancelled", output: ["campaign_id": .string(campaignID)]) }
        guard let view = person.view else {
            if person.profileSuppressed { return .suppressed(reason: "erased") }
            throw JobError.permanent("profile_not_found", "no profile with the job's profile_id")
        }
        let meta = template.metadata
        if meta.category == .marketing {
            switch view.consent(channel: "push", topic: meta.subscriptionGroup) {
            case false?: return .suppressed(reason: "opted_out", output: ["group": .string(meta.subscriptionGroup)])
            case nil where settings.requireOptIn: return .suppressed(reason: "no_consent", output: ["group": .string(meta.subscriptionGroup)])
            default: break
            }
        }
        let devices = view.devices.filter { d in
            (request.platform == nil || d.platform == request.platform) && (request.app == nil || d.app == request.app)
        }
        let valid = devices.filter(\.isValid)
        if valid.isEmpty {
            return .suppressed(reason: devices.isEmpty ? "no_devices" : "devices_invalid", output: ["campaign_id": .string(campaignID)])
        }
        let variant: VariantAssigner.Variant
        switch request.campaign.assign(profileID: view.id) {
        case .holdout: return .suppressed(reason: "holdout", output: ["variant": "holdout", "campaign_id": .string(campaignID)])
        case .variant(let v): variant = v
        }
        if let other = variant.template, other != template.name {
            do { template = try catalog.template(named: other) } catch { throw JobError.converting(error) }
        }
        if meta.category == .marketing, let quiet = request.quietHours ?? template.metadata.quietHours ?? settings.quietHours {
            let local = LocalDay(timezone: view.timezone)
            if let end = quiet.end(of: context.now, in: local) {
                if request.dropInQuietHours {
                    return .suppressed(reason: "quiet_hours", output: ["quiet_hours": .string(quiet.description), "variant": .string(variant.name)])
                }
                return .deferred(until: end, reason: "quiet_hours")
            }
        }
        let prepared: Prepared
        switch try prepare(template: template, request: request, view: view, variant: variant, jobID: context.jobID, content: person.content) {
        case .aborted(let reason):
            return .suppressed(reason: "abort_message", output: ["message": .string(reason), "variant": .string(variant.name)])
        case .ready(let p): prepared = p
        }
        if meta.category == .marketing {
            let cap = FrequencyCap(channelLimit: request.campaign.frequencyCap ?? settings.frequencyCap,
                                   allChannelsLimit: settings.frequencyCapAllChannels)
            if let outcome = try await cap.admit(store: store, channel: "push", jobID: context.jobID, profileID: view.id,
                                                 timezone: view.timezone, deferWhenCapped: request.campaign.deferWhenCapped,
                                                 now: context.now, output: ["variant": .string(variant.name)]) {
                return outcome
            }
        }
        return try await send(prepared, to: valid, profileID: view.id, campaignID: campaignID, context: context)
    }

    enum Preparation: Sendable {
        case ready(Prepared)
        case aborted(String)
    }

    /// Renders the template and builds the payloads (within 4,096 bytes, or `payload_too_large`).
    func prepare(template: PushTemplate, request: PushParameters, view: ProfileView, variant: VariantAssigner.Variant,
                 jobID: String, content: [String: JSONValue] = [:]) throws -> Preparation {
        var env = LiquidObject()
        env["profile"] = LiquidBridge.liquid(view.templateValue)
        var campaign = LiquidBridge.object(request.campaign.object)
        campaign["variant"] = .string(variant.name)
        env["campaign"] = .object(campaign)
        env["data"] = LiquidBridge.liquid(request.data)
        var blocks = LiquidObject()
        for (slot, block) in content.sorted(by: { $0.key < $1.key }) { blocks[slot] = LiquidBridge.liquid(block) }
        env["content"] = .object(blocks)
        let content: PushComposer.Content
        do {
            switch try composer.render(template, environment: env) {
            case .aborted(let reason): return .aborted(reason)
            case .rendered(let c): content = c
            }
        } catch {
            throw JobError.converting(error)
        }
        let ttl = request.ttlSeconds ?? template.metadata.ttlSeconds ?? settings.ttlSeconds
        let collapse = request.collapseKey ?? template.metadata.collapseKey
        let ids = [("campaign_id", request.campaign.id), ("variant", variant.name), ("job_id", jobID)]
        let collapseID = collapse ?? PushSender.messageID(jobID: jobID, token: "")
        do {
            let payloads = try composer.payloads(content, metadata: template.metadata, ids: ids, ttlSeconds: ttl, collapseKey: collapse, tag: collapseID)
            return .ready(Prepared(template: template, variant: variant.name, payloads: payloads, ttlSeconds: ttl, collapseKey: collapse,
                                   collapseID: collapseID))
        } catch {
            throw JobError.converting(error)
        }
    }

    /// A device's push failed in a way that means it was not sent: the journal forgets the intent.
    struct NotSent: Error, EffectNotApplied {
        let outcome: PushSender.DeviceOutcome
        var effectNotApplied: Bool { true }
    }

    /// Sends to each device concurrently, each push an effect of the job (key `push:<device id>`).
    func send(_ p: Prepared, to devices: [DeviceRecord], profileID: String, campaignID: String, context: JobContext) async throws -> JobOutcome {
        let expiration = p.ttlSeconds == 0 ? 0 : Int64(context.now.timeIntervalSince1970) + Int64(p.ttlSeconds)
        let policy: UncertainEffectPolicy = p.template.metadata.resendIfUncertain ? .redo : .skip
        let results = await withTaskGroup(of: (DeviceRecord, Result<JSONValue, any Error>).self) { group in
            for device in devices {
                group.addTask {
                    do {
                        let r = try await self.sendOne(p, device: device, expiration: expiration, policy: policy, context: context)
                        return (device, .success(r))
                    } catch {
                        return (device, .failure(error))
                    }
                }
            }
            var all: [(DeviceRecord, Result<JSONValue, any Error>)] = []
            for await r in group { all.append(r) }
            return all
        }
        var rows: [JSONValue] = []
        var delivered = 0, pruned = 0, rejected = 0, skipped = 0, other = 0
        var retry: (code: String, reason: String, after: Int?)?
        var invalid: [(DeviceRecord, Int64?)] = []
        for (device, result) in results.sorted(by: { $0.0.token < $1.0.token }) {
            var row: JSONObject = ["device": .string(PushSender.deviceID(device.token)), "platform": .string(device.platform), "app": .string(device.app)]
            switch result {
            case .success(let value):
                for (k, v) in value.objectValue ?? JSONObject() { row[k] = v }
                switch value["status"]?.stringValue {
                case "delivered": delivered += 1
                case "invalid":
                    pruned += 1
                    invalid.append((device, value["since"]?.intValue))
                case "skipped": skipped += 1
                default: other += 1  // rendered (delivery result), uncertain (an earlier run may have sent it)
                }
            case .failure(let error as NotSent):
                switch error.outcome {
                case .retry(let reason, let after):
                    row["status"] = "retry"
                    row["reason"] = .string(reason)
                    let code = ["TooManyRequests", "QUOTA_EXCEEDED"].contains(reason) || reason == "HTTP 429" ? "push_throttled" : "push_unavailable"
                    let longest = max(after ?? 0, retry?.after ?? 0)
                    retry = (retry?.code ?? code, reason, longest > 0 ? longest : nil)
                case .rejected(let status, let reason):
                    rejected += 1
                    row["status"] = "rejected"
                    row["reason"] = .string(reason)
                    if status > 0 { row["http_status"] = .int(Int64(status)) }
                default: break
                }
            case .failure(let error):
                let e = JobError.converting(error)
                row["status"] = "retry"
                row["reason"] = .string(e.code)
                retry = (retry?.code ?? "push_unavailable", e.code, retry?.after)
            }
            rows.append(.object(row))
        }
        for (device, since) in invalid {
            // The store keeps a token that re-registered after the service's timestamp (last writer wins).
            let at = since ?? Int64(context.now.timeIntervalSince1970 * 1000)
            _ = try await store.apply([ProfileOperation(
                opID: "push-invalid:\(context.jobID):\(PushSender.deviceID(device.token))", timestampMillis: at,
                body: .device(profileID: profileID, token: device.token, platform: device.platform, app: device.app, registered: false))])
        }
        if pruned > 0 { context.logger.info("push tokens pruned", metadata: ["push.pruned": "\(pruned)"]) }
        if let retry {
            // The delivered devices' completions are kept: the next attempt sends only to the others.
            throw JobError.retryable(retry.code, "\(rows.count - delivered - pruned - rejected) device(s) to retry: \(retry.reason)",
                                     after: retry.after.map { .seconds($0) })
        }
        var output: JSONObject = ["template": .string(p.template.name), "campaign_id": .string(campaignID), "variant": .string(p.variant),
                                  "delivered": .int(Int64(delivered)), "pruned": .int(Int64(pruned)), "devices": .array(rows),
                                  "bytes": .int(Int64(p.payloads.apns.count))]
        if p.payloads.truncated { output["truncated"] = true }
        if delivered > 0 || other > 0 { return .succeeded(output: .object(output)) }
        // Nothing reached a device: the push does not count against the person's caps.
        try? await store.releaseCap(jobID: context.jobID, channel: "push")
        if rejected > 0 {
            let reasons = Set(rows.compactMap { $0["reason"]?.stringValue }).sorted().joined(separator: ", ")
            throw JobError(code: "push_rejected", message: "every device was refused: \(reasons)", retryable: false, output: .object(output))
        }
        if pruned > 0 { return .suppressed(reason: "devices_invalid", output: .object(output)) }
        return .suppressed(reason: "not_configured", output: .object(output))
    }

    /// One device: the effect of the job's journal around the request.
    func sendOne(_ p: Prepared, device: DeviceRecord, expiration: Int64, policy: UncertainEffectPolicy, context: JobContext) async throws -> JSONValue {
        let apnsID = PushSender.messageID(jobID: context.jobID, token: device.token)
        if settings.delivery == .result {
            return .object(request(p, device: device, apnsID: apnsID, expiration: expiration).merging(["status": "rendered"]))
        }
        guard sender.isConfigured(platform: device.platform) else {
            return ["status": "skipped", "reason": "not_configured"]
        }
        let key = "push:\(PushSender.deviceID(device.token))"
        let result = try await context.effect(key, ifUncertain: policy) { _ in
            let outcome: PushSender.DeviceOutcome
            if device.platform == "ios" {
                let headers = PushSender.apnsHeaders(topic: sender.topic ?? "", apnsID: apnsID, pushType: p.template.metadata.pushType,
                                                     highPriority: p.template.metadata.highPriority, expiration: expiration,
                                                     collapseID: p.collapseID)
                outcome = try await sender.sendAPNs(token: device.token, headers: headers, payload: p.payloads.apns)
            } else {
                outcome = try await sender.sendFCM(token: device.token, message: fcmMessage(p, messageID: apnsID))
            }
            switch outcome {
            case .delivered(let id): return ["status": "delivered", "id": .string(id)]
            case .invalid(let reason, let since):
                var out: JSONObject = ["status": "invalid", "reason": .string(reason)]
                if let since { out["since"] = .int(since) }
                return .object(out)
            case .retry, .rejected: throw NotSent(outcome: outcome)
            }
        }
        switch result {
        case .performed(let value): return value
        case .alreadyDone(let value):
            var out = value.objectValue ?? JSONObject()
            out["already_sent"] = true
            return .object(out)
        case .uncertain:
            return ["status": "uncertain"]
        }
    }

    /// The exact request of a device's push: service, headers (no authorization) and body (for `result` delivery
    /// and `fleet push preview`).
    func request(_ p: Prepared, device: DeviceRecord, apnsID: String, expiration: Int64) -> JSONObject {
        if device.platform == "ios" {
            var headers = JSONObject()
            for (k, v) in PushSender.apnsHeaders(topic: settings.apnsTopic ?? "<FLEET_PUSH_APNS_TOPIC>", apnsID: apnsID,
                                                 pushType: p.template.metadata.pushType, highPriority: p.template.metadata.highPriority,
                                                 expiration: expiration, collapseID: p.collapseID) {
                headers[k] = .string(v)
            }
            return ["service": "apns", "headers": .object(headers),
                    "payload": (try? JSONValue(parsing: p.payloads.apns)) ?? .null, "bytes": .int(Int64(p.payloads.apns.count))]
        }
        return ["service": "fcm", "payload": ["message": .object(fcmMessage(p, messageID: apnsID))], "bytes": .int(Int64(p.payloads.fcmBytes))]
    }

    /// The job's FCM message for one device (without its token): the payload with the device's message id in `data`.
    func fcmMessage(_ p: Prepared, messageID: String) -> JSONObject {
        var message = p.payloads.fcm
        if var data = message["data"]?.objectValue {
            data["fleet_message_id"] = .string(messageID)
            message["data"] = .object(data)
        }
        return message
    }

    /// The exact APNs and FCM requests of `template` for a profile (for `fleet push preview`): for each service the
    /// method and path, the headers (the provider token and access token redacted) and the body, with its size as
    /// the service counts it. The person's first device of each platform is used, else a placeholder token.
    public func preview(template name: String, profileID: String, variant: String?, campaignID: String = "preview") async throws -> JSONObject {
        var data = JSONObject()
        if let variant { data["variant"] = .string(variant) }
        let job = JobEnvelope(id: "preview", kind: "push", data: .object(data),
                              fields: ["profile_id": .string(profileID), "template": .string(name), "campaign": .string(campaignID)])
        let request: PushParameters
        do { request = try PushParameters(job: job) } catch { throw PushError(JobError.invalidParameters, error.message) }
        guard let view = try await store.view(id: profileID) else { throw PushError("profile_not_found", "no profile '\(profileID)'") }
        let content = try await store.read { try $0.contentBlocks(profileID: view.id, now: ProfileStore.nowMillis()) }
        var template = try catalog.template(named: name)
        var chosen = VariantAssigner.Variant(name: "default", weight: 1)
        if case .variant(let v) = request.campaign.assign(profileID: view.id) { chosen = v }
        if let other = chosen.template { template = try catalog.template(named: other) }
        let prepared: Prepared
        switch try prepare(template: template, request: request, view: view, variant: chosen, jobID: "preview", content: content) {
        case .aborted(let reason): throw PushError("aborted", "the template aborted: \(reason)")
        case .ready(let p): prepared = p
        }
        let expiration = prepared.ttlSeconds == 0 ? 0 : Int64(Date().timeIntervalSince1970) + Int64(prepared.ttlSeconds)
        var out: JSONObject = ["template": .string(template.name), "variant": .string(chosen.name)]
        if prepared.payloads.truncated { out["truncated"] = true }
        for platform in ["ios", "android"] {
            let token = view.validDevices.first { $0.platform == platform }?.token
                ?? (platform == "ios" ? String(repeating: "0", count: 64) : "PLACEHOLDER-FCM-TOKEN")
            let device = DeviceRecord(token: token, platform: platform, app: "", updatedAt: 0, invalidSince: nil)
            var r = self.request(prepared, device: device, apnsID: PushSender.messageID(jobID: "preview", token: token), expiration: expiration)
            if platform == "ios" {
                r["method"] = "POST"
                r["path"] = .string("/3/device/\(token)")
                var headers = r["headers"]?.objectValue ?? JSONObject()
                headers["authorization"] = "bearer <provider token: ES256 JWT, redacted>"
                r["headers"] = .object(headers)
            } else {
                r["method"] = "POST"
                r["path"] = .string("/v1/projects/\(settings.fcmAccount?.projectID ?? "<project_id>")/messages:send")
                r["headers"] = ["authorization": "Bearer <OAuth 2 access token, redacted>", "content-type": "application/json"]
                if var payload = r["payload"]?["message"]?.objectValue {
                    payload["token"] = .string(token)
                    r["payload"] = ["message": .object(payload)]
                }
            }
            out[platform == "ios" ? "apns" : "fcm"] = .object(r)
        }
        return out
    }

    /// Frequency-cap rows serve one local day: older than two days they are pruned.
    public func prune(now: Date, retention: Duration) async throws -> [String: Int] {
        ["caps": try await store.pruneCaps(before: now.addingTimeInterval(-2 * 86_400))]
    }

    /// Closes the HTTP/2 connections.
    public func shutdown() async {
        await sender.shutdown()
    }
}

extension JSONObject {
    func merging(_ other: JSONObject) -> JSONObject {
        var out = self
        for (k, v) in other { out[k] = v }
        return out
    }
}
