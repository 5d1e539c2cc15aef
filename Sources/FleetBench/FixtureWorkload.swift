import FleetBackoff
import Foundation
import Liquid

/// Workload (b) of `fleet bench liquid`: one golden-liquid benchmark fixture (`data.json`,
/// `templates/index.liquid` with its partials, `expected_result.txt`), rendered through a
/// ``LiquidTemplateLibrary`` over `templates/` with `"now"` pinned to ``LiquidBench/fixtureNow``.
struct FixtureWorkload {
    let library: LiquidTemplateLibrary
    let template: LiquidTemplate
    let environment: LiquidObject
    let expected: [UInt8]
    let options: LiquidRenderOptions

    init(directory: String) throws {
        library = LiquidTemplateLibrary(directory: directory + "/templates")
        do {
            template = try library.template(named: "index")
        } catch {
            throw BenchError(error, name: "index", templatePath: directory + "/templates/index.liquid")
        }
        guard let data = FileManager.default.contents(atPath: directory + "/data.json"),
            let expected = FileManager.default.contents(atPath: directory + "/expected_result.txt")
        else { throw BenchError.usage("\(directory) lacks data.json or expected_result.txt") }
        guard case .object(let object)? = try? LiquidJSON.parse(bytes: Array(data)) else {
            throw BenchError("\(directory)/data.json is not a JSON object", code: .badData)
        }
        environment = object
        self.expected = Array(expected)
        options = LiquidRenderOptions(fileSystem: library, now: LiquidBench.fixtureNow)
    }

    /// Our renders/s (rounds of `renders` until `minSeconds` passed) and how the output compares with
    /// `expected_result.txt`: `match`, `match except the final newline` (the 001/002 files end with a newline
    /// their templates do not print) or `MISMATCH` with the first differing line.
    func run(renders: Int, minSeconds: Double) throws -> (rate: Double, status: String) {
        let first = try template.renderBytes(environment, options: options)
        let status: String
        if first == expected {
            status = "match"
        } else if Self.trimmingNewlines(first) == Self.trimmingNewlines(expected) {
            status = "match except the final newline"
        } else {
            let diff = RubyRenderDump.shortDiff(ours: first, ruby: expected, context: 0)
            status = "MISMATCH at " + diff.joined(separator: " | ").replacingOccurrences(of: "(- Ruby, + ours)", with: "(- expected, + ours)")
        }
        let clock = ContinuousClock()
        let start = clock.now
        var done = 0
        repeat {
            for _ in 0..<renders { _ = try template.renderBytes(environment, options: options) }
            done += renders
        } while (clock.now - start) < .seconds(minSeconds)
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return (Double(done) / seconds, status)
    }

    private static func trimmingNewlines(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        var slice = bytes[...]
        while slice.last == UInt8(ascii: "\n") { slice = slice.dropLast() }
        return slice
    }
}
