import Testing

@testable import Liquid

/// Expected values are what Ruby Liquid 5.4 prints.
struct StringFilterTests {
    @Test func caseMapping() {
        #expect(render("upcase", "héllo ß") == "HÉLLO SS")
        #expect(render("downcase", "ÀB") == "àb")
        #expect(render("capitalize", "hELLO wORLD") == "Hello world")
        #expect(render("capitalize", "élan") == "Élan")
        #expect(render("upcase", ["a": [1, "x\n"]]) == "{\"A\"=>[1, \"X\\N\"]}")
    }

    @Test func replaceUsesRubyBackslashSequences() {
        #expect(render("replace", "hello", ["l", "[\\0]"]) == "he[l][l]o")
        #expect(render("replace", "hello", ["l", "[\\&]"]) == "he[l][l]o")
        #expect(render("replace", "hello", ["l", "[\\\\]"]) == "he[\\][\\]o")
        #expect(render("replace", "hello", ["l", "[\\1]"]) == "he[][]o")
        #expect(render("replace", "hello", ["l", "[\\`]"]) == "he[he][hel]o")
        #expect(render("replace", "hello", ["l", "[\\']"]) == "he[lo][o]o")
        #expect(render("replace", "hello", ["l", "[\\x]"]) == "he[\\x][\\x]o")
        #expect(render("replace_first", "hello", ["l", "[\\0\\0]"]) == "he[ll]lo")
        #expect(render("replace_last", "hello", ["l", "[\\0]"]) == "hel[\\0]o")
        #expect(render("replace", "héllo", ["", "-"]) == "-h-é-l-l-o-")
        #expect(render("replace", "hello", ["", "[\\0]"]) == "[]h[]e[]l[]l[]o[]")
        #expect(render("remove_last", "a-b-c", ["-"]) == "a-bc")
    }

    @Test func slice() {
        #expect(render("slice", "Liquid", [-2, 99]) == "id")
        #expect(render("slice", "Liquid", [-2, -1]) == "")
        #expect(render("slice", "héllo", [1, 3]) == "éll")
        #expect(render("slice", "hello", [.int(.min)]) == "")
        #expect(render("slice", "hello", [.int(.max), .int(.max)]) == "")
        #expect(render("slice", "hello", [1, .int(.max)]) == "ello")
        #expect(render("slice", "hello", ["0x1"]) == "e")
        #expect(render("slice", [1, 2, 3], [-2, .int(.max)]) == "23")
        #expect(render("slice", [1, 2, 3], [.int(.min), 2]) == "")
        #expect(render("slice", "hello", [2.2]) == "error: invalid integer")
        #expect(render("slice", "hello", [nil]) == "error: invalid integer")
    }

    @Test func truncate() {
        #expect(render("truncate", "Ground control to Major Tom.", [20]) == "Ground control to...")
        #expect(render("truncate", "Ground control to Major Tom.", [25, ", and so on"]) == "Ground control, and so on")
        #expect(render("truncate", "héllo wörld", [8]) == "héllo...")
        #expect(render("truncate", "hello", [2]) == "...")
        #expect(render("truncate", "hello", [.int(.min)]) == "...")
        #expect(render("truncate", "hello", [.int(.max)]) == "hello")
        #expect(render("truncatewords", "one two three four", [2]) == "one two...")
        #expect(render("truncatewords", "    one    two three    four  ", [2]) == "one two...")
        #expect(render("truncatewords", "one two three", [.int(.max)]) == "one two three")
        #expect(render("truncatewords", "one two three", [-5]) == "one...")
        #expect(render("truncatewords", "测试测试测试测试", [5]) == "测试测试测试测试")
    }

    @Test func split() throws {
        #expect(try apply("split", "a,b,,c,,", [","]) == ["a", "b", "", "c"])
        #expect(try apply("split", ",a", [","]) == ["", "a"])
        #expect(try apply("split", "  a \t b\n", [" "]) == ["a", "b"])
        #expect(try apply("split", "abc", [""]) == ["a", "b", "c"])
        #expect(try apply("split", "", [","]) == [])
        #expect(try apply("split", ",,", [","]) == [])
        #expect(try apply("split", "Hello there", [nil]).rubyString == "Hello there")
        #expect(try apply("split", "a1b", [1]) == ["a", "b"])
    }

    @Test func whitespace() {
        #expect(render("strip", "\u{0} a \u{0}") == "a")
        #expect(render("lstrip", "\u{0} a \u{0}") == "a \u{0}")
        #expect(render("rstrip", "\u{0} a \u{0}") == "\u{0} a")
        #expect(render("strip", "\u{a0}a\u{0b}\u{0c}") == "\u{a0}a")
        #expect(render("strip_newlines", "a\r\nb\nc\r") == "abc\r")
        #expect(render("newline_to_br", "a\r\nb\n") == "a<br />\nb<br />\n")
    }

    @Test func toSOfCollections() {
        #expect(render("append", [1, ["x", nil], 1.5, true], [""]) == "[1, [\"x\", nil], 1.5, true]")
        #expect(render("append", ["a": 1], ["!"]) == "{\"a\"=>1}!")
        #expect(render("prepend", "x", [nil]) == "x")
    }

    @Test(arguments: ["downcase", "upcase", "capitalize", "strip", "lstrip", "rstrip", "strip_newlines", "newline_to_br"])
    func unaryArity(_ name: String) {
        #expect(render(name, "x", [1]) == "error: wrong number of arguments (given 2, expected 1)")
    }

    @Test func keywordArgumentsCountAsAHash() throws {
        #expect(throws: LiquidFilterError.self) { try apply("upcase", "x", keyword: [("a", 1)]) }
        #expect(try apply("append", "x", keyword: [("a", 1)]) == "x{\"a\"=>1}")
    }
}
