import Foundation
import Testing

/// `fleet bench liquid` end to end with tiny counts and no peers (extra; it checks output, never speed).
@Suite("fleet bench liquid (smoke, extra)")
struct LiquidBenchSmokeTests {
    @Test(
        "runs both workloads and reports each fixture's output against expected_result.txt", .tags(.slow),
        .enabled(if: LiquidRubyParityTests.sharedPresent, "the shared workload (../shared) is not present"))
    func smoke() async throws {
        let result = try await CLIRunner.fleet(
            ["bench", "liquid", "--no-peers", "--renders", "20", "--fixture-renders", "2", "--min-seconds", "0",
             "--shared", LiquidRubyParityTests.shared.path])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("(a) peers/liquid/newsletter.liquid, 2000 profiles"))
        #expect(result.stdout.contains("(b) golden-liquid benchmark_fixtures"))
        #expect(!result.stdout.contains("MISMATCH"), "\(result.stdout)")
        for fixture in ["001", "002", "004", "005", "006"] {
            #expect(result.stdout.contains("\n  \(fixture) "), "\(result.stdout)")
        }
    }

    @Test("a shared directory without the workload is one line and exit 64")
    func badShared() async throws {
        let result = try await CLIRunner.fleet(["bench", "liquid", "--shared", "/nonexistent"])
        #expect(result.status == 64)
        #expect(result.errorLines.count == 1)
    }
}
