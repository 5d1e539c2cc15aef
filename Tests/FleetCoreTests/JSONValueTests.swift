import FleetCore
import Testing

@Suite("JSONValue parsing")
struct JSONParsingTests {
    @Test("objects, arrays and literals")
    func structures() throws {
        let v = try JSONValue(parsing: #"{"a":1,"b":[true,false,null],"c":"x","d":{},"e":[],"f":{"g":[{"h":-2}]}}"#)
        let expected: JSONValue = [
            "a": 1, "b": [true, false, nil], "c": "x", "d": .object(JSONObject()), "e": [],
            "f": ["g": [["h": -2]]],
        ]
        #expect(v == expected)
        #expect(v["a"] == .int(1))
        #expect(v["f"]?["g"] == .array([["h": .int(-2)]]))
        #expect(v["missing"] == nil)
        #expect(try JSONValue(parsing: "[]") == .array([]))
        #expect(try JSONValue(parsing: "{}") == .object(JSONObject()))
        #expect(try JSONValue(parsing: "true") == .bool(true))
        #expect(try JSONValue(parsing: "null") == .null)
        #expect(try JSONValue(parsing: #""top""#) == .string("top"))
    }

    @Test("objects keep their key order")
    func keyOrder() throws {
        let v = try JSONValue(parsing: #"{"z":1,"a":2,"m":3}"#)
        #expect(v.objectValue?.keys == ["z", "a", "m"])
    }

    @Test("string escapes", arguments: [
        (#""\"""#, "\""),
        (#""\\""#, "\\"),
        (#""\/""#, "/"),
        (#""\b\f\n\r\t""#, "\u{08}\u{0C}\n\r\t"),
        (#""\u0041\u00e9\u00E9""#, "Aéé"),
        (#""\u0000""#, "\u{0}"),
        (#""\u001f""#, "\u{1F}"),
        (#""\u20ac""#, "€"),
        (#""\ud83d\ude00""#, "😀"),
        (#""\uD834\uDD1E""#, "𝄞"),
        (#""\udbff\udfff""#, "\u{10FFFF}"),
        (#""a\"b\\c\u0041d""#, "a\"b\\cAd"),
        (#""plain é 中文 😀""#, "plain é 中文 😀"),
        (#""""#, ""),
    ])
    func escapes(json: String, expected: String) throws {
        #expect(try JSONValue(parsing: json) == .string(expected))
    }

    @Test("integers stay integers; fractions, exponents and big integers are doubles", arguments: [
        ("0", JSONValue.int(0)),
        ("42", .int(42)),
        ("-17", .int(-17)),
        ("9223372036854775807", .int(Int64.max)),
        ("-9223372036854775808", .int(Int64.min)),
        ("9223372036854775808", .double(9_223_372_036_854_775_808.0)),
        ("-9223372036854775809", .double(-9_223_372_036_854_775_809.0)),
        ("123456789012345678901234567890", .double(1.2345678901234568e29)),
        ("1.0", .double(1.0)),
        ("1e3", .double(1000)),
        ("1E3", .double(1000)),
        ("1e+3", .double(1000)),
        ("2.5e-3", .double(0.0025)),
        ("-0.5", .double(-0.5)),
        ("0.1", .double(0.1)),
        ("1.5E2", .double(150)),
    ])
    func numbers(json: String, expected: JSONValue) throws {
        let v = try JSONValue(parsing: json)
        #expect(v == expected)
        // The case matters, not only the value: 1.0 must not collapse into 1.
        switch (v, expected) {
        case (.int, .int), (.double, .double): break
        default: Issue.record("\(json) parsed as \(v), expected \(expected)")
        }
    }

    @Test("whitespace around and between tokens: space, tab, CR, LF")
    func whitespace() throws {
        let v = try JSONValue(parsing: " \t\r\n{ \"a\" :\n[ 1 ,\t2 ] ,\r\n\"b\" : \"x y\" } \n\t ")
        #expect(v == ["a": [1, 2], "b": "x y"])
    }

    @Test("other whitespace is not JSON whitespace", arguments: ["\u{0B}1", "\u{0C}1", "1\u{A0}", "[1,\u{85}2]"])
    func nonJSONWhitespace(text: String) {
        #expect(TestSupport.parseError(text)?.reason == .syntax)
    }

    @Test("duplicate keys are refused with the key and its offset (I-JSON); equal keys in sibling objects are fine")
    func duplicateKeys() throws {
        let error = try #require(TestSupport.parseError(#"{"a":1,"b":2,"a":3}"#))
        #expect(error.reason == .duplicateKey)
        #expect(error.offset == 13)
        #expect(error.message.contains("\"a\""))
        let siblings = try JSONValue(parsing: #"[{"a":1},{"a":2}]"#)
        #expect(siblings.arrayValue?.count == 2)
        // Keys that differ only after escapes are the same key.
        #expect(TestSupport.parseError(#"{"a":1,"\u0061":2}"#)?.reason == .duplicateKey)
        // Past a dozen keys the check uses a set: still found.
        let many = "{" + (0..<40).map { "\"k\($0)\":0" }.joined(separator: ",") + #","k3":1}"#
        #expect(TestSupport.parseError(many)?.reason == .duplicateKey)
    }

    @Test("trailing garbage is an error at its offset", arguments: [
        ("{} x", 3),
        ("[1,2]]", 5),
        ("1 2", 2),
        (#""a""b""#, 3),
        ("null,", 4),
        ("true false", 5),
    ])
    func trailingGarbage(text: String, offset: Int) throws {
        let error = try #require(TestSupport.parseError(text))
        #expect(error.reason == .syntax)
        #expect(error.offset == offset)
    }

    @Test("an unterminated string is an error at the end of the input", arguments: [
        (#""abc"#, 4),
        (#"{"a":"b"#, 7),
        (#""ab\"#, 4),
        (#"["\n"#, 4),
    ])
    func unterminatedString(text: String, offset: Int) throws {
        let error = try #require(TestSupport.parseError(text))
        #expect(error.reason == .syntax)
        #expect(error.offset == offset)
    }

    static let quote: [UInt8] = [0x22]
    static let controlCases: [([UInt8], Int)] = [
        (quote + [0x61, 0x01, 0x62] + quote, 2),
        (quote + [0x61, 0x0A] + quote, 2),
        (quote + [0x09] + quote, 1),
        (quote + [0x00] + quote, 1),
        (quote + [0x1F] + quote, 1),
        // After an escape (the parser's slow path).
        (quote + [0x5C, 0x6E, 0x01] + quote, 3),
    ]

    @Test("a control character inside a string is an error at its offset", arguments: controlCases)
    func controlCharacter(bytes: [UInt8], offset: Int) throws {
        let error = try #require(TestSupport.parseError(bytes))
        #expect(error.reason == .syntax)
        #expect(error.offset == offset)
    }

    @Test("an invalid escape is an error at the escape", arguments: [#""\x""#, #""\a""#, #""\U0041""#, #""\'""#, #""\u12""#, #""\u12g4""#, #""\u""#])
    func invalidEscape(text: String) throws {
        let error = try #require(TestSupport.parseError(text))
        #expect(error.reason == .syntax)
        // The escape starts at byte 1; the offset points into it (or just past its last byte).
        #expect((1...text.utf8.count).contains(error.offset), "offset \(error.offset)")
    }

    @Test("a lone or mismatched surrogate escape is an error", arguments: [
        #""\ud800""#,
        #""\udbff""#,
        #""\udc00""#,
        #""\udfff""#,
        #""\ud800x""#,
        #""\ud800\n""#,
        #""\ud800\u0041""#,
        #""\ud800\ud800""#,
        #""\udc00\ud800""#,
        #""a\ud83d""#,
    ])
    func loneSurrogate(text: String) throws {
        let error = try #require(TestSupport.parseError(text))
        #expect(error.reason == .syntax)
        #expect((1...text.utf8.count).contains(error.offset), "offset \(error.offset)")
    }

    /// RFC 8259 §6: `int = zero / ( digit1-9 *DIGIT )`, so a leading zero is not allowed.
    @Test("numbers RFC 8259 forbids are rejected", arguments: [
        "01", "-01", "00", "007", "[01]", #"{"a":01}"#, "1.", ".5", "+1", "1e", "1e+", "-", "0x10", "1.e3",
        "NaN", "Infinity", "-Infinity", "--1", "1..2", "1e1.5",
    ])
    func invalidNumbers(text: String) throws {
        let error = try #require(TestSupport.parseError(text), "\(text) was accepted")
        #expect(error.reason == .syntax)
    }

    @Test("other syntax errors", arguments: [
        "", " ", "[1,]", #"{"a":1,}"#, "{'a':1}", "{a:1}", "[1 2]", "tru", "nul", "True", #"{"a" 1}"#, "[", "{",
        #"{"a":}"#, "[,1]", "{,}", #"{"a"}"#, "]",
    ])
    func syntaxErrors(text: String) throws {
        let error = try #require(TestSupport.parseError(text), "\(text) was accepted")
        #expect(error.reason == .syntax)
        #expect((0...text.utf8.count).contains(error.offset))
    }

    @Test("invalid UTF-8 is .invalidUTF8 at the offending byte", arguments: [
        [0xC0, 0xAF] as [UInt8],  // overlong '/'
        [0xC1, 0xBF],  // overlong
        [0xE0, 0x80, 0xAF],  // overlong 3-byte
        [0xE0, 0x9F, 0xBF],  // overlong 3-byte (U+07FF)
        [0xF0, 0x80, 0x80, 0xAF],  // overlong 4-byte
        [0xF0, 0x8F, 0xBF, 0xBF],  // overlong 4-byte (U+FFFF)
        [0xED, 0xA0, 0x80],  // U+D800 encoded in UTF-8
        [0xED, 0xBF, 0xBF],  // U+DFFF encoded in UTF-8
        [0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80],  // a CESU-8 surrogate pair
        [0xF4, 0x90, 0x80, 0x80],  // beyond U+10FFFF
        [0xE2, 0x82],  // truncated 3-byte sequence
        [0xF0, 0x9F, 0x98],  // truncated 4-byte sequence
        [0xC3],  // truncated 2-byte sequence
        [0x80],  // a lone continuation byte
        [0xBF],
        [0xFF],
        [0xFE],
        [0xF8, 0x88, 0x80, 0x80, 0x80],  // 5-byte form
        [0xC3, 0x28],  // a lead byte followed by ASCII
    ])
    func invalidUTF8(bad: [UInt8]) throws {
        // Inside a string: the bad sequence starts at byte 1.
        let error = try #require(TestSupport.parseError([0x22] + bad + [0x22]))
        #expect(error.reason == .invalidUTF8)
        #expect(error.offset == 1)
        // At the very end of the input (no closing quote).
        let atEnd = try #require(TestSupport.parseError([0x22] + bad))
        #expect(atEnd.reason == .invalidUTF8)
        #expect(atEnd.offset == 1)
        // After valid multi-byte characters, in a key.
        let inKey = try #require(TestSupport.parseError(Array(#"{"é😀"#.utf8) + bad + Array(#"":1}"#.utf8)))
        #expect(inKey.reason == .invalidUTF8)
        #expect(inKey.offset == 8)
    }

    @Test("valid UTF-8 up to U+10FFFF is accepted")
    func validUTF8() throws {
        let bytes: [UInt8] = [0x22, 0x7F, 0xC2, 0x80, 0xDF, 0xBF, 0xE0, 0xA0, 0x80, 0xED, 0x9F, 0xBF, 0xEE, 0x80, 0x80,
                              0xEF, 0xBF, 0xBF, 0xF0, 0x90, 0x80, 0x80, 0xF4, 0x8F, 0xBF, 0xBF, 0x22]
        let v = try JSONValue(parsing: bytes)
        #expect(v == .string("\u{7F}\u{80}\u{7FF}\u{800}\u{D7FF}\u{E000}\u{FFFF}\u{10000}\u{10FFFF}"))
    }

    @Test("nesting up to 128 levels parses; deeper is .tooDeep", arguments: [
        ("[", "]"),
        (#"{"a":"#, "}"),
    ])
    func depth(open: String, close: String) throws {
        let ok = String(repeating: open, count: 128) + "1" + String(repeating: close, count: 128)
        _ = try JSONValue(parsing: ok)
        let deep = String(repeating: open, count: 129) + "1" + String(repeating: close, count: 129)
        let error = try #require(TestSupport.parseError(deep))
        #expect(error.reason == .tooDeep)
        #expect(error.offset == 128 * open.utf8.count)
    }

    @Test("very deep nesting fails with .tooDeep, not a crash")
    func veryDeep() throws {
        let error = try #require(TestSupport.parseError(String(repeating: "[", count: 100_000)))
        #expect(error.reason == .tooDeep)
        let mixed = String(repeating: #"[{"k":"#, count: 70) + "0" + String(repeating: "}]", count: 70)
        #expect(TestSupport.parseError(mixed)?.reason == .tooDeep)
    }

    @Test("sibling containers do not add up to the depth")
    func siblingsDoNotCount() throws {
        let nested = String(repeating: "[", count: 127) + "[]" + String(repeating: "]", count: 127)
        let many = "[" + Array(repeating: nested, count: 3).joined(separator: ",") + "]"
        #expect(TestSupport.parseError(many)?.reason == .tooDeep)  // 1 + 128 levels: too deep
        let fits = String(repeating: "[", count: 126) + "[],[],[]" + String(repeating: "]", count: 126)
        #expect(TestSupport.parseError(fits) == nil)
        // Many siblings at depth 2: the depth goes back down after each one.
        let wide = "[" + Array(repeating: "[[]]", count: 500).joined(separator: ",") + "]"
        #expect(TestSupport.parseError(wide) == nil)
    }
}

@Suite("JSONValue serialization")
struct JSONSerializationTests {
    static let values: [JSONValue] = [
        .null, true, false, 0, -1, .int(Int64.max), .int(Int64.min),
        1.0, -0.5, 0.1, 1e300, -1.5e-300, .double(Double.leastNonzeroMagnitude), 1e16, 123456.789, .double(Double.greatestFiniteMagnitude),
        "", "plain", "quote \" backslash \\ slash /",
        "héllo wörld 中文 日本語 😀 👩‍👩‍👧 \u{10FFFF}",
        "\u{0}\u{1}\u{2}\u{7}\u{8}\u{9}\u{A}\u{B}\u{C}\u{D}\u{1B}\u{1F}\u{7F}",
        "line1\nline2\r\ttab",
        "\u{2028}\u{2029}\u{FEFF}",
        [], .object(JSONObject()),
        [1, "two", 3.0, nil, [true], ["k": "v"]],
        ["id": "j1", "kind": "noop", "data": ["nested": ["deep": [1, 2, ["x": nil]]], "unicode": "é\u{0}"]],
        ["key with \"quotes\"": 1, "ключ": 2, "\u{1}": 3, "": 4],
    ]

    @Test("JSONValue(parsing: v.serialized()) == v", arguments: values)
    func roundTrip(value: JSONValue) throws {
        let bytes = value.serialized()
        let parsed = try JSONValue(parsing: bytes)
        #expect(parsed == value, "\(value.jsonString)")
        #expect(try JSONValue(parsing: value.jsonString) == value)
    }

    @Test("serialized text has no raw control characters", arguments: values)
    func noRawControlCharacters(value: JSONValue) {
        #expect(!value.serialized().contains { $0 < 0x20 })
    }

    @Test("prettyPrinted() parses back to the same value", arguments: values)
    func prettyRoundTrip(value: JSONValue) throws {
        #expect(try JSONValue(parsing: value.prettyPrinted()) == value)
    }

    @Test("prettyPrinted() indents with two spaces per level")
    func prettyFormat() {
        let v: JSONValue = ["a": [1, ["b": nil]], "c": [], "d": .object(JSONObject())]
        #expect(v.prettyPrinted() == """
            {
              "a": [
                1,
                {
                  "b": null
                }
              ],
              "c": [],
              "d": {}
            }
            """)
    }

    @Test("compact output of a known value")
    func compact() {
        let v: JSONValue = ["s": "a\"b\\c\n\u{1}", "i": -3, "d": 2.5, "b": false, "n": nil, "a": [1, 2]]
        #expect(v.jsonString == #"{"s":"a\"b\\c\n\u0001","i":-3,"d":2.5,"b":false,"n":null,"a":[1,2]}"#)
    }

    @Test("non-finite doubles serialize as null", arguments: [Double.infinity, -Double.infinity, Double.nan])
    func nonFinite(d: Double) throws {
        #expect(JSONValue.double(d).jsonString == "null")
        #expect(try JSONValue(parsing: JSONValue.array([.double(d)]).serialized()) == [nil])
    }

    @Test("whole doubles stay doubles through a round trip")
    func wholeDoubles() throws {
        for d in [1.0, -2.0, 1e15, 0.0] {
            let parsed = try JSONValue(parsing: JSONValue.double(d).serialized())
            guard case .double(let back) = parsed else {
                Issue.record("\(d) came back as \(parsed)")
                continue
            }
            #expect(back == d)
        }
    }
}

@Suite("JSON string writing")
struct JSONStringWritingTests {
    /// Each character that must be escaped, at every offset of a 24-character string (the writer copies the runs
    /// between escapes at once), in ASCII and in multi-byte UTF-8 surroundings: the text parses back to the same
    /// string, and no control character is left raw.
    @Test("escapes at every offset round-trip", arguments: ["\"", "\\", "\n", "\r", "\t", "\u{01}", "\u{1F}"])
    func everyOffset(special: String) throws {
        for filler in ["abcdefghijklmnopqrstuvwx", "éàüöäßçñøåéàüöäßçñøåéàü"] {
            let characters = Array(filler)
            for offset in 0...characters.count {
                var text = characters
                text.insert(Character(special), at: offset)
                let string = String(text) + String(repeating: "y", count: offset % 9)
                let bytes = JSONValue.string(string).serialized()
                #expect(try JSONValue(parsing: bytes) == .string(string), "offset \(offset)")
                #expect(!bytes.contains { $0 < 0x20 }, "offset \(offset)")
            }
        }
    }

    @Test("a long text with a quoted-printable shape (CRLF every 76 bytes) round-trips")
    func longText() throws {
        let line = String(repeating: "a=3D", count: 18) + "b=\r\n"
        let string = String(repeating: line, count: 200) + "\"end\\"
        #expect(try JSONValue(parsing: JSONValue.string(string).serialized()) == .string(string))
    }
}
