import FleetCore
import Foundation

/// The figures table of `fleet bench liquid`: ours, Ruby's and python-liquid's renders/s and the ratios.
struct LiquidBenchTable {
    struct Row {
        var name: String
        var ours: Double
        var ruby: Double?
        var python: Double?
        var status: String?

        /// The row's figures: renders/s of each engine (null for a peer that gave none), ours/peer ratios, and for
        /// a fixture whether our output matches `expected_result.txt`.
        func figures() -> JSONObject {
            var figures = JSONObject()
            figures["ours_renders_per_s"] = .number(ours, places: 1)
            figures["ruby_renders_per_s"] = .number(ruby, places: 1)
            figures["python_renders_per_s"] = .number(python, places: 1)
            figures["ours_vs_ruby_ratio"] = .number(ruby.map { ours / $0 }, places: 2)
            figures["ours_vs_python_ratio"] = .number(python.map { ours / $0 }, places: 2)
            if let status { figures["matches_expected"] = .bool(status.hasPrefix("match")) }
            return figures
        }
    }

    let title: String
    private(set) var rows: [Row] = []
    /// Peers that ran but gave no figure, a line each.
    private(set) var notes: [String] = []

    init(title: String) { self.title = title }

    /// Adds a row; a peer outcome without a `renders/s` figure becomes a note.
    mutating func add(name: String, ours: Double, ruby: BenchSubprocess.Outcome?, python: BenchSubprocess.Outcome?, status: String?) {
        rows.append(Row(name: name, ours: ours, ruby: figure(ruby, peer: "Ruby", row: name),
                        python: figure(python, peer: "python-liquid", row: name), status: status))
    }

    private mutating func figure(_ outcome: BenchSubprocess.Outcome?, peer: String, row: String) -> Double? {
        guard let outcome else { return nil }
        if outcome.status == 0, let rate = outcome.rendersPerSecond {
            if outcome.output.contains("mismatch") { notes.append("\(peer) on \(row): \(outcome.lastLine)") }
            return rate
        }
        notes.append("\(peer) on \(row) failed (exit \(outcome.status)): \(outcome.lastLine)")
        return nil
    }

    func print(to output: BenchOutput) {
        let header = [title, "ours/s", "Ruby/s", "python/s", "ours/Ruby", "ours/python"]
        var lines = [header]
        for row in rows {
            lines.append([
                row.name, Self.count(row.ours), row.ruby.map(Self.count) ?? "-", row.python.map(Self.count) ?? "-",
                row.ruby.map { Self.ratio(row.ours / $0) } ?? "-", row.python.map { Self.ratio(row.ours / $0) } ?? "-",
            ])
        }
        var widths = header.map(\.count)
        for line in lines { for (i, cell) in line.enumerated() { widths[i] = max(widths[i], cell.count) } }
        for (n, line) in lines.enumerated() {
            var text = "  " + line[0].padding(toLength: widths[0], withPad: " ", startingAt: 0)
            for i in 1..<line.count {
                text += "  " + String(repeating: " ", count: widths[i] - line[i].count) + line[i]
            }
            if n > 0, let status = rows[n - 1].status { text += "  " + status }
            output.line(text)
        }
    }

    /// `312,345`.
    static func count(_ value: Double) -> String {
        let digits = String(Int(value.rounded()))
        var out = ""
        for (i, c) in digits.reversed().enumerated() {
            if i > 0, i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return String(out.reversed())
    }

    /// `62.3x`.
    static func ratio(_ value: Double) -> String { String(format: "%.1fx", value) }
}
