import Foundation

/// RFC 3339 timestamps (`2026-11-23T10:00:00Z`, `2026-11-23T10:00:00.250+01:00`), parsed and written
/// without a date formatter (they are on every job and result).
public enum Timestamp {
    /// Parses an RFC 3339 date-time; nil when the text is not one.
    public static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    private static func parse(bytes b: UnsafeBufferPointer<UInt8>) -> Date? {
        func digits(_ at: Int, _ count: Int) -> Int? {
            guard at + count <= b.count else { return nil }
            var v = 0
            for i in at..<(at + count) {
                let c = b[i]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        guard b.count >= 20,
            let year = digits(0, 4), b[4] == UInt8(ascii: "-"),
            let month = digits(5, 2), b[7] == UInt8(ascii: "-"),
            let day = digits(8, 2), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "),
            let hour = digits(11, 2), b[13] == UInt8(ascii: ":"),
            let minute = digits(14, 2), b[16] == UInt8(ascii: ":"),
            let second = digits(17, 2)
        else { return nil }
        guard (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day),
            hour < 24, minute < 60, second < 61
        else { return nil }
        var i = 19
        var nanos = 0
        if i < b.count && b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 100_000_000
            let start = i
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 {
                nanos += Int(b[i] - 0x30) * scale  // digits past the ninth are dropped
                scale /= 10
                i += 1
            }
            if i == start { return nil }
        }
        guard i < b.count else { return nil }
        var offset = 0
        switch b[i] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            i += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
            guard let oh = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"), let om = digits(i + 4, 2),
                oh < 24, om < 60
            else { return nil }
            offset = sign * (oh * 3600 + om * 60)
            i += 6
        default:
            return nil
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86400 + hour * 3600 + minute * 60 + min(second, 59) - offset
        return Date(timeIntervalSince1970: Double(seconds) + Double(nanos) / 1e9)
    }

    /// Formats as UTC with milliseconds: `2026-11-23T10:00:00.250Z`.
    public static func format(_ date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        append(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the UTC millisecond form of `date` to a byte buffer (the hot path of result encoding).
    public static func append(_ date: Date, to out: inout [UInt8]) {
        // Round to the microsecond first: a Date holds seconds since 2001 as a Double, so a parsed
        // `.002` can come back as 0.00199999...; truncating that would lose a millisecond.
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        let totalMillis = Int64((micros / 1000).rounded(.down))
        var days = totalMillis / 86_400_000
        var millisOfDay = totalMillis % 86_400_000
        if millisOfDay < 0 { millisOfDay += 86_400_000; days -= 1 }
        let (y, m, d) = civilFromDays(Int(days))
        // Written into a fixed buffer, then appended once (a byte-by-byte append showed up in `fleet bench`).
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { b in
            func digits(_ value: Int, _ width: Int, at position: Int) {
                var v = max(0, value)
                var i = position + width - 1
                while i >= position {
                    b[i] = UInt8(48 + v % 10)
                    v /= 10
                    i -= 1
                }
            }
            digits(y, 4, at: 0); b[4] = 45; digits(m, 2, at: 5); b[7] = 45; digits(d, 2, at: 8); b[10] = 84
            digits(Int(millisOfDay / 3_600_000), 2, at: 11); b[13] = 58
            digits(Int(millisOfDay / 60_000 % 60), 2, at: 14); b[16] = 58
            digits(Int(millisOfDay / 1000 % 60), 2, at: 17); b[19] = 46
            digits(Int(millisOfDay % 1000), 3, at: 20); b[23] = 90
            out.append(contentsOf: UnsafeBufferPointer(b))
        }
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ z: Int) -> (Int, Int, Int) {
        let z = z + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

extension JSONWriter {
    /// Appends a timestamp as a JSON string (`"2026-11-23T10:00:00.250Z"`).
    public mutating func writeTimestamp(_ date: Date) {
        appendDirectly { bytes in
            bytes.append(UInt8(ascii: "\""))
            Timestamp.append(date, to: &bytes)
            bytes.append(UInt8(ascii: "\""))
        }
    }
}
