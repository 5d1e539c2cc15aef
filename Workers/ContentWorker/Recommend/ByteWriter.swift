/// Little-endian writing of the model's fields.
struct ByteWriter {
    var out: [UInt8] = []

    mutating func bytes(_ b: [UInt8]) { out.append(contentsOf: b) }
    mutating func uint8(_ v: UInt8) { out.append(v) }
    mutating func int32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    mutating func int64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    mutating func double(_ v: Double) { int64(Int64(bitPattern: v.bitPattern)) }
    mutating func string(_ s: String) {
        let u = Array(s.utf8)
        int32(Int32(u.count))
        out.append(contentsOf: u)
    }
    mutating func optionalString(_ s: String?) {
        if let s { uint8(1); string(s) } else { uint8(0) }
    }
    mutating func optionalDouble(_ d: Double?) {
        if let d { uint8(1); double(d) } else { uint8(0) }
    }
}
