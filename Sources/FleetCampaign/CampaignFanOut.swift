import AMQPClient
import FleetAMQP
import FleetBackoff
import FleetCore
import FleetRuntime
import Foundation
import ProfileStore

/// `fleet campaign send`: a segment's members, read from the profile store in pages, each given one job (id
/// `<campaign id>:<profile id>`) whose `not_before` is the member's send time (``CampaignSchedule``), published
/// with confirms in the order of those times, and recorded in the store as each is confirmed: a second run
/// (after a crash, a lost broker, or simply again) publishes only the members not recorded, and the workers'
/// ledger answers any job id that runs twice.
///
/// When the broker goes away mid-run, the publishes not confirmed are kept; the send waits for the connection
/// to come back (up to ``Request/reconnectTimeout``) and publishes them again. A job whose publish was in flight
/// may then be queued twice: the same job id, which the workers' ledger and effects journal run once.
public struct CampaignFanOut: Sendable {
    /// What to send.
    public struct Request: Sendable {
        public var campaignID: String
        /// `email` or `push`.
        public var kind: String
        public var template: String
        public var segment: String
        public var name: String?
        /// A/B variants: name and weight.
        public var variants: [(name: String, weight: Double)] = []
        public var holdout: Double?
        public var frequencyCap: Int?
        public var schedule = CampaignSchedule()
        /// Plan and report only: nothing published or recorded.
        public var dryRun = false
        /// Unconfirmed publishes at once.
        public var inFlight = 512
        /// How long to wait for a lost broker before giving up (the next run resumes).
        public var reconnectTimeout: Duration = .seconds(120)

        public init(campaignID: String, kind: String, template: String, segment: String) {
            self.campaignID = campaignID
            self.kind = kind
            self.template = template
            self.segment = segment
        }
    }

    /// How a send went.
    public struct Summary: Sendable {
        /// Members of the segment.
        public var members = 0
        /// Members whose job an earlier run had confirmed (not published again).
        public var alreadyConfirmed = 0
        /// Jobs the broker confirmed in this run (a dry run: the jobs it would publish).
        public var confirmed = 0
        /// Members whose `timezone` trait is not a known zone: sent in the default zone.
        public var invalidTimeZones = 0
        /// The earliest and latest `not_before` of this run's jobs.
        public var first: Date?
        public var last: Date?
        /// Jobs by the hour (UTC) of their `not_before`.
        public var byHour: [Date: Int] = [:]
        /// A few of the jobs, as published.
        public var sample: [String] = []
        /// Publishes whose confirm the lost broker never sent, published again (each may be queued twice).
        public var republished = 0
        public var seconds = 0.0
    }

    /// Progress, for a progress bar: members read so far, jobs confirmed so far, jobs to publish.
    public struct Progress: Sendable {
        public var membersRead = 0
        public var confirmed = 0
        public var toPublish: Int?
    }

    public let store: ProfileStore
    public let connection: AMQPConnection
    public let topology: FleetTopology

    public init(store: ProfileStore, connection: AMQPConnection, topology: FleetTopology) {
        self.store = store
        self.connection = connection
        self.topology = topology
    }

    /// Runs the send. Throws ``CampaignError``.
    public func run(_ request: Request, now: Date = Date(), progress: (Progress) -> Void = { _ in }) async throws -> Summary {
        let started = ContinuousClock.now
        var summary = Summary()
        var report = Progress()
        let segmentName = request.segment
        guard let segment = try await store.read({ try $0.segment(named: segmentName) }) else {
            throw CampaignError(code: "unknown_segment", message: "no segment '\(request.segment)' (fleet segment list shows the defined ones)")
        }
        let campaignID = request.campaignID
        if let existing = try await store.read({ try $0.campaign(id: campaignID) }) {
            guard existing.kind == request.kind, existing.template == request.template, existing.segment == request.segment else {
                throw CampaignError(
                    code: "campaign_mismatch",
                    message: "campaign '\(request.campaignID)' was sent before with kind \(existing.kind), template \(existing.template), segment \(existing.segment): use another --campaign-id")
            }
            if existing.cancelledAt != nil {
                throw CampaignError(code: "campaign_cancelled", message: "campaign '\(request.campaignID)' was cancelled: use another --campaign-id")
            }
        }

        // 1. The members, a page of the store at a time.
        var members: [(id: String, timezone: String?)] = []
        var after: String?
        let nowMillis = Int64(now.timeIntervalSince1970 * 1000)
        repeat {
            let cursor = after
            let page = try await store.read { try $0.memberPage(of: segment, after: cursor, now: nowMillis) }
            members += page.members
            after = page.last
            report.membersRead = members.count
            progress(report)
        } while after != nil
        summary.members = members.count
        guard !members.isEmpty else {
            summary.seconds = started.duration(to: .now).seconds
            return summary
        }

        // 2. The plan: each member's send time, in time order, spread to the rate around the slots taken.
        let done = try await store.read { try $0.confirmedJobs(ofCampaign: campaignID) }
        let confirmedIDs = Set(done.map(\.profileID))
        var planned: [(id: String, time: Date)] = []
        planned.reserveCapacity(members.count)
        for member in members where !confirmedIDs.contains(member.id) {
            let (time, invalid) = request.schedule.sendTime(timezone: member.timezone, now: now)
            if invalid { summary.invalidTimeZones += 1 }
            planned.append((member.id, time))
        }
        summary.alreadyConfirmed = members.count - planned.count
        planned.sort { $0.time != $1.time ? $0.time < $1.time : $0.id < $1.id }
        let occupied = done.map { Date(timeIntervalSince1970: Double($0.notBefore) / 1000) }
        let times = request.schedule.throttle(planned.map(\.time), occupied: occupied)
        var jobs: [(profileID: String, notBefore: Date, body: [UInt8])] = []
        jobs.reserveCapacity(planned.count)
        let campaign = Self.campaignObject(request)
        for (p, time) in zip(planned, times) {
            jobs.append((p.id, time, Self.job(request, profileID: p.id, notBefore: time, now: now, campaign: campaign)))
        }
        summary.first = jobs.first?.notBefore
        summary.last = jobs.last?.notBefore
        for job in jobs {
            let hour = Date(timeIntervalSince1970: (job.notBefore.timeIntervalSince1970 / 3600).rounded(.down) * 3600)
            summary.byHour[hour, default: 0] += 1
        }
        summary.sample = jobs.prefix(3).map { String(decoding: $0.body, as: UTF8.self) }
        report.toPublish = jobs.count
        if request.dryRun || jobs.isEmpty {
            summary.confirmed = request.dryRun ? jobs.count : 0
            summary.seconds = started.duration(to: .now).seconds
            return summary
        }

        // 3. Publish with confirms, record what is confirmed; after a lost broker, again what was not.
        _ = try await store.createCampaign(CampaignRecord(
            id: request.campaignID, kind: request.kind, template: request.template, segment: request.segment, name: request.name,
            createdAt: nowMillis))
        var pending = jobs[...]
        var pass = 0
        while !pending.isEmpty {
            pass += 1
            let (confirmed, retry, unconfirmed) = try await publish(pending, request: request, report: &report, progress: progress)
            summary.confirmed += confirmed
            if retry.isEmpty { break }
            summary.republished += unconfirmed
            // Refused while connected (a nack: a queue limit, a cluster without a majority): pause before the next
            // pass, longer each time, rather than spin.
            if connection.isConnected {
                do { try await Task.sleep(for: .seconds(min(pass, 5))) } catch { throw CampaignError(code: "broker_lost", message: "cancelled") }
            }
            guard pass < 20, await waitForBroker(request.reconnectTimeout) else {
                throw CampaignError(
                    code: "broker_lost",
                    message: "the broker went away or kept refusing: \(summary.confirmed) jobs confirmed in this run, \(retry.count) not; run the same command again to send the rest")
            }
            pending = retry[...]
        }
        summary.seconds = started.duration(to: .now).seconds
        return summary
    }

    /// One pass over `jobs`: returns how many were confirmed and those to publish again (the broker went away).
    /// Confirmed jobs are recorded in the store in batches.
    private func publish(_ jobs: ArraySlice<(profileID: String, notBefore: Date, body: [UInt8])>, request: Request,
                         report: inout Progress, progress: (Progress) -> Void) async throws
        -> (confirmed: Int, retry: [(profileID: String, notBefore: Date, body: [UInt8])], unconfirmed: Int) {
        enum Outcome: Sendable {
            case confirmed(Int)
            case lost(Int)
            case failed(CampaignError)
        }
        let exchange = topology.jobsExchange
        let kind = request.kind
        let connection = self.connection
        var confirmedCount = 0
        var retry: [Int] = []
        var unconfirmed = 0
        var toRecord: [CampaignJob] = []
        var brokerGone = false
        var failure: CampaignError?
        try await withThrowingTaskGroup(of: Outcome.self) { group in
            var running = 0
            var index = jobs.startIndex
            func settle(_ outcome: Outcome) {
                running -= 1
                switch outcome {
                case .confirmed(let i):
                    confirmedCount += 1
                    report.confirmed += 1
                    if report.confirmed % 256 == 0 { progress(report) }
                    toRecord.append(CampaignJob(profileID: jobs[i].profileID, notBefore: Int64(jobs[i].notBefore.timeIntervalSince1970 * 1000)))
                case .lost(let i):
                    retry.append(i)
                    unconfirmed += 1
                    brokerGone = true
                case .failed(let error):
                    failure = failure ?? error
                }
            }
            while index < jobs.endIndex && !brokerGone && failure == nil {
                if running >= request.inFlight, let outcome = try await group.next() {
                    settle(outcome)
                    if toRecord.count >= 1000 {
                        try await store.recordCampaignJobs(request.campaignID, toRecord)
                        toRecord.removeAll(keepingCapacity: true)
                    }
                    continue
                }
                let i = index
                index += 1
                let job = jobs[i]
                let properties = AMQPProperties(
                    contentType: "application/json", deliveryMode: 2, messageID: "\(request.campaignID):\(job.profileID)",
                    timestamp: UInt64(Date().timeIntervalSince1970), type: kind)
                group.addTask {
                    do {
                        switch try await connection.publish(job.body, to: exchange, routingKey: kind, properties: properties) {
                        case .acked: return .confirmed(i)
                        case .nacked: return .lost(i)  // refused for now (a queue limit, a node going down): again
                        case .returned:
                            return .failed(CampaignError(
                                code: "unroutable", message: "no queue takes kind '\(kind)' (run 'fleet topology apply' with that kind)"))
                        }
                    } catch {
                        return .lost(i)
                    }
                }
                running += 1
            }
            // Not published in this pass (the broker went away, or a failure stopped it): the next pass's.
            if index < jobs.endIndex && failure == nil { retry.append(contentsOf: index..<jobs.endIndex) }
            for try await outcome in group { settle(outcome) }
        }
        try await store.recordCampaignJobs(request.campaignID, toRecord)
        progress(report)
        if let failure { throw failure }
        return (confirmedCount, retry.sorted().map { jobs[$0] }, unconfirmed)
    }

    /// Waits until the connection is back, at most `timeout`. Polls: the connection reconnects by itself.
    private func waitForBroker(_ timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if connection.isConnected { return true }
            do { try await Task.sleep(for: .milliseconds(200)) } catch { return false }
        }
        return connection.isConnected
    }

    /// The `campaign` object of every job.
    public static func campaignObject(_ request: Request) -> JSONValue {
        var o = JSONObject()
        o["id"] = .string(request.campaignID)
        if let name = request.name { o["name"] = .string(name) }
        if !request.variants.isEmpty {
            o["variants"] = .array(request.variants.map { .object(["name": .string($0.name), "weight": $0.weight == $0.weight.rounded() ? .int(Int64($0.weight)) : .double($0.weight)]) })
        }
        if let holdout = request.holdout { o["holdout"] = .double(holdout) }
        if let cap = request.frequencyCap { o["frequency_cap"] = .int(Int64(cap)) }
        return .object(o)
    }

    /// A member's job, encoded (`not_before` only when later than `now`).
    public static func job(_ request: Request, profileID: String, notBefore: Date, now: Date, campaign: JSONValue) -> [UInt8] {
        var o = JSONObject()
        o["id"] = .string("\(request.campaignID):\(profileID)")
        o["kind"] = .string(request.kind)
        o["created_at"] = .string(Timestamp.format(now))
        if notBefore > now { o["not_before"] = .string(Timestamp.format(notBefore)) }
        o["profile_id"] = .string(profileID)
        o["template"] = .string(request.template)
        o["campaign"] = campaign
        return JSONValue.object(o).serialized()
    }
}
