/// Substring search and replacement on UTF-8 bytes, for the html passes of a message (no Foundation, no
/// Character walking).
enum ByteSearch {
    /// The index of the first occurrence of `needle` in `haystack` at or after `from`, or nil.
    static func firstIndex<C: RandomAccessCollection>(of needle: [UInt8], in haystack: C, from: Int) -> Int?
    where C.Element == UInt8, C.Index == Int {
        guard let first = needle.first, haystack.endIndex - needle.count >= from else { return nil }
        var i = max(from, haystack.startIndex)
        let last = haystack.endIndex - needle.count
        while i <= last {
            if haystack[i] == first {
                var k = 1
                while k < needle.count && haystack[i + k] == needle[k] { k += 1 }
                if k == needle.count { return i }
            }
            i += 1
        }
        return nil
    }

    /// The index of the last occurrence of `needle` in `haystack`, or nil.
    static func lastIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        var i = haystack.count - needle.count
        while i >= 0 {
            if haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i -= 1
        }
        return nil
    }

    /// `bytes` with every occurrence of `needle` replaced by `replacement`.
    static func replacing(_ needle: [UInt8], with replacement: [UInt8], in bytes: [UInt8]) -> [UInt8] {
        guard var at = firstIndex(of: needle, in: bytes, from: 0) else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var from = 0
        while true {
            out.append(contentsOf: bytes[from..<at])
            out.append(contentsOf: replacement)
            from = at + needle.count
            guard let next = firstIndex(of: needle, in: bytes, from: from) else { break }
            at = next
        }
        out.append(contentsOf: bytes[from...])
        return out
    }
}
