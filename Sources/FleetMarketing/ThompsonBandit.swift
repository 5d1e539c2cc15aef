import Crypto
import Foundation

/// A Beta-Bernoulli Thompson-sampling bandit over a campaign's variants: each arm's success rate has the posterior
/// Beta(1 + successes, 1 + failures) (a uniform prior); a person gets the arm whose sampled rate is highest, except
/// that with probability `explore` (the exploration floor) they get an arm picked uniformly, so that no arm stops
/// being tried while the counts are small or the audience drifts.
///
/// The randomness is seeded by SHA-256 of the campaign and the person: the same person with the same counts gets the
/// same arm (a retried or redelivered job agrees with its first run).
public struct ThompsonBandit: Sendable {
    /// One arm and what it got so far.
    public struct Arm: Sendable, Hashable {
        public var name: String
        public var successes: Int
        public var trials: Int

        public init(name: String, successes: Int, trials: Int) {
            self.name = name
            self.successes = max(0, successes)
            self.trials = max(self.successes, trials)
        }
    }

    public var explore: Double

    public init(explore: Double = 0.1) {
        self.explore = min(max(explore, 0), 1)
    }

    /// The arm for `profileID` in `campaignID` (nil when there is no arm), and each arm's sampled rate.
    public func choose(_ arms: [Arm], campaignID: String, profileID: String) -> (arm: String, samples: [String: Double])? {
        guard !arms.isEmpty else { return nil }
        var random = SeededRandom(seed: "\(campaignID)\u{0}\(profileID)")
        var samples: [String: Double] = [:]
        var best: (String, Double)?
        for arm in arms {
            let s = Self.beta(Double(1 + arm.successes), Double(1 + arm.trials - arm.successes), using: &random)
            samples[arm.name] = s
            if best == nil || s > best!.1 { best = (arm.name, s) }
        }
        if Double.random(in: 0..<1, using: &random) < explore {
            return (arms[Int.random(in: 0..<arms.count, using: &random)].name, samples)
        }
        return (best!.0, samples)
    }

    /// A Beta(a, b) sample from two Gamma samples.
    static func beta(_ a: Double, _ b: Double, using random: inout SeededRandom) -> Double {
        let x = gamma(a, using: &random), y = gamma(b, using: &random)
        return x + y > 0 ? x / (x + y) : 0.5
    }

    /// A Gamma(shape, 1) sample (Marsaglia and Tsang; shape >= 1 here, as Beta's parameters are).
    static func gamma(_ shape: Double, using random: inout SeededRandom) -> Double {
        let d = shape - 1.0 / 3.0, c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat {
                x = normal(using: &random)
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = Double.random(in: 0..<1, using: &random)
            if u < 1 - 0.0331 * x * x * x * x || log(max(u, .leastNonzeroMagnitude)) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v }
        }
    }

    /// A standard normal sample (Box-Muller).
    static func normal(using random: inout SeededRandom) -> Double {
        let u1 = max(Double.random(in: 0..<1, using: &random), .leastNonzeroMagnitude), u2 = Double.random(in: 0..<1, using: &random)
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}
