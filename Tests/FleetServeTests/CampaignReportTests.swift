import FleetCampaign
import FleetCore
import FleetStore
import Foundation
import ProfileStore
import Testing

@Suite("Campaign report")
struct CampaignReportTests {
    @Test("Wilson intervals, the two-proportion z-test and the sample size match values computed by hand")
    func statistics() {
        let w = ProportionTest.wilson(10, 100)
        #expect(abs(w.low - 0.0552) < 0.0005 && abs(w.high - 0.1744) < 0.0005)
        #expect(ProportionTest.wilson(0, 0) == (0, 0, 0))
        let c = ProportionTest.compare(60, 500, 40, 500)
        #expect(abs(c.difference - 0.04) < 1e-12)
        #expect(abs(c.pValue - 0.0350) < 0.0005)
        #expect(c.significant)
        #expect(c.neededPerGroup == 882)
        let none = ProportionTest.compare(5, 100, 5, 100)
        #expect(none.pValue == 1 && none.neededPerGroup == nil)
        // The pooled test says p < 0.001, the unpooled interval includes 0: no claim.
        let small = ProportionTest.compare(5, 60, 100, 5000)
        #expect(small.pValue < 0.05 && small.low < 0 && !small.significant)
        // A tiny difference: a huge (capped) sample size, no trap.
        #expect((ProportionTest.compare(50_000, 100_001, 50_001, 100_003).neededPerGroup ?? 0) > 1_000_000_000)
    }

    static func entry(_ campaign: String, _ profile: String, _ status: String, _ output: JSONValue, at: Date) -> LedgerEntry {
        let result: JSONValue = ["id": .string("\(campaign):\(profile)"), "status": .string(status), "output": output]
        return LedgerEntry(jobID: "\(campaign):\(profile)", kind: "email", status: status, attempt: 1, result: result.serialized(), finishedAt: at)
    }

    @Test("groups, unique opens and clicks, attribution by property, message and last click, holdout conversions, verdicts")
    func report() {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let ms = Int64(start.timeIntervalSince1970 * 1000)
        let record = CampaignRecord(id: "c1", kind: "email", template: "monthly", segment: "all", createdAt: ms - 1000)
        var entries: [LedgerEntry] = []
        for i in 0..<10 { entries.append(Self.entry("c1", "a\(i)", "succeeded", ["variant": "a"], at: start)) }
        for i in 0..<10 { entries.append(Self.entry("c1", "b\(i)", "succeeded", ["variant": "b"], at: start)) }
        entries.append(Self.entry("c1", "b10", "suppressed", ["reason": "frequency_cap", "variant": "b"], at: start))
        for i in 0..<5 { entries.append(Self.entry("c1", "h\(i)", "suppressed", ["reason": "holdout", "variant": "holdout"], at: start)) }
        entries.append(Self.entry("c1", "x0", "suppressed", ["reason": "opted_out"], at: start))
        func ev(_ p: String, _ name: String, _ props: JSONObject, _ dt: Int64, amount: Double? = nil) -> StoredEvent {
            StoredEvent(profileID: p, name: name, properties: props, occurredAt: ms + dt, amount: amount)
        }
        func m(_ p: String, _ v: String) -> JSONObject { ["campaign": "c1", "variant": .string(v), "message": .string("c1:\(p)")] }
        var events: [StoredEvent] = []
        var open = m("a0", "a"); open["machine"] = false
        events.append(ev("a0", "email_opened", open, 10))
        events.append(ev("a0", "email_opened", open, 11))  // the same message again: still one
        var machine = m("a1", "a"); machine["machine"] = true
        events.append(ev("a1", "email_opened", machine, 12))
        for p in ["b0", "b1", "b2"] {
            var c = m(p, "b"); c["link"] = 0
            events.append(ev(p, "email_clicked", c, 20))
        }
        var c2 = m("b0", "b"); c2["link"] = 1
        events.append(ev("b0", "email_clicked", c2, 21))
        events.append(ev("b0", "purchase", [:], 30, amount: 20))                          // last click on c1's b
        events.append(ev("a2", "signup", ["campaign": "c1"], 31))                          // explicit campaign
        events.append(ev("b3", "purchase", ["message": "c1:b3"], 32, amount: 5))           // explicit message
        events.append(ev("h0", "purchase", [:], 33, amount: 7))                             // holdout: converted, not attributed
        events.append(ev("a4", "purchase", [:], 8 * 86_400_000, amount: 1))                // outside the 7-day window
        events.append(ev("b1", "purchase", ["campaign": "other"], 34, amount: 3))          // another campaign's
        events.append(ev("a5", "purchase", ["campaign": "c1", "variant": "A"], 35, amount: 4))  // a variant that is not a5's: a5's (a)
        events.append(ev("zz", "purchase", ["campaign": "c1"], 36, amount: 4))            // not in the campaign: ignored
        events.append(ev("h1", "purchase", ["campaign": "c1"], 37, amount: 4))            // the holdout got no mail: not attributed
        let r = CampaignReport(campaign: record, entries: entries, events: events, options: .init(conversionEvents: ["signup"]))
        #expect(r.groups.map(\.name) == ["a", "b", "holdout"], "no phantom group from an event's own variant property")
        let a = r.groups[0], b = r.groups[1], h = r.groups[2]
        #expect(a.sends == 10 && a.delivered == 10 && a.humanOpens == 1 && a.machineOpens == 1)
        #expect(b.sends == 11 && b.delivered == 10 && b.suppressed == ["frequency_cap": 1])
        #expect(b.clickers == 3 && b.clicks == 4)
        #expect(a.conversions == 2 && a.converters == 2, "a2's signup and a5's purchase")
        #expect(b.conversions == 2 && b.converters == 2 && b.revenue == 25)
        #expect(h.sends == 5 && h.converted == 2 && h.conversions == 0)
        #expect(a.converted == 2, "a2's signup and a5's purchase; a4's purchase is outside the window")
        #expect(b.converted == 3, "b0, b3 and b1 (any conversion within the window counts for `converted`)")
        #expect(r.notAssigned == ["opted_out": 1])
        #expect(r.findings.count == 4)
        #expect(r.findings.allSatisfy { $0.verdict.contains("not enough data yet") || $0.verdict.contains("beats") || $0.verdict.contains("no difference") })
        let json = r.json()
        #expect(json["groups"]?.arrayValue?.count == 3)
        #expect(r.text().contains("verdict: "))
    }

    @Test("a clear difference is called, with the winner first")
    func verdict() {
        let start = Date()
        let ms = Int64(start.timeIntervalSince1970 * 1000)
        let record = CampaignRecord(id: "c2", kind: "email", template: "t", segment: "s", createdAt: ms - 1000)
        var entries: [LedgerEntry] = [], events: [StoredEvent] = []
        for v in ["a", "b"] {
            for i in 0..<400 {
                entries.append(Self.entry("c2", "\(v)\(i)", "succeeded", ["variant": .string(v)], at: start))
                if i < (v == "a" ? 20 : 80) {
                    events.append(StoredEvent(profileID: "\(v)\(i)", name: "email_clicked",
                                              properties: ["campaign": "c2", "variant": .string(v), "message": .string("c2:\(v)\(i)"), "link": 0],
                                              occurredAt: ms + 5, amount: nil))
                }
            }
        }
        let r = CampaignReport(campaign: record, entries: entries, events: events)
        let clicks = r.findings.first { $0.metric == "clicks" }
        #expect(clicks?.verdict.hasPrefix("b beats a on clicks: 20.00% vs 5.00%") == true)
        #expect(clicks?.result.significant == true)
    }
}
