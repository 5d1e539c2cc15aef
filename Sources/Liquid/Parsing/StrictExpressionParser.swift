/// Shopify's strict grammar (Ruby's `Liquid::Parser`) over ``ExpressionLexer`` tokens, building
/// expressions directly.
struct StrictExpressionParser {
    var tokens: [ExpressionToken]
    var p = 0
    let options: LiquidParseOptions

    init(_ markup: [UInt8], options: LiquidParseOptions) throws(LiquidError) {
        tokens = try ExpressionLexer.tokenize(markup)
        self.options = options
    }

    func look(_ kind: ExpressionToken.Kind, _ ahead: Int = 0) -> Bool {
        p + ahead < tokens.count && tokens[p + ahead].kind == kind
    }

    @discardableResult
    mutating func consume(_ kind: ExpressionToken.Kind) throws(LiquidError) -> String {
        guard p < tokens.count else { throw LiquidError(.syntax, "Expected \(kind.rawValue) but found end_of_string") }
        guard tokens[p].kind == kind else {
            throw LiquidError(.syntax, "Expected \(kind.rawValue) but found \(tokens[p].kind.rawValue)")
        }
        p += 1
        return tokens[p - 1].text
    }

    mutating func consumeIf(_ kind: ExpressionToken.Kind) -> String? {
        guard look(kind) else { return nil }
        p += 1
        return tokens[p - 1].text
    }

    mutating func id(_ word: String) -> Bool {
        guard look(.id), tokens[p].text == word else { return false }
        p += 1
        return true
    }

    /// An expression and its canonical text (Ruby's `Parser#expression` string).
    mutating func expression(depth: Int = 0, inCondition: Bool = false) throws(LiquidError) -> (Expression, String) {
        guard depth < 64 else { throw LiquidError(.syntax, "Expression nested too deeply") }
        guard p < tokens.count else { throw LiquidError(.syntax, "[:end_of_string] is not a valid expression") }
        let token = tokens[p]
        switch token.kind {
        case .id:
            p += 1
            let (segments, text) = try lookups(depth: depth)
            if segments.isEmpty {
                switch token.text {
                case "nil", "null": return (.nilLiteral, token.text)
                case "true": return (.literal(.bool(true)), token.text)
                case "false": return (.literal(.bool(false)), token.text)
                case "blank": return (inCondition ? .blank : .literal(.string("")), token.text)
                case "empty": return (inCondition ? .empty : .literal(.string("")), token.text)
                default: break
                }
            }
            let path = token.text + text
            return (.variable(VariableLookup(root: .name(Key(token.text)), segments: segments, path: path)), path)
        case .openSquare:
            p += 1
            let (inner, innerText) = try expression(depth: depth + 1)
            try consume(.closeSquare)
            let (segments, text) = try lookups(depth: depth)
            let root: VariableLookup.Root
            if case .literal(.string(let s)) = inner { root = .name(Key(s)) } else { root = .dynamic(inner) }
            let path = "[" + innerText + "]" + text
            return (.variable(VariableLookup(root: root, segments: segments, path: path)), path)
        case .string:
            p += 1
            return (.literal(.string(String(token.text.dropFirst().dropLast()))), token.text)
        case .number:
            p += 1
            return (.literal(Self.number(token.text)), token.text)
        case .openRound:
            p += 1
            let (first, firstText) = try expression(depth: depth + 1)
            try consume(.dotdot)
            let (last, lastText) = try expression(depth: depth + 1)
            try consume(.closeRound)
            return (Self.range(first, last), "(\(firstText)..\(lastText))")
        default:
            throw LiquidError(.syntax, "\(token.kind.rawValue) '\(token.text)' is not a valid expression")
        }
    }

    static func number(_ text: String) -> LiquidValue {
        if !text.contains("."), let i = Int(text) { return .int(i) }
        return .double(Double(text) ?? 0)
    }

    /// A range; constant when both ends are (Ruby's `RangeLookup.parse` then uses `to_i`).
    static func range(_ first: Expression, _ last: Expression) -> Expression {
        if let a = first.constantValue, let b = last.constantValue,
            let x = RenderState.rangeBound(a), let y = RenderState.rangeBound(b)
        {
            return .literal(.range(first: x, last: y))
        }
        return .range(first, last)
    }

    mutating func lookups(depth: Int) throws(LiquidError) -> ([VariableLookup.Segment], String) {
        var segments: [VariableLookup.Segment] = []
        var text = ""
        while true {
            if look(.openSquare) {
                p += 1
                let (inner, innerText) = try expression(depth: depth + 1)
                try consume(.closeSquare)
                segments.append(Self.segment(for: inner))
                text += "[" + innerText + "]"
            } else if look(.dot) {
                p += 1
                let name = try consume(.id)
                segments.append(VariableLookup.commands.contains(name) ? .command(Key(name)) : .key(Key(name)))
                text += "." + name
            } else {
                return (segments, text)
            }
        }
    }

    static func segment(for inner: Expression) -> VariableLookup.Segment {
        switch inner {
        case .literal(.string(let s)): .key(Key(s))
        case .literal(.int(let i)): .index(i)
        default: .dynamic(inner)
        }
    }

    /// Ruby's `Parser#argument`: `name: expr` or `expr`.
    mutating func argument() throws(LiquidError) -> (name: String?, value: Expression) {
        var name: String?
        if look(.id), look(.colon, 1) {
            name = try consume(.id)
            try consume(.colon)
        }
        return (name, try expression().0)
    }

    /// Ruby's `Variable#strict_parse`: `expr (| filter (: args)?)*`.
    mutating func filteredExpression(resolve: (String) throws(LiquidError) -> ResolvedFilter)
        throws(LiquidError) -> FilteredExpression
    {
        if look(.end) { return .empty }
        let (expr, _) = try expression()
        var filters: [FilterCall] = []
        while consumeIf(.pipe) != nil {
            let name = try consume(.id)
            var positional: [Expression] = []
            var keyword: [(name: String, value: Expression)] = []
            if consumeIf(.colon) != nil {
                repeat {
                    let arg = try argument()
                    if let n = arg.name { keyword.append((n, arg.value)) } else { positional.append(arg.value) }
                } while consumeIf(.comma) != nil
            }
            filters.append(
                FilterCall(name: name, resolved: try resolve(name), positional: positional, keyword: keyword))
        }
        try consume(.end)
        return FilteredExpression(expression: expr, filters: filters)
    }

    /// Ruby's `If#strict_parse`: comparisons joined by `and` / `or`.
    mutating func condition() throws(LiquidError) -> Condition {
        var comparisons: [Condition.Comparison] = []
        var relations: [Bool] = []
        while true {
            let (left, _) = try expression(inCondition: true)
            if let op = consumeIf(.comparison) {
                let (right, _) = try expression(inCondition: true)
                comparisons.append(.init(left: left, op: Condition.Operator(op), right: right))
            } else {
                comparisons.append(.init(left: left, op: nil, right: .nilLiteral))
            }
            if id("and") {
                relations.append(true)
            } else if id("or") {
                relations.append(false)
            } else {
                break
            }
        }
        try consume(.end)
        return Condition(comparisons: comparisons, relations: relations)
    }
}
