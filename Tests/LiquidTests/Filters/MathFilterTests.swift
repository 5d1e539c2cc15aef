import Testing

@testable import Liquid

/// Expected values are what Ruby Liquid 5.4 prints for `{{ input | filter: arg }}`.
struct MathFilterTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var filter: String
        var input: LiquidValue
        var args: [LiquidValue]
        var expected: String
        var testDescription: String { "\(input) | \(filter): \(args) → \(expected)" }
        init(_ filter: String, _ input: LiquidValue, _ args: [LiquidValue], _ expected: String) {
            self.filter = filter
            self.input = input
            self.args = args
            self.expected = expected
        }
    }

    static let cases: [Case] = [
        Case("plus", 10, [2], "12"),
        Case("plus", 0.1, [0.2], "0.3"),  // BigDecimal, not 0.30000000000000004
        Case("plus", "10.1", ["2.2"], "12.3"),
        Case("plus", "foo", ["2.0"], "2.0"),
        Case("plus", " 12abc", [1], "13"),
        Case("plus", "+5", [1], "6"),
        Case("plus", "1_000", [1], "1001"),
        Case("plus", "1e3", [1], "2"),
        Case("plus", " 1.5 ", [1], "2.5"),
        Case("plus", [1], [1], "1"),
        Case("plus", .int(.max), [1], "9.223372036854776e+18"),  // Ruby: a bignum; no trap here
        Case("minus", 10.1, [2.2], "7.9"),
        Case("minus", nil, [2], "-2"),
        Case("minus", .int(.min), [1], "-9.223372036854776e+18"),
        Case("times", 5, [2.1], "10.5"),
        Case("times", "5.0", ["2.1"], "10.5"),
        Case("times", .int(.max), [.int(.max)], "8.507059173023462e+37"),
        Case("times", 1e300, [1e300], "Infinity"),
        Case("times", 123456789.123456789, [1], "123456789.12345679"),
        Case("divided_by", 9, [2], "4"),
        Case("divided_by", -7, [2], "-4"),
        Case("divided_by", 20, [7.0], "2.857142857142857"),
        Case("divided_by", 1, [0.3], "3.3333333333333335"),
        Case("divided_by", 1.0, [3], "0.3333333333333333"),
        Case("divided_by", 10, [0], "error: divided by 0"),
        Case("divided_by", 10.0, [0], "Infinity"),
        Case("divided_by", 10, [0.0], "Infinity"),
        Case("divided_by", 0, [0.0], "NaN"),
        Case("divided_by", .int(.min), [-1], "9.223372036854776e+18"),
        Case("modulo", -7, [3], "2"),
        Case("modulo", 7, [-3], "-2"),
        Case("modulo", -7.5, [2], "0.5"),
        Case("modulo", 10.1, [7.0], "3.1"),
        Case("modulo", 10, [0], "error: divided by 0"),
        Case("modulo", 10, [0.0], "error: divided by 0"),
        Case("modulo", .int(.min), [-1], "0"),
        Case("round", 2.5, [], "3"),
        Case("round", -2.5, [], "-3"),
        Case("round", 2.675, [2], "2.68"),
        Case("round", 5.666, [-2], "0"),
        Case("round", 1234, [-2], "1200"),
        Case("round", 1250, [-2], "1300"),
        Case("round", -1250, [-2], "-1300"),
        Case("round", 12345.678, [-2], "12300"),
        Case("round", 5.5, [1000], "5.5"),
        Case("round", 5, [-1000], "0"),
        Case("round", 5.666, [1.2], "5.7"),
        Case("round", 5.666, ["foo"], "6"),
        Case("round", 1.5, [0.0], "2"),
        Case("round", 5, [.int(.max)], "5"),
        Case("round", 5.5, [.int(.min)], "0"),
        Case("ceil", 1.5, [], "2"),
        Case("ceil", "-5.1", [], "-5"),
        Case("ceil", 1e300, [], "1.0e+300"),  // Ruby prints the 301-digit integer
        Case("floor", -5.4, [], "-6"),
        Case("floor", "hello", [], "0"),
        Case("abs", -5.4, [], "5.4"),
        Case("abs", "-5", [], "5"),
        Case("abs", .int(.min), [], "9.223372036854776e+18"),
        Case("at_least", 5.4, [8.9], "8.9"),
        Case("at_least", "abc", [2], "2"),
        Case("at_most", 8, [5], "5"),
        Case("at_most", 5, [nil], "0"),
    ]

    @Test(arguments: cases)
    func math(_ c: Case) {
        #expect(render(c.filter, c.input, c.args) == c.expected)
    }

    @Test func infinityAndNaN() {
        let inf = LiquidValue.double(.infinity)
        #expect(render("round", inf) == "error: Computation results in 'Infinity'")
        #expect(render("round", inf, [2]) == "Infinity")
        #expect(render("ceil", inf) == "error: Computation results in 'Infinity'")
        #expect(render("floor", .double(.nan)) == "error: Computation results in 'NaN' (Not a Number)")
        #expect(render("abs", inf) == "Infinity")
        #expect(render("plus", inf, [1]) == "Infinity")
        #expect(render("modulo", inf, [2]) == "NaN")
        #expect(render("times", inf, [0]) == "NaN")
    }

    @Test func integersStayIntegers() throws {
        #expect(try apply("plus", 1, [2]) == .int(3))
        #expect(try apply("plus", 1, [2.0]) == .double(3))
        #expect(try apply("round", 2.4) == .int(2))
        #expect(try apply("round", 2.45, [1]) == .double(2.5))
    }

    @Test(arguments: ["plus", "minus", "times", "divided_by", "modulo", "at_least", "at_most"])
    func binaryArity(_ name: String) {
        #expect(render(name, 5) == "error: wrong number of arguments (given 1, expected 2)")
        #expect(render(name, 5, [1, 2]) == "error: wrong number of arguments (given 3, expected 2)")
    }

    @Test(arguments: ["abs", "ceil", "floor"])
    func unaryArity(_ name: String) {
        #expect(render(name, 5, [1]) == "error: wrong number of arguments (given 2, expected 1)")
    }

    @Test func roundArity() {
        #expect(render("round", 5, [1, 2]) == "error: wrong number of arguments (given 3, expected 1..2)")
    }
}
