/// `{% cycle 'a', 'b' %}` / `{% cycle group: 'a', 'b' %}`: prints the next value of its group per render.
final class CycleTag: Sendable {
    /// The group: a named group's expression, or a string made of the values (Ruby's `@variables.to_s`).
    let group: Expression
    let values: [Expression]
    /// The group's key when it is a literal (it always is without a named group).
    let constantGroup: LiquidValue?
    /// The text of each value when all of them are string literals (the usual `cycle 'odd', 'even'`).
    let constantTexts: [[UInt8]]?

    init(group: Expression, values: [Expression]) {
        self.group = group
        self.values = values
        constantGroup = group.constantValue
        var texts: [[UInt8]]? = []
        for value in values {
            if case .literal(.string(let text)) = value { texts?.append(Array(text.utf8)) } else { texts = nil }
        }
        constantTexts = texts
    }

    static func parse(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) -> CycleTag {
        let m = p.markup(token)
        // NamedSyntax: \A(QF)\s*:\s*(.*)
        if let e = Lax.quotedFragment(m, 0, m.count) {
            var i = e
            while i < m.count, TemplateLexer.isSpace(m[i]) { i += 1 }
            if i < m.count, m[i] == UInt8(ascii: ":") {
                return CycleTag(group: Lax.expression(m, 0..<e), values: values(m, from: i + 1))
            }
            // Lax QF includes ':' so `name:` without a space lands here.
            if e > 0, m[e - 1] == UInt8(ascii: ":"), e - 1 > 0 {
                return CycleTag(group: Lax.expression(m, 0..<(e - 1)), values: values(m, from: e))
            }
        }
        guard Lax.quotedFragment(m, 0, m.count) != nil else {
            throw p.syntaxError("Syntax Error in 'cycle' - Valid syntax: cycle [name :] var [, var2, var3 ...]", at: token)
        }
        let vs = values(m, from: 0)
        p.cycleCounter += 1
        let key = "[" + vs.map(\.rubyInspect).joined(separator: ", ") + "]"
        let hasVariables = vs.contains { if case .literal = $0 { false } else { true } }
        return CycleTag(group: .literal(.string(hasVariables ? key + "#\(p.cycleCounter)" : key)), values: vs)
    }

    /// Ruby's `variables_from_string`: split on commas, first QuotedFragment of each part.
    static func values(_ m: [UInt8], from: Int) -> [Expression] {
        var out: [Expression] = []
        var start = from
        var i = from
        while i <= m.count {
            if i == m.count || m[i] == UInt8(ascii: ",") {
                if let r = Lax.firstQuotedFragment(m, start, i) { out.append(Lax.expression(m, r)) }
                start = i + 1
            }
            i += 1
        }
        return out
    }

    func render(_ s: inout RenderState) throws(LiquidError) {
        let key: LiquidValue
        if let constantGroup { key = constantGroup } else { key = try s.evaluate(group) }
        let count = values.count
        let iteration = s.cycles.update(key) { $0 + 1 >= count ? 0 : $0 + 1 }
        guard iteration < count else { return }
        if let constantTexts {
            s.out.append(contentsOf: constantTexts[iteration])
        } else {
            s.write(try s.evaluate(values[iteration]))
        }
    }
}
