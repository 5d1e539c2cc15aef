import Foundation

/// A one-line progress bar on stderr, drawn at most ten times a second, only on a terminal.
final class ProgressBar {
    private let total: Int?
    private let enabled: Bool
    private let label: String
    private var lastDraw = ContinuousClock.now - .seconds(1)
    private let started = ContinuousClock.now
    private var drawn = false

    init(total: Int?, enabled: Bool, label: String) {
        self.total = total
        self.enabled = enabled
        self.label = label
    }

    func update(_ done: Int) {
        guard enabled, lastDraw.duration(to: .now) > .milliseconds(100) else { return }
        lastDraw = .now
        let seconds = max(0.001, started.duration(to: .now).seconds)
        let rate = Int(Double(done) / seconds)
        var line = "\(label): \(done)"
        if let total, total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            let width = 30
            let filled = Int(fraction * Double(width))
            line = "\(label) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] \(done)/\(total)"
        }
        line += "  \(rate)/s"
        FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
        drawn = true
    }

    /// Draws `label`, `done` of `total` when known, the rate and the time left.
    func show(_ label: String, done: Int, total: Int?) {
        guard enabled, lastDraw.duration(to: .now) > .milliseconds(100) else { return }
        lastDraw = .now
        let seconds = max(0.001, started.duration(to: .now).seconds)
        var line = "\(self.label): \(label) \(done)"
        if let total, total > 0 {
            line += "/\(total)"
            let rate = Double(done) / seconds
            if rate > 0 { line += String(format: "  %.0f/s  ETA %.0f s", rate, Double(total - done) / rate) }
        }
        FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
        drawn = true
    }

    func clear() {
        guard enabled, drawn else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }

    func finish() {
        clear()
    }
}
