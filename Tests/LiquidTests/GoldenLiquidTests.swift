#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@testable import Liquid
import Testing

/// Runs every case of the golden-liquid conformance suite (`../shared/conformance/golden-liquid/` next to
/// the repository, or the file named by the `GOLDEN_LIQUID` environment variable).
@Suite struct GoldenLiquidTests {
    /// Cases where we deliberately differ from golden-liquid, with the reason. Keep it empty or tiny.
    static let deliberateDifferences: [String: String] = [:]

    static let path: String = {
        if let env = getenv("GOLDEN_LIQUID") { return String(cString: env) }
        var dir = String(#filePath)
        while let slash = dir.lastIndex(of: "/") {
            dir = String(dir[..<slash])
            if dir.isEmpty { break }
            if LiquidTemplateLibrary.stamp(dir + "/Package.swift") != nil {
                let parent = dir[..<(dir.lastIndex(of: "/") ?? dir.startIndex)]
                return parent + "/shared/conformance/golden-liquid/golden_liquid.json"
            }
        }
        return "/work/shared/conformance/golden-liquid/golden_liquid.json"
    }()

    static var available: Bool { LiquidTemplateLibrary.stamp(path) != nil }

    struct Case {
        var name: String
        var template: String
        var data: [String: LiquidValue]
        var results: [String]
        var invalid: Bool
        var templates: [String: String]?
        var tags: [String]
    }

    static func loadCases() throws -> [Case] {
        guard let (text, _) = try LiquidTemplateLibrary.read(path) else { return [] }
        guard case .object(let root) = try LiquidJSON.parse(text), case .array(let tests)? = root["tests"] else {
            return []
        }
        var cases: [Case] = []
        for case .object(let t) in tests {
            var c = Case(name: "", template: "", data: [:], results: [], invalid: false, templates: nil, tags: [])
            if case .string(let s)? = t["name"] { c.name = s }
            if case .string(let s)? = t["template"] { c.template = s }
            if case .object(let o)? = t["data"] { c.data = o.storage }
            if case .string(let s)? = t["result"] { c.results = [s] }
            if case .array(let a)? = t["results"] { c.results = a.compactMap { if case .string(let s) = $0 { s } else { nil } } }
            if case .bool(true)? = t["invalid"] { c.invalid = true }
            if case .object(let o)? = t["templates"] {
                c.templates = o.storage.compactMapValues { if case .string(let s) = $0 { s } else { nil } }
            }
            if case .array(let a)? = t["tags"] { c.tags = a.compactMap { if case .string(let s) = $0 { s } else { nil } } }
            cases.append(c)
        }
        return cases
    }

    /// Parses and renders one case the way Ruby's `render!` would: render errors raise.
    static func run(_ c: Case) throws(LiquidError) -> String {
        let strict = c.tags.contains("strict") || c.tags.contains("strict2")
        let parseOptions = LiquidParseOptions(errorMode: strict ? .strict : .lax)
        let template = try LiquidTemplate(c.template, name: c.name, options: parseOptions)
        var options = LiquidRenderOptions(errorMode: .raise, limits: .unlimited, utcOffset: 0)
        if let templates = c.templates { options.fileSystem = LiquidInMemoryFileSystem(templates) }
        return try template.render(c.data, options: options)
    }

    @Test(.enabled(if: GoldenLiquidTests.available, "golden-liquid not found at \(GoldenLiquidTests.path)"))
    func everyCase() throws {
        let cases = try Self.loadCases()
        #expect(cases.count > 1000)
        var passed = 0
        var failures: [String] = []
        for c in cases {
            if let reason = Self.deliberateDifferences[c.name] {
                print("golden-liquid: skipped '\(c.name)': \(reason)")
                continue
            }
            let actual: String
            do {
                actual = try Self.run(c)
            } catch {
                if c.invalid {
                    passed += 1
                } else {
                    failures.append("\(c.name)\n  template: \(c.template.debugDescription)\n  expected: \(c.results.map(\.debugDescription))\n  actual: error \(error)")
                }
                continue
            }
            if c.invalid {
                failures.append("\(c.name)\n  template: \(c.template.debugDescription)\n  expected: an error\n  actual: \(actual.debugDescription)")
            } else if c.results.contains(actual) {
                passed += 1
            } else {
                failures.append("\(c.name)\n  template: \(c.template.debugDescription)\n  expected: \(c.results.map(\.debugDescription))\n  actual: \(actual.debugDescription)")
            }
        }
        print("golden-liquid: \(passed)/\(cases.count) passed, \(Self.deliberateDifferences.count) deliberate differences")
        for f in failures { Issue.record(Comment(rawValue: f)) }
    }
}
