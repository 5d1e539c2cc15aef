/// The renders `Ops/bench/ruby_newsletter_dump.rb` writes: per profile, `<id>\t<byte count>\n`, the bytes, `\n`.
enum RubyRenderDump {
    /// The records in file order, or nil when the file is malformed.
    static func parse(_ bytes: [UInt8]) -> [(id: String, bytes: [UInt8])]? {
        var records: [(id: String, bytes: [UInt8])] = []
        var i = 0
        while i < bytes.count {
            guard let newline = bytes[i...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            let header = String(decoding: bytes[i..<newline], as: UTF8.self).split(separator: "\t")
            let start = newline + 1
            guard header.count == 2, let count = Int(header[1]), count >= 0, start + count < bytes.count,
                bytes[start + count] == UInt8(ascii: "\n")
            else { return nil }
            records.append((String(header[0]), Array(bytes[start..<start + count])))
            i = start + count + 1
        }
        return records
    }

    /// A few lines around the first line that differs: `-` Ruby's, `+` ours.
    static func shortDiff(ours: [UInt8], ruby: [UInt8], context: Int = 1) -> [String] {
        let a = String(decoding: ruby, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let b = String(decoding: ours, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard let first = (0..<max(a.count, b.count)).first(where: { $0 >= a.count || $0 >= b.count || a[$0] != b[$0] }) else {
            return ["(same lines; the bytes differ in line endings)"]
        }
        var lines = ["line \(first + 1) (- Ruby, + ours):"]
        for k in max(0, first - context)..<first { lines.append("  " + a[k]) }
        for k in first..<min(a.count, first + 2) { lines.append("- " + a[k]) }
        for k in first..<min(b.count, first + 2) { lines.append("+ " + b[k]) }
        return lines.map { $0.count > 200 ? String($0.prefix(200)) + "..." : $0 }
    }
}
