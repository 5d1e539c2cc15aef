import Testing

@testable import Liquid

/// Expected values are what Ruby Liquid 5.4 prints with `TZ=UTC`.
struct DateFilterTests {
    @Test func allDirectives() {
        let format =
            "%-d|%e|%j|%Z|%z|%:z|%s|%b %B %a %A %p %P %I %H %M %S %Y %y %m %d %L %N %3N|%10A|%-10A|%^a|%#p|%05d|%_5d|%-m|%c|%D|%F|%T|%r|%v|%U %W %V %G %g %u %w|%C|%k|%l|%Q|%-H|%^B"
        #expect(
            render("date", 1_152_098_955, [.string(format)])
                == "5| 5|186|UTC|+0000|+00:00|1152098955|Jul July Wed Wednesday AM am 11 11 29 15 2006 06 07 05 000 000000000 000| Wednesday|Wednesday|WED|am|00005|    5|7|Wed Jul  5 11:29:15 2006|07/05/06|2006-07-05|11:29:15|11:29:15 AM| 5-JUL-2006|27 27 27 2006 06 3 3|20|11|11|%Q|11|JULY"
        )
    }

    @Test(arguments: [
        ("2024-03-01T10:00:00.123+05:30", "%Y-%m-%d %H:%M:%S.%L %z %Z|%s", "2024-03-01 10:00:00.123 +0530 |1709267400"),
        ("Thu, 14 Mar 2024 10:00:00 GMT", "%c %Z", "Thu Mar 14 10:00:00 2024 UTC"),
        ("2024-03-01 10:00 PM", "%H:%M", "22:00"),
        ("2024-03-01 10:00:00 +0100", "%H:%M %z %s", "10:00 +0100 1709283600"),
        ("2024-03-01T10:00:00Z", "%F %T %Z", "2024-03-01 10:00:00 UTC"),
        ("2024-03-01", "%F %T", "2024-03-01 00:00:00"),
        ("03/01/2024", "%F", "2024-01-03"),
        ("20240301", "%F", "1970-08-23"),
        ("14 March 2024", "%F", "2024-03-14"),
        ("March 14, 2016", "%b %d, %y", "Mar 14, 16"),
        ("March 14, 2016", "%s", "1457913600"),
        ("March 14, 2016", "%%%b %d, %y", "%Mar 14, 16"),
        ("2024-01-01", "%U %W %V %G %j", "00 01 01 2024 001"),
        ("2027-01-01", "%U %W %V %G %g %a", "00 00 53 2026 26 Fri"),
        ("1152098955", "%m/%d/%Y", "07/05/2006"),
        ("-1152098955", "%m/%d/%Y", "-1152098955"),
        ("foo", "%F", "foo"),
        ("today", "", "today"),
    ])
    func strings(input: String, format: String, expected: String) {
        #expect(render("date", .string(input), [.string(format)]) == expected)
    }

    @Test func nowAndOffsets() throws {
        #expect(try apply("date", "now", ["%s"], now: 1_700_000_000.5) == "1700000000")
        #expect(try apply("date", "Today", ["%F %H"], now: 1_700_000_000, utcOffset: 3600) == "2023-11-14 23")
        #expect(try apply("date", 0, ["%F %H:%M %z"], utcOffset: -18000) == "1969-12-31 19:00 -0500")
    }

    @Test func notADate() throws {
        #expect(try apply("date", nil, ["%F"]) == .nil)
        #expect(try apply("date", 1.5, ["%F"]) == .double(1.5))
        #expect(try apply("date", "March 14, 2016", [nil]) == "March 14, 2016")
        #expect(render("date", "2016-01-01") == "error: wrong number of arguments (given 1, expected 2)")
        #expect(render("date", "2016-01-01", ["%"]) == "error: invalid format: %")
    }
}
