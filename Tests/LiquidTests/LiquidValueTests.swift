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
