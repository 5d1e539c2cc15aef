import FleetCore
import Foundation
import Liquid

/// `fleet bench liquid`: renders per second of our Liquid engine on one thread, next to Shopify's Ruby Liquid and
/// python-liquid measured in the same run, on (a) the shared marketing template with the 2,000 workload profiles
/// and (b) golden-liquid's benchmark fixtures; plus a byte-for-byte comparison of our 2,000 newsletter renders with
/// Ruby's.
public struct LiquidBench: Sendable {
    /// The shared directory as given (`--shared`), else found (``BenchPaths/shared(_:)``).
    var shared: String?
    /// Renders of the newsletter template per measurement, ours and each peer's.
    var renders: Int
    /// Renders of each golden-liquid fixture, ours and each peer's.
    var fixtureRenders: Int
    /// Our newsletter measurement repeats its renders until at least this long has passed, each fixture's a quarter.
    var minSeconds: Double
    /// The Ruby with ruby-liquid and the Python with python-liquid.
    var ruby: String
    var python: String
    /// Measure ours only.
    var noPeers: Bool
    /// Whether this executable is a debug build (the report warns: measure a release build).
    var debugBuild: Bool
    /// Where the report and the figures go.
    var output: BenchOutput

    /// What `"now" | date` sees in the fixtures: their expected results were made in 2025.
    static let fixtureNow: Double = 1_748_779_200  // 2025-06-01T12:00:00Z

    public init(shared: String?, renders: Int, fixtureRenders: Int, minSeconds: Double, ruby: String, python: String,
                noPeers: Bool, debugBuild: Bool, output: BenchOutput) {
        self.shared = shared
        self.renders = renders
        self.fixtureRenders = fixtureRenders
        self.minSeconds = minSeconds
        self.ruby = ruby
        self.python = python
        self.noPeers = noPeers
        self.debugBuild = debugBuild
        self.output = output
    }

    /// Runs both workloads (and the byte-for-byte comparison) and prints the report, then with `--json` the figures.
    public func run() throws {
        let sharedDir = try BenchPaths.shared(shared)
        let repo = BenchPaths.repository(holding: "Ops/bench/ruby_fixture.rb")
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-bench-liquid-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }

        output.line("fleet bench liquid: \(debugBuild ? "debug" : "release") build, one thread, shared \(sharedDir)")
        if debugBuild { output.line("warning: this is a debug build; measure with 'swift build -c release'") }

        let peers = noPeers ? LiquidBenchPeers.none : LiquidBenchPeers.detect(ruby: ruby, python: python)
        for line in peers.notes { output.line(line) }

        // (a) The marketing template with the 2,000 workload profiles.
        try BenchPaths.makeData(shared: sharedDir, into: work.path, jobs: 1)
        let profilesPath = work.path + "/profiles.ndjson"
        let newsletter = try NewsletterWorkload(templatePath: sharedDir + "/peers/liquid/newsletter.liquid", profilesPath: profilesPath)
        output.line()
        output.line("(a) peers/liquid/newsletter.liquid, \(newsletter.environments.count) profiles, \(renders) renders per measurement")
        var identical: Int?
        if peers.ruby != nil, let repo {
            let dump = work.appendingPathComponent("ruby-renders.txt").path
            identical = try newsletter.compareWithRuby(ruby: ruby, script: repo + "/Ops/bench/ruby_newsletter_dump.rb",
                                           templatePath: sharedDir + "/peers/liquid/newsletter.liquid", profilesPath: profilesPath,
                                           dumpPath: dump, output: output)
        } else if peers.ruby != nil {
            output.line("byte-identical check skipped: Ops/bench/ruby_newsletter_dump.rb not found above the current directory")
        } else {
            output.line("byte-identical check skipped: Ruby Liquid is not available")
        }
        let ours = try newsletter.measure(renders: renders, minSeconds: minSeconds, output: output)
        let rubyA = peers.ruby.flatMap { _ in
            BenchSubprocess.run(ruby, [sharedDir + "/peers/liquid/render_ruby.rb", profilesPath, String(renders)])
        }
        let pythonA = peers.python.flatMap { _ in
            BenchSubprocess.run(python, [sharedDir + "/peers/liquid/render_python.py", profilesPath, String(renders)])
        }
        var table = LiquidBenchTable(title: "template")
        table.add(name: "newsletter", ours: ours.wall, ruby: rubyA, python: pythonA, status: nil)
        table.print(to: output)
        // The same per CPU second of each program: steadier when other processes share the cores. A peer's
        // CPU time includes its start-up (loading the profiles, parsing the template), a few percent of it.
        var cpuLine = "  per CPU second: ours \(LiquidBenchTable.count(ours.cpu))"
        func perCPUSecond(_ outcome: BenchSubprocess.Outcome?) -> Double? {
            guard let outcome, outcome.status == 0, outcome.cpuSeconds > 0 else { return nil }
            return Double(renders) / outcome.cpuSeconds
        }
        let (rubyCPU, pythonCPU) = (perCPUSecond(rubyA), perCPUSecond(pythonA))
        for (name, rate) in [("Ruby", rubyCPU), ("python-liquid", pythonCPU)] {
            guard let rate else { continue }
            cpuLine += ", \(name) \(LiquidBenchTable.count(rate)) (ours/\(name) \(LiquidBenchTable.ratio(ours.cpu / rate)))"
        }
        output.line(cpuLine)
        var newsletterFigures = JSONObject(["profiles": .count(newsletter.environments.count)])
        for (key, value) in table.rows[0].figures() { newsletterFigures[key] = value }
        newsletterFigures["ours_renders_per_cpu_s"] = .number(ours.cpu, places: 1)
        newsletterFigures["ruby_renders_per_cpu_s"] = .number(rubyCPU, places: 1)
        newsletterFigures["python_renders_per_cpu_s"] = .number(pythonCPU, places: 1)
        newsletterFigures["ours_vs_ruby_cpu_ratio"] = .number(rubyCPU.map { ours.cpu / $0 }, places: 2)
        newsletterFigures["ours_vs_python_cpu_ratio"] = .number(pythonCPU.map { ours.cpu / $0 }, places: 2)
        newsletterFigures["byte_identical_renders"] = .count(identical)

        // (b) golden-liquid's benchmark fixtures.
        let fixturesDir = sharedDir + "/conformance/golden-liquid/benchmark_fixtures"
        let fixtures = ((try? FileManager.default.contentsOfDirectory(atPath: fixturesDir)) ?? [])
            .filter { FileManager.default.fileExists(atPath: fixturesDir + "/" + $0 + "/templates/index.liquid") }.sorted()
        output.line()
        output.line("(b) golden-liquid benchmark_fixtures (\(fixtures.count)), \(fixtureRenders) renders per measurement; output vs expected_result.txt")
        var fixtureTable = LiquidBenchTable(title: "fixture")
        for fixture in fixtures {
            let dir = fixturesDir + "/" + fixture
            let result = try FixtureWorkload(directory: dir).run(renders: fixtureRenders, minSeconds: minSeconds / 4)
            let rubyB = repo.flatMap { repo in
                peers.ruby.flatMap { _ in BenchSubprocess.run(ruby, [repo + "/Ops/bench/ruby_fixture.rb", dir, String(fixtureRenders)]) }
            }
            let pythonB = repo.flatMap { repo in
                peers.python.flatMap { _ in BenchSubprocess.run(python, [repo + "/Ops/bench/python_fixture.py", dir, String(fixtureRenders)]) }
            }
            fixtureTable.add(name: fixture, ours: result.rate, ruby: rubyB, python: pythonB, status: result.status)
        }
        fixtureTable.print(to: output)
        if !fixtureTable.notes.isEmpty || !table.notes.isEmpty {
            output.line()
            for note in table.notes + fixtureTable.notes { output.line(note) }
        }
        if repo == nil, !peers.isEmpty {
            output.line("note: Ops/bench/ (the peers' fixture scripts) not found above the current directory; peers skipped in (b)")
        }
        output.line()
        output.line("ratio = ours / peer renders per second, each measured on one thread in this run")
        if let row = table.rows.first, let rubyRate = row.ruby {
            let ratio = row.ours / rubyRate
            output.line("(a) ours / Ruby = \(LiquidBenchTable.ratio(ratio)): the 50x target is \(ratio >= 50 ? "met" : "NOT met")")
        }

        var fixtureFigures = JSONObject()
        for row in fixtureTable.rows { fixtureFigures[row.name] = .object(row.figures()) }
        var figures = JSONObject()
        figures["renders"] = .count(renders)
        figures["fixture_renders"] = .count(fixtureRenders)
        figures["newsletter"] = .object(newsletterFigures)
        figures["fixtures"] = .object(fixtureFigures)
        output.figures(figures)
    }
}
