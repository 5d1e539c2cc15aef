import FleetCampaign
import FleetRuntime
import Foundation
import Testing

/// Send times in each person's zone, the wrap to the next day, and the spreading to a rate.
@Suite("Campaign schedule")
struct CampaignScheduleTests {
    static func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    @Test("a wall-clock time in each person's zone; no or an unknown zone: the default, counted")
    func localTimes() throws {
        let at = try #require(CampaignSchedule.LocalTime(parsing: "2026-12-24T09:00"))
        let s = CampaignSchedule(at: .localTime(at))
        let now = Self.date("2026-12-20T12:00:00Z")
        #expect(s.sendTime(timezone: "Europe/Berlin", now: now) == (Self.date("2026-12-24T08:00:00Z"), false))
        #expect(s.sendTime(timezone: "America/New_York", now: now) == (Self.date("2026-12-24T14:00:00Z"), false))
        #expect(s.sendTime(timezone: "Asia/Kolkata", now: now) == (Self.date("2026-12-24T03:30:00Z"), false))
        #expect(s.sendTime(timezone: nil, now: now) == (Self.date("2026-12-24T09:00:00Z"), false))
        #expect(s.sendTime(timezone: "Mars/Olympus", now: now) == (Self.date("2026-12-24T09:00:00Z"), true))
        #expect(s.sendTime(timezone: "CET", now: now).invalidZone)  // abbreviations are not IANA zone names
        let paris = CampaignSchedule(at: .localTime(at), defaultTimeZone: TimeZone(identifier: "Europe/Paris")!)
        #expect(paris.sendTime(timezone: "nowhere", now: now) == (Self.date("2026-12-24T08:00:00Z"), true))
    }

    @Test("a local time already past: the next day, or now with --no-wrap; a date-less time is today")
    func wrap() throws {
        let nine = try #require(CampaignSchedule.LocalTime(parsing: "09:00"))
        let now = Self.date("2026-12-20T12:00:00Z")  // 13:00 in Berlin, 07:00 in New York
        let s = CampaignSchedule(at: .localTime(nine))
        #expect(s.sendTime(timezone: "Europe/Berlin", now: now).time == Self.date("2026-12-21T08:00:00Z"))
        #expect(s.sendTime(timezone: "America/New_York", now: now).time == Self.date("2026-12-20T14:00:00Z"))
        let noWrap = CampaignSchedule(at: .localTime(nine), wrap: false)
        #expect(noWrap.sendTime(timezone: "Europe/Berlin", now: now).time == now)
        let past = try #require(CampaignSchedule.LocalTime(parsing: "2026-12-01T09:00:30"))
        #expect(CampaignSchedule(at: .localTime(past)).sendTime(timezone: nil, now: now).time == Self.date("2026-12-21T09:00:30Z"))
    }

    @Test("an instant in the past runs now; now is now")
    func instants() {
        let now = Self.date("2026-12-20T12:00:00Z")
        #expect(CampaignSchedule(at: .instant(Self.date("2026-12-01T00:00:00Z"))).sendTime(timezone: nil, now: now).time == now)
        #expect(CampaignSchedule(at: .instant(Self.date("2026-12-24T00:00:00Z"))).sendTime(timezone: "Asia/Tokyo", now: now).time
                == Self.date("2026-12-24T00:00:00Z"))
        #expect(CampaignSchedule().sendTime(timezone: "Asia/Tokyo", now: now).time == now)
    }

    @Test("local times parse with or without a date and seconds; anything else is refused")
    func parsing() {
        #expect(CampaignSchedule.LocalTime(parsing: "2026-12-24T09:00") != nil)
        #expect(CampaignSchedule.LocalTime(parsing: "09:00:30") != nil)
        for bad in ["", "9:00", "2026-12-24", "2026-13-01T09:00", "25:00", "09:60", "2026-12-24T09:00Z", "2026-12-24 09:00", "09:00:00:00"] {
            #expect(CampaignSchedule.LocalTime(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test("the rate spreads the times: never two closer than 1/rate, none earlier than its own time, around slots already taken")
    func throttle() {
        let t0 = Self.date("2026-12-24T09:00:00Z")
        let s = CampaignSchedule(rate: RateLimit(count: 10, intervalSeconds: 1))
        // 25 at 09:00, 5 at 09:10: the first 25 over 2.4 s, the others at 09:10 untouched by them.
        let times = Array(repeating: t0, count: 25) + Array(repeating: t0.addingTimeInterval(600), count: 5)
        let out = s.throttle(times)
        #expect(out.count == 30)
        for (a, b) in zip(out, out.dropFirst()) { #expect(b.timeIntervalSince(a) >= 0.1 - 1e-9) }
        for (o, t) in zip(out, times) { #expect(o >= t) }
        #expect(abs(out[24].timeIntervalSince(t0) - 2.4) < 1e-6)
        #expect(out[25] == t0.addingTimeInterval(600))
        // A resumed run: slots at 0.0, 0.1, 0.2 taken; three new jobs at 0.0 go after them.
        let occupied = [t0, t0.addingTimeInterval(0.1), t0.addingTimeInterval(0.2)]
        let resumed = s.throttle([t0, t0, t0], occupied: occupied)
        #expect(resumed.map { ($0.timeIntervalSince(t0) * 10).rounded() / 10 } == [0.3, 0.4, 0.5])
        #expect(CampaignSchedule().throttle(times) == times)
    }
}
