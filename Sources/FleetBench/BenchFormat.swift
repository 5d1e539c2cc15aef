/// How the benchmarks write their figures for people, and the statistics they report.
enum BenchFormat {
    /// `v` rounded, with thousands separators (`41,249`).
    static func thousands(_ v: Double) -> String {
        let s = String(Int(v.rounded()))
        var out = ""
        for (i, c) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return out
    }
}
