import FleetBackoff
import Foundation
import Liquid

/// Workload (a) of `fleet bench liquid`: the shared newsletter template and the 2,000 workload profiles,
/// each rendered with `profile` = the profile and `campaign` as `peers/liquid/render_ruby.rb` passes it.
struct NewsletterWorkload {
    let template: LiquidTemplate
    /// The profiles' ids, in file order.
    let ids: [String]
    /// One render environment per profile.
    let environments: [LiquidObject]

    static let campaign: LiquidValue = .object(LiquidObject([("id", "spring-sale"), ("subject", "[name], your spring picks")]))

    init(templatePath: String, profilesPath: String) throws {
        guard let source = FileManager.default.contents(atPath: templatePath) else {
            throw BenchError.usage("cannot read \(templatePath)")
        }
        do {
            template = try LiquidTemplate(String(decoding: source, as: UTF8.self), name: "newsletter")
        } catch {
            throw BenchError(error, name: "newsletter", templatePath: templatePath)
        }
        guard let data = FileManager.default.contents(atPath: profilesPath) else {
            throw BenchError("make_data.py wrote no \(profilesPath)", code: .unavailable)
        }
        var ids: [String] = []
        var environments: [LiquidObject] = []
        for (n, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() where !line.isEmpty {
            let profile: LiquidValue
            do {
                profile = try LiquidJSON.parse(bytes: Array(line))
            } catch {
                throw BenchError("\(profilesPath) line \(n + 1): \(error.message)", code: .badData)
            }
            guard case .object(let object) = profile, case .string(let id)? = object["id"] else {
                throw BenchError("\(profilesPath) line \(n + 1): not a profile object with an id", code: .badData)
            }
            ids.append(id)
            environments.append(LiquidObject([("profile", profile), ("campaign", Self.campaign)]))
        }
        guard !environments.isEmpty else { throw BenchError("\(profilesPath) holds no profiles", code: .badData) }
        self.ids = ids
        self.environments = environments
    }

    /// Renders with our engine's defaults (lax, inline errors, default limits), as a worker would.
    func render(_ index: Int) throws(LiquidError) -> [UInt8] {
        try template.renderBytes(environments[index])
    }

    /// Renders/s on this thread: rounds of `renders` renders (cycling through the profiles) until at least
    /// `minSeconds` have passed.
    func measure(renders: Int, minSeconds: Double, output: BenchOutput) throws -> (wall: Double, cpu: Double) {
        for i in environments.indices { _ = try render(i) }  // warm-up
        let clock = ContinuousClock()
        let start = clock.now
        let cpuStart = Self.threadCPUSeconds()
        var done = 0
        var bytes = 0
        repeat {
            for i in 0..<renders { bytes &+= try render(i % environments.count).count }
            done += renders
        } while (clock.now - start) < .seconds(minSeconds)
        let elapsed = clock.now - start
        let cpu = Self.threadCPUSeconds() - cpuStart
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        // CPU time shows what the thread itself spent when other processes share the cores (the wall-clock
        // figure is the one compared with the peers, which measure wall time too).
        output.line(String(format: "ours: %d renders in %.2f s wall, %.2f s CPU of this thread (%.1f µs CPU a render, %.0f renders per CPU second), %d bytes",
                           done, seconds, cpu, cpu / Double(done) * 1e6, Double(done) / cpu, bytes))
        return (Double(done) / seconds, Double(done) / cpu)
    }

    /// CPU time this thread has used, in seconds.
    static func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Renders every profile once with Ruby (`Ops/bench/ruby_newsletter_dump.rb`) and with ours, and prints
    /// how many renders are byte-identical, with the first differing profile and a short diff. Returns that count,
    /// or nil when Ruby's renders could not be had.
    @discardableResult
    func compareWithRuby(ruby: String, script: String, templatePath: String, profilesPath: String, dumpPath: String,
                         output: BenchOutput) throws -> Int? {
        guard let outcome = BenchSubprocess.run(ruby, [script, templatePath, profilesPath, dumpPath]), outcome.status == 0 else {
            output.line("byte-identical check: the Ruby dump script failed; skipped")
            return nil
        }
        guard let data = FileManager.default.contents(atPath: dumpPath), let theirs = RubyRenderDump.parse(Array(data)) else {
            output.line("byte-identical check: cannot read Ruby's renders in \(dumpPath); skipped")
            return nil
        }
        var identical = 0
        var firstDifference: (id: String, ours: [UInt8], ruby: [UInt8])?
        for (i, id) in ids.enumerated() {
            let ours = try render(i)
            let ruby = i < theirs.count && theirs[i].id == id ? theirs[i].bytes : nil
            if ours == ruby {
                identical += 1
            } else if firstDifference == nil {
                firstDifference = (id, ours, ruby ?? [])
            }
        }
        output.line("byte-identical with Ruby Liquid: \(identical) of \(ids.count) renders")
        if let d = firstDifference {
            output.line("first difference: profile \(d.id)")
            for line in RubyRenderDump.shortDiff(ours: d.ours, ruby: d.ruby) { output.line("  " + line) }
        }
        return identical
    }
}
