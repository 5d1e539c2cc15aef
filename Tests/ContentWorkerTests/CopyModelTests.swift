@testable import ContentWorker
import FleetCore
import FleetRuntime
import FleetTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import ProfileStore
import ServiceLifecycle
import Testing

/// `copy` against a real model: SmolLM2-135M-Instruct served by llama-cpp-python's OpenAI-compatible server, behind
/// Ops/llm/fault_proxy.py (both started by Ops/scripts/test.sh). The proxy's counters show what reached the model;
/// its injections give the 429s and malformed answers. Serialized: the tests share the proxy's queue and log. Model
/// calls are few and short (temperature 0, a fixed seed: the same prompt gives the same text).
@Suite("Content worker: copy with a real local model", .serialized, .timeLimit(.minutes(5)))
struct CopyModelTests {
    /// The proxy: control requests and its log.
    struct Proxy {
        let base: String

        func post(_ path: String, _ body: JSONValue = .object(JSONObject())) async throws -> JSONValue {
            var request = URLRequest(url: URL(string: base + path)!)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(body.serialized())
            let (data, _) = try await URLSession.shared.data(for: request)
            return try JSONValue(parsing: [UInt8](data))
        }

        /// The chat-completion requests since the last reset: the action taken (`forward`, `fault`, `malformed`) and
        /// the request body.
        func chats() async throws -> [(action: String, body: JSONValue)] {
            let (data, _) = try await URLSession.shared.data(from: URL(string: base + "/_proxy/requests")!)
            let all = try JSONValue(parsing: [UInt8](data))
            let list = all.arrayValue ?? all.objectValue?["requests"]?.arrayValue ?? []
            return list.compactMap { r in
                guard let o = r.objectValue, o["path"]?.stringValue?.hasSuffix("/chat/completions") == true else { return nil }
                return (o["action"]?.stringValue ?? "", o["body"] ?? o["json"] ?? .null)
            }
        }
    }

    static func templates(_ dir: URL, attempts: Int = 5, cacheTTL: Int = 3600) throws -> String {
        let root = dir.appendingPathComponent("Templates")
        let t = root.appendingPathComponent("content/subject")
        try FileManager.default.createDirectory(at: t, withIntermediateDirectories: true)
        let meta: JSONValue = [
            "traits": ["first_name"], "output": "json", "max_tokens": 80, "attempts": .int(Int64(attempts)), "cache_ttl_seconds": .int(Int64(cacheTTL)),
            "schema": ["type": "object", "properties": ["subject": ["type": "string", "maxLength": 200], "preheader": ["type": "string", "maxLength": 300]],
                       "required": ["subject", "preheader"]],
            "banned_words": ["cash"],
            "fallback": ["subject": "{{ profile.first_name }}, your picks", "preheader": "Picked for you"],
        ]
        try String(decoding: meta.serialized(), as: UTF8.self).write(to: t.appendingPathComponent("meta.json"), atomically: true, encoding: .utf8)
        try "You write e-mail subject lines. Answer with JSON: {\"subject\": \"...\", \"preheader\": \"...\"}."
            .write(to: t.appendingPathComponent("system.liquid"), atomically: true, encoding: .utf8)
        try "Subject line and preheader for {{ profile.first_name }} about {{ vars.product | default: 'autumn mugs' }}."
            .write(to: t.appendingPathComponent("prompt.liquid"), atomically: true, encoding: .utf8)
        return root.path
    }

    /// Runs `jobs` through a worker on the memory queue (the real runtime: ledger, effects journal, retries) and
    /// returns the final result of each and the driver.
    static func run(_ settings: ContentSettings, store: ProfileStore, ledger: String, jobs: [JSONValue],
                    retry: RetryPolicy = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(300), maxDelay: .seconds(2))) async throws
        -> ([String: ResultEnvelope], MemoryQueueDriver) {
        let driver = MemoryQueueDriver()
        var logger = Logger(label: "fleet.test")
        logger.logLevel = .warning
        let worker = WorkerService(configuration: WorkerConfiguration(concurrency: 1, defaultKindSettings: KindSettings(retry: retry), ledgerPath: ledger),
                                   driver: driver, handlers: [ContentHandler(store: store, settings: settings)], logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: driver), .init(service: worker)],
                                                      gracefulShutdownSignals: [], cancellationSignals: [], logger: logger))
        var results: [String: ResultEnvelope] = [:]
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var pushes: [String: Int] = [:]
            for job in jobs {
                driver.push(job)
                let id = job.objectValue?["id"]?.stringValue ?? ""
                pushes[id, default: 0] += 1
                results[id] = await driver.finalResult(of: id)
                // A copy of a job pushed again: wait for its own final result too (answered from the ledger).
                let want = pushes[id] ?? 1
                await driver.waitFor { events in
                    events.filter { if case .result(let r) = $0 { return r.jobID == id && r.status.isFinal }; return false }.count >= want
                }
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        return (results, driver)
    }

    static func person(_ dir: URL) async throws -> ProfileStore {
        let store = ProfileStore(path: dir.appendingPathComponent("fleet.sqlite").path)
        _ = try await store.apply([ProfileOperation(opID: "i1", timestampMillis: 1_000, body: .identify(profileID: "p1", traits: [
            "first_name": "Ann", "email": "ann@example.com", "secret_note": "the door code is 4711"], identities: []))])
        return store
    }

    /// The proxy with its queue and log cleared, a directory of the test's own, and a store with person p1.
    struct Fixture {
        let proxy: Proxy
        let dir: URL
        let store: ProfileStore

        init() async throws {
            proxy = Proxy(base: try TestEnvironment.llmProxyURL)
            _ = try await proxy.post("/_proxy/reset")
            dir = try TestEnvironment.temporaryDirectory()
            store = try await CopyModelTests.person(dir)
        }

        func close() {
            store.close()
            try? FileManager.default.removeItem(at: dir)
        }
    }

    @Test("real text comes back with usage; the same prompt again is answered by the cache without a model call; only the listed trait reaches the model")
    func realTextAndCache() async throws {
        let fixture = try await Fixture()
        defer { fixture.close() }
        let (proxy, dir, store) = (fixture.proxy, fixture.dir, fixture.store)
        let settings = ContentSettings(templatesDirectory: TestEnvironment.repo.appendingPathComponent("Templates").path,
                                       llm: .init(url: proxy.base + "/v1"))
        let copy: JSONValue = ["kind": "content", "profile_id": "p1", "data": ["op": "copy", "template": "hero-intro", "slot": "intro"]]
        var first = copy.objectValue!, second = copy.objectValue!, subject = copy.objectValue!
        first["id"] = "c1"
        second["id"] = "c2"
        subject["id"] = "c3"
        subject["data"] = ["op": "copy", "template": "subject-line"]
        let (results, _) = try await Self.run(settings, store: store, ledger: dir.appendingPathComponent("fleet.sqlite").path,
                                              jobs: [.object(first), .object(second), .object(subject)])
        let a = results["c1"]?.output.objectValue, b = results["c2"]?.output.objectValue, c = results["c3"]?.output.objectValue
        #expect(results["c1"]?.status == .succeeded && a?["source"] == "model", "\(String(describing: results["c1"]))")
        let text = a?["text"]?.stringValue ?? ""
        #expect(!text.isEmpty && text.count <= 240)
        #expect((a?["usage"]?.objectValue?["completion_tokens"]?.intValue ?? 0) > 0 && (a?["usage"]?.objectValue?["prompt_tokens"]?.intValue ?? 0) > 0)
        #expect(a?["model"]?.stringValue?.hasPrefix("/") == false, "no local paths in results")
        #expect(results["c2"]?.status == .succeeded && b?["source"] == "cache" && b?["text"]?.stringValue == text)
        // The structured template: a JSON object valid against its schema, from the model or (when every answer
        // failed the guardrails) its fallback; either way the subject and preheader are there.
        #expect(results["c3"]?.status == .succeeded, "\(String(describing: results["c3"]))")
        let fields = c?["fields"]?.objectValue
        #expect(!(fields?["subject"]?.stringValue ?? "").isEmpty && fields?["preheader"]?.stringValue != nil)
        let chats = try await proxy.chats()
        #expect(chats.count == Int((a?["calls"]?.intValue ?? 0) + (c?["calls"]?.intValue ?? 0)), "c1's calls, none for c2 (cache), c3's own")
        let sent = chats.map { String(decoding: $0.body.serialized(), as: UTF8.self) }.joined()
        #expect(sent.contains("Ann") && !sent.contains("4711") && !sent.contains("ann@example.com"), "only first_name is listed")
        #expect(chats.last?.body.objectValue?["response_format"]?.objectValue?["type"] == "json_object")
        let blocks = try await store.read { try $0.contentBlocks(profileID: "p1", now: ProfileStore.nowMillis()) }
        #expect(blocks["intro"]?.objectValue?["text"]?.stringValue == text && blocks["subject_line"] != nil)
    }

    @Test("the guardrails reject malformed output (cut-off JSON, a banned word) and ask again; when every answer fails, the fallback")
    func guardrailRetries() async throws {
        let fixture = try await Fixture()
        defer { fixture.close() }
        let (proxy, dir, store) = (fixture.proxy, fixture.dir, fixture.store)
        let settings = ContentSettings(templatesDirectory: try Self.templates(dir), llm: .init(url: proxy.base + "/v1"))
        _ = try await proxy.post("/_proxy/malformed", ["count": 1, "content": "{\"subject\": \"Autumn\", "])
        _ = try await proxy.post("/_proxy/malformed", ["count": 1, "content": "{\"subject\": \"Win cash now\", \"preheader\": \"x\"}"])
        let (results, _) = try await Self.run(settings, store: store, ledger: dir.appendingPathComponent("fleet.sqlite").path, jobs: [
            ["id": "g1", "kind": "content", "profile_id": "p1", "data": ["op": "copy", "template": "subject"]],
        ])
        let out = results["g1"]?.output.objectValue
        let chats = try await proxy.chats()
        #expect(chats.prefix(2).map(\.action) == ["malformed", "malformed"], "\(chats.map(\.action))")
        #expect(chats.count >= 3 && out?["calls"]?.intValue == Int64(chats.count))
        #expect(chats.dropFirst().allSatisfy { ($0.body.objectValue?["seed"]?.intValue ?? 0) != chats[0].body.objectValue?["seed"]?.intValue },
                "each retry asks with another seed")
        #expect(results["g1"]?.status == .succeeded && out?["source"] == "model", "\(String(describing: results["g1"]))")

        _ = try await proxy.post("/_proxy/reset")
        _ = try await proxy.post("/_proxy/malformed", ["count": 5, "content": "not JSON at all"])
        let (again, _) = try await Self.run(settings, store: store, ledger: dir.appendingPathComponent("fleet.sqlite").path, jobs: [
            ["id": "g2", "kind": "content", "profile_id": "p1", "data": ["op": "copy", "template": "subject", "vars": ["product": "teapots"]]],
        ])
        let fell = again["g2"]?.output.objectValue
        #expect(again["g2"]?.status == .succeeded && fell?["source"] == "fallback" && fell?["fallback_reason"] == "guardrails")
        #expect(fell?["fields"] == ["subject": "Ann, your picks", "preheader": "Picked for you"] && fell?["calls"] == 5)
        #expect(fell?["problems"]?.arrayValue?.contains("the answer is not JSON") == true)
        #expect(try await proxy.chats().map(\.action) == Array(repeating: "malformed", count: 5))
    }

    @Test("a 429 with Retry-After is retried through the delay queue after at least that long; a redelivered finished job calls no model")
    func throttledThenRedelivered() async throws {
        let fixture = try await Fixture()
        defer { fixture.close() }
        let (proxy, dir, store) = (fixture.proxy, fixture.dir, fixture.store)
        let settings = ContentSettings(templatesDirectory: try Self.templates(dir, cacheTTL: 0), llm: .init(url: proxy.base + "/v1"))
        _ = try await proxy.post("/_proxy/faults", ["status": 429, "count": 1, "retry_after": 2])
        let job: JSONValue = ["id": "t1", "kind": "content", "profile_id": "p1", "data": ["op": "copy", "template": "subject", "vars": ["product": "kettles"]]]
        let (results, driver) = try await Self.run(settings, store: store, ledger: dir.appendingPathComponent("fleet.sqlite").path, jobs: [job, job])
        #expect(results["t1"]?.status == .succeeded && results["t1"]?.attempt == 2, "\(String(describing: results["t1"]))")
        let delays = driver.events.compactMap { e -> Duration? in if case .delayed(_, _, let d) = e { return d }; return nil }
        #expect(delays.count == 1 && (delays.first ?? .zero) >= .seconds(2), "\(delays)")
        let chats = try await proxy.chats()
        #expect(chats.first?.action.hasPrefix("fault") == true && chats.count == 1 + Int(results["t1"]?.output.objectValue?["calls"]?.intValue ?? 0),
                "the 429, then the answered attempt; the redelivered copy called nothing: \(chats.map(\.action))")
    }

    @Test("a call completed before the job failed is not paid again: attempt 1's answer (refused by the guardrails) is replayed from the journal after a 503 failed the job, and only the missing call is made")
    func paidCallsReplayed() async throws {
        let fixture = try await Fixture()
        defer { fixture.close() }
        let (proxy, dir, store) = (fixture.proxy, fixture.dir, fixture.store)
        let settings = ContentSettings(templatesDirectory: try Self.templates(dir, cacheTTL: 0), llm: .init(url: proxy.base + "/v1"))
        _ = try await proxy.post("/_proxy/malformed", ["count": 1, "content": "not JSON"])
        _ = try await proxy.post("/_proxy/faults", ["status": 503, "count": 1, "retry_after": 1, "after": 1])
        let (results, _) = try await Self.run(settings, store: store, ledger: dir.appendingPathComponent("fleet.sqlite").path, jobs: [
            ["id": "r1", "kind": "content", "profile_id": "p1", "data": ["op": "copy", "template": "subject", "vars": ["product": "scarves"]]],
        ])
        let out = results["r1"]?.output.objectValue
        #expect(results["r1"]?.status == .succeeded && results["r1"]?.attempt == 2, "\(String(describing: results["r1"]))")
        #expect(out?["already_generated"] == true && (out?["calls"]?.intValue ?? 0) >= 2)
        let actions = try await proxy.chats().map(\.action)
        #expect(actions.count == Int(out?["calls"]?.intValue ?? 0) + 1 && actions.first == "malformed" && actions.dropFirst().first?.hasPrefix("fault") == true,
                "attempt 1 of the job: the malformed answer, then the 503; attempt 2: no second call for llm:1: \(actions)")
    }

    @Test("a stopped model server: the job is retried until the next attempt could not end before its deadline, then gets the fallback; without a deadline, its last attempt gets it; outside a worker it stays retryable")
    func stoppedServerFallback() async throws {
        let dir = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try await Self.person(dir)
        defer { store.close() }
        let port = try TestEnvironment.freeLoopbackPort()
        let settings = ContentSettings(templatesDirectory: try Self.templates(dir), llm: .init(url: "http://127.0.0.1:\(port)/v1", timeout: .seconds(2)))
        // 12 s: room for at least one retry even when a busy machine slows the first refused attempt (2 s each at most).
        let deadline = Timestamp.format(Date().addingTimeInterval(12))
        let (results, driver) = try await Self.run(settings, store: store, ledger: dir.appendingPathComponent("fleet.sqlite").path, jobs: [
            ["id": "s1", "kind": "content", "profile_id": "p1", "deadline": .string(deadline), "data": ["op": "copy", "template": "subject"]],
        ], retry: RetryPolicy(maxAttempts: 50, baseDelay: .milliseconds(300), maxDelay: .seconds(1)))
        let out = results["s1"]?.output.objectValue
        // A refused connection is retried by the HTTP client's pool until the request's time limit: either code.
        #expect(results["s1"]?.status == .succeeded && out?["source"] == "fallback"
                && ["llm_unavailable", "llm_timeout"].contains(out?["fallback_reason"]?.stringValue ?? ""),
                "\(String(describing: results["s1"]))")
        #expect(out?["fields"]?.objectValue?["subject"] == "Ann, your picks")
        #expect((results["s1"]?.attempt ?? 0) >= 2 && driver.events.contains { if case .delayed = $0 { return true }; return false })

        // No deadline: retried while the runtime would retry it; its last attempt gets the fallback.
        let (last, _) = try await Self.run(settings, store: store, ledger: dir.appendingPathComponent("fleet.sqlite").path, jobs: [
            ["id": "s3", "kind": "content", "profile_id": "p1", "data": ["op": "copy", "template": "subject"]],
        ], retry: RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(100), maxDelay: .milliseconds(200)))
        #expect(last["s3"]?.status == .succeeded && last["s3"]?.attempt == 2 && last["s3"]?.output.objectValue?["source"] == "fallback",
                "\(String(describing: last["s3"]))")

        let handler = ContentHandler(store: store, settings: settings)
        let job: JSONValue = ["id": "s2", "kind": "content", "profile_id": "p1", "data": ["op": "copy", "template": "subject"]]
        let envelope = try JobEnvelope.decode(job.serialized())
        do {
            _ = try await handler.handle(try ContentParameters(job: envelope), context: JobContext(job: envelope, logger: Logger(label: "fleet.test")))
            Issue.record("a stopped server without a deadline should fail the attempt")
        } catch {
            let e = JobError.converting(error)
            #expect(["llm_unavailable", "llm_timeout"].contains(e.code) && e.retryable)
        }
    }
}
