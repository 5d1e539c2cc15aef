#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Rates and their comparison: Wilson 95% intervals for one rate, and for two the difference with its 95% (Wald)
/// interval, a two-sided two-proportion z-test and the sample size per group that an 80%-power test at the 5% level
/// needs to detect the difference seen.
public enum ProportionTest {
    /// z for a two-sided 95% interval.
    static let z95 = 1.959963984540054
    /// z for 80% power.
    static let z80 = 0.8416212335729143

    /// `successes / trials` with its Wilson 95% interval; (0, 0, 0) for no trials.
    public static func wilson(_ successes: Int, _ trials: Int) -> (rate: Double, low: Double, high: Double) {
        guard trials > 0 else { return (0, 0, 0) }
        let n = Double(trials), p = Double(successes) / n, z = z95
        let denominator = 1 + z * z / n
        let centre = (p + z * z / (2 * n)) / denominator
        let half = z * (p * (1 - p) / n + z * z / (4 * n * n)).squareRoot() / denominator
        return (p, max(0, centre - half), min(1, centre + half))
    }

    /// A comparison of rate `a` (successes, trials) against `b`.
    public struct Comparison: Sendable, Hashable {
        public var rateA: Double
        public var rateB: Double
        /// `rateA - rateB`, and its 95% interval.
        public var difference: Double
        public var low: Double
        public var high: Double
        /// Two-sided p-value of the pooled two-proportion z-test (1 when there is nothing to test).
        public var pValue: Double
        /// Trials per group needed to detect `difference` (80% power, 5% level); nil for no difference.
        public var neededPerGroup: Int?

        /// The z-test at the 5% level and the interval agree that there is a difference (the pooled test and the
        /// unpooled interval can disagree on small groups; then neither claim is made).
        public var significant: Bool { pValue < 0.05 && (low > 0 || high < 0) }
    }

    public static func compare(_ successesA: Int, _ trialsA: Int, _ successesB: Int, _ trialsB: Int) -> Comparison {
        let nA = Double(trialsA), nB = Double(trialsB)
        let pA = trialsA > 0 ? Double(successesA) / nA : 0
        let pB = trialsB > 0 ? Double(successesB) / nB : 0
        let d = pA - pB
        var low = d, high = d, pValue = 1.0
        if trialsA > 0 && trialsB > 0 {
            let se = (pA * (1 - pA) / nA + pB * (1 - pB) / nB).squareRoot()
            low = d - z95 * se
            high = d + z95 * se
            let pooled = Double(successesA + successesB) / (nA + nB)
            let sePooled = (pooled * (1 - pooled) * (1 / nA + 1 / nB)).squareRoot()
            if sePooled > 0 { pValue = erfc(abs(d) / sePooled / 2.0.squareRoot()) }
        }
        var needed: Int?
        if d != 0 {
            let mean = (pA + pB) / 2
            let term = z95 * (2 * mean * (1 - mean)).squareRoot() + z80 * (pA * (1 - pA) + pB * (1 - pB)).squareRoot()
            // Tiny differences need astronomically many trials: capped so that the conversion cannot trap.
            needed = Int(min((term * term / (d * d)).rounded(.up), 1e15))
        }
        return Comparison(rateA: pA, rateB: pB, difference: d, low: low, high: high, pValue: pValue, neededPerGroup: needed)
    }
}
