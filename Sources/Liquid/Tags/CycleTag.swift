/// `{% cycle 'a', 'b' %}` / `{% cycle group: 'a', 'b' %}`: prints the next value of its group per render.
final class CycleTag: Sendable {
    /// The group: a named group's expression, or a string made of the values (Ruby's `@variables.to_s`).
    let group: Expression
    let values: [Expression]
    /// Whether the group is a literal (it always is without a named group), whose key is then `constantGroup`.
    let hasConstantGroup: Bool
    let constantGroup: LiquidValue
    /// Whether all values are string literals (the usual `cycle 'odd', 'even'`); their texts are then
    /// `texts[textRanges[i]]` (read in place: no array of arrays to copy an element out of).
    let constantTexts: Bool
    let texts: [UInt8]
    let textRanges: [Range<Int>]

    init(group: Expression, values: [Expression]) {
        self.group = group
        self.values = values
        hasConstantGroup = group.constantValue != nil
        constantGroup = group.constantValue ?? .nil
        var texts: [UInt8] = []
        var ranges: [Range<Int>] = []
        var allText = true
        for value in values {
            guard case .literal(.string(let text)) = value else {
                allText = false
                break
            }
            let start = texts.count
            texts.append(contentsOf: text.utf8)
            ranges.append(start..<texts.count)
        }
        constantTexts = allText
        self.texts = allText ? texts : []
        textRanges = allText ? ranges : []
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
        let count = values.count
        let iteration: Int
        if hasConstantGroup {
            iteration = s.cycles.update(constantGroup) { $0 + 1 >= count ? 0 : $0 + 1 }
        } else {
            iteration = s.cycles.update(try s.evaluate(group)) { $0 + 1 >= count ? 0 : $0 + 1 }
        }
        guard iteration < count else { return }
        if constantTexts {
            let range = textRanges[iteration]
            texts.withUnsafeBufferPointer { s.out.append(contentsOf: UnsafeBufferPointer(rebasing: $0[range])) }
        } else {
            s.write(try s.evaluate(values[iteration]))
        }
    }
}
