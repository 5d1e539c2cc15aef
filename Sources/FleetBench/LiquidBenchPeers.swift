/// The peer engines `fleet bench liquid` found: Shopify's Ruby Liquid and python-liquid, with versions.
struct LiquidBenchPeers {
    /// Ruby Liquid's version, when `ruby` with the liquid gem runs.
    var ruby: String?
    /// python-liquid's version, when the Python given imports `liquid`.
    var python: String?
    /// What was found or why a peer is missing, a line each.
    var notes: [String] = []

    static let none = LiquidBenchPeers(ruby: nil, python: nil, notes: ["peers: skipped (--no-peers)"])

    var isEmpty: Bool { ruby == nil && python == nil }

    /// Asks each interpreter for its Liquid version.
    static func detect(ruby: String, python: String) -> LiquidBenchPeers {
        var peers = LiquidBenchPeers()
        if let outcome = BenchSubprocess.run(ruby, ["-e", "require 'liquid'; puts \"#{Liquid::VERSION} (ruby #{RUBY_VERSION})\""]) {
            if outcome.status == 0 {
                peers.ruby = outcome.lastLine
                peers.notes.append("Ruby Liquid \(outcome.lastLine)")
            } else {
                peers.notes.append("Ruby Liquid: NOT AVAILABLE (\(ruby) cannot load the liquid gem; apt-get install ruby-liquid); Ruby figures skipped")
            }
        } else {
            peers.notes.append("Ruby Liquid: NOT AVAILABLE (cannot run \(ruby); apt-get install ruby ruby-liquid); Ruby figures skipped")
        }
        let probe = "import liquid, sys; print(liquid.__version__, '(python', sys.version.split()[0] + ')')"
        if let outcome = BenchSubprocess.run(python, ["-c", probe]) {
            if outcome.status == 0 {
                peers.python = outcome.lastLine
                peers.notes.append("python-liquid \(outcome.lastLine)")
            } else {
                peers.notes.append("python-liquid: NOT AVAILABLE (\(python) cannot import liquid; \(python) -m pip install python-liquid); python figures skipped")
            }
        } else {
            peers.notes.append("python-liquid: NOT AVAILABLE (cannot run \(python)); python figures skipped")
        }
        return peers
    }
}
