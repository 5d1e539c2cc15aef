import FleetBackoff
import FleetCore
import FleetMarketing
import FleetRuntime
import Foundation
import Liquid
import ProfileStore

/// The `copy` op: a prompt template rendered with the person's listed traits, sent to the OpenAI-compatible endpoint
/// (each call an effect of the job's journal: a redelivered job does not pay twice for a call it completed), the
/// answer checked by the guardrails (asked again with another seed when it fails them), cached by request hash,
/// stored as the person's block of the slot.
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
        func done(_ out: JSONObject, _ value: JSONValue?, fallbackReason: String? = nil) async throws -> JobOutcome {
            try await finish(out, value: value, fallbackReason: fallbackReason, template: template, render: render, profileID: view.id,
                             ttl: ttl, context: context)
        }
        base["slot"] = .string(request.slot)
        base["template"] = .string(template.name)
        base["output"] = .string(meta.output.rawValue)

        guard let llm = settings.llm, let client = chat else {
            return try await done(base, nil, fallbackReason: "not_configured")
        }
        // The cache key: the endpoint, the first request and the guardrails (an edited banned-word list or limit is a
        // new key, so a cached answer always passed the template's current checks).
        let body = Self.requestBody(system: system, prompt: prompt, meta: meta, llm: llm, attempt: 0)
        var keyed: JSONObject = ["url": .string(llm.url), "request": body, "banned_words": .array(meta.bannedWords.map { .string($0) }),
                                 "max_length": .int(Int64(meta.maxLength)), "attempts": .int(Int64(meta.attempts))]
        keyed["schema"] = meta.schema?.json ?? .null
        let hash = Digests.sha256Hex(String(decoding: JSONValue.object(keyed).serialized(), as: UTF8.self))
        base["prompt_hash"] = .string(hash)

        if meta.cacheTTLSeconds > 0, let cached = try await store.read({ try $0.cachedAnswer(promptHash: hash, now: ProfileStore.nowMillis()) }),
           let value = cached.objectValue?["value"] {
            var out = base
            out["source"] = "cache"
            out["model"] = cached.objectValue?["model"] ?? .null
            return try await done(out, value)
        }

        let generated: Generated
        do {
            generated = try await generate(client: client, system: system, prompt: prompt, meta: meta, llm: llm, context: context)
        } catch let error as ContentError where ContentError.retryableCodes.contains(error.code) {
            // Unavailable: retried through the delay queues, unless the runtime would not run it again (its last attempt)
            // or the next attempt could not end before the deadline (the longest backoff, then one request).
            let next = context.retryDelay(after: error.jobError)
            // Twice the delay: the broker's delay tiers can hold a retry up to twice what was asked.
            let tooLate = context.job.deadline.map { deadline in
                next.map { context.now.addingTimeInterval(($0 * 2 + llm.timeout).seconds) >= deadline } ?? true
            } ?? (next == nil)
            if template.fallback != nil, tooLate {
                context.logger.warning("content: model unavailable before the deadline, fallback copy", metadata: ["content.error": "\(error.code)"])
                return try await done(base, nil, fallbackReason: error.code)
            }
            throw error
        }
        var out = base
        for (k, v) in generated.report { out[k] = v }
        out["source"] = "model"
        if generated.replayed { out["already_generated"] = true }
        guard let value = generated.value else {
            out["problems"] = .array(generated.problems.map { .string($0) })
            return try await done(out, nil, fallbackReason: "guardrails")
        }
        if meta.cacheTTLSeconds > 0 {
            var cached: JSONObject = ["value": value]
            cached["model"] = out["model"] ?? .null
            try await store.cacheAnswer(promptHash: hash, profileID: view.id, answer: .object(cached),
                                        expiresAt: Int64(context.now.addingTimeInterval(Double(meta.cacheTTLSeconds)).timeIntervalSince1970 * 1000))
        }
        return try await done(out, value)
    }

    /// What the model calls of a job gave.
    struct Generated: Sendable {
        /// The answer that passed the guardrails (nil: none did).
        var value: JSONValue?
        /// The last answer's problems, when none passed.
        var problems: [String] = []
        /// `usage`, `calls`, `latency_ms`, `model` for the result.
        var report = JSONObject()
        /// Some call was answered from the journal (an earlier delivery of the job made it).
        var replayed = false
    }

    /// Up to `meta.attempts` model calls until an answer passes the guardrails. Each call is an effect of the job's
    /// journal (`llm:1`, `llm:2`, ...) recording the raw answer: a redelivered job replays the calls an earlier delivery
    /// completed (paid once) and goes on from the first it did not; a call whose answer was lost is made again.
    func generate(client: ChatClient, system: String?, prompt: String, meta: CopyTemplateMetadata, llm: ContentSettings.LLM,
                  context: JobContext) async throws -> Generated {
        var promptTokens: Int64 = 0, completionTokens: Int64 = 0, model: String?
        var generated = Generated()
        let started = ContinuousClock.now
        for attempt in 0..<meta.attempts {
            let body = Self.requestBody(system: system, prompt: prompt, meta: meta, llm: llm, attempt: attempt)
            let effect = try await context.effect("llm:\(attempt + 1)", ifUncertain: .redo, durable: true) { _ in
                let c = try await client.complete(body)
                var answer: JSONObject = ["content": .string(c.content), "prompt_tokens": .int(Int64(c.promptTokens)),
                                          "completion_tokens": .int(Int64(c.completionTokens))]
                answer["model"] = c.model.map { .string(Self.shortModel($0)) } ?? .null
                answer["finish_reason"] = c.finishReason.map { .string($0) } ?? .null
                return .object(answer)
            }
            let answer: JSONObject
            switch effect {
            case .performed(let v): answer = v.objectValue ?? JSONObject()
            case .alreadyDone(let v): answer = v.objectValue ?? JSONObject(); generated.replayed = true
            case .uncertain:
                // Another run of the same job id (published twice) holds this call right now: try again later.
                throw JobError.retryable("llm_unavailable", "another run of this job is making its model call \(attempt + 1)")
            }
            promptTokens += answer["prompt_tokens"]?.intValue ?? 0
            completionTokens += answer["completion_tokens"]?.intValue ?? 0
            model = answer["model"]?.stringValue ?? model
            generated.report = ["usage": ["prompt_tokens": .int(promptTokens), "completion_tokens": .int(completionTokens),
                                          "total_tokens": .int(promptTokens + completionTokens)],
                                "calls": .int(Int64(attempt + 1)), "latency_ms": .int((ContinuousClock.now - started).milliseconds)]
            generated.report["model"] = model.map { .string($0) } ?? .null
            switch CopyGuardrails.check(answer["content"]?.stringValue ?? "", metadata: meta) {
            case .success(let value):
                generated.value = value
                return generated
            case .failure(let refused):
                generated.problems = refused.list
                context.logger.notice("content: the answer failed the guardrails", metadata: [
                    "content.attempt": "\(attempt + 1)", "content.problems": "\(refused.list.count)",
                    "content.finish": "\(answer["finish_reason"]?.stringValue ?? "-")"])
            }
        }
        return generated
    }

    /// The result and block of a `copy` job from `value` (the model's or the cache's), or else the fallback.
    func finish(_ base: JSONObject, value: JSONValue?, fallbackReason: String?, template: CopyTemplate,
                render: (LiquidTemplate) throws -> String, profileID: String, ttl: Int, context: JobContext) async throws -> JobOutcome {
        var out = base
        var value = value
        if value == nil {
            guard let fallback = template.fallback else {
                if fallbackReason == "not_configured" {
                    throw JobError.permanent("llm_not_configured", "FLEET_CONTENT_LLM_URL is not set and content/\(template.name) has no fallback")
                }
                throw JobError(code: "copy_invalid_output", message: "every answer failed the guardrails and content/\(template.name) has no fallback",
                               retryable: false, output: .object(out))
            }
            var fields = JSONObject()
            for (field, t) in fallback { fields[field] = .string(try render(t)) }
            value = template.metadata.output == .text ? fields["text"] : .object(fields)
            out["source"] = "fallback"
            out["fallback_reason"] = .string(fallbackReason ?? "unavailable")
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
}
