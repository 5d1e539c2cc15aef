/// Reading what ``ByteWriter`` wrote; nil past the end.
struct ByteReader {
    let data: [UInt8]
    var at = 0

    init(_ data: [UInt8]) { self.data = data }

    mutating func bytes(_ n: Int) -> [UInt8]? {
        guard n >= 0, at + n <= data.count else { return nil }
        defer { at += n }
        return Array(data[at..<at + n])
    }
    mutating func uint8() -> UInt8? {
        guard at < data.count else { return nil }
        defer { at += 1 }
        return data[at]
    }
    mutating func int32() -> Int32? {
        guard at + 4 <= data.count else { return nil }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(data[at + i]) << (8 * UInt32(i)) }
        at += 4
        return Int32(bitPattern: v)
    }
    mutating func int64() -> Int64? {
        guard at + 8 <= data.count else { return nil }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(data[at + i]) << (8 * UInt64(i)) }
        at += 8
        return Int64(bitPattern: v)
    }
    mutating func double() -> Double? { int64().map { Double(bitPattern: UInt64(bitPattern: $0)) } }
    mutating func string() -> String? {
        guard let n = int32(), let b = bytes(Int(n)) else { return nil }
        return String(decoding: b, as: UTF8.self)
    }
    mutating func optionalString() -> String?? {
        guard let flag = uint8() else { return nil }
        if flag == 0 { return .some(nil) }
        guard let s = string() else { return nil }
        return .some(s)
    }
    mutating func optionalDouble() -> Double?? {
        guard let flag = uint8() else { return nil }
        if flag == 0 { return .some(nil) }
        guard let d = double() else { return nil }
        return .some(d)
    }
}
