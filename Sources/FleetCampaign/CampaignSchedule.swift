import FleetRuntime
import Foundation

/// When each member's job of a campaign may run: the send time (now, an instant, or a wall-clock time in each
/// person's own time zone), then spread so that the campaign never runs faster than its rate.
public struct CampaignSchedule: Sendable {
    /// When to send.
    public enum At: Sendable, Hashable {
        /// At once.
        case now
        /// At this instant (a past one: at once).
        case instant(Date)
        /// At this wall-clock time in each person's time zone (the `timezone` trait, else ``defaultTimeZone``).
        /// A date-less time means today in that zone. A time already past → the same time the next day, or at
        /// once with ``wrap`` false.
        case localTime(LocalTime)
    }

    /// A wall-clock time, with or without a date.
    public struct LocalTime: Sendable, Hashable {
        public var year: Int?, month: Int?, day: Int?
        public var hour: Int, minute: Int, second: Int

        /// Parses `YYYY-MM-DDTHH:MM[:SS]` or `HH:MM[:SS]` (no zone: it is each person's).
        public init?(parsing text: String) {
            let parts = text.split(separator: "T", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { return nil }
            let timeText = parts.count == 2 ? parts[1] : parts[0]
            if parts.count == 2 {
                let date = parts[0].split(separator: "-", omittingEmptySubsequences: false)
                guard date.count == 3, date[0].count == 4, date[1].count == 2, date[2].count == 2,
                      let y = Int(date[0]), let m = Int(date[1]), let d = Int(date[2]), (1...12).contains(m), (1...31).contains(d)
                else { return nil }
                (year, month, day) = (y, m, d)
            }
            let time = timeText.split(separator: ":", omittingEmptySubsequences: false)
            guard (2...3).contains(time.count), time.allSatisfy({ $0.count == 2 }),
                  let h = Int(time[0]), let mi = Int(time[1]), (0...23).contains(h), (0...59).contains(mi) else { return nil }
            let s = time.count == 3 ? Int(time[2]) : 0
            guard let s, (0...59).contains(s) else { return nil }
            (hour, minute, second) = (h, mi, s)
        }
    }

    public var at: At
    /// Past local times move to the next day (true) or run at once (false: `--no-wrap`).
    public var wrap: Bool
    /// The most jobs per second the campaign starts (nil: no limit).
    public var rate: RateLimit?
    /// The time zone of people without a valid `timezone` trait.
    public var defaultTimeZone: TimeZone

    public init(at: At = .now, wrap: Bool = true, rate: RateLimit? = nil, defaultTimeZone: TimeZone = TimeZone(identifier: "UTC")!) {
        self.at = at
        self.wrap = wrap
        self.rate = rate
        self.defaultTimeZone = defaultTimeZone
    }

    /// The send time of a person in `timezone` (nil: none set), and whether that zone was invalid (then the
    /// default zone was used).
    public func sendTime(timezone: String?, now: Date) -> (time: Date, invalidZone: Bool) {
        switch at {
        case .now:
            return (now, false)
        case .instant(let date):
            return (max(date, now), false)
        case .localTime(let local):
            var zone = defaultTimeZone
            var invalid = false
            if let timezone, !timezone.isEmpty {
                if let z = Self.zone(timezone) { zone = z } else { invalid = true }
            }
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            var c = local.year == nil ? calendar.dateComponents([.year, .month, .day], from: now) : DateComponents()
            if let y = local.year { c.year = y; c.month = local.month; c.day = local.day }
            c.hour = local.hour
            c.minute = local.minute
            c.second = local.second
            // A time skipped by a DST change resolves to the next valid one (Calendar's default).
            guard var time = calendar.date(from: c) else { return (now, invalid) }
            if time < now {
                guard wrap else { return (now, invalid) }
                // The next day at that time (days ahead at once for a date long past, then a step for DST).
                let days = max(1, Int((now.timeIntervalSince(time) / 86_400).rounded(.down)))
                guard var next = calendar.date(byAdding: .day, value: days, to: time) else { return (now, invalid) }
                while next < now {
                    guard let later = calendar.date(byAdding: .day, value: 1, to: next) else { return (now, invalid) }
                    next = later
                }
                time = next
            }
            return (time, invalid)
        }
    }

    /// Spreads `times` (sorted ascending) so that no two are closer than 1/rate: each becomes the later of its
    /// own time and the previous one's plus 1/rate. `occupied`: slots taken by jobs already sent (a resumed run),
    /// sorted; the new times fall between and after them at the same spacing. Returns the times in the same order.
    public func throttle(_ times: [Date], occupied: [Date] = []) -> [Date] {
        guard let rate, !times.isEmpty else { return times }
        let gap = 1 / rate.perSecond
        var out: [Date] = []
        out.reserveCapacity(times.count)
        var last = Date.distantPast
        var o = 0
        for t in times {
            var slot = max(t, last.addingTimeInterval(gap))
            // Occupied slots well before this one no longer matter; one closer than the gap pushes it past.
            while o < occupied.count && occupied[o] <= slot.addingTimeInterval(-gap) { o += 1 }
            while o < occupied.count && occupied[o] < slot.addingTimeInterval(gap) {
                slot = max(slot, occupied[o].addingTimeInterval(gap))
                o += 1
            }
            out.append(slot)
            last = slot
        }
        return out
    }

    /// The zone named `identifier` (an IANA name such as `Europe/Berlin`, or `UTC`), nil if unknown.
    static func zone(_ identifier: String) -> TimeZone? {
        guard identifier.contains("/") || identifier == "UTC" || identifier == "GMT" else { return nil }
        return TimeZone(identifier: identifier)
    }
}
