import Liquid
import Testing

@Suite struct LiquidValueTests {
    @Test func truthiness() {
        #expect(!LiquidValue.nil.isTruthy)
        #expect(!LiquidValue.bool(false).isTruthy)
        #expect(LiquidValue.int(0).isTruthy)
        #expect(LiquidValue.string("").isTruthy)
    }

    @Test func objectKeepsInsertionOrder() {
        var o = LiquidObject([("b", 1), ("a", 2)])
        o["c"] = 3
        o["b"] = 4
        #expect(o.orderedKeys == ["b", "a", "c"])
        #expect(o["b"] == 4)
        o["a"] = nil
        #expect(o.orderedKeys == ["b", "c"])
    }
}

@Suite struct RubyConversionTests {
    @Test(arguments: [
        (1.0, "1.0"), (0.1, "0.1"), (123.456, "123.456"), (-2.5, "-2.5"), (1e15, "1.0e+15"),
        (1e14, "100000000000000.0"), (123456789012345.0, "123456789012345.0"),
        (1234567890123456.0, "1.234567890123456e+15"), (1000000000000000.5, "1000000000000000.5"), (1.5e15, "1.5e+15"),
        (999_999_999_999_999.0, "999999999999999.0"), (1_000_000_000_000_344.2, "1000000000000344.2"),
        (1e16, "1.0e+16"), (1.5e20, "1.5e+20"), (0.0001, "0.0001"), (0.00001, "1.0e-05"), (100.0, "100.0"),
        (2.675, "2.675"), (0.0, "0.0"),
    ])
    func floatToString(value: Double, expected: String) {
        #expect(LiquidValue.rubyFloatString(value) == expected)
    }

    @Test func outputOfComposites() {
        #expect(LiquidValue.array([1, "a", nil, [2.5]]).rubyString == "1a2.5")
        #expect(LiquidValue.range(first: 1, last: 3).rubyString == "1..3")
        #expect(LiquidValue.object(LiquidObject([("a", 1), ("b", nil)])).rubyString == "{\"a\"=>1, \"b\"=>nil}")
    }
}
