/// `{% include 'name' with|for value as alias, key: value %}`: renders a partial in the current scope
/// (its assigns are visible afterwards; `break` inside it breaks the enclosing loop).
final class IncludeTag: Sendable {
    let templateName: Expression
    let variable: Expression?
    let alias: String?
    let attributes: [(name: String, value: Expression)]

    init(templateName: Expression, variable: Expression?, alias: String?, attributes: [(name: String, value: Expression)]) {
        self.templateName = templateName
        self.variable = variable
        self.alias = alias
        self.attributes = attributes
    }

    /// Ruby's `(QF+)(\s+(?:with|for)\s+(QF+))?(\s+(?:as)\s+([\w-]+))?` followed by `TagAttributes`.
    static func parseClauses(_ m: [UInt8], nameRange: Range<Int>) -> (variable: Range<Int>?, isFor: Bool, alias: String?) {
        var i = nameRange.upperBound
        var variable: Range<Int>?
        var isFor = false
        var alias: String?
        func word(_ at: Int, _ w: String) -> Int? {
            var j = at
            guard j < m.count, TemplateLexer.isSpace(m[j]) else { return nil }
            while j < m.count, TemplateLexer.isSpace(m[j]) { j += 1 }
            let u = Array(w.utf8)
            guard j + u.count < m.count, Array(m[j..<(j + u.count)]) == u, TemplateLexer.isSpace(m[j + u.count]) else {
                return nil
            }
            j += u.count
            while j < m.count, TemplateLexer.isSpace(m[j]) { j += 1 }
            return j
        }
        if let j = word(i, "with") ?? word(i, "for"), let e = Lax.quotedFragmentPlus(m, j, m.count) {
            isFor = word(i, "for") != nil
            variable = j..<e
            i = e
        }
        if let j = word(i, "as") {
            var e = j
            while e < m.count, TemplateLexer.isWord(m[e]) || m[e] == UInt8(ascii: "-") { e += 1 }
            if e > j { alias = Lax.string(m, j..<e) }
        }
        return (variable, isFor, alias)
    }

    static func parse(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) -> IncludeTag {
        let m = p.markup(token)
        guard let start = Lax.firstQuotedFragment(m, 0, m.count)?.lowerBound,
            let end = Lax.quotedFragmentPlus(m, start, m.count)
        else {
            throw p.syntaxError("Error in tag 'include' - Valid syntax: include '[template]' (with|for) [object|collection]", at: token)
        }
        let clauses = parseClauses(m, nameRange: start..<end)
        let attributes = Lax.tagAttributes(m).map { (name: $0.0, value: Lax.expression(m, $0.1)) }
        return IncludeTag(
            templateName: Lax.expression(m, start..<end), variable: clauses.variable.map { Lax.expression(m, $0) },
            alias: clauses.alias, attributes: attributes)
    }

    func render(_ s: inout RenderState) throws(LiquidError) {
        guard case .string(let name) = try s.evaluate(templateName) else {
            throw LiquidError(.argument, "Argument error in tag 'include' - Illegal template name")
        }
        let partial = try s.loadPartial(name)
        let variableName = alias ?? String(name.split(separator: "/").last ?? Substring(name))
        let value: LiquidValue = try variable.map { e throws(LiquidError) in try s.evaluate(e) } ?? s.find(Key(name)) ?? .nil
        try s.enterPartial()
        defer { s.depth -= 1 }
        let mark = s.locals.count
        defer { s.locals.removeSubrange(mark...) }
        for attribute in attributes {
            s.locals.append(Binding(key: Key(attribute.name), value: try s.evaluate(attribute.value)))
        }
        s.locals.append(Binding(key: Key(variableName), value: .nil))
        let slot = s.locals.count - 1
        if case .array(let items) = value {
            for item in items {
                try s.countIteration()
                s.locals[slot].value = item
                try s.render(partial.nodes)
            }
        } else {
            s.locals[slot].value = value
            try s.render(partial.nodes)
        }
    }
}

extension RenderState {
    /// The compiled partial for `include` / `render`, cached for the rest of the render.
    mutating func loadPartial(_ name: String) throws(LiquidError) -> LiquidTemplate {
        if let t = partials[name] { return t }
        guard let fileSystem else {
            throw LiquidError(.templateNotFound, "This liquid context does not allow includes.")
        }
        let t = try fileSystem.template(named: name, options: parseOptions)
        partials[name] = t
        return t
    }

    mutating func enterPartial() throws(LiquidError) {
        depth += 1
        if depth > limits.maxRenderDepth {
            depth -= 1
            throw LiquidError(.depthLimitExceeded, "include/render nested deeper than \(limits.maxRenderDepth)")
        }
        try checkDeadline()
    }
}
