import FleetCore
import FleetStore
import ProfileStore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a campaign did, per variant and for the holdout: the workers' results (from the ledger) joined with what
/// people did afterwards (the `email_opened`, `email_clicked` and conversion events in the profile store), with
/// 95% intervals, comparisons and a verdict in plain words (`fleet campaign report`, `GET /campaigns/<id>`).
///
/// - A person's group is the variant their job assigned (`output.variant`); jobs suppressed before a variant was
///   assigned (opted out, no consent, ...) and dead jobs are counted apart, as `not assigned`.
/// - `sends`: jobs assigned to the group; `delivered`: of those, succeeded (the relay accepted the mail).
/// - Opens and clicks are unique per message (human and machine opens apart); rates are per delivered mail.
/// - A conversion is an event named in ``Options/conversionEvents`` or carrying an amount (a purchase). It is
///   *attributed* to the campaign when its properties name the campaign (`campaign`) or the person's message of it
///   (`message`, the job id), else when the person's last click within the window before it was on this campaign's
///   mail; attributed conversions of people whose mail was delivered count for their variant.
/// - `converted`: people of the group with any conversion within the window after their job finished, attributed
///   or not: the one measure the holdout (which got no mail) has too, so the uplift over the holdout uses it.
public struct CampaignReport: Sendable {
    public struct Options: Sendable {
        /// Event names that count as conversions (events with an amount always do).
        public var conversionEvents: Set<String>
        /// Seconds after a send (or a click) within which a conversion counts.
        public var windowSeconds: Int64

        public init(conversionEvents: Set<String> = [], windowSeconds: Int64 = 7 * 86_400) {
            self.conversionEvents = conversionEvents
            self.windowSeconds = windowSeconds
        }
    }

    /// One variant, or the holdout.
    public struct Group: Sendable {
        public var name: String
        public var sends = 0
        public var delivered = 0
        public var suppressed: [String: Int] = [:]
        public var humanOpens = 0
        public var machineOpens = 0
        /// Messages with at least one click, and distinct (message, link) clicks.
        public var clickers = 0
        public var clicks = 0
        /// Attributed conversion events, the people who made them, and their amounts.
        public var conversions = 0
        public var converters = 0
        public var revenue = 0.0
        /// People with any conversion within the window after their job finished.
        public var converted = 0

        public var isHoldout: Bool { name == "holdout" }
        public var openRate: (rate: Double, low: Double, high: Double) { ProportionTest.wilson(humanOpens, delivered) }
        public var clickRate: (rate: Double, low: Double, high: Double) { ProportionTest.wilson(clickers, delivered) }
        public var conversionRate: (rate: Double, low: Double, high: Double) { ProportionTest.wilson(converters, delivered) }
        public var convertedRate: (rate: Double, low: Double, high: Double) { ProportionTest.wilson(converted, sends) }
    }

    /// One comparison of two groups on one measure.
    public struct Finding: Sendable {
        public var metric: String
        public var group: String
        public var against: String
        public var result: ProportionTest.Comparison
        public var verdict: String
    }

    public var campaign: CampaignRecord
    public var options: Options
    /// Variants in name order, then the holdout (when the campaign had one).
    public var groups: [Group]
    /// Jobs without a variant: suppressed by reason, dead by error code.
    public var notAssigned: [String: Int]
    public var findings: [Finding]
    /// Jobs of the campaign with a final result in the ledger.
    public var finals: Int

    /// Builds the report from the campaign's ledger entries (job ids `<campaign>:<profile>`) and the events since the
    /// campaign was created (``ProfileReader/events(since:named:purchases:)`` with the conversion names and
    /// `email_opened`, `email_clicked`).
    public init(campaign: CampaignRecord, entries: [LedgerEntry], events: [StoredEvent], options: Options = Options()) {
        self.campaign = campaign
        self.options = options
        finals = entries.count
        var groups: [String: Group] = [:]
        var notAssigned: [String: Int] = [:]
        var assignment: [String: String] = [:]
        var delivered: Set<String> = []
        var finishedAt: [String: Int64] = [:]
        let prefix = campaign.id + ":"
        for entry in entries {
            let profile = String(entry.jobID.dropFirst(prefix.count))
            let result = try? JSONValue(parsing: entry.result)
            let output = result?["output"]
            guard let variant = output?["variant"]?.stringValue else {
                let key = entry.status == "suppressed" ? (output?["reason"]?.stringValue ?? "unknown")
                    : entry.status == "dead" ? "dead: " + (result?["error"]?["code"]?.stringValue ?? "unknown") : entry.status
                notAssigned[key, default: 0] += 1
                continue
            }
            assignment[profile] = variant
            finishedAt[profile] = Int64(entry.finishedAt.timeIntervalSince1970 * 1000)
            var group = groups[variant] ?? Group(name: variant)
            group.sends += 1
            if entry.status == "succeeded" {
                group.delivered += 1
                delivered.insert(profile)
            }
            if entry.status == "suppressed", variant != "holdout" {
                group.suppressed[output?["reason"]?.stringValue ?? "unknown", default: 0] += 1
            }
            groups[variant] = group
        }

        // Opens and clicks of this campaign's messages, unique per message (and link).
        var opened: [String: (human: Set<String>, machine: Set<String>)] = [:]
        var clicked: [String: (messages: Set<String>, links: Set<String>)] = [:]
        var lastClick: [String: (at: Int64, campaign: String, variant: String)] = [:]
        var converters: [String: Set<String>] = [:]
        var windowConverters: [String: Set<String>] = [:]
        let windowMillis = options.windowSeconds * 1000
        for event in events {
            let props = event.properties
            switch event.name {
            case "email_opened":
                guard props["campaign"]?.stringValue == campaign.id, let v = props["variant"]?.stringValue,
                      let m = props["message"]?.stringValue else { continue }
                if props["machine"]?.boolValue == true { opened[v, default: ([], [])].machine.insert(m) }
                else { opened[v, default: ([], [])].human.insert(m) }
            case "email_clicked":
                guard let c = props["campaign"]?.stringValue, let v = props["variant"]?.stringValue else { continue }
                lastClick[event.profileID] = (event.occurredAt, c, v)
                guard c == campaign.id, let m = props["message"]?.stringValue else { continue }
                clicked[v, default: ([], [])].messages.insert(m)
                clicked[v, default: ([], [])].links.insert(m + "#" + String(props["link"]?.intValue ?? 0))
            default:
                guard event.amount != nil || options.conversionEvents.contains(event.name) else { continue }
                if let group = assignment[event.profileID], let done = finishedAt[event.profileID],
                   event.occurredAt >= done, event.occurredAt <= done + windowMillis {
                    windowConverters[group, default: []].insert(event.profileID)
                }
                // Attributed only to the person's own group, and only when their mail was delivered (the rates
                // divide by delivered mails): a property naming another variant, or someone outside the campaign,
                // does not make a group.
                var attributed = false
                if let c = props["campaign"]?.stringValue {
                    attributed = c == campaign.id
                } else if let m = props["message"]?.stringValue {
                    attributed = m == prefix + event.profileID
                } else if let click = lastClick[event.profileID], click.campaign == campaign.id,
                          event.occurredAt - click.at <= windowMillis {
                    attributed = true
                }
                guard attributed, delivered.contains(event.profileID), let variant = assignment[event.profileID],
                      variant != "holdout" else { continue }
                var group = groups[variant] ?? Group(name: variant)
                group.conversions += 1
                group.revenue += event.amount ?? 0
                groups[variant] = group
                converters[variant, default: []].insert(event.profileID)
            }
        }
        for (name, var group) in groups {
            group.humanOpens = opened[name]?.human.count ?? 0
            group.machineOpens = opened[name]?.machine.count ?? 0
            group.clickers = clicked[name]?.messages.count ?? 0
            group.clicks = clicked[name]?.links.count ?? 0
            group.converters = converters[name]?.count ?? 0
            group.converted = windowConverters[name]?.count ?? 0
            groups[name] = group
        }
        let variants = groups.values.filter { !$0.isHoldout }.sorted { $0.name < $1.name }
        self.groups = variants + (groups["holdout"].map { [$0] } ?? [])
        self.notAssigned = notAssigned
        findings = Self.findings(variants: variants, holdout: groups["holdout"])
    }

    static func findings(variants: [Group], holdout: Group?) -> [Finding] {
        var out: [Finding] = []
        if let control = variants.first {
            for other in variants.dropFirst() {
                out.append(finding("clicks", other, control, other.clickers, other.delivered, control.clickers, control.delivered, unit: "sends"))
                out.append(finding("conversions", other, control, other.converters, other.delivered, control.converters, control.delivered, unit: "sends"))
            }
        }
        if let holdout {
            for variant in variants {
                out.append(finding("conversions within the window", variant, holdout, variant.converted, variant.sends,
                                   holdout.converted, holdout.sends, unit: "people"))
            }
        }
        return out
    }

    static func finding(_ metric: String, _ a: Group, _ b: Group, _ sa: Int, _ na: Int, _ sb: Int, _ nb: Int, unit: String) -> Finding {
        let c = ProportionTest.compare(sa, na, sb, nb)
        let verdict: String
        if na == 0 || nb == 0 {
            verdict = "\(a.name) vs \(b.name) on \(metric): not enough data yet (no \(unit) in \(na == 0 ? a.name : b.name))"
        } else if c.significant {
            let (winner, loser) = c.difference > 0 ? (a.name, b.name) : (b.name, a.name)
            let diff = c.difference > 0 ? c.difference : -c.difference
            let (lo, hi) = c.difference > 0 ? (c.low, c.high) : (-c.high, -c.low)
            verdict = "\(winner) beats \(loser) on \(metric): \(percent(max(c.rateA, c.rateB))) vs \(percent(min(c.rateA, c.rateB))), "
                + "+\(points(diff)) points (95% CI \(signed(lo)) to \(signed(hi))), \(pString(c.pValue))"
        } else if let needed = c.neededPerGroup {
            let more = max(0, needed - min(na, nb))
            verdict = "\(a.name) vs \(b.name) on \(metric): not enough data yet (\(percent(c.rateA)) vs \(percent(c.rateB)), \(pString(c.pValue))): "
                + "need about \(more) more \(unit) per group to tell a difference this size"
        } else {
            verdict = "\(a.name) vs \(b.name) on \(metric): no difference seen (\(percent(c.rateA)) each, \(na) and \(nb) \(unit))"
        }
        return Finding(metric: metric, group: a.name, against: b.name, result: c, verdict: verdict)
    }

    static func percent(_ r: Double) -> String { String(format: "%.2f%%", r * 100) }
    static func points(_ d: Double) -> String { String(format: "%.2f", d * 100) }
    static func signed(_ d: Double) -> String { String(format: "%+.2f", d * 100) }
    static func pString(_ p: Double) -> String { p < 0.001 ? "p < 0.001" : String(format: "p = %.3f", p) }

    // MARK: - Output

    /// A terminal table, then the verdicts.
    public func text() -> String {
        var lines = ["campaign \(campaign.id) (\(campaign.kind), template \(campaign.template), segment \(campaign.segment))"
                     + (campaign.cancelledAt != nil ? ": CANCELLED" : "")]
        lines.append("final results: \(finals); conversions: events with an amount" + (options.conversionEvents.isEmpty ? "" : " or named "
                     + options.conversionEvents.sorted().joined(separator: ", ")) + "; window \(options.windowSeconds / 3600) h")
        let header = ["group", "sends", "delivered", "opens (machine)", "open rate [95% CI]", "clickers", "click rate [95% CI]",
                      "conversions", "conv. rate [95% CI]", "converted [95% CI]"]
        var rows = [header]
        func ci(_ r: (rate: Double, low: Double, high: Double)) -> String {
            "\(Self.percent(r.rate)) [\(Self.percent(r.low))-\(Self.percent(r.high))]"
        }
        for g in groups {
            rows.append([g.name, "\(g.sends)", "\(g.delivered)", "\(g.humanOpens) (\(g.machineOpens))",
                         g.isHoldout ? "-" : ci(g.openRate), "\(g.clickers)", g.isHoldout ? "-" : ci(g.clickRate),
                         "\(g.conversions)", g.isHoldout ? "-" : ci(g.conversionRate), "\(g.converted) " + ci(g.convertedRate)])
        }
        let widths = header.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        for (n, row) in rows.enumerated() {
            lines.append(row.enumerated().map { i, cell in
                i == 0 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[i] - cell.count) + cell
            }.joined(separator: "  "))
            if n == 0 { lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        }
        for g in groups where !g.suppressed.isEmpty {
            lines.append("\(g.name) suppressed: " + g.suppressed.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if !notAssigned.isEmpty {
            lines.append("not assigned to a group: " + notAssigned.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        lines.append("")
        if findings.isEmpty { lines.append("verdict: nothing to compare (one group)") }
        for f in findings { lines.append("verdict: " + f.verdict) }
        return lines.joined(separator: "\n")
    }

    /// The report as JSON (Docs/contract/README.md, "Campaign report").
    public func json() -> JSONValue {
        func rate(_ r: (rate: Double, low: Double, high: Double)) -> JSONValue {
            ["rate": .double(r.rate), "ci_low": .double(r.low), "ci_high": .double(r.high)]
        }
        let counts = CampaignStatus.object
        var o = JSONObject()
        o["campaign_id"] = .string(campaign.id)
        o["kind"] = .string(campaign.kind)
        o["template"] = .string(campaign.template)
        o["segment"] = .string(campaign.segment)
        o["cancelled"] = .bool(campaign.cancelledAt != nil)
        o["finals"] = .int(Int64(finals))
        o["conversion_events"] = .array(options.conversionEvents.sorted().map { .string($0) })
        o["window_seconds"] = .int(options.windowSeconds)
        o["groups"] = .array(groups.map { g in
            var x = JSONObject()
            x["name"] = .string(g.name)
            x["sends"] = .int(Int64(g.sends))
            x["delivered"] = .int(Int64(g.delivered))
            x["suppressed_by_reason"] = counts(g.suppressed)
            x["opens_human"] = .int(Int64(g.humanOpens))
            x["opens_machine"] = .int(Int64(g.machineOpens))
            x["clickers"] = .int(Int64(g.clickers))
            x["clicks"] = .int(Int64(g.clicks))
            x["conversions"] = .int(Int64(g.conversions))
            x["converters"] = .int(Int64(g.converters))
            x["revenue"] = .double(g.revenue)
            x["converted"] = .int(Int64(g.converted))
            x["open_rate"] = rate(g.openRate)
            x["click_rate"] = rate(g.clickRate)
            x["conversion_rate"] = rate(g.conversionRate)
            x["converted_rate"] = rate(g.convertedRate)
            return .object(x)
        })
        o["not_assigned"] = counts(notAssigned)
        o["findings"] = .array(findings.map { f in
            var x = JSONObject()
            x["metric"] = .string(f.metric)
            x["group"] = .string(f.group)
            x["against"] = .string(f.against)
            x["rate"] = .double(f.result.rateA)
            x["against_rate"] = .double(f.result.rateB)
            x["difference"] = .double(f.result.difference)
            x["ci_low"] = .double(f.result.low)
            x["ci_high"] = .double(f.result.high)
            x["p_value"] = .double(f.result.pValue)
            x["significant"] = .bool(f.result.significant)
            x["needed_per_group"] = f.result.neededPerGroup.map { .int(Int64($0)) } ?? .null
            x["verdict"] = .string(f.verdict)
            return .object(x)
        })
        return .object(o)
    }

    /// The report of campaign `id` from the store at `storePath` (the ledger shares its file); nil for an unknown
    /// campaign.
    public static func load(campaignID id: String, store: ProfileStore, storePath: String, options: Options) async throws -> CampaignReport? {
        let names = options.conversionEvents.union(["email_opened", "email_clicked"])
        // On a reader's queue: SQLite calls never run on the cooperative pool.
        return try await store.read { reader -> CampaignReport? in
            guard let record = try reader.campaign(id: id) else { return nil }
            let entries = try JobLedger.entries(path: storePath, idPrefix: id + ":")
            let events = try reader.events(since: record.createdAt - options.windowSeconds * 1000, named: names, purchases: true)
            return CampaignReport(campaign: record, entries: entries, events: events, options: options)
        }
    }
}
