import Testing

@testable import Liquid

/// The renderer's fast paths (built-in filters, short decimals, direct lookups) must print exactly what the
/// general paths and Ruby Liquid 5.4 print. Expected values are Ruby's output.
struct FastPathTests {
    func render(_ source: String, _ data: [String: LiquidValue] = [:]) throws -> String {
        try LiquidTemplate(source).render(data, options: LiquidRenderOptions(utcOffset: 0))
    }

    @Test func mathOnShortDecimals() throws {
        #expect(try render("{{ a | times: 1.0 | round: 2 }}", ["a": 327.21]) == "327.21")
        #expect(try render("{{ a | plus: b }}", ["a": 0.1, "b": 0.2]) == "0.3")
        #expect(try render("{{ a | minus: b }}", ["a": 1000, "b": 0.35]) == "999.65")
        #expect(try render("{{ a | times: b }}", ["a": 1.1, "b": 1.1]) == "1.21")
        #expect(try render("{{ a | round: 1 }}|{{ a | round }}", ["a": 2.25]) == "2.3|2")
        #expect(try render("{{ a | round: 2 }}", ["a": -1.005]) == "-1.01")
        #expect(try render("{% assign t = 0 %}{% for p in ps %}{% assign t = t | plus: p %}{% endfor %}{{ t }}",
            ["ps": [327.21, 455.3, 212.0]]) == "994.51")
    }

    @Test func loopOffsetsAreKeptWhenATemplateMayContinue() throws {
        #expect(try render("{% for i in (1..5) limit: 2 %}{{ i }}{% endfor %}|{% for i in (1..5) offset: continue %}{{ i }}{% endfor %}")
            == "12|345")
        // A partial may continue a loop of the template that includes it.
        let fs = LiquidInMemoryFileSystem(["rest": "{% for i in (1..5) offset: continue %}{{ i }}{% endfor %}"])
        let template = try LiquidTemplate("{% for i in (1..5) limit: 2 %}{{ i }}{% endfor %}|{% include 'rest' %}")
        #expect(try template.render(options: LiquidRenderOptions(fileSystem: fs)) == "12|345")
    }

    @Test func outputLargerThanTheEstimateIsWhole() throws {
        let text = try render("{% for i in (1..1000) %}abcdefgh{% endfor %}")
        #expect(text.utf8.count == 8000 && text.hasPrefix("abcdefghabcdefgh") && text.hasSuffix("abcdefgh"))
        #expect(try render("{% capture c %}{% for i in (1..300) %}xy{% endfor %}{% endcapture %}{{ c | size }}") == "600")
    }

    @Test func decimalsReadOnceAndReusedGiveTheSameResults() throws {
        #expect(try render("{{ a | times: 1.0 | round: 2 }} {{ a | round: 1 }} {{ a | plus: a }} {{ a }} {{ b | minus: a }}",
            ["a": 2.25, "b": 0.1]) == "2.25 2.3 4.5 2.25 -2.15")
    }

    @Test func floatsPrintAsRuby() throws {
        #expect(try render("{{ a }}|{{ b }}|{{ c }}|{{ d }}", [
            "a": 1e15, "b": 999_999_999_999_999.0, "c": 1_000_000_000_000_344.2, "d": 0.0001,
        ]) == "1.0e+15|999999999999999.0|1000000000000344.2|0.0001")
    }

    @Test func shortDecimalIsTheShortestRoundTrip() {
        for (value, mantissa, scale) in [(0.1, 1, 1), (327.21, 32721, 2), (212.0, 212, 0), (-2.5, -25, 1)] {
            let s = ShortDecimal(value)
            #expect(s?.mantissa == Int64(mantissa) && s?.scale == scale)
        }
        #expect(ShortDecimal(1e20) == nil)
        #expect(ShortDecimal(0.1 + 0.2) == nil)  // 0.30000000000000004: 17 digits
        #expect(ShortDecimal(0.0) == nil)
    }

    @Test func caseMappingOfLatin1() throws {
        #expect(try render("{{ s | upcase }}|{{ s | downcase }}|{{ s | capitalize }}", ["s": "jürgen MÜNCHEN chloé"])
            == "JÜRGEN MÜNCHEN CHLOÉ|jürgen münchen chloé|Jürgen münchen chloé")
        #expect(try render("{{ s | upcase }}|{{ s | capitalize }}", ["s": "ßtraße ÿ"]) == "SSTRASSE Ÿ|Sstraße ÿ")
    }

    @Test func textFilters() throws {
        #expect(try render("{{ s | escape }}|{{ s | url_encode }}", ["s": "a&b <c> \"d\" 'e' ü/+"])
            == "a&amp;b &lt;c&gt; &quot;d&quot; &#39;e&#39; ü/+|a%26b+%3Cc%3E+%22d%22+%27e%27+%C3%BC%2F%2B")
        #expect(try render("{{ s | replace: \"[name]\", n }}|{{ s | replace: \"[name]\", m }}",
            ["s": "[name], hi [name]", "n": "eva"]) == "eva, hi eva|, hi ")
        #expect(try render("{{ s | truncate: 8 }}|{{ s | truncate: 8, \"…\" }}|{{ s | escape | truncate: 12 }}",
            ["s": "Wool & silk scarf"]) == "Wool ...|Wool & …|Wool &amp...")
        // A text filter's nil result stays nil when assigned.
        #expect(try render("{% assign x = n | escape %}{% if x == nil %}nil{% endif %}|{{ n | default: \"d\" }}")
            == "nil|d")
    }

    @Test func isoDates() throws {
        #expect(try render("{{ d | date: \"%B %Y\" }}|{{ d | date: \"%Y-%m-%d %H:%M %Z\" }}", ["d": "2017-05-16T10:00:00Z"])
            == "May 2017|2017-05-16 10:00 UTC")
    }

    @Test func isoDateWriterMatchesStrftime() throws {
        let formats = ["%B %Y", "%b %e, %Y", "%d.%m.%y %H:%M:%S", "100%% %Y", "%Y%m%d"]
        for input in ["2017-05-16T10:00:00Z", "1999-12-31T23:59:59Z", "2024-02-29T00:00:00z", "2016-03-04T05:06:07Z"] {
            for format in formats {
                var bytes = OutputBuffer(capacity: 32)
                #expect(DateFilter.writeISO(input, format: format, to: &bytes))
                let general = try DateFilter.isoUTC(input)!.strftime(format)
                #expect(bytes.string == general, "\(input) \(format)")
            }
        }
        // Flags, widths, other conversions and other inputs take the general path, with nothing written.
        for (input, format) in [("2017-05-16T10:00:00Z", "%-d"), ("2017-05-16T10:00:00Z", "%A"), ("2017-05-16T10:00:00Z", "%Y%"),
                                ("2017-05-16 10:00", "%Y"), ("0999-05-16T10:00:00Z", "%Y")] {
            var bytes = OutputBuffer(capacity: 32)
            #expect(!DateFilter.writeISO(input, format: format, to: &bytes) && bytes.isEmpty, "\(input) \(format)")
        }
        #expect(try render("{{ d | date: \"%-d %B\" }}|{{ d | date: \"%e %b\" }}", ["d": "2017-05-06T10:00:00Z"]) == "6 May| 6 May")
    }

    @Test func lookupHintsFollowEachObjectsShape() throws {
        // One template, objects with the same keys in different orders: a remembered position that does not
        // hold the key falls back to a search.
        let t = try LiquidTemplate("{% for p in ps %}{{ p.name }}-{{ p.city }};{% endfor %}{{ x.name }}")
        let ps: LiquidValue = [["name": "a", "city": "b"], ["city": "d", "name": "c"], ["zip": 1, "name": "e"]]
        #expect(try t.render(["ps": ps, "x": ["name": "f"]]) == "a-b;c-d;e-;f")
        #expect(try t.render(["x": ["other": 1, "name": "g"], "ps": []]) == "g")
    }

    @Test func cycleOfLiteralsAndVariables() throws {
        #expect(try render("{% for i in (1..3) %}{% cycle 'odd', 'even' %}{% cycle a, 'x' %}{% endfor %}", ["a": 1])
            == "odd1evenxodd1")
    }

    @Test func rejectWithUndefinedProperty() throws {
        // golden-liquid: "filters, reject, first argument is undefined".
        #expect(try render("{% assign b = a | reject: nosuchthing %}{% for obj in b %}{{ obj }}, {% endfor %}",
            ["a": ["x", "y", "cat"]]) == "")
    }

    @Test func overriddenStandardFilterIsCalled() throws {
        var options = LiquidParseOptions()
        options.filters["upcase"] = { _, _, _ in .string("custom") }
        let t = try LiquidTemplate("{{ 'a' | upcase }}", options: options)
        #expect(try t.render() == "custom")
    }
}
