import Foundation
import Testing

@testable import Liquid

/// Runs the golden-liquid filter cases whose template is a single `{{ value | filter: args | ... }}` output
/// with literal or variable operands, through a minimal expression reader (the real parser lives in the
/// engine). Cases using tags, ranges or other syntax are skipped here; the engine's golden test runs them all.
struct GoldenFilterOutputTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var template: String
        var data: LiquidValue
        var results: [String]
        var invalid: Bool
        var testDescription: String { name }
    }

    /// A small JSON reader keeping object key order (as Ruby's JSON does) and int/float distinction.
    struct JSON {
        let b: [UInt8]
        var i = 0
        init(_ text: String) { b = Array(text.utf8) }
        mutating func ws() { while i < b.count, b[i] == 32 || b[i] == 10 || b[i] == 13 || b[i] == 9 { i += 1 } }
        mutating func value() -> LiquidValue {
            ws()
            switch b[i] {
            case UInt8(ascii: "{"):
                i += 1
                var pairs: [(String, LiquidValue)] = []
                ws()
                if b[i] == UInt8(ascii: "}") { i += 1; return .object(LiquidObject(pairs)) }
                while true {
                    ws()
                    guard case .string(let k) = value() else { return .nil }
                    ws(); i += 1  // :
                    pairs.append((k, value()))
                    ws()
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    i += 1
                    return .object(LiquidObject(pairs))
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [LiquidValue] = []
                ws()
                if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    items.append(value())
                    ws()
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    i += 1
                    return .array(items)
                }
            case UInt8(ascii: "\""):
                i += 1
                var out: [UInt8] = []
                while b[i] != UInt8(ascii: "\"") {
                    if b[i] == UInt8(ascii: "\\") {
                        i += 1
                        switch b[i] {
                        case UInt8(ascii: "n"): out.append(10)
                        case UInt8(ascii: "t"): out.append(9)
                        case UInt8(ascii: "r"): out.append(13)
                        case UInt8(ascii: "b"): out.append(8)
                        case UInt8(ascii: "f"): out.append(12)
                        case UInt8(ascii: "u"):
                            var code = UInt32(String(decoding: b[(i + 1)...(i + 4)], as: UTF8.self), radix: 16)!
                            i += 4
                            if code >= 0xD800 && code < 0xDC00 {
                                let low = UInt32(String(decoding: b[(i + 3)...(i + 6)], as: UTF8.self), radix: 16)!
                                code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
                                i += 6
                            }
                            out.append(contentsOf: String(Character(Unicode.Scalar(code)!)).utf8)
                        default: out.append(b[i])
                        }
                        i += 1
                    } else {
                        out.append(b[i])
                        i += 1
                    }
                }
                i += 1
                return .string(String(decoding: out, as: UTF8.self))
            case UInt8(ascii: "t"): i += 4; return .bool(true)
            case UInt8(ascii: "f"): i += 5; return .bool(false)
            case UInt8(ascii: "n"): i += 4; return .nil
            default:
                let start = i
                while i < b.count, "+-0123456789.eE".utf8.contains(b[i]) { i += 1 }
                let text = String(decoding: b[start..<i], as: UTF8.self)
                if let n = Int(text) { return .int(n) }
                return .double(Double(text) ?? 0)
            }
        }
    }

    static func field(_ o: LiquidObject, _ k: String) -> LiquidValue { o[k] ?? .nil }

    static let path = "/work/shared/conformance/golden-liquid/golden_liquid.json"

    static func loadCases() -> [Case] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        var reader = JSON(String(decoding: data, as: UTF8.self))
        guard case .object(let root) = reader.value(), case .array(let tests) = field(root, "tests") else { return [] }
        var out: [Case] = []
        for case .object(let t) in tests {
            guard case .array(let tags) = field(t, "tags"),
                tags.contains(where: { if case .string(let s) = $0 { s.hasSuffix(" filter") } else { false } }),
                case .string(let template) = field(t, "template")
            else { continue }
            guard Template.parse(template) != nil else { continue }
            var results: [String] = []
            if case .array(let rs) = field(t, "results") {
                for case .string(let r) in rs { results.append(r) }
            } else if case .string(let r) = field(t, "result") {
                results = [r]
            }
            var name = ""
            if case .string(let n) = field(t, "name") { name = n }
            out.append(
                Case(
                    name: name, template: template, data: field(t, "data"), results: results,
                    invalid: field(t, "invalid") == .bool(true)))
        }
        return out
    }

    /// `{{ operand | name: args | ... }}` and nothing else.
    struct Template {
        enum Operand { case literal(LiquidValue), variable([String]) }
        struct Filter { var name: String; var positional: [Operand]; var keyword: [(String, Operand)] }
        var operand: Operand
        var filters: [Filter]

        static func parse(_ source: String) -> Template? {
            let s = source.trimmingCharacters(in: .whitespaces)
            guard s.hasPrefix("{{"), s.hasSuffix("}}") else { return nil }
            var body = Substring(s.dropFirst(2).dropLast(2))
            guard !body.contains("{{"), !body.contains("{%"), !body.contains("(") else { return nil }
            var tokens: [String] = []
            while let c = body.first {
                if c == " " || c == "\t" || c == "\n" {
                    body.removeFirst()
                } else if c == "'" || c == "\"" {
                    guard let end = body.dropFirst().firstIndex(of: c) else { return nil }
                    tokens.append(String(body[body.startIndex...end]))
                    body = body[body.index(after: end)...]
                } else if c == "|" || c == ":" || c == "," {
                    tokens.append(String(c))
                    body.removeFirst()
                } else {
                    var word = ""
                    while let d = body.first, !" \t\n|:,'\"".contains(d) {
                        word.append(d)
                        body.removeFirst()
                    }
                    tokens.append(word)
                }
            }
            var i = 0
            func operand() -> Operand? {
                guard i < tokens.count else { return nil }
                let t = tokens[i]
                i += 1
                if t.hasPrefix("'") || t.hasPrefix("\"") { return .literal(.string(String(t.dropFirst().dropLast()))) }
                if let n = Int(t) { return .literal(.int(n)) }
                if t.contains("."), let d = Double(t), t.first!.isNumber || t.first == "-" { return .literal(.double(d)) }
                switch t {
                case "nil", "null": return .literal(.nil)
                case "true": return .literal(.bool(true))
                case "false": return .literal(.bool(false))
                case "empty", "blank": return nil
                default: break
                }
                guard t.first?.isLetter == true || t.first == "_" else { return nil }
                // `.first`, `.size`... are the engine's special properties, not filters.
                if t.hasSuffix(".first") || t.hasSuffix(".last") || t.hasSuffix(".size") { return nil }
                return .variable(t.split(separator: ".").map(String.init))
            }
            guard let first = operand() else { return nil }
            var filters: [Filter] = []
            while i < tokens.count {
                guard tokens[i] == "|", i + 1 < tokens.count else { return nil }
                var f = Filter(name: tokens[i + 1], positional: [], keyword: [])
                i += 2
                if i < tokens.count, tokens[i] == ":" {
                    i += 1
                    while true {
                        if i + 1 < tokens.count, tokens[i + 1] == ":" {
                            let key = tokens[i]
                            i += 2
                            guard let v = operand() else { return nil }
                            f.keyword.append((key, v))
                        } else {
                            guard let v = operand() else { return nil }
                            f.positional.append(v)
                        }
                        if i < tokens.count, tokens[i] == "," { i += 1 } else { break }
                    }
                }
                filters.append(f)
            }
            return Template(operand: first, filters: filters)
        }

        func value(_ o: Operand, _ data: LiquidValue) -> LiquidValue {
            switch o {
            case .literal(let v): return v
            case .variable(let path):
                var v = data
                for key in path {
                    guard case .object(let obj) = v else { return .nil }
                    v = obj[key] ?? .nil
                }
                return v
            }
        }

        func render(_ data: LiquidValue) throws -> String {
            var v = value(operand, data)
            let env = LiquidFilterEnvironment(now: 1_700_000_000)
            for f in filters {
                guard let function = LiquidFilters.standard[f.name] else {
                    throw LiquidFilterError(.invalid, "unknown filter")
                }
                let args = LiquidFilterArguments(
                    positional: f.positional.map { value($0, data) },
                    keyword: f.keyword.map { (name: $0.0, value: value($0.1, data)) })
                v = try function(v, args, env)
            }
            return v.rubyString
        }
    }

    @Test("golden-liquid single-output filter cases", arguments: loadCases())
    func golden(_ c: Case) throws {
        let template = try #require(Template.parse(c.template))
        if c.invalid {
            #expect(throws: LiquidFilterError.self) { try template.render(c.data) }
        } else {
            let out = try template.render(c.data)
            #expect(c.results.contains(out), "\(c.template) gave \(out.debugDescription), want \(c.results)")
        }
    }

    @Test func enoughGoldenCasesAreRunHere() {
        #expect(Self.loadCases().count > 250)
    }
}
