import FleetCore

/// The compact binary form of a profile's traits and their last-writer-wins times (`profiles.fields`).
///
/// Every read of the read model decodes it, and every identify decodes and re-encodes it, so it is built to
/// decode without scanning text: lengths come first, strings need no unescaping, numbers no parsing.
///
/// Layout: a format byte (1), a varint count, then per field: varint key length, key (UTF-8), zigzag-varint
/// time (milliseconds), value. A value is a tag byte then its payload:
/// 0 absent (a removed trait's tombstone, or `$email`/`$phone`, whose values are columns), 1 null, 2 false,
/// 3 true, 4 int (zigzag varint), 5 double (8 bytes, little-endian bit pattern), 6 string (varint length,
/// UTF-8), 7 array (varint count, values), 8 object (varint count, then key and value per member).
/// An empty blob is a profile without fields.
package enum PackedFields {
    /// One field: a trait (or `$email`, `$phone`), the time it was last written, and its value (nil: removed).
    package struct Field: Sendable, Hashable {
        package var key: String
        package var time: Int64
        package var value: JSONValue?

        package init(key: String, time: Int64, value: JSONValue?) {
            self.key = key
            self.time = time
            self.value = value
        }
    }

    static let format: UInt8 = 1

    // MARK: - Encoding

    /// Encodes fields.
    package static func encode(_ fields: [Field]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 + fields.count * 32)
        out.append(format)
        appendVarint(UInt64(fields.count), to: &out)
        for field in fields {
            appendString(field.key, to: &out)
            appendVarint(zigzag(field.time), to: &out)
            if let value = field.value { append(value, to: &out) } else { out.append(0) }
        }
        return out
    }

    private static func append(_ value: JSONValue, to out: inout [UInt8]) {
        switch value {
        case .null: out.append(1)
        case .bool(let b): out.append(b ? 3 : 2)
        case .int(let i):
            out.append(4)
            appendVarint(zigzag(i), to: &out)
        case .double(let d):
            out.append(5)
            let bits = d.bitPattern
            for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        case .string(let s):
            out.append(6)
            appendString(s, to: &out)
        case .array(let a):
            out.append(7)
            appendVarint(UInt64(a.count), to: &out)
            for v in a { append(v, to: &out) }
        case .object(let o):
            out.append(8)
            appendVarint(UInt64(o.count), to: &out)
            for (k, v) in o {
                appendString(k, to: &out)
                append(v, to: &out)
            }
        }
    }

    @inline(__always)
    private static func appendString(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { bytes in
            appendVarint(UInt64(bytes.count), to: &out)
            out.append(contentsOf: bytes)
        }
    }

    @inline(__always)
    private static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    @inline(__always) private static func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
    @inline(__always) private static func unzigzag(_ v: UInt64) -> Int64 { Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1) }

    // MARK: - Decoding

    /// Decodes every field (tombstones and `$` fields included), for the writer.
    package static func decodeFields(_ bytes: [UInt8]) throws(ProfileStoreError) -> [Field] {
        guard !bytes.isEmpty else { return [] }
        return try bytes.withUnsafeBufferPointer { buffer throws(ProfileStoreError) -> [Field] in
            var reader = Reader(bytes: buffer)
            let count = try reader.header()
            var fields: [Field] = []
            fields.reserveCapacity(count)
            for _ in 0..<count {
                let key = try reader.string()
                let time = unzigzag(try reader.varint())
                let value = try reader.valueOrAbsent()
                fields.append(Field(key: key, time: time, value: value))
            }
            return fields
        }
    }

    /// Decodes the traits only (present values, `$` fields left out), for the read model.
    package static func decodeTraits(_ bytes: [UInt8]) throws(ProfileStoreError) -> JSONObject {
        guard !bytes.isEmpty else { return JSONObject() }
        return try bytes.withUnsafeBufferPointer { buffer throws(ProfileStoreError) -> JSONObject in
            var reader = Reader(bytes: buffer)
            let count = try reader.header()
            var traits = JSONObject()
            for _ in 0..<count {
                let key = try reader.string()
                _ = try reader.varint()
                guard let value = try reader.valueOrAbsent() else { continue }
                if key.utf8.first == UInt8(ascii: "$") { continue }
                traits[key] = value
            }
            return traits
        }
    }

    /// A cursor over an encoded blob; every read is bounds-checked (a damaged blob throws `corrupt_fields`).
    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        static let corrupt = ProfileStoreError(code: "corrupt_fields", message: "a stored profile's fields cannot be decoded")
        static let maxDepth = 128

        mutating func header() throws(ProfileStoreError) -> Int {
            guard try byte() == PackedFields.format else { throw Self.corrupt }
            let count = try varint()
            guard count <= UInt64(bytes.count) else { throw Self.corrupt }
            return Int(count)
        }

        @inline(__always)
        mutating func byte() throws(ProfileStoreError) -> UInt8 {
            guard index < bytes.count else { throw Self.corrupt }
            defer { index += 1 }
            return bytes[index]
        }

        @inline(__always)
        mutating func varint() throws(ProfileStoreError) -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let b = try byte()
                result |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return result }
                shift += 7
                guard shift < 64 else { throw Self.corrupt }
            }
        }

        @inline(__always)
        mutating func string() throws(ProfileStoreError) -> String {
            let length = try varint()
            guard length <= UInt64(bytes.count - index) else { throw Self.corrupt }
            let end = index + Int(length)
            defer { index = end }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[index..<end]), as: UTF8.self)
        }

        /// A top-level value: absent, a scalar (decoded here, the common case), or a container.
        @inline(__always)
        mutating func valueOrAbsent() throws(ProfileStoreError) -> JSONValue? {
            guard index < bytes.count else { throw Self.corrupt }
            switch bytes[index] {
            case 0:
                index += 1
                return nil
            case 6:
                index += 1
                return .string(try string())
            case 4:
                index += 1
                return .int(PackedFields.unzigzag(try varint()))
            case 2, 3:
                index += 1
                return .bool(bytes[index - 1] == 3)
            default:
                return try value(depth: 0)
            }
        }

        mutating func value(depth: Int) throws(ProfileStoreError) -> JSONValue {
            guard depth < Self.maxDepth else { throw Self.corrupt }
            switch try byte() {
            case 1: return .null
            case 2: return .bool(false)
            case 3: return .bool(true)
            case 4: return .int(PackedFields.unzigzag(try varint()))
            case 5:
                guard bytes.count - index >= 8 else { throw Self.corrupt }
                var bits: UInt64 = 0
                for i in 0..<8 { bits |= UInt64(bytes[index + i]) << UInt64(i * 8) }
                index += 8
                return .double(Double(bitPattern: bits))
            case 6: return .string(try string())
            case 7:
                let count = try varint()
                guard count <= UInt64(bytes.count - index) else { throw Self.corrupt }
                var array: [JSONValue] = []
                array.reserveCapacity(Int(count))
                for _ in 0..<count { array.append(try value(depth: depth + 1)) }
                return .array(array)
            case 8:
                let count = try varint()
                guard count <= UInt64(bytes.count - index) else { throw Self.corrupt }
                var object = JSONObject()
                for _ in 0..<count {
                    let key = try string()
                    object[key] = try value(depth: depth + 1)
                }
                return .object(object)
            default:
                throw Self.corrupt
            }
        }
    }
}
