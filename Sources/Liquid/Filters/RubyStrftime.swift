/// An instant with the zone it is shown in (Ruby's `Time`), and Ruby's `Time#strftime`.
struct RubyTime: Sendable, Equatable {
    /// Seconds since 1970-01-01 00:00 UTC.
    var seconds: Int64
    /// Nanoseconds within the second (0..<1e9).
    var nanoseconds: Int
    /// Seconds east of UTC.
    var utcOffset: Int
    /// The zone name `%Z` prints (`UTC`, the local abbreviation, or empty for a numeric offset).
    var zoneName: String

    /// The broken-down local time.
    struct Fields {
        var year: Int64, month: Int, day: Int, hour: Int, minute: Int, second: Int
        var weekday: Int  // 0 = Sunday
        var yearDay: Int  // 1...366
    }

    var fields: Fields {
        let local = seconds &+ Int64(utcOffset)
        let days = local >= 0 ? local / 86400 : (local - 86399) / 86400
        let secondOfDay = Int(local - days * 86400)
        let (y, m, d) = RubyTime.civil(fromDays: days)
        let weekday = Int(((days % 7) + 11) % 7)  // 1970-01-01 was a Thursday (4)
        let yearDay = Int(days - RubyTime.days(fromCivil: y, 1, 1)) + 1
        return Fields(
            year: y, month: m, day: d, hour: secondOfDay / 3600, minute: secondOfDay / 60 % 60,
            second: secondOfDay % 60, weekday: weekday, yearDay: yearDay)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (month and day may overflow, as Ruby normalizes).
    static func days(fromCivil year: Int64, _ month: Int, _ day: Int) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64((month + 9) % 12)
        let doy = (153 * mp + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int, Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = Int(doy - (153 * mp + 2) / 5 + 1)
        let m = Int(mp < 10 ? mp + 3 : mp - 9)
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static let monthNames = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
        "November", "December",
    ]
    static let dayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    /// ISO 8601 week-based year and week number.
    static func isoWeek(_ f: Fields) -> (Int64, Int) {
        let isoWeekday = f.weekday == 0 ? 7 : f.weekday
        var week = (f.yearDay - isoWeekday + 10) / 7
        var year = f.year
        if week < 1 {
            year -= 1
            week = weeksInISOYear(year)
        } else if week > weeksInISOYear(year) {
            year += 1
            week = 1
        }
        return (year, week)
    }

    static func weeksInISOYear(_ year: Int64) -> Int {
        func p(_ y: Int64) -> Int64 { (y + y / 4 - y / 100 + y / 400) % 7 }
        return (p(year) == 4 || p(year - 1) == 3) ? 53 : 52
    }

    /// Ruby's `Time#strftime`: conversions with the flags `-` (no padding), `_` (spaces), `0` (zeros),
    /// `^` (upper case), `#` (swap case), a width, and `:` for `%z`; an unknown conversion prints as written;
    /// a format ending inside a conversion raises "invalid format".
    func strftime(_ format: String) throws(LiquidFilterError) -> String {
        var out = ""
        out.reserveCapacity(format.utf8.count + 16)
        let f = fields
        let b = Array(format.utf8)
        var i = 0
        var literalStart = 0
        func flushLiteral(_ upTo: Int) {
            if literalStart < upTo { out += String(decoding: b[literalStart..<upTo], as: UTF8.self) }
        }
        while i < b.count {
            guard b[i] == UInt8(ascii: "%") else {
                i += 1
                continue
            }
            flushLiteral(i)
            let start = i
            i += 1
            var padding: UInt8? = nil  // "-": 0 (none), "_": space, "0": zero
            var upper = false, swap = false
            var width: Int? = nil
            var colons = 0
            // Flags.
            while i < b.count {
                switch b[i] {
                case UInt8(ascii: "-"): padding = 0
                case UInt8(ascii: "_"): padding = UInt8(ascii: " ")
                case UInt8(ascii: "0"): padding = UInt8(ascii: "0")
                case UInt8(ascii: "^"): upper = true
                case UInt8(ascii: "#"): swap = true
                default: break
                }
                let c = b[i]
                if c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: "0") || c == UInt8(ascii: "^")
                    || c == UInt8(ascii: "#")
                {
                    i += 1
                } else {
                    break
                }
            }
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                width = min((width ?? 0) * 10 + Int(b[i] - 48), 1024)
                i += 1
            }
            while i < b.count, b[i] == UInt8(ascii: ":") {
                colons += 1
                i += 1
            }
            if i < b.count, b[i] == UInt8(ascii: "E") || b[i] == UInt8(ascii: "O"),
                i + 1 < b.count, "cCxXyYdeHImMSuUVwWy".utf8.contains(b[i + 1])
            {
                i += 1
            }
            guard i < b.count else {
                throw LiquidFilterError(.invalid, "invalid format: \(format)")
            }
            let conversion = b[i]
            i += 1
            literalStart = i

            func number(_ value: Int64, _ defaultWidth: Int, _ defaultPad: UInt8 = UInt8(ascii: "0")) {
                // Common case: no flags, a non-negative value of at least the default width (`%Y`) or a
                // zero-padded two-digit field (`%m`, `%d`, `%H`...).
                if padding == nil, width == nil, value >= 0, value < 10_000 {
                    let w = defaultPad == UInt8(ascii: "0") ? defaultWidth : 0
                    if w <= 4, value >= 1000 || w == 2 && value < 100 {
                        if value >= 1000 {
                            out.unicodeScalars.append(Unicode.Scalar(UInt8(48 + value / 1000)))
                            out.unicodeScalars.append(Unicode.Scalar(UInt8(48 + value / 100 % 10)))
                        }
                        out.unicodeScalars.append(Unicode.Scalar(UInt8(48 + value / 10 % 10)))
                        out.unicodeScalars.append(Unicode.Scalar(UInt8(48 + value % 10)))
                        return
                    }
                }
                let pad = padding ?? defaultPad
                let w = pad == 0 ? 0 : (width ?? defaultWidth)
                var digits = String(value.magnitude)
                if value < 0 { digits = "-" + digits }
                if digits.utf8.count < w {
                    let fill = String(repeating: pad == UInt8(ascii: " ") ? " " : "0", count: w - digits.utf8.count)
                    if value < 0 && pad != UInt8(ascii: " ") {
                        digits = "-" + fill + String(value.magnitude)
                    } else {
                        digits = fill + digits
                    }
                }
                out += digits
            }
            func text(_ s: String, lowerForSwap: Bool = false) {
                if !upper, !swap, width == nil {
                    out += s
                    return
                }
                var t = s
                if upper { t = t.uppercased() }
                if swap { t = lowerForSwap ? t.lowercased() : t.uppercased() }
                let pad = padding ?? UInt8(ascii: " ")
                if let w = width, pad != 0, t.count < w {
                    t = String(repeating: pad == UInt8(ascii: "0") ? "0" : " ", count: w - t.count) + t
                }
                out += t
            }
            func zone() {
                let sign = utcOffset < 0 ? "-" : "+"
                let m = abs(utcOffset)
                let hh = m / 3600, mm = m / 60 % 60, ss = m % 60
                func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
                var body: String
                switch colons {
                case 0: body = two(hh) + two(mm)
                case 1: body = two(hh) + ":" + two(mm)
                default: body = two(hh) + ":" + two(mm) + ":" + two(ss)
                }
                var s = sign + body
                if let w = width, s.count < w {
                    let pad = padding ?? UInt8(ascii: "0")
                    if pad == UInt8(ascii: " ") {
                        s = String(repeating: " ", count: w - s.count) + s
                    } else if pad != 0 {
                        s = sign + String(repeating: "0", count: w - s.count) + body
                    }
                }
                out += s
            }
            func fraction(_ defaultDigits: Int) {
                let digits = width ?? defaultDigits
                var s = String(f.hour >= 0 ? nanoseconds : 0)
                s = String(repeating: "0", count: max(0, 9 - s.count)) + s
                if digits <= 9 {
                    out += s.prefix(digits)
                } else {
                    out += s + String(repeating: "0", count: digits - 9)
                }
            }

            switch conversion {
            case UInt8(ascii: "Y"):
                if f.year >= 0 { number(f.year, 4) } else { number(f.year, 5) }
            case UInt8(ascii: "C"): number(floorDiv(f.year, 100), 2)
            case UInt8(ascii: "y"): number(floorMod(f.year, 100), 2)
            case UInt8(ascii: "m"): number(Int64(f.month), 2)
            case UInt8(ascii: "B"): text(RubyTime.monthNames[f.month - 1])
            case UInt8(ascii: "b"), UInt8(ascii: "h"): text(String(RubyTime.monthNames[f.month - 1].prefix(3)))
            case UInt8(ascii: "d"): number(Int64(f.day), 2)
            case UInt8(ascii: "e"): number(Int64(f.day), 2, UInt8(ascii: " "))
            case UInt8(ascii: "j"): number(Int64(f.yearDay), 3)
            case UInt8(ascii: "H"): number(Int64(f.hour), 2)
            case UInt8(ascii: "k"): number(Int64(f.hour), 2, UInt8(ascii: " "))
            case UInt8(ascii: "I"): number(Int64(f.hour % 12 == 0 ? 12 : f.hour % 12), 2)
            case UInt8(ascii: "l"): number(Int64(f.hour % 12 == 0 ? 12 : f.hour % 12), 2, UInt8(ascii: " "))
            case UInt8(ascii: "P"): text(f.hour < 12 ? "am" : "pm")
            case UInt8(ascii: "p"): text(f.hour < 12 ? "AM" : "PM", lowerForSwap: true)
            case UInt8(ascii: "M"): number(Int64(f.minute), 2)
            case UInt8(ascii: "S"): number(Int64(f.second), 2)
            case UInt8(ascii: "L"): fraction(3)
            case UInt8(ascii: "N"): fraction(9)
            case UInt8(ascii: "z"): zone()
            case UInt8(ascii: "Z"): text(zoneName)
            case UInt8(ascii: "A"): text(RubyTime.dayNames[f.weekday])
            case UInt8(ascii: "a"): text(String(RubyTime.dayNames[f.weekday].prefix(3)))
            case UInt8(ascii: "u"): number(Int64(f.weekday == 0 ? 7 : f.weekday), 1)
            case UInt8(ascii: "w"): number(Int64(f.weekday), 1)
            case UInt8(ascii: "G"): number(RubyTime.isoWeek(f).0, 4)
            case UInt8(ascii: "g"): number(floorMod(RubyTime.isoWeek(f).0, 100), 2)
            case UInt8(ascii: "V"): number(Int64(RubyTime.isoWeek(f).1), 2)
            case UInt8(ascii: "U"): number(Int64((f.yearDay - 1 + 7 - f.weekday) / 7), 2)
            case UInt8(ascii: "W"): number(Int64((f.yearDay - 1 + 7 - (f.weekday + 6) % 7) / 7), 2)
            case UInt8(ascii: "s"): number(seconds, 1)
            case UInt8(ascii: "n"): text("\n")
            case UInt8(ascii: "t"): text("\t")
            case UInt8(ascii: "%"): text("%")
            case UInt8(ascii: "c"): text(try strftime("%a %b %e %H:%M:%S %Y"))
            case UInt8(ascii: "D"), UInt8(ascii: "x"): text(try strftime("%m/%d/%y"))
            case UInt8(ascii: "F"): text(try strftime("%Y-%m-%d"))
            case UInt8(ascii: "T"), UInt8(ascii: "X"): text(try strftime("%H:%M:%S"))
            case UInt8(ascii: "R"): text(try strftime("%H:%M"))
            case UInt8(ascii: "r"): text(try strftime("%I:%M:%S %p"))
            case UInt8(ascii: "v"): text(try strftime("%e-%^b-%4Y"))
            default:
                out += String(decoding: b[start..<i], as: UTF8.self)
            }
        }
        flushLiteral(b.count)
        return out
    }
}

@inline(__always) func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

@inline(__always) func floorMod(_ a: Int64, _ b: Int64) -> Int64 {
    let r = a % b
    return (r != 0 && (r < 0) != (b < 0)) ? r + b : r
}
