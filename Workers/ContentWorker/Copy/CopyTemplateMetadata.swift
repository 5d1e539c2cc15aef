import FleetCore

/// A `copy` template's `meta.json` (Templates/content/<name>/meta.json); every key but `schema` (for `output: json`)
/// has a default. Templates/README.md documents each.
public struct CopyTemplateMetadata: Sendable, Hashable {
    public enum Output: String, Sendable, Hashable {
        /// One text (`text` in the block).
        case text
        /// A JSON object checked against `schema` (its fields in the block's `fields`).
        case json
    }

    /// The person's traits the prompt may read, as `profile.<trait>` (data minimisation: nothing else of the
    /// profile reaches the model). Default none.
    public var traits: [String] = []
    public var output: Output = .text
    public var schema: OutputSchema?
    /// The model's `max_tokens` (default 128).
    public var maxTokens: Int = 128
    /// Sampling temperature (default 0: the same prompt gives the same text on the local server).
    public var temperature: Double = 0
    /// The sampling seed sent with each request (default 42; a guardrail retry adds its attempt number).
    public var seed: Int = 42
    /// The longest text (`output: text`) or string field (`json`, unless the schema says less), in characters.
    public var maxLength: Int = 500
    /// Words (case-insensitive, whole words) the copy must not contain.
    public var bannedWords: [String] = []
    /// Model calls per job when an answer fails a guardrail (default 3).
    public var attempts: Int = 3
    /// How long an answer is reused for the same prompt (default 7 days; 0: never cached).
    public var cacheTTLSeconds: Int = 7 * 86_400
    /// How long the stored block serves templates (default 7 days).
    public var ttlSeconds: Int = 7 * 86_400
    /// The fallback copy when the model is unavailable past the job's deadline, or every answer failed the
    /// guardrails: a Liquid text (`output: text`) or an object of Liquid texts (`json`). Nil: no fallback.
    public var fallback: JSONValue?
    /// The model name sent (default `FLEET_CONTENT_LLM_MODEL`).
    public var model: String?

    public init() {}

    /// Parses `meta.json` of `template` (e.g. `content/subject-line`); an unknown key or a wrong value is
    /// `template_error` naming it.
    public init(json: JSONValue, template: String) throws(ContentError) {
        func bad(_ m: String) -> ContentError { ContentError("template_error", "\(template)/meta.json: \(m)") }
        guard case .object(let o) = json else { throw bad("must be a JSON object") }
        let known: Set<String> = ["traits", "output", "schema", "max_tokens", "temperature", "seed", "max_length", "banned_words",
                                  "attempts", "cache_ttl_seconds", "ttl_seconds", "fallback", "model", "description"]
        if let k = o.keys.first(where: { !known.contains($0) }) { throw bad("unknown key '\(k)'") }
        func strings(_ key: String) throws(ContentError) -> [String] {
            guard let v = o[key] else { return [] }
            guard case .array(let a) = v, a.allSatisfy({ !($0.stringValue ?? "").isEmpty }) else { throw bad("\"\(key)\" must be an array of strings") }
            return a.compactMap(\.stringValue)
        }
        func int(_ key: String, _ range: ClosedRange<Int>) throws(ContentError) -> Int? {
            guard let v = o[key] else { return nil }
            guard let n = v.intValue, range.contains(Int(n)) else { throw bad("\"\(key)\" must be an integer from \(range.lowerBound) to \(range.upperBound)") }
            return Int(n)
        }
        traits = try strings("traits")
        if let bad1 = traits.first(where: { t in !t.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F } }) {
            throw bad("trait '\(bad1)' must be a-z, 0-9 and _")
        }
        bannedWords = try strings("banned_words").map { $0.lowercased() }
        if let v = o["output"] {
            guard let s = v.stringValue, let out = Output(rawValue: s) else { throw bad("\"output\" must be \"text\" or \"json\"") }
            output = out
        }
        if let v = o["schema"] { schema = try OutputSchema(v) }
        if output == .json, schema == nil { throw bad("\"output\": \"json\" needs a \"schema\"") }
        if output == .text, schema != nil { throw bad("\"schema\" needs \"output\": \"json\"") }
        maxTokens = try int("max_tokens", 1...8192) ?? maxTokens
        seed = try int("seed", 0...Int(Int32.max)) ?? seed
        maxLength = try int("max_length", 1...100_000) ?? maxLength
        attempts = try int("attempts", 1...10) ?? attempts
        cacheTTLSeconds = try int("cache_ttl_seconds", 0...366 * 86_400) ?? cacheTTLSeconds
        ttlSeconds = try int("ttl_seconds", 1...366 * 86_400) ?? ttlSeconds
        if let v = o["temperature"] {
            switch v {
            case .int(let i) where (0...2).contains(i): temperature = Double(i)
            case .double(let d) where (0...2).contains(d): temperature = d
            default: throw bad("\"temperature\" must be a number from 0 to 2")
            }
        }
        if let v = o["model"] {
            guard let s = v.stringValue, !s.isEmpty else { throw bad("\"model\" must be a non-empty string") }
            model = s
        }
        if let v = o["fallback"] {
            switch (output, v) {
            case (.text, .string): fallback = v
            case (.json, .object(let f)):
                guard f.allSatisfy({ $0.1.stringValue != nil }) else { throw bad("\"fallback\" must be an object of strings") }
                if let missing = schema?.required.sorted().first(where: { f[$0] == nil }) {
                    throw bad("\"fallback\" lacks the required field '\(missing)'")
                }
                fallback = v
            default: throw bad(output == .text ? "\"fallback\" must be a string" : "\"fallback\" must be an object of strings")
            }
        }
    }
}
