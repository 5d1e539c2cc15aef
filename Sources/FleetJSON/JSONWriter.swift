/// Writes compact JSON text into a byte buffer.
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    public mutating func write(_ value: JSONValue) {
        switch value {
        case .null: append("null")
        case .bool(let b): append(b ? "true" : "false")
        case .int(let i): append(String(i))
        case .double(let d): writeNumber(d)
        case .string(let s): writeString(s)
        case .array(let a):
            bytes.append(UInt8(ascii: "["))
            for (i, element) in a.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                write(element)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let o):
            bytes.append(UInt8(ascii: "{"))
            var first = true
            for (key, value) in o {
                if !first { bytes.append(UInt8(ascii: ",")) }
                first = false
                writeString(key)
                bytes.append(UInt8(ascii: ":"))
                write(value)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    /// Writes a number; non-finite doubles (not representable in JSON) become null.
    public mutating func writeNumber(_ d: Double) {
        guard d.isFinite else { append("null"); return }
        append(d.description)
    }

    public mutating func writeString(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { u in
            bytes.reserveCapacity(bytes.count + u.count + 1)
            // Runs of bytes that need no escape are copied at once.
            var run = 0
            for i in 0..<u.count {
                let c = u[i]
                if c >= 0x20 && c != 0x22 && c != 0x5C { continue }
                if run < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: u[run..<i])) }
                run = i + 1
                bytes.append(0x5C)
                switch c {
                case 0x22, 0x5C: bytes.append(c)
                case 0x0A: bytes.append(UInt8(ascii: "n"))
                case 0x0D: bytes.append(UInt8(ascii: "r"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                default:
                    bytes.append(UInt8(ascii: "u"))
                    bytes.append(0x30)
                    bytes.append(0x30)
                    bytes.append(Self.hexDigits[Int(c >> 4)])
                    bytes.append(Self.hexDigits[Int(c & 0xF)])
                }
            }
            if run < u.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: u[run..<u.count])) }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lets `body` append to the bytes directly (for writers of other types, such as timestamps).
    public mutating func appendDirectly(_ body: (inout [UInt8]) -> Void) { body(&bytes) }

    /// Appends raw text (already valid JSON).
    public mutating func append(_ raw: String) { bytes.append(contentsOf: raw.utf8) }

    /// Appends raw bytes (already valid JSON).
    public mutating func append(bytes raw: [UInt8]) { bytes.append(contentsOf: raw) }
}
