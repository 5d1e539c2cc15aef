import FleetCore
import Foundation
import Testing

@Suite("Timestamp")
struct TimestampTests {
    @Test("RFC 3339 date-times parse to the right instant", arguments: [
        ("1970-01-01T00:00:00Z", 0.0),
        ("2026-11-23T10:00:00Z", 1_795_428_000),
        ("2026-11-23T11:00:00+01:00", 1_795_428_000),
        ("2026-11-23T04:30:00-05:30", 1_795_428_000),
        ("2026-11-23T10:00:00+00:00", 1_795_428_000),
        ("2026-11-23T10:00:00-00:00", 1_795_428_000),
        ("2026-11-24T09:59:00+23:59", 1_795_428_000),
        ("2026-11-23T10:00:00.250Z", 1_795_428_000.25),
        ("2026-11-23T11:00:00.250+01:00", 1_795_428_000.25),
        ("2026-11-23T10:00:00.5Z", 1_795_428_000.5),
        ("2026-11-23T10:00:00.125000Z", 1_795_428_000.125),
        ("2000-02-29T00:00:00Z", 951_782_400),
        ("2024-02-29T12:00:00Z", 1_709_208_000),
        ("1969-12-31T23:59:59Z", -1),
        ("1900-01-01T00:00:00Z", -2_208_988_800),
        ("2100-03-01T00:00:00Z", 4_107_542_400),
        ("2400-02-29T00:00:00Z", 13_574_563_200),
        ("9999-12-31T23:59:59Z", 253_402_300_799),
        ("0001-01-01T00:00:00Z", -62_135_596_800),
    ])
    func parse(text: String, seconds: Double) throws {
        let date = try #require(Timestamp.parse(text))
        #expect(date.timeIntervalSince1970 == seconds)
    }

    @Test("fractions of a second are kept (to well under a millisecond)")
    func fractions() throws {
        let base = 1_795_428_000.0
        for (fraction, value) in [(".1", 0.1), (".123", 0.123), (".999", 0.999), (".000001", 0.000001), (".123456789", 0.123456789)] {
            let date = try #require(Timestamp.parse("2026-11-23T10:00:00\(fraction)Z"))
            #expect(abs(date.timeIntervalSince1970 - (base + value)) < 1e-6, "\(fraction)")
        }
    }

    @Test("text that is not an RFC 3339 date-time is nil", arguments: [
        "2026-02-30T10:00:00Z",  // February 30
        "2026-02-29T10:00:00Z",  // not a leap year
        "1900-02-29T10:00:00Z",  // not a leap year (century)
        "2026-04-31T10:00:00Z",  // April has 30 days
        "2026-13-01T10:00:00Z",  // month 13
        "2026-00-10T10:00:00Z",  // month 0
        "2026-11-00T10:00:00Z",  // day 0
        "2026-11-32T10:00:00Z",
        "2026-11-23T10:00:00",  // no zone
        "2026-11-23T10:00:00.250",  // no zone
        "2026-11-23",
        "2026-11-23T10:00Z",
        "2026-11-23T24:00:00Z",
        "2026-11-23T10:60:00Z",
        "2026-11-23T10:00:61Z",
        "2026-11-23T10:00:00.Z",
        "2026-11-23T10:00:00+0100",
        "2026-11-23T10:00:00+01",
        "2026-11-23T10:00:00+24:00",
        "2026-11-23T10:00:00+01:60",
        "2026-11-23T10:00:00ZZ",
        "2026-11-23T10:00:00Z ",
        " 2026-11-23T10:00:00Z",
        "2026-11-23X10:00:00Z",
        "26-11-23T10:00:00Z",
        "2026/11/23T10:00:00Z",
        "2026-1-23T10:00:00Z",
        "+2026-11-23T10:00:00Z",
        "2026-11-23T10:00:00,5Z",
        "yesterday",
        "",
        "1795428000",
    ])
    func invalid(text: String) {
        #expect(Timestamp.parse(text) == nil, "\(text)")
    }

    @Test("format: UTC with exactly three fractional digits")
    func format() {
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_795_428_000)) == "2026-11-23T10:00:00.000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_795_428_000.25)) == "2026-11-23T10:00:00.250Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.500Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: -2_208_988_800)) == "1900-01-01T00:00:00.000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 4_107_542_400)) == "2100-03-01T00:00:00.000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 13_574_563_200.75)) == "2400-02-29T00:00:00.750Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 253_402_300_799)) == "9999-12-31T23:59:59.000Z")
        // Sub-millisecond parts are cut, not rounded up into the next millisecond.
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_795_428_000.9996)) == "2026-11-23T10:00:00.999Z")
    }

    static var shape: Regex<Substring> { #/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$/# }

    /// Instants from 1900 to 2400, some with sub-millisecond parts.
    static let instants: [Double] = {
        var g = SeededGenerator(seed: 42)
        var values: [Double] = [0, -0.001, 0.001, -1, 951_782_399.999, 1_795_428_000.123456, -2_208_988_800.25,
                                4_102_444_799.999, 4_107_542_400.5, 13_574_563_200.001]
        for _ in 0..<500 { values.append(Double.random(in: -2_208_988_800...13_574_563_200, using: &g)) }
        return values
    }()

    @Test("format has the fixed shape, and parse(format(d)) is d to the millisecond (1900-2400)")
    func roundTrip() throws {
        for seconds in Self.instants {
            let date = Date(timeIntervalSince1970: seconds)
            let text = Timestamp.format(date)
            #expect(text.wholeMatch(of: Self.shape) != nil, "\(text)")
            let back = try #require(Timestamp.parse(text), "\(text)")
            let lost = date.timeIntervalSince1970 - back.timeIntervalSince1970
            // Formatting cuts below the millisecond: the parsed date is at most 1 ms earlier, never later.
            #expect(lost >= -1e-5 && lost < 0.001 + 1e-5, "\(seconds) -> \(text): lost \(lost) s")
        }
    }

    /// A timestamp with milliseconds, parsed and formatted again, is the same text: every millisecond of
    /// a second, around the epoch (where `Date`'s 2001 reference costs the most precision), before 1970
    /// and after 2100.
    @Test("format(parse(s)) == s for millisecond timestamps", arguments: [
        "1970-01-01T00:00:00", "1969-12-31T23:59:59", "1970-01-02T03:04:05", "1971-06-15T12:00:00",
        "1900-01-01T00:00:00", "1900-07-02T14:54:36", "1983-01-01T03:39:36", "2001-01-01T00:00:00",
        "2004-04-01T13:20:06", "2026-11-23T10:00:00", "2038-04-01T19:12:54", "2100-03-01T00:00:00",
        "2400-02-29T23:59:59",
    ])
    func millisecondsAreStable(second: String) throws {
        var changed: [String] = []
        for ms in 0..<1000 {
            let text = second + "." + String(ms + 1000).dropFirst() + "Z"
            let date = try #require(Timestamp.parse(text))
            let again = Timestamp.format(date)
            if again != text { changed.append("\(text) -> \(again)") }
        }
        let changedCount = changed.count
        #expect(changedCount == 0, "\(changedCount) of 1000 changed, e.g. \(changed.prefix(3))")
    }

    @Test("offsets are normalized to Z by format")
    func normalizesOffsets() throws {
        let date = try #require(Timestamp.parse("2026-11-23T11:30:00.250+01:30"))
        #expect(Timestamp.format(date) == "2026-11-23T10:00:00.250Z")
        let west = try #require(Timestamp.parse("2026-11-22T23:00:00-11:00"))
        #expect(Timestamp.format(west) == "2026-11-23T10:00:00.000Z")
    }
}
