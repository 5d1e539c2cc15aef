/// `{% case x %}{% when a, b or c %}...{% else %}...{% endcase %}`. As in Shopify Liquid, every matching
/// `when` value renders its body (a body listed twice renders twice) and `else` blocks render when no
/// `when` before them matched.
final class CaseTag: Sendable {
    struct Branch: Sendable {
        /// `nil` for `else`.
        var value: Expression?
        var body: Int
    }

    let subject: Expression
    let branches: [Branch]
    let bodies: [Block]
    let blank: Bool

    init(subject: Expression, branches: [Branch], bodies: [[Node]], blank: Bool) {
        self.subject = subject
        self.branches = branches
        self.bodies = bodies.map(Block.init)
        self.blank = blank
    }

    static func parse(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) -> CaseTag {
        let m = p.markup(token)
        guard let subjectRange = Lax.firstQuotedFragment(m, 0, m.count) else {
            throw p.syntaxError("Syntax Error in tag 'case' - Valid syntax: case [condition]", at: token)
        }
        let subject = Lax.expression(m, subjectRange)
        var branches: [Branch] = []
        var bodies: [[Node]] = []
        var blank = true
        // The body before the first `when` is parsed and dropped.
        var (_, firstBlank, end) = try p.parseBlockBody(token)
        blank = firstBlank
        while true {
            switch end.name {
            case "endcase":
                if blank { bodies = bodies.map(Node.removingBlankText) }
                return CaseTag(subject: subject, branches: branches, bodies: bodies, blank: blank)
            case "when":
                let values = try whenValues(p.markup(end), p, end)
                for v in values { branches.append(Branch(value: v, body: bodies.count)) }
            case "else":
                let markup = p.markup(end)
                if !markup.allSatisfy(TemplateLexer.isSpace) {
                    throw p.syntaxError("Syntax Error in tag 'case' - Valid else condition: {% else %} (no parameters) ", at: end)
                }
                branches.append(Branch(value: nil, body: bodies.count))
            default:
                throw p.unknownTagError(end, in: "case")
            }
            let (nodes, bodyBlank, next) = try p.parseBlockBody(token)
            blank = blank && bodyBlank
            bodies.append(nodes)
            end = next
        }
    }

    /// Ruby's `WhenSyntax`: `(QF)(?:(?:\s+or\s+|\s*,\s*)(QF.*))?`, repeatedly.
    static func whenValues(_ m: [UInt8], _ p: Parser, _ token: TemplateToken) throws(LiquidError) -> [Expression] {
        var values: [Expression] = []
        if p.strict {
            // Strict mode: `expr ((or | ,) expr)*` and nothing else (Shopify's strict2 behaviour).
            do throws(LiquidError) {
                var sp = try StrictExpressionParser(m, options: p.options)
                repeat {
                    values.append(try sp.expression(inCondition: true).0)
                } while sp.consumeIf(.comma) != nil || sp.id("or")
                try sp.consume(.end)
                return values
            } catch {
                throw p.located(error, token)
            }
        }
        var start = 0
        while true {
            guard let r = Lax.firstQuotedFragment(m, start, m.count) else {
                throw p.syntaxError(
                    "Syntax Error in tag 'case' - Valid when condition: {% when [condition] [or condition2...] %}",
                    at: token)
            }
            values.append(Lax.expression(m, r, inCondition: true))
            // separator
            var i = r.upperBound
            var next: Int?
            var j = i
            while j < m.count, TemplateLexer.isSpace(m[j]) { j += 1 }
            if j < m.count, m[j] == UInt8(ascii: ",") {
                j += 1
                while j < m.count, TemplateLexer.isSpace(m[j]) { j += 1 }
                next = j
            } else if j > i, j + 2 < m.count, m[j] == UInt8(ascii: "o"), m[j + 1] == UInt8(ascii: "r"),
                TemplateLexer.isSpace(m[j + 2])
            {
                j += 2
                while j < m.count, TemplateLexer.isSpace(m[j]) { j += 1 }
                next = j
            }
            i = next ?? m.count
            guard let n = next, Lax.quotedFragment(m, n, m.count) != nil else { return values }
            start = i
        }
    }

    func render(_ s: inout RenderState) throws(LiquidError) {
        var executeElse = true
        let left = subject
        for branch in branches {
            guard let value = branch.value else {
                if executeElse { try s.render(bodies[branch.body]) }
                continue
            }
            if try s.equalVariables(left, value) {
                executeElse = false
                try s.render(bodies[branch.body])
            }
        }
    }
}
