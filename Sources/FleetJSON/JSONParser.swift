/// A strict RFC 8259 JSON parser over UTF-8 bytes, generic over the values it builds, so that the fleet's
/// ``JSONValue`` and Liquid's values come from one parser (specialized for each, with no intermediate tree).
///
/// Refused, with the byte offset: invalid UTF-8, anything RFC 8259 does not allow (leading zeros, lone
/// surrogates in `\u` escapes, control characters in strings, trailing text), nesting deeper than
/// ``JSONParserOptions/maxDepth``, and an object holding the same key twice (I-JSON, RFC 7493 §2.3), unless
/// ``JSONParserOptions/duplicateKeys`` says the last one wins.
///
/// The parser is `@inlinable` so that each client module specializes it for its builder (without it, Liquid and
/// the job decoding ran the unspecialized parser through witness tables: visible in `perf` profiles of `fleet bench`).
public struct JSONParser<Builder: JSONBuilder> {
    @usableFromInline let bytes: UnsafeBufferPointer<UInt8>
    @usableFromInline let options: JSONParserOptions
    @usableFromInline var index = 0
    @usableFromInline var depth = 0

    @inlinable init(_ bytes: UnsafeBufferPointer<UInt8>, options: JSONParserOptions) {
        self.bytes = bytes
        self.options = options
    }

    /// Parses one JSON document.
    @inlinable public static func parse(_ input: some Collection<UInt8>, options: JSONParserOptions = JSONParserOptions())
        throws(JSONParseError) -> Builder.Value
    {
        let result: Result<Builder.Value, JSONParseError>? = input.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONParseError) -> Builder.Value in try parse(buffer: buffer, options: options) }
        }
        if let result { return try result.get() }
        let copy = Array(input)
        return try copy.withUnsafeBufferPointer { buffer in
            Result { () throws(JSONParseError) -> Builder.Value in try parse(buffer: buffer, options: options) }
        }.get()
    }

    /// Parses one JSON document from a buffer.
    @inlinable public static func parse(buffer: UnsafeBufferPointer<UInt8>, options: JSONParserOptions = JSONParserOptions())
        throws(JSONParseError) -> Builder.Value
    {
        if let offset = JSONUTF8.firstInvalid(buffer) {
            throw JSONParseError(.invalidUTF8, "the text is not valid UTF-8", offset: offset)
        }
        var parser = JSONParser(buffer, options: options)
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        if parser.index != buffer.count {
            throw JSONParseError(.syntax, "unexpected text after the JSON value", offset: parser.index)
        }
        return value
    }

    @inlinable mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    @inlinable func fail(_ message: String) -> JSONParseError {
        JSONParseError(.syntax, message, offset: index)
    }

    @inlinable mutating func parseValue() throws(JSONParseError) -> Builder.Value {
        guard index < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return Builder.string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return Builder.bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return Builder.bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return Builder.null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected character")
        }
    }

    @inlinable mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail("unexpected end of input") }
        let start = literal.utf8Start
        for k in 0..<count where bytes[index + k] != start[k] { throw fail("invalid literal") }
        index += count
    }

    @inlinable mutating func enter() throws(JSONParseError) {
        depth += 1
        if depth > options.maxDepth {
            throw JSONParseError(.tooDeep, "nesting deeper than \(options.maxDepth) levels", offset: index)
        }
    }

    @inlinable mutating func parseObject() throws(JSONParseError) -> Builder.Value {
        try enter()
        index += 1
        var object = Builder.makeObject()
        // The keys seen, for the duplicate check: a scanned list for small objects, a set past a dozen keys so
        // that a large object stays linear.
        var keys: [String] = []
        var seen: Set<String>?
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return Builder.object(object)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyStart = index
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            index += 1
            skipWhitespace()
            var duplicate: Bool
            if var set = seen {
                duplicate = !set.insert(key).inserted
                seen = set
            } else {
                duplicate = keys.contains(key)
                if !duplicate {
                    keys.append(key)
                    if keys.count > 12 { seen = Set(keys) }
                }
            }
            if duplicate && options.duplicateKeys == .reject {
                let shown = key.count > 64 ? String(key.prefix(64)) + "..." : key
                throw JSONParseError(.duplicateKey, "the key \"\(shown)\" appears twice in one object", offset: keyStart)
            }
            let value = try parseValue()
            if duplicate {
                Builder.replace(key, value, in: &object)
            } else {
                Builder.append(key, value, to: &object)
            }
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of input in an object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; break }
            throw fail("expected ',' or '}'")
        }
        depth -= 1
        return Builder.object(object)
    }

    @inlinable mutating func parseArray() throws(JSONParseError) -> Builder.Value {
        try enter()
        index += 1
        var array: [Builder.Value] = []
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return Builder.array(array)
        }
        while true {
            skipWhitespace()
            array.append(try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of input in an array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; break }
            throw fail("expected ',' or ']'")
        }
        depth -= 1
        return Builder.array(array)
    }

    @inlinable mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let c = bytes[index]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail("control character in a string") }
            index += 1
        }
        var out = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let c = bytes[index]
            if c == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: out, as: UTF8.self)
            }
            if c < 0x20 { throw fail("control character in a string") }
            if c != UInt8(ascii: "\\") {
                out.append(c)
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { break }
            let e = bytes[index]
            index += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate in a \\u escape")
                    }
                    index += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("invalid surrogate pair") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw fail("unpaired surrogate in a \\u escape")
                }
                out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
            default:
                throw fail("invalid escape")
            }
        }
        throw fail("unterminated string")
    }

    @inlinable mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    @inlinable func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    @inlinable mutating func parseNumber() throws(JSONParseError) -> Builder.Value {
        let start = index
        var isInteger = true
        let negative = bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
        let digitsStart = index
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        }
        let digitsEnd = index
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
            isInteger = false
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        }
        // Up to 18 digits always fit an Int64: summed in place, without making a string.
        if isInteger && digitsEnd - digitsStart <= 18 {
            var value: Int64 = 0
            for i in digitsStart..<digitsEnd { value = value &* 10 &+ Int64(bytes[i] &- 0x30) }
            return Builder.int(negative ? -value : value)
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if isInteger, let i = Int64(text) { return Builder.int(i) }
        guard let d = Double(text), d.isFinite else { throw JSONParseError(.syntax, "number out of range", offset: start) }
        return Builder.double(d)
    }
}

/// What a ``JSONParser`` builds each kind of value with.
public protocol JSONBuilder {
    associatedtype Value
    associatedtype Object
    static func makeObject() -> Object
    /// Adds a key the object does not hold yet.
    static func append(_ key: String, _ value: Value, to object: inout Object)
    /// Sets a key the object holds already (only with ``JSONParserOptions/DuplicateKeys/lastWins``).
    static func replace(_ key: String, _ value: Value, in object: inout Object)
    static func object(_ object: Object) -> Value
    static func array(_ array: [Value]) -> Value
    static func string(_ string: String) -> Value
    static func int(_ value: Int64) -> Value
    static func double(_ value: Double) -> Value
    static func bool(_ value: Bool) -> Value
    static var null: Value { get }
}

/// How strict a ``JSONParser`` is beyond RFC 8259.
public struct JSONParserOptions: Sendable, Hashable {
    /// What an object holding a key twice does.
    public enum DuplicateKeys: Sendable, Hashable {
        /// Refused with ``JSONParseError/Reason/duplicateKey`` (I-JSON; the fleet's jobs and files).
        case reject
        /// The last value wins (as most JSON libraries do; Liquid's template data).
        case lastWins
    }

    public var duplicateKeys: DuplicateKeys
    /// The deepest nesting accepted.
    public var maxDepth: Int

    @inlinable public init(duplicateKeys: DuplicateKeys = .reject, maxDepth: Int = 128) {
        self.duplicateKeys = duplicateKeys
        self.maxDepth = maxDepth
    }
}

/// UTF-8 validation for the parser.
public enum JSONUTF8 {
    /// Offset of the first byte that breaks UTF-8, or nil when the buffer is valid.
    public static func firstInvalid(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
        var i = 0
        let n = b.count
        while i < n {
            let c = b[i]
            if c < 0x80 { i += 1; continue }
            let length: Int
            var minimum: UInt32
            var scalar: UInt32
            if c & 0xE0 == 0xC0 { length = 2; scalar = UInt32(c & 0x1F); minimum = 0x80 }
            else if c & 0xF0 == 0xE0 { length = 3; scalar = UInt32(c & 0x0F); minimum = 0x800 }
            else if c & 0xF8 == 0xF0 { length = 4; scalar = UInt32(c & 0x07); minimum = 0x10000 }
            else { return i }
            if i + length > n { return i }
            for k in 1..<length {
                let cc = b[i + k]
                if cc & 0xC0 != 0x80 { return i }
                scalar = scalar << 6 | UInt32(cc & 0x3F)
            }
            if scalar < minimum || scalar > 0x10FFFF || (0xD800...0xDFFF).contains(scalar) { return i }
            i += length
        }
        return nil
    }
}
