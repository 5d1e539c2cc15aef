import Crypto
import Foundation

/// A deterministic generator (SplitMix64) seeded from the SHA-256 of a string.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: String) {
        var s: UInt64 = 0
        for b in SHA256.hash(data: Data(seed.utf8)).prefix(8) { s = s << 8 | UInt64(b) }
        state = s
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
