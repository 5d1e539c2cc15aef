/// A JSON value, parsed without Foundation or `Any`: jobs' `data`, handlers' `output`, template contexts.
///
/// Integers and floating-point numbers stay apart (`1` is `.int(1)`, `1.0` is `.double(1.0)`), as Liquid's
/// Ruby number semantics need. Objects keep their key order.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// Parses UTF-8 JSON text (I-JSON: an object holding a key twice is refused). Throws ``JSONParseError``
    /// with the byte offset of the problem.
    public init(parsing bytes: some Collection<UInt8>) throws(JSONParseError) {
        self = try JSONParser<JSONValue.Builder>.parse(bytes)
    }

    /// Parses UTF-8 JSON text held in an array (the common case: message bodies; specialized here, not generic).
    public init(parsing bytes: [UInt8]) throws(JSONParseError) {
        self = try bytes.withUnsafeBufferPointer { buffer throws(JSONParseError) in
            try JSONParser<JSONValue.Builder>.parse(buffer: buffer)
        }
    }

    /// Parses a string of JSON text.
    public init(parsing text: String) throws(JSONParseError) {
        self = try JSONParser<JSONValue.Builder>.parse(Array(text.utf8))
    }

    /// Looks a key up when this is an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The value as an integer: ints, and doubles that are whole numbers.
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.2e18: return Int64(d)
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var isNull: Bool { self == .null }

    /// The JSON type's name, for error messages ("string", "object", ...).
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int, .double: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// Compact UTF-8 JSON text.
    public func serialized() -> [UInt8] {
        var writer = JSONWriter()
        writer.write(self)
        return writer.bytes
    }

    /// Compact JSON text as a string.
    public var jsonString: String { String(decoding: serialized(), as: UTF8.self) }

    /// Indented JSON text (two spaces), for files people read and diff.
    public func prettyPrinted(indent: String = "") -> String {
        let inner = indent + "  "
        switch self {
        case .array(let a) where !a.isEmpty:
            return "[\n" + a.map { inner + $0.prettyPrinted(indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object(let o) where !o.isEmpty:
            let members = o.map { key, value in
                inner + JSONValue.string(key).jsonString + ": " + value.prettyPrinted(indent: inner)
            }
            return "{\n" + members.joined(separator: ",\n") + "\n\(indent)}"
        default:
            return jsonString
        }
    }
}

/// A JSON object: ordered keys and values; lookups scan (objects in jobs are small) or use an index
/// built for large objects.
public struct JSONObject: Sendable, Hashable, Sequence {
    public private(set) var keys: [String] = []
    public private(set) var values: [JSONValue] = []

    public init() {}

    public init(_ pairs: KeyValuePairs<String, JSONValue>) {
        for (k, v) in pairs { self[k] = v }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public subscript(key: String) -> JSONValue? {
        get {
            if let i = keys.firstIndex(of: key) { return values[i] }
            return nil
        }
        set {
            if let i = keys.firstIndex(of: key) {
                if let newValue { values[i] = newValue } else { keys.remove(at: i); values.remove(at: i) }
            } else if let newValue {
                keys.append(key)
                values.append(newValue)
            }
        }
    }

    /// Appends without checking for a duplicate key (the parser's path: it refuses duplicates itself).
    mutating func appendUnchecked(_ key: String, _ value: JSONValue) {
        keys.append(key)
        values.append(value)
    }

    public func makeIterator() -> Zip2Sequence<[String], [JSONValue]>.Iterator {
        zip(keys, values).makeIterator()
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByNilLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        for (k, v) in elements { object[k] = v }
        self = .object(object)
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init()
        for (k, v) in elements { self[k] = v }
    }
}

extension JSONValue {
    /// Builds ``JSONValue``s for ``JSONParser``.
    public enum Builder: JSONBuilder {
        public static func makeObject() -> JSONObject { JSONObject() }
        public static func append(_ key: String, _ value: JSONValue, to object: inout JSONObject) {
            object.appendUnchecked(key, value)
        }
        public static func replace(_ key: String, _ value: JSONValue, in object: inout JSONObject) { object[key] = value }
        public static func object(_ object: JSONObject) -> JSONValue { .object(object) }
        public static func array(_ array: [JSONValue]) -> JSONValue { .array(array) }
        public static func string(_ string: String) -> JSONValue { .string(string) }
        public static func int(_ value: Int64) -> JSONValue { .int(value) }
        public static func double(_ value: Double) -> JSONValue { .double(value) }
        public static func bool(_ value: Bool) -> JSONValue { .bool(value) }
        public static var null: JSONValue { .null }
    }
}
