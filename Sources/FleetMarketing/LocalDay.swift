import Foundation

/// A person's local calendar: their IANA time zone (the profile's `timezone`, UTC when missing or unknown), the
/// day frequency caps count in, and the local times quiet hours are read in.
public struct LocalDay: Sendable {
    public let calendar: Calendar

    public init(timezone: String?) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timezone.flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "UTC")!
        self.calendar = calendar
    }

    /// `YYYY-MM-DD` of `date` in the person's zone.
    public func day(of date: Date) -> String {
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0)
    }

    /// The start of the person's next local day after `date`.
    public func nextMidnight(after date: Date) -> Date {
        calendar.date(byAdding: .day, value: 1, to: calendar.startOfDay(for: date)) ?? date.addingTimeInterval(86_400)
    }

    /// Minutes since the person's local midnight at `date` (0 to 1439).
    public func minuteOfDay(_ date: Date) -> Int {
        let c = calendar.dateComponents([.hour, .minute], from: date)
        return (c.hour ?? 0) * 60 + (c.minute ?? 0)
    }

    /// The first instant at or after `date` whose local time is `minute` (minutes since midnight), skipping a time
    /// that a daylight-saving change leaves out to the next that exists.
    public func next(minute: Int, onOrAfter date: Date) -> Date {
        let start = calendar.startOfDay(for: date)
        for offset in 0...2 {
            guard let day = calendar.date(byAdding: .day, value: offset, to: start),
                  let candidate = calendar.date(bySettingHour: minute / 60, minute: minute % 60, second: 0, of: day,
                                                matchingPolicy: .nextTime, repeatedTimePolicy: .first, direction: .forward)
            else { continue }
            if candidate >= date { return candidate }
        }
        return date.addingTimeInterval(86_400)
    }
}
