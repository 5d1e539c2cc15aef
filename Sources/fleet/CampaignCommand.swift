import ArgumentParser
import FleetCampaign
import FleetServe
import FleetCore
import FleetRuntime
import FleetStore
import Foundation
import ProfileStore

/// `fleet campaign send|status|cancel`: a segment fanned out into jobs (``CampaignFanOut``), its progress from
/// the fleet's ledger, and cancelling what has not run.
struct CampaignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign", abstract: "Send a template to a segment, one job per person; follow or cancel it.",
        subcommands: [Send.self, Status.self, Report.self, Cancel.self])

    /// `fleet campaign send`.
    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish one job per member of a segment (id CAMPAIGN:PROFILE), at a time or at each person's local time, throttled.",
            discussion: """
                Members are read from the profile store (FLEET_STORE). Each confirmed job is recorded there, so running \
                the same command again publishes only what is missing (and nothing when all is sent). Exit 0 when every \
                job was confirmed (or the segment is empty); 64 bad arguments; 65 the campaign id was used for another \
                kind, template or segment, or was cancelled; 66 unknown segment, or no queue for the kind (run fleet \
                topology apply); 69 the broker is unreachable, or went away and did not come back within 2 minutes \
                (run the same command again to resume).
                """)
        @OptionGroup var global: GlobalOptions
        @Option(help: "The segment (fleet segment define).") var segment: String
        @Option(help: "email or push.") var kind: String
        @Option(help: "The template name.") var template: String
        @Option(name: .customLong("campaign-id"), help: "The campaign's id: job ids are <id>:<profile id>.") var campaignID: String
        @Option(help: "The campaign's name (campaign.name in templates).") var name: String?
        @Option(help: "A/B variants with weights, e.g. a:1,b:1.") var variants: String?
        @Option(help: "Share of the members held out (0 to 1), e.g. 0.1.") var holdout: Double?
        @Option(help: "When: RFC 3339 (2026-12-24T09:00:00Z), or with --local-time a wall-clock time (2026-12-24T09:00 or 09:00) in each person's time zone. Default: now.")
        var at: String?
        @Flag(name: .customLong("local-time"), help: "--at is a wall-clock time in each person's time zone (the timezone trait, else --default-timezone).")
        var localTime = false
        @Flag(name: .customLong("no-wrap"), help: "With --local-time: a time already past runs now instead of the next day.")
        var noWrap = false
        @Option(name: .customLong("default-timezone"), help: "The zone of people without a valid timezone trait (default UTC).")
        var defaultTimeZone: String = "UTC"
        @Option(help: "The most jobs a second the campaign starts, N/s, N/m or N/h (not_before spread accordingly). Default: no limit.")
        var rate: String?
        @Option(name: .customLong("frequency-cap"), help: "The campaign's frequency cap (messages per person per local day).")
        var frequencyCap: Int?
        @Flag(name: .customLong("dry-run"), help: "Plan only: print the jobs per hour and a sample; publish and record nothing.")
        var dryRun = false
        @Option(name: .customLong("in-flight"), help: "Unconfirmed publishes at once (default 512).") var inFlight: Int = 512
        @Flag(name: .customLong("no-progress"), help: "No progress bar, even on a terminal.") var noProgress = false
        @Flag(help: "The summary as one JSON object.") var json = false

        func validate() throws {
            guard ["email", "push"].contains(kind) else { throw ValidationError("--kind must be email or push") }
            guard !campaignID.isEmpty, !campaignID.contains(":") else { throw ValidationError("--campaign-id must be non-empty, without ':'") }
            guard (1...10_000).contains(inFlight) else { throw ValidationError("--in-flight must be between 1 and 10000") }
            if let holdout { guard (0...1).contains(holdout) else { throw ValidationError("--holdout must be between 0 and 1") } }
            if let frequencyCap { guard frequencyCap >= 0 else { throw ValidationError("--frequency-cap must be 0 or more") } }
            if localTime && at == nil { throw ValidationError("--local-time needs --at") }
            if noWrap && !localTime { throw ValidationError("--no-wrap goes with --local-time") }
            _ = try parsedVariants()
            _ = try schedule()
        }

        func parsedVariants() throws -> [(name: String, weight: Double)] {
            guard let variants else { return [] }
            return try variants.split(separator: ",").map { item in
                let parts = item.split(separator: ":", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, let w = Double(parts[1]), w > 0 else {
                    throw ValidationError("--variants must be name:weight,... with positive weights (e.g. a:1,b:1), not '\(variants)'")
                }
                return (String(parts[0]), w)
            }
        }

        func schedule() throws -> CampaignSchedule {
            guard let zone = TimeZone(identifier: defaultTimeZone) else {
                throw ValidationError("--default-timezone: unknown zone '\(defaultTimeZone)' (an IANA name such as Europe/Berlin)")
            }
            var s = CampaignSchedule(wrap: !noWrap, defaultTimeZone: zone)
            if let rate {
                guard let r = RateLimit(parsing: rate) else { throw ValidationError("--rate must be N/s, N/m or N/h (e.g. 500/s), not '\(rate)'") }
                s.rate = r
            }
            if let at {
                if localTime {
                    guard let t = CampaignSchedule.LocalTime(parsing: at) else {
                        throw ValidationError("--at with --local-time must be YYYY-MM-DDTHH:MM[:SS] or HH:MM[:SS], without a zone, not '\(at)'")
                    }
                    s.at = .localTime(t)
                } else {
                    guard let d = Timestamp.parse(at) else {
                        throw ValidationError("--at must be RFC 3339 with a zone (e.g. 2026-12-24T09:00:00Z), or use --local-time, not '\(at)'")
                    }
                    s.at = .instant(d)
                }
            }
            return s
        }

        func run() async throws {
            let logger = try global.bootstrapLogging()
            var request = CampaignFanOut.Request(campaignID: campaignID, kind: kind, template: template, segment: segment)
            request.name = name
            request.variants = try parsedVariants()
            request.holdout = holdout
            request.frequencyCap = frequencyCap
            request.schedule = try schedule()
            request.dryRun = dryRun
            request.inFlight = inFlight
            let store = ProfileStore(path: try global.storePath(), readers: 1)
            defer { store.close() }
            let connection = try await global.connect(name: "fleet campaign send", logger: logger)
            let fanOut = CampaignFanOut(store: store, connection: connection, topology: try global.topology())
            let bar = ProgressBar(total: nil, enabled: !noProgress && !json && isatty(STDERR_FILENO) == 1, label: "campaign")
            let summary: CampaignFanOut.Summary
            do {
                summary = try await fanOut.run(request) { p in
                    bar.show(p.toPublish == nil ? "members read \(p.membersRead)" : "confirmed", done: p.confirmed, total: p.toPublish)
                }
            } catch let error as CampaignError {
                bar.finish()
                await connection.close()
                throw CLIError(error.message, exitCode: Self.exitCode(error.code))
            }
            bar.finish()
            await connection.close()
            print(json ? Self.json(summary, request) : Self.text(summary, request))
        }

        static func exitCode(_ code: String) -> Int32 {
            switch code {
            case "unknown_segment", "unknown_campaign": return CLIError.notFound
            case "campaign_mismatch", "campaign_cancelled": return 65
            case "unroutable": return CLIError.notFound
            case "broker_lost": return 69
            default: return 1
            }
        }

        static func text(_ s: CampaignFanOut.Summary, _ r: CampaignFanOut.Request) -> String {
            if s.members == 0 { return "segment \(r.segment) has no members: nothing to send" }
            var lines: [String] = []
            let verb = r.dryRun ? "would publish" : "published and confirmed"
            lines.append("campaign \(r.campaignID): \(s.members) members in segment \(r.segment); \(verb) \(s.confirmed) jobs"
                         + (s.alreadyConfirmed > 0 ? ", \(s.alreadyConfirmed) already sent by an earlier run (skipped)" : "")
                         + String(format: " in %.2f s", s.seconds)
                         + (s.confirmed > 0 && !r.dryRun ? String(format: " (%.0f jobs/s)", Double(s.confirmed) / max(0.001, s.seconds)) : ""))
            if s.invalidTimeZones > 0 {
                lines.append("\(s.invalidTimeZones) members have an unknown timezone trait: sent in \(r.schedule.defaultTimeZone.identifier == "GMT" ? "UTC" : r.schedule.defaultTimeZone.identifier)")
            }
            if let first = s.first, let last = s.last, last > first || first.timeIntervalSinceNow > 1 {
                lines.append("not_before from \(Timestamp.format(first)) to \(Timestamp.format(last))")
            }
            if s.republished > 0 { lines.append("\(s.republished) publishes repeated after the broker was lost") }
            if r.dryRun {
                lines.append("jobs per hour (UTC) of not_before:")
                for (hour, n) in s.byHour.sorted(by: { $0.key < $1.key }) { lines.append("  \(Timestamp.format(hour))  \(n)") }
                lines.append("sample:")
                for job in s.sample { lines.append("  \(job)") }
            }
            return lines.joined(separator: "\n")
        }

        static func json(_ s: CampaignFanOut.Summary, _ r: CampaignFanOut.Request) -> String {
            var o = JSONObject()
            o["campaign_id"] = .string(r.campaignID)
            o["segment"] = .string(r.segment)
            o["dry_run"] = .bool(r.dryRun)
            o["members"] = .int(Int64(s.members))
            o["already_confirmed"] = .int(Int64(s.alreadyConfirmed))
            o["confirmed"] = .int(Int64(s.confirmed))
            o["invalid_timezones"] = .int(Int64(s.invalidTimeZones))
            o["republished"] = .int(Int64(s.republished))
            o["first_not_before"] = s.first.map { .string(Timestamp.format($0)) } ?? .null
            o["last_not_before"] = s.last.map { .string(Timestamp.format($0)) } ?? .null
            var hours = JSONObject()
            for (hour, n) in s.byHour.sorted(by: { $0.key < $1.key }) { hours[Timestamp.format(hour)] = .int(Int64(n)) }
            o["by_hour"] = .object(hours)
            o["seconds"] = .double((s.seconds * 1000).rounded() / 1000)
            return JSONValue.object(o).jsonString
        }
    }

    /// `fleet campaign status C`.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A campaign's jobs: confirmed, final results by status and reason (from the fleet's ledger), still to run.",
            discussion: "Reads FLEET_STORE only (the profile store and the workers' ledger share that file). Exit 66 for an unknown campaign.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The campaign id.") var campaignID: String
        @Flag(help: "One JSON object.") var json = false

        func run() async throws {
            _ = try global.bootstrapLogging()
            let path = try global.storePath()
            let store = ProfileStore(path: path, readers: 1)
            defer { store.close() }
            let id = campaignID
            let now = ProfileStore.nowMillis()
            let (record, counts) = try await store.read { reader in
                (try reader.campaign(id: id), try reader.campaignJobCounts(id, now: now))
            }
            guard let record else { throw CLIError.unknownCampaign(campaignID) }
            let status = try CampaignStatus(entries: JobLedger.entries(path: path, idPrefix: campaignID + ":"),
                                            confirmed: counts.confirmed, notYetDue: counts.notYetDue)
            print(json ? status.json(record) : status.text(record))
        }
    }

    /// `fleet campaign report C`.
    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A campaign's results per variant and for the holdout: sends, opens, clicks, conversions, rates with 95% CIs, verdicts.",
            discussion: """
                Reads FLEET_STORE (ledger and profile store), FLEET_CONVERSION_EVENTS and FLEET_CONVERSION_WINDOW_HOURS. \
                Docs/contract/README.md section 10 defines every figure. Exit 66 for an unknown campaign.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The campaign id.") var campaignID: String
        @Flag(help: "One JSON object.") var json = false

        func run() async throws {
            _ = try global.bootstrapLogging()
            let path = try global.storePath()
            let options: CampaignReport.Options
            do { options = try ServeSettings.reportOptions(ProcessInfo.processInfo.environment) } catch let e as ServeError { throw CLIError.usage(e.message) }
            guard FileManager.default.fileExists(atPath: path) else {
                throw CLIError("no store at \(path) (FLEET_STORE)", exitCode: CLIError.notFound)
            }
            let store = ProfileStore(path: path, readers: 1)
            defer { store.close() }
            guard let report = try await CampaignReport.load(campaignID: campaignID, store: store, storePath: path, options: options) else {
                throw CLIError.unknownCampaign(campaignID)
            }
            print(json ? report.json().jsonString : report.text())
        }
    }

    /// `fleet campaign cancel C`.
    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a campaign: its jobs not yet run (published ones included) end suppressed, reason cancelled.",
            discussion: "Workers read the cancel record in FLEET_STORE before running each job of the campaign. Exit 66 for an unknown campaign.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The campaign id.") var campaignID: String

        func run() async throws {
            _ = try global.bootstrapLogging()
            let store = ProfileStore(path: try global.storePath(), readers: 1)
            defer { store.close() }
            guard try await store.cancelCampaign(campaignID) else {
                throw CLIError.unknownCampaign(campaignID)
            }
            print("cancelled campaign \(campaignID): its jobs not yet run end suppressed (reason cancelled)")
        }
    }
}
