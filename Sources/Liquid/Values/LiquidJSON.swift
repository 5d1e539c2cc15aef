import FleetJSON

/// JSON text as ``LiquidValue``s, through the fleet's one JSON parser (FleetJSON's ``JSONParser``, building Liquid
/// values directly: no intermediate tree, no Foundation).
///
/// Objects keep their key order (``LiquidObject``); integers become `.int`, other numbers `.double`. A key given
/// twice in one object keeps its first position and its last value (as Ruby's JSON does), nesting is limited to
/// 512 levels so that hostile input cannot exhaust the stack, and anything else RFC 8259 does not allow is an
/// error.
public enum LiquidJSON {
    static let options = JSONParserOptions(duplicateKeys: .lastWins, maxDepth: 512)

    /// Parses a JSON document.
    public static func parse(_ text: String) throws(LiquidError) -> LiquidValue {
        try parse(bytes: Array(text.utf8))
    }

    /// Parses a JSON document from UTF-8 bytes.
    public static func parse(bytes: UnsafeBufferPointer<UInt8>) throws(LiquidError) -> LiquidValue {
        do {
            return try JSONParser<Builder>.parse(buffer: bytes, options: options)
        } catch {
            throw LiquidError(.json, "invalid JSON at byte \(error.offset): \(error.message)")
        }
    }

    /// Parses a JSON document from UTF-8 bytes.
    public static func parse(bytes: [UInt8]) throws(LiquidError) -> LiquidValue {
        try bytes.withUnsafeBufferPointer { buffer throws(LiquidError) in try parse(bytes: buffer) }
    }

    /// Builds ``LiquidValue``s for the parser.
    enum Builder: JSONBuilder {
        static func makeObject() -> LiquidObject { LiquidObject() }
        static func append(_ key: String, _ value: LiquidValue, to object: inout LiquidObject) { object[key] = value }
        static func replace(_ key: String, _ value: LiquidValue, in object: inout LiquidObject) { object[key] = value }
        static func object(_ object: LiquidObject) -> LiquidValue { .object(object) }
        static func array(_ array: [LiquidValue]) -> LiquidValue { .array(array) }
        static func string(_ string: String) -> LiquidValue { .string(string) }
        static func int(_ value: Int64) -> LiquidValue { .int(Int(value)) }
        static func double(_ value: Double) -> LiquidValue { .double(value) }
        static func bool(_ value: Bool) -> LiquidValue { .bool(value) }
        static var null: LiquidValue { .nil }
    }
}
