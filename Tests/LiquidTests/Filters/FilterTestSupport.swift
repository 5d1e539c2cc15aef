@testable import Liquid

/// Calls a standard filter directly.
func apply(
    _ name: String, _ input: LiquidValue, _ positional: [LiquidValue] = [],
    keyword: [(name: String, value: LiquidValue)] = [], now: Double = 1_700_000_000, utcOffset: Int = 0
) throws(LiquidFilterError) -> LiquidValue {
    guard let filter = LiquidFilters.standard[name] else { throw LiquidFilterError(.invalid, "no filter \(name)") }
    return try filter(
        input, LiquidFilterArguments(positional: positional, keyword: keyword),
        LiquidFilterEnvironment(now: now, utcOffset: utcOffset))
}

/// The filter's result as Liquid prints it, or `error: <message>`.
func render(_ name: String, _ input: LiquidValue, _ positional: [LiquidValue] = [], utcOffset: Int = 0) -> String {
    do {
        return try apply(name, input, positional, utcOffset: utcOffset).rubyString
    } catch {
        return "error: \(error.message)"
    }
}
