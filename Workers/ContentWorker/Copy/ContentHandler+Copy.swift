import Crypto
import FleetCore
import FleetMarketing
import FleetRuntime
import Foundation
import Liquid
import ProfileStore

/// The `copy` op: a prompt template rendered with the person's listed traits, sent to the OpenAI-compatible endpoint
/// as one effect of the job's journal (a redelivered job does not pay twice), the answer checked by the guardrails
/// (retried with another seed when it fails them), cached by prompt hash, stored as the person's block of the slot.
extension ContentHandler {
    /// What `copy` needs from a job.
    public struct CopyRequest: Sendable {
        public var profileID: String
        public var template: String
        public var slot: String
        public var vars: JSONValue
        public var ttlSeconds: Int?
    }

    func copy(_ request: CopyRequest, context: JobContext) async throws -> JobOutcome {
        let template = try copyCatalog.template(named: request.template)
        let meta = template.metadata
        let read = try await store.read { reader -> (ProfileView, [String: JSONValue])? in
            guard let view = try reader.view(id: request.profileID, segments: []) else { return nil }
            return (view, try reader.contentBlocks(profileID: view.id, now: ProfileStore.nowMillis()))
        }
        guard let (view, blocks) = read else { throw JobError.permanent("profile_not_found", "no profile with the job's profile_id") }

        // Data minimisation: the prompt sees the listed traits of this person, the job's vars and the person's blocks.
        var profile = LiquidObject()
        for trait in meta.traits { if let v = view.traits[trait], v != .null { profile[trait] = LiquidBridge.liquid(v) } }
        var env = LiquidObject()
        env["profile"] = .object(profile)
        env["vars"] = LiquidBridge.liquid(request.vars)
        var content = LiquidObject()
        for (slot, block) in blocks.sorted(by: { $0.key < $1.key }) { content[slot] = LiquidBridge.liquid(block) }
        env["content"] = .object(content)
        var options = LiquidRenderOptions(errorMode: .raise, missingVariables: .errorInOutput)
        options.fileSystem = copyCatalog.library
        func render(_ t: LiquidTemplate, file: String) throws -> String {
            do { return try t.render(env, options: options).trimmingCharacters(in: .whitespacesAndNewlines) } catch {
                throw JobError.permanent("template_error", template.located(error, file: file))
            }
        }
        func render(_ t: LiquidTemplate) throws -> String { try render(t, file: "fallback") }
        let system = try template.system.map { try render($0, file: "system") }
        let prompt = try render(template.prompt, file: "prompt")
        let own = [view.email, view.phone].compactMap { $0 }
        if let found = CopyGuardrails.foreignContactData(in: (system ?? "") + "\n" + prompt, own: own) {
            throw JobError.permanent("prompt_personal_data", "the rendered prompt holds \(found) that is not the person's own: copy prompts carry one person's data only")
        }

        var base = JSONObject()
        let ttl = request.ttlSeconds ?? meta.ttlSeconds
        base["slot"] = .string(request.slot)
        base["template"] = .string(template.name)
        base["output"] = .string(meta.output.rawValue)

        guard let llm = settings.llm, let client = chat else {
            return try await finish(base, answer: nil, fallbackReason: "not_configured", template: template, render: render,
                                    profileID: view.id, ttl: ttl, context: context)
        }
        let body = Self.requestBody(system: system, prompt: prompt, meta: meta, llm: llm, attempt: 0)
        let hash = SHA256.hash(data: body.serialized()).map { String(format: "%02x", $0) }.joined()
        base["prompt_hash"] = .string(hash)

        if meta.cacheTTLSeconds > 0, let cached = try await store.read({ try $0.cachedAnswer(promptHash: hash, now: ProfileStore.nowMillis()) }) {
            var out = base
            out["source"] = "cache"
            return try await finish(out, answer: cached, fallbackReason: nil, template: template, render: render, profileID: view.id, ttl: ttl, context: context)
        }

        let result: EffectResult
        do {
            result = try await context.effect("llm:\(hash.prefix(32))", ifUncertain: .redo) { _ in
                try await generate(client: client, system: system, prompt: prompt, meta: meta, llm: llm, context: context)
            }
        } catch let error as ContentError where ContentError.retryableCodes.contains(error.code) {
            // Unavailable: retried through the delay queues, unless the next attempt could not end before the deadline.
            if template.fallback != nil, let deadline = context.job.deadline,
               context.now.addingTimeInterval(Self.seconds(error.retryAfter ?? .seconds(1)) + Self.seconds(llm.timeout)) >= deadline {
                context.logger.warning("content: model unavailable before the deadline, fallback copy", metadata: ["content.error": "\(error.code)"])
                return try await finish(base, answer: nil, fallbackReason: error.code, template: template, render: render,
                                        profileID: view.id, ttl: ttl, context: context)
            }
            throw error
        }
        var out = base
        let answer: JSONValue
        switch result {
        case .performed(let v): answer = v; out["source"] = "model"
        case .alreadyDone(let v): answer = v; out["source"] = "model"; out["already_generated"] = true
        case .uncertain: throw JobError.retryable("llm_unavailable", "the model call's outcome is unknown")
        }
        if answer.objectValue?["status"]?.stringValue == "ok", meta.cacheTTLSeconds > 0, case .performed = result {
            try await store.cacheAnswer(promptHash: hash, profileID: view.id, answer: answer,
                                        expiresAt: Int64(context.now.addingTimeInterval(Double(meta.cacheTTLSeconds)).timeIntervalSince1970 * 1000))
        }
        return try await finish(out, answer: answer, fallbackReason: nil, template: template, render: render, profileID: view.id, ttl: ttl, context: context)
    }

    /// Up to `meta.attempts` model calls until one answer passes the guardrails: `{"status": "ok", "value", "usage",
    /// "calls", "latency_ms", "model"}`, else `{"status": "invalid", "problems", "usage", "calls", ...}` (the calls were
    /// made and paid: the journal records them either way).
    func generate(client: ChatClient, system: String?, prompt: String, meta: CopyTemplateMetadata, llm: ContentSettings.LLM,
                  context: JobContext) async throws -> JSONValue {
        var promptTokens = 0, completionTokens = 0, problems: [String] = [], model: String?
        let started = ContinuousClock.now
        for attempt in 0..<meta.attempts {
            let completion = try await client.complete(Self.requestBody(system: system, prompt: prompt, meta: meta, llm: llm, attempt: attempt))
            promptTokens += completion.promptTokens
            completionTokens += completion.completionTokens
            model = completion.model ?? model
            var out: JSONObject = ["usage": ["prompt_tokens": .int(Int64(promptTokens)), "completion_tokens": .int(Int64(completionTokens)),
                                             "total_tokens": .int(Int64(promptTokens + completionTokens))],
                                   "calls": .int(Int64(attempt + 1)), "latency_ms": .int((ContinuousClock.now - started).milliseconds)]
            out["model"] = model.map { .string(Self.shortModel($0)) } ?? .null
            switch CopyGuardrails.check(completion.content, metadata: meta) {
            case .success(let value):
                out["status"] = "ok"
                out["value"] = value
                return .object(out)
            case .failure(let refused):
                problems = refused.list
                context.logger.notice("content: the answer failed the guardrails", metadata: [
                    "content.attempt": "\(attempt + 1)", "content.problems": "\(refused.list.count)", "content.finish": "\(completion.finishReason ?? "-")"])
                if attempt + 1 == meta.attempts {
                    out["status"] = "invalid"
                    out["problems"] = .array(problems.map { .string($0) })
                    return .object(out)
                }
            }
        }
        return ["status": "invalid"]
    }

    /// The result and block of a `copy` job from `answer` (a model's or the cache's), or the fallback.
    func finish(_ base: JSONObject, answer: JSONValue?, fallbackReason: String?, template: CopyTemplate,
                render: (LiquidTemplate) throws -> String, profileID: String, ttl: Int, context: JobContext) async throws -> JobOutcome {
        var out = base
        var value: JSONValue?
        var reason = fallbackReason
        if let answer {
            let a = answer.objectValue ?? JSONObject()
            for key in ["usage", "calls", "latency_ms", "model"] { if let v = a[key] { out[key] = v } }
            if a["status"]?.stringValue == "ok" { value = a["value"] } else {
                reason = "guardrails"
                out["problems"] = a["problems"] ?? .array([])
            }
        }
        if value == nil {
            guard let fallback = template.fallback else {
                if reason == "not_configured" {
                    throw JobError.permanent("llm_not_configured", "FLEET_CONTENT_LLM_URL is not set and content/\(template.name) has no fallback")
                }
                throw JobError(code: "copy_invalid_output", message: "every answer failed the guardrails and content/\(template.name) has no fallback",
                               retryable: false, output: .object(out))
            }
            var fields = JSONObject()
            for (field, t) in fallback { fields[field] = .string(try render(t)) }
            value = template.metadata.output == .text ? fields["text"] : .object(fields)
            out["source"] = "fallback"
            out["fallback_reason"] = .string(reason ?? "unavailable")
        }
        switch value {
        case .string(let text)?: out["text"] = .string(text)
        case let v?: out["fields"] = v
        case nil: break
        }
        let expires = context.now.addingTimeInterval(Double(ttl))
        out["expires_at"] = .string(Timestamp.format(expires))
        try await store.saveContentBlock(profileID: profileID, slot: base["slot"]?.stringValue ?? template.name, block: .object(out), modelVersion: nil,
                                         expiresAt: Int64(expires.timeIntervalSince1970 * 1000))
        return .succeeded(output: .object(out))
    }

    /// The chat-completions request: deterministic for attempt 0 (the cache key); a guardrail retry changes the seed
    /// and samples (temperature at least 0.7) so that it can answer differently.
    static func requestBody(system: String?, prompt: String, meta: CopyTemplateMetadata, llm: ContentSettings.LLM, attempt: Int) -> JSONValue {
        var messages: [JSONValue] = []
        if let system, !system.isEmpty { messages.append(["role": "system", "content": .string(system)]) }
        messages.append(["role": "user", "content": .string(prompt)])
        var body: JSONObject = ["model": .string(meta.model ?? llm.model), "messages": .array(messages), "max_tokens": .int(Int64(meta.maxTokens)),
                                "temperature": .double(attempt == 0 ? meta.temperature : max(meta.temperature, 0.7)),
                                "seed": .int(Int64(meta.seed + attempt))]
        if meta.output == .json, let schema = meta.schema {
            switch llm.jsonMode {
            case .jsonObject: body["response_format"] = ["type": "json_object", "schema": schema.json]
            case .jsonSchema: body["response_format"] = ["type": "json_schema", "json_schema": ["name": "copy", "schema": schema.json, "strict": true]]
            case .prompt: break
            }
        }
        return .object(body)
    }

    /// A model path's file name (llama-cpp-python answers with the GGUF's path): no local paths in results.
    static func shortModel(_ model: String) -> String {
        model.hasPrefix("/") ? model.split(separator: "/").last.map(String.init) ?? model : model
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
