import FleetRuntime
import Foundation

/// The content worker's configuration, from the environment (`FLEET_CONTENT_*`); ``settings`` declares each variable.
public struct ContentSettings: Sendable {
    /// Event names and their weights: an interaction's strength (a person's strongest event with an item counts).
    public var eventWeights: [String: Double]
    /// The weight of a purchase (an event with an amount).
    public var purchaseWeight: Double
    public var weights: Recommender.Weights
    public var halfLifeDays: Double
    /// The directory holding `content/<name>/` (the `copy` op's prompt templates).
    public var templatesDirectory: String
    /// The OpenAI-compatible endpoint of `copy` (nil: not configured; copy jobs use the template's fallback).
    public var llm: LLM?

    /// The model endpoint of the `copy` op.
    public struct LLM: Sendable, Hashable {
        /// The base URL before `/chat/completions`, e.g. `http://127.0.0.1:8080/v1`.
        public var url: String
        public var model: String
        /// The API key (bearer token), if the server wants one. Never logged.
        public var key: String?
        /// One request's time limit.
        public var timeout: Duration
        /// How structured output is asked for.
        public var jsonMode: JSONMode
        /// Extra trusted CAs (PEM file).
        public var caFile: String?

        public enum JSONMode: String, Sendable, Hashable {
            /// `response_format: {"type": "json_object", "schema": ...}` (llama.cpp, llama-cpp-python, vLLM).
            case jsonObject = "json_object"
            /// `response_format: {"type": "json_schema", "json_schema": {"name", "schema", "strict"}}` (OpenAI's API).
            case jsonSchema = "json_schema"
            /// No `response_format`: the prompt asks for JSON, the guardrail checks it.
            case prompt
        }

        public init(url: String, model: String = "local", key: String? = nil, timeout: Duration = .seconds(15),
                    jsonMode: JSONMode = .jsonObject, caFile: String? = nil) {
            self.url = url
            self.model = model
            self.key = key
            self.timeout = timeout
            self.jsonMode = jsonMode
            self.caFile = caFile
        }
    }

    public init(eventWeights: [String: Double] = ["rated": 1, "add_to_cart": 0.5, "product_viewed": 0.25], purchaseWeight: Double = 1,
                weights: Recommender.Weights = .hybrid, halfLifeDays: Double = 0,
                templatesDirectory: String = FileManager.default.currentDirectoryPath + "/Templates", llm: LLM? = nil) {
        self.eventWeights = eventWeights
        self.purchaseWeight = purchaseWeight
        self.weights = weights
        self.halfLifeDays = halfLifeDays
        self.templatesDirectory = templatesDirectory
        self.llm = llm
    }

    public static let settings: [Setting] = [
        Setting(environment: "FLEET_CONTENT_EVENTS", defaultValue: "`rated:1,add_to_cart:0.5,product_viewed:0.25`", scope: "kind content",
                summary: "The events the recommender learns from, `name:weight` comma-separated (an event whose `properties.items` name skus); purchases (events with an amount) always count, weight 1."),
        Setting(environment: "FLEET_CONTENT_HYBRID", defaultValue: "`0.5,0.3,0.2`", scope: "kind content",
                summary: "The hybrid's weights of item-item, content and popularity (tuned on MovieLens' validation split)."),
        Setting(environment: "FLEET_CONTENT_HALF_LIFE_DAYS", defaultValue: "`0` (no time decay)", scope: "kind content",
                summary: "Time decay of a person's interactions: weight × 0.5^(age / half-life), age counted from their newest."),
        Setting(environment: "FLEET_CONTENT_TEMPLATES", defaultValue: "the templates directory (`FLEET_TEMPLATES`, config `templates`), else `./Templates`",
                scope: "kind content", summary: "The directory holding `content/<name>/` (the `copy` op's prompt templates)."),
        Setting(environment: "FLEET_CONTENT_LLM_URL", defaultValue: "none (`copy` jobs get their template's fallback, else `dead` / `llm_not_configured`)", scope: "kind content",
                summary: "The OpenAI-compatible API's base URL, before `/chat/completions` (e.g. `http://127.0.0.1:8080/v1`; llama.cpp server, vLLM, Ollama's `/v1`, hosted APIs)."),
        Setting(environment: "FLEET_CONTENT_LLM_MODEL", defaultValue: "`local`", scope: "kind content",
                summary: "The `model` of each request (a template's `model` wins); local llama.cpp servers ignore it, hosted APIs need theirs."),
        Setting(environment: "FLEET_CONTENT_LLM_KEY_FILE", defaultValue: "none (no Authorization header)", scope: "kind content",
                summary: "A file holding the API key, sent as `Authorization: Bearer`. Read at start, never logged.", isSecret: true),
        Setting(environment: "FLEET_CONTENT_LLM_TIMEOUT", defaultValue: "`15`", scope: "kind content",
                summary: "Seconds one model request may take (1 to 600); past it the job is retried as `llm_timeout`."),
        Setting(environment: "FLEET_CONTENT_LLM_JSON_MODE", defaultValue: "`json_object`", scope: "kind content",
                summary: "How structured output is requested: `json_object` (with the schema: llama.cpp, vLLM), `json_schema` (OpenAI) or `prompt` (no `response_format`; the guardrail checks the answer)."),
        Setting(environment: "FLEET_CONTENT_LLM_CA_FILE", defaultValue: "the system trust store only", scope: "kind content",
                summary: "A PEM file of CA certificates trusted besides the system's (a private gateway)."),
    ]

    /// The settings of `environment`; a wrong value throws ``ContentError`` naming the variable.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                                       templatesFallback: String? = nil) throws(ContentError) -> ContentSettings {
        func get(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        var s = ContentSettings()
        s.templatesDirectory = get("FLEET_CONTENT_TEMPLATES") ?? templatesFallback ?? s.templatesDirectory
        if let url = get("FLEET_CONTENT_LLM_URL") {
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw ContentError("content_configuration", "FLEET_CONTENT_LLM_URL must be an http:// or https:// URL")
            }
            var llm = LLM(url: url, model: get("FLEET_CONTENT_LLM_MODEL") ?? "local")
            if let path = get("FLEET_CONTENT_LLM_KEY_FILE") {
                guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8),
                      !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                    throw ContentError("content_configuration", "FLEET_CONTENT_LLM_KEY_FILE is not a readable file holding a key")
                }
                llm.key = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            if let raw = get("FLEET_CONTENT_LLM_TIMEOUT") {
                guard let t = Int(raw), (1...600).contains(t) else {
                    throw ContentError("content_configuration", "FLEET_CONTENT_LLM_TIMEOUT must be an integer from 1 to 600")
                }
                llm.timeout = .seconds(t)
            }
            if let raw = get("FLEET_CONTENT_LLM_JSON_MODE") {
                guard let mode = LLM.JSONMode(rawValue: raw) else {
                    throw ContentError("content_configuration", "FLEET_CONTENT_LLM_JSON_MODE must be json_object, json_schema or prompt")
                }
                llm.jsonMode = mode
            }
            if let ca = get("FLEET_CONTENT_LLM_CA_FILE") {
                guard FileManager.default.isReadableFile(atPath: ca) else {
                    throw ContentError("content_configuration", "FLEET_CONTENT_LLM_CA_FILE is not a readable file")
                }
                llm.caFile = ca
            }
            s.llm = llm
        }
        if let raw = environment["FLEET_CONTENT_EVENTS"], !raw.isEmpty {
            var weights: [String: Double] = [:]
            for pair in raw.split(separator: ",") {
                let kv = pair.split(separator: ":")
                guard kv.count == 2, !kv[0].isEmpty, let w = Double(kv[1]), w > 0 else {
                    throw ContentError("content_configuration", "FLEET_CONTENT_EVENTS must be name:weight pairs, comma-separated (weights > 0)")
                }
                weights[String(kv[0])] = w
            }
            s.eventWeights = weights
        }
        if let raw = environment["FLEET_CONTENT_HYBRID"], !raw.isEmpty {
            let parts = raw.split(separator: ",").compactMap { Double($0) }
            guard parts.count == 3, parts.allSatisfy({ $0 >= 0 }), parts.contains(where: { $0 > 0 }) else {
                throw ContentError("content_configuration", "FLEET_CONTENT_HYBRID must be three weights >= 0 (item,content,popularity)")
            }
            s.weights = .init(item: parts[0], content: parts[1], popularity: parts[2])
        }
        if let raw = environment["FLEET_CONTENT_HALF_LIFE_DAYS"], !raw.isEmpty {
            guard let d = Double(raw), d >= 0 else { throw ContentError("content_configuration", "FLEET_CONTENT_HALF_LIFE_DAYS must be a number >= 0") }
            s.halfLifeDays = d
        }
        return s
    }
}
