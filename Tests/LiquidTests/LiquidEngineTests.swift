#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@testable import Liquid
import Testing

private func renderTemplate(_ source: String, _ env: [String: LiquidValue] = [:], options: LiquidRenderOptions = .init()) throws -> String {
    try LiquidTemplate(source).render(env, options: options)
}

private func error(_ body: () throws(LiquidError) -> Void) -> LiquidError? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

@Suite struct ParserErrorTests {
    @Test func syntaxErrorNamesTemplateLineAndColumn() {
        let e = error { () throws(LiquidError) in _ = try LiquidTemplate("Hello\n  x {% if %}y{% endif %}", name: "email/welcome") }
        #expect(e?.code == .syntax)
        #expect(e?.templateName == "email/welcome")
        #expect(e?.line == 2)
        #expect(e?.column == 5)
        #expect(e?.description.hasPrefix("Liquid syntax error (email/welcome, line 2, column 5)") == true)
    }

    @Test func unclosedBlockPointsAtItsOpeningTag() {
        let e = error { () throws(LiquidError) in _ = try LiquidTemplate("a\nb {% for x in y %}\n{{ x }}") }
        #expect(e?.code == .syntax)
        #expect(e?.message == "'for' tag was never closed")
        #expect(e?.line == 2)
        #expect(e?.column == 3)
    }

    @Test func unknownTagAndBadDelimiter() {
        #expect(error { () throws(LiquidError) in _ = try LiquidTemplate("{% nosuch %}") }?.message == "Unknown tag 'nosuch'")
        #expect(
            error { () throws(LiquidError) in _ = try LiquidTemplate("{% if x %}{% endfor %}") }?.message
                == "'endfor' is not a valid delimiter for if tags. use endif")
    }

    @Test func unterminatedOutputAndTag() {
        #expect(error { () throws(LiquidError) in _ = try LiquidTemplate("{{ x }") }?.message.contains("not properly terminated") == true)
        #expect(error { () throws(LiquidError) in _ = try LiquidTemplate("x {% if") }?.message.contains("not properly terminated") == true)
    }

    @Test func strictModeRejectsWhatLaxIgnores() throws {
        #expect(try renderTemplate("{{ foo bar }}", ["foo": "F"]) == "F")
        let e = error { () throws(LiquidError) in _ = try LiquidTemplate("{{ foo bar }}", options: .strict) }
        #expect(e?.code == .syntax)
        #expect(e?.line == 1)
        #expect(error { () throws(LiquidError) in _ = try LiquidTemplate("{% if a = b %}{% endif %}", options: .strict) }?.code == .syntax)
    }

    @Test func strictFiltersRejectUnknownFilterAtParseTime() throws {
        #expect(try renderTemplate("{{ 'a' | nosuch }}") == "a")
        let e = error { () throws(LiquidError) in _ = try LiquidTemplate("x\n{{ 'a' | nosuch }}", options: LiquidParseOptions(strictFilters: true)) }
        #expect(e?.code == .syntax)
        #expect(e?.message == "undefined filter nosuch")
        #expect(e?.line == 2)
    }

    @Test func nestingDepthIsBounded() {
        let deep = String(repeating: "{% if true %}", count: 150) + String(repeating: "{% endif %}", count: 150)
        #expect(error { () throws(LiquidError) in _ = try LiquidTemplate(deep) }?.message == "Nesting too deep")
        let brackets = "{{ " + String(repeating: "[", count: 5000) + "x" + String(repeating: "]", count: 5000) + " }}"
        #expect(throws: LiquidError.self) { _ = try LiquidTemplate(brackets, options: .strict) }
        _ = try? LiquidTemplate(brackets)  // lax: must not crash
        let liquid = "{% liquid " + String(repeating: "liquid ", count: 10_000) + "echo 1 %}"
        #expect(error { () throws(LiquidError) in _ = try LiquidTemplate(liquid) }?.message == "Nesting too deep")
    }

    @Test func hugeRangesDoNotOverflow() throws {
        #expect(try renderTemplate("{% assign r = (-5..9223372036854775807) %}{{ r.size }}") == "9223372036854775807")
        var options = LiquidRenderOptions()
        options.limits.maxLoopIterations = 10
        let e = error { () throws(LiquidError) in
            _ = try LiquidTemplate("{% for i in (-9223372036854775807..9223372036854775807) %}{% endfor %}").render(options: options)
        }
        #expect(e?.code == .loopLimitExceeded)
    }
}

@Suite struct RenderTests {
    @Test func variablesFiltersAndLoops() throws {
        let env: [String: LiquidValue] = ["items": [["n": "a"], ["n": "b"], ["n": "c"]]]
        #expect(
            try renderTemplate("{% for i in items %}{{ forloop.index }}{{ i.n }}{% unless forloop.last %},{% endunless %}{% endfor %}", env)
                == "1a,2b,3c")
        #expect(try renderTemplate("{{ items.size }} {{ items.first.n }} {{ items[-1].n }}", env) == "3 a c")
    }

    @Test func laxRenderErrorsAreInlineAndStrictOnesThrow() throws {
        #expect(try renderTemplate("a{% if '2' > 1 %}x{% endif %}b") == "aLiquid error: comparison of String with 1 failedb")
        let e = error { () throws(LiquidError) in _ = try LiquidTemplate("{% if '2' > 1 %}x{% endif %}").render(options: .init(errorMode: .raise)) }
        #expect(e?.code == .argument)
    }

    @Test func wholeTemplateIsSendableAndRendersConcurrently() async throws {
        let template = try LiquidTemplate("{% for i in (1..n) %}{{ i }}{% endfor %}")
        let results = await withTaskGroup(of: String.self) { group in
            for n in 1...32 {
                group.addTask { (try? template.render(["n": .int(n)])) ?? "error" }
            }
            var all: [String] = []
            for await r in group { all.append(r) }
            return all
        }
        #expect(results.count == 32)
        #expect(results.contains("12345"))
    }
}

@Suite struct LimitTests {
    @Test func outputSize() {
        var options = LiquidRenderOptions()
        options.limits.maxOutputBytes = 1000
        let e = error { () throws(LiquidError) in _ = try LiquidTemplate("{% for i in (1..1000) %}xxxxxxxxxx{% endfor %}").render(options: options) }
        #expect(e?.code == .outputLimitExceeded)
        // Assigned strings count too (no output needed to exhaust memory).
        let doubling = "{% assign s = 'x' %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}"
        #expect(error { () throws(LiquidError) in _ = try LiquidTemplate(doubling).render(options: options) }?.code == .outputLimitExceeded)
    }

    @Test func loopIterationsAcrossTheRender() throws {
        var options = LiquidRenderOptions()
        options.limits.maxLoopIterations = 100
        let t = "{% for i in (1..60) %}{% endfor %}{% for i in (1..60) %}{% endfor %}"
        #expect(error { () throws(LiquidError) in _ = try LiquidTemplate(t).render(options: options) }?.code == .loopLimitExceeded)
        options.limits.maxLoopIterations = 120
        #expect(try LiquidTemplate(t).render(options: options) == "")
    }

    @Test func renderDepthStopsRecursiveIncludes() {
        let fs = LiquidInMemoryFileSystem(["loop": "x{% include 'loop' %}", "r": "y{% render 'r' %}"])
        var options = LiquidRenderOptions(errorMode: .inline, fileSystem: fs)
        options.limits.maxRenderDepth = 5
        #expect(error { () throws(LiquidError) in _ = try LiquidTemplate("{% include 'loop' %}").render(options: options) }?.code == .depthLimitExceeded)
        #expect(error { () throws(LiquidError) in _ = try LiquidTemplate("{% render 'r' %}").render(options: options) }?.code == .depthLimitExceeded)
    }

    @Test func renderTime() {
        var options = LiquidRenderOptions()
        options.limits.maxRenderDuration = .zero
        let e = error { () throws(LiquidError) in _ = try LiquidTemplate("{% for i in (1..100000) %}{% endfor %}").render(options: options) }
        #expect(e?.code == .timeLimitExceeded)
    }
}

@Suite struct AbortMessageTests {
    @Test func abortCarriesTheReason() throws {
        let t = try LiquidTemplate("Hi {% if profile.unsubscribed %}{% abort_message 'unsubscribed: ' | append: profile.id %}{% endif %}there")
        #expect(try t.evaluate(["profile": ["unsubscribed": true, "id": "p1"]]) == .aborted(reason: "unsubscribed: p1"))
        #expect(try t.evaluate(["profile": ["id": "p1"]]) == .rendered("Hi there"))
        let e = error { () throws(LiquidError) in _ = try t.render(["profile": ["unsubscribed": true, "id": "p1"]]) }
        #expect(e?.code == .aborted)
        #expect(e?.message == "unsubscribed: p1")
    }

    @Test func abortIsNotSwallowedByLaxRendering() throws {
        let fs = LiquidInMemoryFileSystem(["part": "{% abort_message 'stop' %}"])
        let t = try LiquidTemplate("a{% for i in (1..3) %}{% include 'part' %}{% endfor %}")
        #expect(try t.evaluate(options: .init(errorMode: .inline, fileSystem: fs)) == .aborted(reason: "stop"))
    }
}

@Suite struct MissingVariableTests {
    let env: [String: LiquidValue] = ["profile": ["first_name": "Ada", "secret": "s3cr3t"]]

    @Test func blankByDefault() throws {
        #expect(try renderTemplate("[{{ profile.nickname }}][{{ nobody.x }}]", env) == "[][]")
    }

    @Test func errorPolicyNamesThePathButNoValue() {
        let options = LiquidRenderOptions(missingVariables: .error)
        let e = error { () throws(LiquidError) in _ = try LiquidTemplate("{{ profile.first_name }} {{ profile.nickname }}").render(env, options: options) }
        #expect(e?.code == .undefinedVariable)
        #expect(e?.message == "undefined variable profile.nickname")
        #expect(e?.message.contains("Ada") == false)
        // Ruby's strict_variables: conditions fail too.
        #expect(error { () throws(LiquidError) in _ = try LiquidTemplate("{% if profile.nickname %}{% endif %}").render(env, options: options) } != nil)
    }

    @Test func errorInOutputPolicyAllowsConditionsAndDefaults() throws {
        let options = LiquidRenderOptions(missingVariables: .errorInOutput)
        let t = try LiquidTemplate("{% if profile.nickname %}{{ profile.nickname }}{% else %}{{ profile.nickname | default: profile.first_name }}{% endif %}")
        #expect(try t.render(env, options: options) == "Ada")
        let e = error { () throws(LiquidError) in _ = try LiquidTemplate("Hi {{ profile.nickname }}").render(env, options: options) }
        #expect(e?.code == .undefinedVariable)
        #expect(e?.message == "undefined variable profile.nickname")
    }
}

@Suite struct JSONTests {
    @Test func parsesNestedValuesInOrder() throws {
        let v = try LiquidJSON.parse(#"{"b": [1, 2.5, -3e2, true, null], "a": "x\"\u00e9\ud83d\ude00", "c": {}}"#)
        guard case .object(let o) = v else {
            Issue.record("not an object")
            return
        }
        #expect(o.orderedKeys == ["b", "a", "c"])
        #expect(o["b"] == [1, 2.5, -300.0, true, nil])
        #expect(o["a"] == "x\"é😀")
        #expect(o["c"] == .object(LiquidObject()))
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "01x", "\"abc", "tru", "[1] 2"])
    func rejectsInvalidJSON(_ text: String) {
        #expect(throws: LiquidError.self) { try LiquidJSON.parse(text) }
    }

    @Test func boundsNesting() {
        #expect(throws: LiquidError.self) { try LiquidJSON.parse(String(repeating: "[", count: 100_000)) }
    }
}

@Suite struct TemplateLibraryTests {
    static func makeDirectory() -> String {
        var template = Array("/tmp/liquid-library-XXXXXX".utf8CString)
        let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        mkdir(path + "/email", 0o755)
        return path
    }

    static func write(_ path: String, _ text: String) {
        let f = fopen(path, "w")!
        fputs(text, f)
        fclose(f)
    }

    @Test func loadsPartialsAndSubdirectoriesAndReloadsChangedFiles() throws {
        let dir = Self.makeDirectory()
        Self.write(dir + "/email/welcome.liquid", "Welcome {% render 'email/footer', name: name %}")
        Self.write(dir + "/email/_footer.liquid", "bye {{ name }}")
        let library = LiquidTemplateLibrary(directory: dir, checkInterval: .zero)
        #expect(try library.render("email/welcome", ["name": "Ada"]) == "Welcome bye Ada")
        Self.write(dir + "/email/_footer.liquid", "ciao {{ name }}!")
        #expect(try library.render("email/welcome", ["name": "Ada"]) == "Welcome ciao Ada!")
        #expect(throws: LiquidError.self) { try library.template(named: "../etc/passwd") }
        #expect(throws: LiquidError.self) { try library.template(named: "email/missing") }
    }

    @Test func cachesWithinTheCheckInterval() throws {
        let dir = Self.makeDirectory()
        Self.write(dir + "/a.liquid", "one")
        let library = LiquidTemplateLibrary(directory: dir, checkInterval: .seconds(3600))
        #expect(try library.render("a") == "one")
        Self.write(dir + "/a.liquid", "two!")
        #expect(try library.render("a") == "one")
        library.removeAll()
        #expect(try library.render("a") == "two!")
    }
}
