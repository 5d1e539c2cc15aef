import Foundation
import Testing

/// `fleet template render` and `fleet template check`, run as the real executable.
@Suite("fleet template")
struct TemplateCLITests {
    /// A page with an `include` partial (`_header.liquid`) and a `render` partial (`item.liquid`).
    static let site: [String: String] = [
        "page.liquid": "{% include 'header' %}Hi {{ user.name | upcase }}!\n{% render 'item' for items as item %}",
        "_header.liquid": "[{{ user.name }}]\n",
        "item.liquid": "- {{ item }} {{ user.name }}\n",
    ]
    static let data = #"{"user": {"name": "ada", "opted_out": true}, "items": ["a", "b"]}"#
    /// `render` partials do not see the caller's variables, so `user.name` is blank in `item.liquid`.
    static let pageOutput = "[ada]\nHi ADA!\n- a \n- b \n"

    @Test("render: a .liquid file with include and render partials from its directory, data from a file")
    func renderFile() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLIRunner.write(Self.site.mapKeys { "site/" + $0 }.merging(["data.json": Self.data]) { a, _ in a }, in: dir)
        let result = try await CLIRunner.fleet(["template", "render", "site/page.liquid", "--data", "data.json"], in: dir)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == Self.pageOutput)
        #expect(result.stderr.isEmpty)

        // Any file name works for the template given by path (partials keep Liquid's name rules).
        try CLIRunner.write(["site/Grüße und mehr.liquid": "{% render 'item' for items as item %}"], in: dir)
        let spaced = try await CLIRunner.fleet(["template", "render", "site/Grüße und mehr.liquid", "--data", "data.json"], in: dir)
        #expect(spaced.status == 0, "\(spaced.stderr)")
        #expect(spaced.stdout == "- a \n- b \n")
    }

    @Test("render: a name in the templates directory (--templates, then FLEET_TEMPLATES), data from stdin")
    func renderByName() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLIRunner.write(Self.site.mapKeys { "tpl/" + $0 }, in: dir)
        let byFlag = try await CLIRunner.fleet(["template", "render", "page", "--templates", "tpl", "--data", "-"],
                                               in: dir, stdin: Data(Self.data.utf8))
        #expect(byFlag.status == 0, "\(byFlag.stderr)")
        #expect(byFlag.stdout == Self.pageOutput)
        let byEnv = try await CLIRunner.fleet(["template", "render", "page", "--data", "-"], in: dir,
                                              environment: ["FLEET_TEMPLATES": dir.appendingPathComponent("tpl").path],
                                              stdin: Data(Self.data.utf8))
        #expect(byEnv.stdout == Self.pageOutput, "\(byEnv.stderr)")
        let missing = try await CLIRunner.fleet(["template", "render", "nosuch", "--templates", "tpl"], in: dir)
        #expect(missing.status == 66)
        #expect(missing.errorLines.count == 1)
        #expect(missing.stderr.contains("no template 'nosuch'"))
    }

    @Test("render FILE --templates DIR: the flag's directory serves include/render, not the file's directory")
    func templatesFlagWinsForPartials() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLIRunner.write([
            "drafts/page.liquid": "{% include 'header' %}|{% render 'item' %}",
            "drafts/_header.liquid": "draft header",
            "drafts/item.liquid": "draft item",
            "shared/_header.liquid": "shared header",
            "shared/item.liquid": "shared item",
        ], in: dir)
        let own = try await CLIRunner.fleet(["template", "render", "drafts/page.liquid"], in: dir)
        #expect(own.stdout == "draft header|draft item", "\(own.stderr)")
        let flagged = try await CLIRunner.fleet(["template", "render", "drafts/page.liquid", "--templates", "shared"], in: dir)
        #expect(flagged.status == 0, "\(flagged.stderr)")
        #expect(flagged.stdout == "shared header|shared item")
        // The environment is not an explicit choice: the file's directory still serves its partials.
        let byEnv = try await CLIRunner.fleet(["template", "render", "drafts/page.liquid"], in: dir,
                                              environment: ["FLEET_TEMPLATES": dir.appendingPathComponent("shared").path])
        #expect(byEnv.stdout == "draft header|draft item", "\(byEnv.stderr)")
        let noDir = try await CLIRunner.fleet(["template", "render", "drafts/page.liquid", "--templates", "nosuch"], in: dir)
        #expect(noDir.status == 66)
        #expect(noDir.errorLines.count == 1)
    }

    @Test("render: errors inside assign print nothing in lax mode (as Ruby's render); --raise-errors fails with exit 65")
    func raiseErrors() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLIRunner.write([
            "assign.liquid": "x{% assign b = a | split %}y{{ b }}z",
            "output.liquid": "x{{ 1 | divided_by: 0 }}z",
            "missing.liquid": "[{{ nobody.name }}]",
            "data.json": #"{"a": "1,2"}"#,
        ], in: dir)
        let lax = try await CLIRunner.fleet(["template", "render", "assign.liquid", "--data", "data.json"], in: dir)
        #expect(lax.status == 0)
        #expect(lax.stdout == "xyz")
        let laxOutput = try await CLIRunner.fleet(["template", "render", "output.liquid"], in: dir)
        #expect(laxOutput.stdout == "xLiquid error: divided by 0z")

        let raised = try await CLIRunner.fleet(["template", "render", "assign.liquid", "--data", "data.json", "--raise-errors"], in: dir)
        #expect(raised.status == 65)
        #expect(raised.stdout.isEmpty)
        #expect(raised.errorLines.count == 1)
        #expect(raised.stderr.contains("wrong number of arguments"), "\(raised.stderr)")
        let raisedOutput = try await CLIRunner.fleet(["template", "render", "output.liquid", "--raise-errors"], in: dir)
        #expect(raisedOutput.status == 65)
        #expect(raisedOutput.stderr.contains("divided by 0"), "\(raisedOutput.stderr)")
        // Variables stay lax: an undefined one renders blank.
        let blank = try await CLIRunner.fleet(["template", "render", "missing.liquid", "--raise-errors"], in: dir)
        #expect(blank.status == 0, "\(blank.stderr)")
        #expect(blank.stdout == "[]")
    }

    @Test("render --strict: an undefined variable is one line naming it and exit 65; lax prints nothing for it")
    func strictVariables() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLIRunner.write(["typo.liquid": "Hello {{ user.nmae }}!\n", "data.json": Self.data], in: dir)
        let strict = try await CLIRunner.fleet(["template", "render", "typo.liquid", "--data", "data.json", "--strict"], in: dir)
        #expect(strict.status == 65)
        #expect(strict.stdout.isEmpty)
        #expect(strict.errorLines.count == 1, "\(strict.stderr)")
        #expect(strict.stderr.hasPrefix("fleet: "))
        #expect(strict.stderr.contains("typo.liquid"))
        #expect(strict.stderr.contains("user.nmae"))
        let variablesOnly = try await CLIRunner.fleet(["template", "render", "typo.liquid", "--data", "data.json", "--strict-variables"], in: dir)
        #expect(variablesOnly.status == 65)
        let lax = try await CLIRunner.fleet(["template", "render", "typo.liquid", "--data", "data.json"], in: dir)
        #expect(lax.status == 0)
        #expect(lax.stdout == "Hello !\n")
    }

    @Test("render --strict-filters: an unknown filter is an error; lax passes the value through")
    func strictFilters() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLIRunner.write(["f.liquid": "{{ 'x' | no_such_filter }}"], in: dir)
        let strict = try await CLIRunner.fleet(["template", "render", "f.liquid", "--strict-filters"], in: dir)
        #expect(strict.status == 65)
        #expect(strict.errorLines.count == 1, "\(strict.stderr)")
        #expect(strict.stderr.contains("no_such_filter"))
        let lax = try await CLIRunner.fleet(["template", "render", "f.liquid"], in: dir)
        #expect(lax.status == 0)
        #expect(lax.stdout == "x")
    }

    @Test("render: a syntax error is one line with the template, line and column and what was expected; exit 65")
    func syntaxError() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLIRunner.write(["broken.liquid": "Hello\n\n   {% for %}x{% endfor %}\n"], in: dir)
        let result = try await CLIRunner.fleet(["template", "render", "broken.liquid"], in: dir)
        #expect(result.status == 65)
        #expect(result.stdout.isEmpty)
        #expect(result.errorLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("Liquid syntax error (broken.liquid, line 3, column 4)"), "\(result.stderr)")
        #expect(result.stderr.contains("Valid syntax: for [item] in [collection]"))
        #expect(!result.stderr.contains("Stack") && !result.stderr.contains("Fatal error"))
    }

    @Test("render: abort_message prints its reason on stderr, nothing on stdout, and exits 3")
    func abortMessage() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let template = "Hi {{ user.name }}{% if user.opted_out %}{% abort_message 'opted out: ' | append: user.name %}{% endif %}"
        try CLIRunner.write(["mail.liquid": template, "data.json": Self.data, "in.json": #"{"user": {"name": "bo"}}"#], in: dir)
        let aborted = try await CLIRunner.fleet(["template", "render", "mail.liquid", "--data", "data.json"], in: dir)
        #expect(aborted.status == 3)
        #expect(aborted.stdout.isEmpty)
        #expect(aborted.errorLines.count == 1)
        #expect(aborted.stderr.contains("opted out: ada"), "\(aborted.stderr)")
        let sent = try await CLIRunner.fleet(["template", "render", "mail.liquid", "--data", "in.json"], in: dir)
        #expect(sent.status == 0)
        #expect(sent.stdout == "Hi bo")
    }

    @Test("render: data that is not a JSON object is one line and exit 65; a missing data file exit 66")
    func badData() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLIRunner.write(["t.liquid": "{{ a }}"], in: dir)
        for input in ["[1, 2]", "{\"a\": ", "not json"] {
            let result = try await CLIRunner.fleet(["template", "render", "t.liquid", "--data", "-"], in: dir, stdin: Data(input.utf8))
            #expect(result.status == 65, "\(input): \(result.stderr)")
            #expect(result.errorLines.count == 1)
        }
        let missing = try await CLIRunner.fleet(["template", "render", "t.liquid", "--data", "nope.json"], in: dir)
        #expect(missing.status == 66)
        #expect(missing.stderr.contains("nope.json"))
    }

    @Test("check: one good and two bad templates: both errors with file, line and column; summary; exit 65")
    func checkDirectory() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLIRunner.write([
            "tpl/good.liquid": "{% if a %}{{ a | upcase }}{% endif %}",
            "tpl/email/unclosed.liquid": "one\ntwo {% if a %}\nthree",
            "tpl/bad_for.liquid": "x\n\n   {% for %}{% endfor %}",
            "tpl/README.md": "{% not a template %}",
        ], in: dir)
        let result = try await CLIRunner.fleet(["template", "check", "tpl"], in: dir)
        #expect(result.status == 65)
        let lines = result.errorLines
        #expect(lines.count == 3, "\(result.stderr)")
        #expect(lines.contains { $0.hasPrefix("tpl/bad_for.liquid:3:4: Liquid syntax error: ") }, "\(result.stderr)")
        #expect(lines.contains { $0.hasPrefix("tpl/email/unclosed.liquid:2:5: Liquid syntax error: 'if' tag was never closed") },
                "\(result.stderr)")
        #expect(lines.last == "fleet: 3 templates, 2 errors")

        try FileManager.default.removeItem(at: dir.appendingPathComponent("tpl/bad_for.liquid"))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("tpl/email/unclosed.liquid"))
        let clean = try await CLIRunner.fleet(["template", "check"], in: dir, environment: ["FLEET_TEMPLATES": "tpl"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(clean.stdout == "1 template, 0 errors\n")
        let noDir = try await CLIRunner.fleet(["template", "check", "nosuchdir"], in: dir)
        #expect(noDir.status == 66)
    }

    @Test("check --strict: strict parsing finds errors lax parsing lets through")
    func checkStrict() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLIRunner.write(["t/lax_ok.liquid": "a\n{{ x | }}"], in: dir)
        let lax = try await CLIRunner.fleet(["template", "check", "t"], in: dir)
        #expect(lax.status == 0, "\(lax.stderr)")
        let strict = try await CLIRunner.fleet(["template", "check", "t", "--strict"], in: dir)
        #expect(strict.status == 65)
        #expect(strict.errorLines.first?.hasPrefix("t/lax_ok.liquid:2:") == true, "\(strict.stderr)")
    }
}

extension Dictionary {
    func mapKeys<K: Hashable>(_ transform: (Key) -> K) -> [K: Value] {
        Dictionary<K, Value>(uniqueKeysWithValues: map { (transform($0.key), $0.value) })
    }
}
