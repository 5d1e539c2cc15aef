@testable import ContentWorker
import FleetCore
import FleetMarketing
import FleetRuntime
import FleetTestSupport
import Foundation
import Liquid
import Logging
import ProfileStore
import Testing

/// The `copy` op without a model: templates, schema, guardrails and bad input.
@Suite("Content worker: copy templates and guardrails")
struct CopyGuardrailTests {
    static let schema: JSONValue = [
        "type": "object",
        "properties": ["subject": ["type": "string", "maxLength": 20], "preheader": ["type": "string"]],
        "required": ["subject", "preheader"], "additionalProperties": false,
    ]

    @Test("the schema subset: required, maxLength, types, additionalProperties; unsupported keywords are refused")
    func schema() throws {
        let s = try OutputSchema(Self.schema)
        #expect(s.problems(["subject": "Hi", "preheader": "there"]).isEmpty)
        #expect(s.problems(["subject": "Hi"]) == ["'preheader' is missing"])
        #expect(s.problems(["subject": "An autumn sale for mugs", "preheader": "x"]) == ["'subject' is 23 characters, at most 20"])
        #expect(s.problems(["subject": 3, "preheader": "x", "extra": true]) == ["'extra' is not allowed", "'subject' must be a string"])
        #expect(s.problems(.array([])) == ["the output is not a JSON object"])
        #expect(throws: ContentError.self) { try OutputSchema(["type": "object", "properties": ["a": ["type": "string", "pattern": "x"]]]) }
        #expect(throws: ContentError.self) { try OutputSchema(["type": "array"]) }
    }

    @Test("answers: fenced JSON accepted; invalid JSON, too long, banned words and contact data refused, named by field")
    func answers() throws {
        var meta = CopyTemplateMetadata()
        meta.output = .json
        meta.schema = try OutputSchema(Self.schema)
        meta.bannedWords = ["free", "act now"]
        #expect(try CopyGuardrails.check("```json\n{\"subject\": \"Autumn mugs\", \"preheader\": \"New glazes\"}\n```", metadata: meta).get()
            == ["subject": "Autumn mugs", "preheader": "New glazes"])
        func problems(_ s: String) -> [String] {
            if case .failure(let p) = CopyGuardrails.check(s, metadata: meta) { return p.list }
            return []
        }
        #expect(problems("{\"subject\": \"Autumn\", ") == ["the answer is not JSON"])
        #expect(problems("{\"subject\": \"Mugs for FREE\", \"preheader\": \"x\"}") == ["'subject' uses a banned word"])
        #expect(problems("{\"subject\": \"Mugs\", \"preheader\": \"Act now, really\"}") == ["'preheader' uses a banned word"])
        #expect(problems("{\"subject\": \"Mugs\", \"preheader\": \"write to ann@example.com\"}") == ["'preheader' holds contact data"])
        meta.output = .text
        meta.schema = nil
        meta.maxLength = 10
        #expect(try CopyGuardrails.check("  Short.\n", metadata: meta).get() == "Short.")
        #expect(problems("Far too long a sentence") == ["'text' is 23 characters, at most 10"])
        #expect(problems("   ") == ["'text' is empty"])
    }

    @Test("contact data: another person's email or phone number is found, the person's own is not; dates and prices are not phones")
    func contactData() {
        #expect(CopyGuardrails.foreignContactData(in: "Write to ann@example.com.", own: []) == "an email address")
        #expect(CopyGuardrails.foreignContactData(in: "Write to ann@example.com.", own: ["Ann@example.com"]) == nil)
        #expect(CopyGuardrails.foreignContactData(in: "Call +49 170 1234567 now", own: []) == "a phone number")
        #expect(CopyGuardrails.foreignContactData(in: "Call +49 170 1234567 now", own: ["+491701234567"]) == nil)
        #expect(CopyGuardrails.foreignContactData(in: "On 2026-12-06, mugs at 12.50 EUR, order 4411", own: []) == nil)
        #expect(CopyGuardrails.foreignContactData(in: "Sale ends 2026-12-06 10:30 sharp", own: []) == nil)
    }

    /// A store with one person (`p1`, traits first_name and city; `p2` without city) and templates in a directory of
    /// the test's own.
    static func fixture(templates: [String: [String: String]]) async throws -> (ProfileStore, URL) {
        let dir = try TestEnvironment.temporaryDirectory()
        for (name, files) in templates {
            let t = dir.appendingPathComponent("Templates/content/\(name)")
            try FileManager.default.createDirectory(at: t, withIntermediateDirectories: true)
            for (file, text) in files { try text.write(to: t.appendingPathComponent(file), atomically: true, encoding: .utf8) }
        }
        let store = ProfileStore(path: dir.appendingPathComponent("fleet.sqlite").path)
        _ = try await store.apply([
            ProfileOperation(opID: "i1", timestampMillis: 1_000, body: .identify(profileID: "p1", traits: [
                "first_name": "Ann", "city": "Lyon", "email": "ann@example.com", "secret_note": "do not send"], identities: [])),
            ProfileOperation(opID: "i2", timestampMillis: 1_000, body: .identify(profileID: "p2", traits: ["first_name": "Bo"], identities: [])),
        ])
        return (store, dir)
    }

    static func run(_ handler: ContentHandler, _ job: JSONValue) async -> Result<JobOutcome, JobError> {
        let envelope = try! JobEnvelope.decode(job.serialized())
        let context = JobContext(job: envelope, logger: Logger(label: "fleet.test"))
        do {
            let parameters = try ContentParameters(job: envelope)
            return .success(try await handler.handle(parameters, context: context))
        } catch let e as JobParameterError {
            return .failure(JobError.permanent(JobError.invalidParameters, e.message))
        } catch {
            return .failure(JobError.converting(error))
        }
    }

    @Test("bad input: unknown template, a trait read but not listed, a listed trait the person lacks (located), another person's data in the prompt, no model and no fallback, missing data.template")
    func badInput() async throws {
        let (store, dir) = try await Self.fixture(templates: [
            "greedy": ["meta.json": #"{"traits": ["first_name"]}"#, "prompt.liquid": "Hi {{ profile.first_name }}\nfrom {{ profile.secret_note }}"],
            "city": ["meta.json": #"{"traits": ["first_name", "city"]}"#, "prompt.liquid": "Name: {{ profile.first_name }}\nCity: {{ profile.city }}"],
            "leaky": ["meta.json": #"{"fallback": "x"}"#, "prompt.liquid": "Also mention {{ vars.friend }}."],
        ])
        defer { store.close(); try? FileManager.default.removeItem(at: dir) }
        let handler = ContentHandler(store: store, settings: ContentSettings(templatesDirectory: dir.appendingPathComponent("Templates").path))
        func error(_ job: JSONValue) async -> JobError? {
            if case .failure(let e) = await Self.run(handler, job) { return e }
            return nil
        }
        let unknown = await error(["id": "j1", "kind": "content", "profile_id": "p1", "data": ["op": "copy", "template": "nope"]])
        #expect(unknown?.code == "template_not_found")
        let greedy = await error(["id": "j2", "kind": "content", "profile_id": "p1", "data": ["op": "copy", "template": "greedy"]])
        #expect(greedy?.code == "template_error" && greedy?.message.contains("prompt.liquid line 2: reads profile.secret_note") == true, "\(String(describing: greedy))")
        let lacking = await error(["id": "j3", "kind": "content", "profile_id": "p2", "data": ["op": "copy", "template": "city"]])
        #expect(lacking?.code == "template_error" && lacking?.message.contains("line 2") == true && lacking?.message.contains("profile.city") == true,
                "\(String(describing: lacking))")
        #expect(lacking?.message.contains("Bo") == false)
        let leaky = await error(["id": "j4", "kind": "content", "profile_id": "p1",
                                 "data": ["op": "copy", "template": "leaky", "vars": ["friend": "bo@example.org"]]])
        #expect(leaky?.code == "prompt_personal_data")
        let unconfigured = await error(["id": "j5", "kind": "content", "profile_id": "p1", "data": ["op": "copy", "template": "city"]])
        #expect(unconfigured?.code == "llm_not_configured")
        let missing = await error(["id": "j6", "kind": "content", "profile_id": "p1", "data": ["op": "copy"]])
        #expect(missing?.code == JobError.invalidParameters && missing?.message.contains("data.template") == true)
        // No model configured, but a fallback: the fallback is the copy, stored as the person's block.
        guard case .success(.succeeded(let out)) = await Self.run(handler, ["id": "j7", "kind": "content", "profile_id": "p1",
                                                                           "data": ["op": "copy", "template": "leaky", "slot": "intro", "vars": ["friend": "Bo"]]]) else {
            Issue.record("the fallback job did not succeed")
            return
        }
        #expect(out.objectValue?["source"] == "fallback" && out.objectValue?["fallback_reason"] == "not_configured" && out.objectValue?["text"] == "x")
        let blocks = try await store.read { try $0.contentBlocks(profileID: "p1", now: ProfileStore.nowMillis()) }
        #expect(blocks["intro"]?.objectValue?["text"] == "x")
    }

    @Test("a located template error names no value of the data (a comparison names the number's type, not the number)")
    func redactedErrors() throws {
        let t = try LiquidTemplate("{% if 'x' < profile.age %}y{% endif %}", name: "content/t/prompt")
        var profile = LiquidObject()
        profile["age"] = .int(4711)
        var env = LiquidObject()
        env["profile"] = .object(profile)
        do {
            _ = try t.render(env, options: LiquidRenderOptions(errorMode: .raise))
            Issue.record("comparing a string with a number should fail the render")
        } catch {
            let text = LiquidErrorText.located(error)
            #expect(error.message.contains("4711"), "the engine's own message is Ruby's")
            #expect(!text.contains("4711") && text.contains("comparison of String with a number failed"), "\(text)")
        }
    }

    @Test("the repository's sample copy templates load: traits listed, schema and fallback valid")
    func sampleTemplates() throws {
        let catalog = CopyTemplateCatalog(directory: TestEnvironment.repo.appendingPathComponent("Templates").path)
        let subject = try catalog.template(named: "subject-line")
        #expect(subject.metadata.output == .json && subject.metadata.schema?.required == ["subject", "preheader"])
        #expect(subject.fallback?.map(\.field).sorted() == ["preheader", "subject"])
        let intro = try catalog.template(named: "hero-intro")
        #expect(intro.metadata.output == .text && intro.fallback?.map(\.field) == ["text"])
    }
}
