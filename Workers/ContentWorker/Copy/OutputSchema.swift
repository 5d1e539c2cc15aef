import FleetCore

/// The JSON-schema subset a `copy` template's structured output is checked against (`meta.json` `schema`): an
/// object whose `properties` are strings (`maxLength`, `minLength`), numbers, integers or booleans, with `required`
/// and `additionalProperties: false`. Hand-written: no JSON Schema library is among the packages we keep, and copy
/// needs these six keywords only; a template using another keyword is refused when it loads, not ignored.
public struct OutputSchema: Sendable, Hashable {
    public enum FieldType: String, Sendable, Hashable {
        case string, number, integer, boolean
    }

    public struct Property: Sendable, Hashable {
        public var type: FieldType
        public var maxLength: Int?
        public var minLength: Int?
    }

    public var properties: [(name: String, property: Property)]
    public var required: Set<String>
    public var additionalProperties: Bool
    /// The schema as written (sent to the model server as the response format's schema).
    public var json: JSONValue

    public static func == (a: OutputSchema, b: OutputSchema) -> Bool { a.json == b.json }
    public func hash(into hasher: inout Hasher) { hasher.combine(json.serialized()) }

    /// Parses `json`; throws a message naming the unsupported or wrong keyword.
    public init(_ json: JSONValue) throws(ContentError) {
        func bad(_ m: String) -> ContentError { ContentError("template_error", "schema: \(m)") }
        guard case .object(let o) = json else { throw bad("must be a JSON object") }
        let known: Set<String> = ["type", "properties", "required", "additionalProperties", "title", "description", "$schema"]
        if let k = o.keys.first(where: { !known.contains($0) }) { throw bad("keyword '\(k)' is not supported (type, properties, required, additionalProperties)") }
        guard o["type"]?.stringValue == "object" else { throw bad("\"type\" must be \"object\"") }
        guard case .object(let props)? = o["properties"], !props.isEmpty else { throw bad("\"properties\" must be a non-empty object") }
        var list: [(String, Property)] = []
        for (name, value) in props.sorted(by: { $0.0 < $1.0 }) {
            guard case .object(let p) = value, let t = p["type"]?.stringValue, let type = FieldType(rawValue: t) else {
                throw bad("property '\(name)' needs \"type\" string, number, integer or boolean")
            }
            let allowed: Set<String> = ["type", "maxLength", "minLength", "description", "title"]
            if let k = p.keys.first(where: { !allowed.contains($0) }) { throw bad("property '\(name)': keyword '\(k)' is not supported") }
            var property = Property(type: type)
            for (key, path) in [("maxLength", \Property.maxLength), ("minLength", \Property.minLength)] {
                guard let v = p[key] else { continue }
                guard type == .string, let n = v.intValue, n >= 0 else { throw bad("property '\(name)': \(key) must be an integer >= 0 on a string") }
                property[keyPath: path] = Int(n)
            }
            list.append((name, property))
        }
        properties = list
        var required = Set<String>()
        if let r = o["required"] {
            guard case .array(let names) = r, names.allSatisfy({ $0.stringValue != nil }) else { throw bad("\"required\" must be an array of names") }
            for n in names.compactMap(\.stringValue) {
                guard props[n] != nil else { throw bad("required '\(n)' is not a property") }
                required.insert(n)
            }
        }
        self.required = required
        additionalProperties = o["additionalProperties"]?.boolValue ?? true
        self.json = json
    }

    /// The problems of `value` against the schema (empty: valid). Messages name fields, never values.
    public func problems(_ value: JSONValue) -> [String] {
        guard case .object(let o) = value else { return ["the output is not a JSON object"] }
        var out: [String] = []
        for name in required.sorted() where o[name] == nil || o[name] == .null { out.append("'\(name)' is missing") }
        let names = Set(properties.map(\.name))
        if !additionalProperties {
            for k in o.keys.sorted() where !names.contains(k) { out.append("'\(k)' is not allowed") }
        }
        for (name, p) in properties {
            guard let v = o[name], v != .null else { continue }
            switch (p.type, v) {
            case (.string, .string(let s)):
                let n = s.count
                if let max = p.maxLength, n > max { out.append("'\(name)' is \(n) characters, at most \(max)") }
                if let min = p.minLength, n < min { out.append("'\(name)' is \(n) characters, at least \(min)") }
            case (.number, .int), (.number, .double), (.integer, .int), (.boolean, .bool): break
            default: out.append("'\(name)' must be a \(p.type.rawValue)")
            }
        }
        return out
    }
}
