import Foundation

/// A daily window of local time in which a person gets no marketing message, `HH:MM-HH:MM` (`21:00-08:00` spans
/// midnight; the start is inside the window, the end is not). Read in the person's time zone (``LocalDay``).
public struct QuietHours: Sendable, Hashable, CustomStringConvertible {
    /// Minutes since midnight.
    public var start: Int
    public var end: Int

    /// Parses `HH:MM-HH:MM` (24-hour clock, `00:00` to `23:59`; start and end differ). Nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let s = Self.minutes(parts[0]), let e = Self.minutes(parts[1]), s != e else { return nil }
        start = s
        end = e
    }

    private static func minutes(_ text: Substring) -> Int? {
        let hm = text.trimmingCharacters(in: .whitespaces).split(separator: ":", omittingEmptySubsequences: false)
        guard hm.count == 2, hm[0].count == 2, hm[1].count == 2, let h = Int(hm[0]), let m = Int(hm[1]),
              (0...23).contains(h), (0...59).contains(m) else { return nil }
        return h * 60 + m
    }

    /// Whether local minute-of-day `minute` is inside the window.
    public func contains(minute: Int) -> Bool {
        start < end ? (minute >= start && minute < end) : (minute >= start || minute < end)
    }

    /// When the window that `date` is in ends for the person (nil when `date` is outside it).
    public func end(of date: Date, in local: LocalDay) -> Date? {
        guard contains(minute: local.minuteOfDay(date)) else { return nil }
        return local.next(minute: end, onOrAfter: date)
    }

    public var description: String {
        String(format: "%02d:%02d-%02d:%02d", start / 60, start % 60, end / 60, end % 60)
    }
}
