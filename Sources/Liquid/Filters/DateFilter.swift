/// The `date` filter: Ruby Liquid's `Utils.to_date` then `Time#strftime`.
enum DateFilter {
    static let all: [String: LiquidFilterFunction] = ["date": date]

    /// `date: format`: formats the input with Ruby's `strftime` (`RubyTime.strftime`). The input may be
    /// "now"/"today", an integer or a string of digits (seconds since 1970), or a date string as Ruby's
    /// `Time.parse` reads it (ISO 8601, RFC 2822, "March 14, 2016", "14 Mar 2016", "2016/03/14",
    /// "14/03/2016"...). An empty format or an input that is not a date returns the input unchanged.
    static let date: LiquidFilterFunction = { input, arguments, env throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        let format = args.value(0).rubyToS
        if format.isEmpty { return input }
        guard let time = toDate(input, env) else { return input }
        return .string(try time.strftime(format))
    }

    /// Ruby Liquid's `Utils.to_date`.
    static func toDate(_ input: LiquidValue, _ env: LiquidFilterEnvironment) -> RubyTime? {
        switch input {
        case .int(let i): return local(Int64(i), 0, env)
        case .string(let s):
            if s.isEmpty { return nil }
            if let time = isoUTC(s) { return time }
            let lower = StringFilters.mapCase(s, upper: false)
            if lower == "now" || lower == "today" { return now(env) }
            let u = lower.utf8
            if u.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
                guard let seconds = Int64(lower) else { return nil }
                return local(seconds, 0, env)
            }
            return parse(Array(u), env)
        default: return nil
        }
    }

    /// The common `yyyy-mm-ddThh:mm:ssZ` (UTC) exactly, read directly; nil for anything else (the general
    /// parser then reads it, to the same result).
    static func isoUTC(_ s: String) -> RubyTime? {
        guard s.utf8.count == 20 else { return nil }
        return BuiltinFilter.bytes(s) { b -> RubyTime? in
            func number(_ from: Int, _ count: Int) -> Int? {
                var v = 0
                for k in from..<(from + count) {
                    let c = b[k]
                    guard c >= 48, c <= 57 else { return nil }
                    v = v * 10 + Int(c - 48)
                }
                return v
            }
            guard b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] | 0x20 == UInt8(ascii: "t"),
                b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"), b[19] | 0x20 == UInt8(ascii: "z"),
                let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
                let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
                month >= 1, month <= 12, day >= 1, day <= 31, hour <= 24, minute <= 59, second <= 60
            else { return nil }
            let days = RubyTime.days(fromCivil: Int64(year), month, day)
            let seconds = days * 86400 + Int64(hour * 3600 + minute * 60 + second)
            return RubyTime(seconds: seconds, nanoseconds: 0, utcOffset: 0, zoneName: "UTC")
        }
    }

    /// Writes `date: format` of `input` straight into `out` for the common case (``isoUTC(_:)`` reads the
    /// input, a year of four digits, and a format of text and `%Y %y %m %d %e %H %M %S %B %b %%` without
    /// flags or widths), with exactly the bytes `strftime` makes; false, with nothing written, otherwise.
    static func writeISO(_ input: String, format: String, to out: inout OutputBuffer) -> Bool {
        guard let time = isoUTC(input) else { return false }
        let f = time.fields
        guard f.year >= 1000, f.year <= 9999 else { return false }
        return BuiltinFilter.bytes(format) { b in
            var i = 0
            while i < b.count {
                if b[i] == UInt8(ascii: "%") {
                    guard i + 1 < b.count, plainDirectives.contains(b[i + 1]) else { return false }
                    i += 2
                } else {
                    i += 1
                }
            }
            func two(_ v: Int, pad: UInt8 = UInt8(ascii: "0")) {
                out.append(v < 10 ? pad : UInt8(truncatingIfNeeded: v / 10) &+ 48)
                out.append(UInt8(truncatingIfNeeded: v % 10) &+ 48)
            }
            i = 0
            while i < b.count {
                guard b[i] == UInt8(ascii: "%") else {
                    out.append(b[i])
                    i += 1
                    continue
                }
                switch b[i + 1] {
                case UInt8(ascii: "Y"):
                    two(Int(f.year / 100))
                    two(Int(f.year % 100))
                case UInt8(ascii: "y"): two(Int(f.year % 100))
                case UInt8(ascii: "m"): two(f.month)
                case UInt8(ascii: "d"): two(f.day)
                case UInt8(ascii: "e"): two(f.day, pad: UInt8(ascii: " "))
                case UInt8(ascii: "H"): two(f.hour)
                case UInt8(ascii: "M"): two(f.minute)
                case UInt8(ascii: "S"): two(f.second)
                case UInt8(ascii: "B"): out.append(contentsOf: RubyTime.monthNames[f.month - 1].utf8)
                case UInt8(ascii: "b"): out.append(contentsOf: RubyTime.monthNames[f.month - 1].utf8.prefix(3))
                default: out.append(UInt8(ascii: "%"))
                }
                i += 2
            }
            return true
        }
    }

    /// The conversions ``writeISO(_:format:to:)`` writes itself.
    private static let plainDirectives: [UInt8] = Array("YymdeHMSBb%".utf8)

    static func now(_ env: LiquidFilterEnvironment) -> RubyTime {
        let whole = env.now.rounded(.down)
        let seconds = whole.isFinite && whole.magnitude < 9.0e18 ? Int64(whole) : 0
        let nanos = Int(((env.now - whole) * 1e9).rounded(.down))
        return local(seconds, min(max(nanos, 0), 999_999_999), env)
    }

    static func local(_ seconds: Int64, _ nanos: Int, _ env: LiquidFilterEnvironment) -> RubyTime {
        RubyTime(seconds: seconds, nanoseconds: nanos, utcOffset: env.utcOffset, zoneName: env.localZoneName)
    }

    static let monthPrefixes = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// A number in `b[i...]`: its value, digit count and end.
    static func digits(_ b: [UInt8], _ i: Int) -> (value: Int, count: Int, end: Int) {
        var j = i, v = 0
        while j < b.count, b[j] >= 48, b[j] <= 57 {
            if j - i < 18 { v = v * 10 + Int(b[j] - 48) }
            j += 1
        }
        return (v, j - i, j)
    }

    static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    static func isLetter(_ c: UInt8) -> Bool { c >= 97 && c <= 122 }

    /// A subset of Ruby's `Time.parse` (`Date._parse`): a date (ISO `y-m-d`, `y/m/d`, `d/m/y`, `d.m.y`,
    /// `yyyymmdd`, or a month name with a day and year around it), a time (`h:m[:s[.frac]]` with an optional
    /// am/pm, or `h am`), and a zone (`z`, `utc`, `gmt`, `±hh[:mm]`). Missing date parts come from today
    /// (month and day default to 1 when only a year is known); nil when nothing date-like is found.
    static func parse(_ b: [UInt8], _ env: LiquidFilterEnvironment) -> RubyTime? {
        var year: Int? = nil, month: Int? = nil, day: Int? = nil
        var hour = 0, minute = 0, second = 0, nanos = 0
        var sawTime = false
        var offset: Int? = nil
        var zoneName = ""
        var consumed = [Bool](repeating: false, count: b.count)
        func consume(_ r: Range<Int>) { for k in r where k < consumed.count { consumed[k] = true } }

        // Time of day.
        var i = 0
        var timeEnd: Int? = nil
        while i < b.count {
            if isDigit(b[i]), i == 0 || !isDigit(b[i - 1]) {
                let h = digits(b, i)
                if h.count <= 2, h.end < b.count, b[h.end] == UInt8(ascii: ":"), h.end + 1 < b.count,
                    isDigit(b[h.end + 1])
                {
                    let m = digits(b, h.end + 1)
                    guard m.count == 2 else { i += 1; continue }
                    hour = h.value
                    minute = m.value
                    var end = m.end
                    if end + 1 < b.count, b[end] == UInt8(ascii: ":"), isDigit(b[end + 1]) {
                        let s = digits(b, end + 1)
                        second = s.value
                        end = s.end
                        if end + 1 < b.count, b[end] == UInt8(ascii: ".") || b[end] == UInt8(ascii: ","),
                            isDigit(b[end + 1])
                        {
                            let fracStart = end + 1
                            var j = fracStart, n = 0, scale = 100_000_000
                            while j < b.count, isDigit(b[j]) {
                                n += Int(b[j] - 48) * scale
                                scale /= 10
                                j += 1
                            }
                            nanos = n
                            end = j
                        }
                    }
                    sawTime = true
                    consume(i..<end)
                    timeEnd = end
                    break
                }
            }
            i += 1
        }
        // am/pm after the time (or after a bare hour: "10pm").
        func meridian(at start: Int) -> (Bool, Int)? {
            var j = start
            while j < b.count, b[j] == UInt8(ascii: " ") { j += 1 }
            guard j < b.count, b[j] == UInt8(ascii: "a") || b[j] == UInt8(ascii: "p") else { return nil }
            var k = j + 1
            if k < b.count, b[k] == UInt8(ascii: ".") { k += 1 }
            guard k < b.count, b[k] == UInt8(ascii: "m") else { return nil }
            k += 1
            if k < b.count, b[k] == UInt8(ascii: ".") { k += 1 }
            if k < b.count, isLetter(b[k]) { return nil }
            return (b[j] == UInt8(ascii: "p"), k)
        }
        if let end = timeEnd, let (pm, after) = meridian(at: end) {
            if hour == 12 { hour = 0 }
            if pm { hour += 12 }
            consume(end..<after)
            timeEnd = after
        } else if !sawTime {
            var j = 0
            while j < b.count {
                if isDigit(b[j]), j == 0 || !isDigit(b[j - 1]) {
                    let h = digits(b, j)
                    if h.count <= 2, h.value >= 1, h.value <= 12, let (pm, after) = meridian(at: h.end) {
                        hour = h.value == 12 ? 0 : h.value
                        if pm { hour += 12 }
                        sawTime = true
                        consume(j..<after)
                        timeEnd = after
                        break
                    }
                }
                j += 1
            }
        }

        // Zone.
        func parseZone(from start: Int) {
            var j = start
            while j < b.count {
                if consumed[j] { j += 1; continue }
                let c = b[j]
                if c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
                    let h = digits(b, j + 1)
                    if h.count == 4 {
                        offset = (h.value / 100 * 3600 + h.value % 100 * 60) * (c == UInt8(ascii: "-") ? -1 : 1)
                        consume(j..<h.end)
                        return
                    }
                    if h.count == 2 || h.count == 1 {
                        var mins = 0
                        var end = h.end
                        if end + 2 < b.count + 1, end < b.count, b[end] == UInt8(ascii: ":") {
                            let m = digits(b, end + 1)
                            if m.count == 2 {
                                mins = m.value
                                end = m.end
                            }
                        }
                        offset = (h.value * 3600 + mins * 60) * (c == UInt8(ascii: "-") ? -1 : 1)
                        consume(j..<end)
                        return
                    }
                }
                if isLetter(c), j == 0 || !isLetter(b[j - 1]) {
                    var k = j
                    while k < b.count, isLetter(b[k]) { k += 1 }
                    let word = b[j..<k]
                    if word.elementsEqual("z".utf8) || word.elementsEqual("utc".utf8) || word.elementsEqual("gmt".utf8)
                        || word.elementsEqual("ut".utf8)
                    {
                        offset = 0
                        zoneName = "UTC"
                        consume(j..<k)
                        // "+hh:mm" may follow "gmt"/"utc".
                        if k < b.count, b[k] == UInt8(ascii: "+") || b[k] == UInt8(ascii: "-") {
                            let save = offset
                            parseZone(from: k)
                            if offset != save { zoneName = "" }
                        }
                        return
                    }
                    j = k
                    continue
                }
                j += 1
            }
        }
        if let end = timeEnd {
            parseZone(from: end)
        }

        // Date.
        var j = 0
        dateSearch: while j < b.count {
            if consumed[j] { j += 1; continue }
            if isDigit(b[j]), j == 0 || !isDigit(b[j - 1]) {
                let first = digits(b, j)
                let sep = first.end < b.count ? b[first.end] : 0
                if (sep == UInt8(ascii: "-") || sep == UInt8(ascii: "/") || sep == UInt8(ascii: ".")),
                    first.end + 1 < b.count, isDigit(b[first.end + 1])
                {
                    let second = digits(b, first.end + 1)
                    if second.end + 1 < b.count, b[second.end] == sep, isDigit(b[second.end + 1]) {
                        let third = digits(b, second.end + 1)
                        if first.count >= 3 {
                            (year, month, day) = (first.value, second.value, third.value)
                        } else {
                            (day, month, year) = (first.value, second.value, third.value)
                            if third.count == 2 { year = third.value + (third.value >= 69 ? 1900 : 2000) }
                        }
                        consume(j..<third.end)
                        break dateSearch
                    }
                    if first.count == 4 && sep == UInt8(ascii: "-") {
                        return nil  // "2024-03": Ruby finds no date
                    }
                }
                if first.count == 8 && !sawTime {
                    year = first.value / 10000
                    month = first.value / 100 % 100
                    day = first.value % 100
                    consume(j..<first.end)
                    break dateSearch
                }
                j = first.end
                continue
            }
            if isLetter(b[j]), j == 0 || !isLetter(b[j - 1]) {
                var k = j
                while k < b.count, isLetter(b[k]) { k += 1 }
                if k - j >= 3, let m = monthPrefixes.firstIndex(where: { b[j..<(j + 3)].elementsEqual($0.utf8) }) {
                    month = m + 1
                    consume(j..<k)
                    // Day and year: numbers around the month name not used by the time.
                    var numbers: [(value: Int, count: Int, position: Int)] = []
                    var p = 0
                    while p < b.count {
                        if !consumed[p], isDigit(b[p]), p == 0 || !isDigit(b[p - 1]) {
                            let n = digits(b, p)
                            if p > 0, b[p - 1] == UInt8(ascii: "+") || b[p - 1] == UInt8(ascii: "-") {
                                p = n.end
                                continue
                            }
                            numbers.append((n.value, n.count, p))
                            p = n.end
                            continue
                        }
                        p += 1
                    }
                    for n in numbers {
                        if n.count <= 2 && day == nil && n.value >= 1 && n.value <= 31 {
                            day = n.value
                        } else if year == nil {
                            year = n.value
                        }
                    }
                    break dateSearch
                }
                j = k
                continue
            }
            j += 1
        }

        guard sawTime || month != nil || year != nil else { return nil }
        let zoneOffset = offset ?? env.utcOffset
        let today = now(env).fields
        if year == nil && month == nil && day == nil {
            (year, month, day) = (Int(today.year), today.month, today.day)
        }
        let y = year ?? Int(today.year)
        let m = month ?? 1
        let d = day ?? 1
        guard m >= 1, m <= 12, d >= 1, d <= 31, hour <= 24, minute <= 59, second <= 60 else { return nil }
        let days = RubyTime.days(fromCivil: Int64(y), m, d)
        let local = days * 86400 + Int64(hour * 3600 + minute * 60 + second)
        return RubyTime(
            seconds: local - Int64(zoneOffset), nanoseconds: nanos, utcOffset: zoneOffset,
            zoneName: offset == nil ? env.localZoneName : zoneName)
    }
}
