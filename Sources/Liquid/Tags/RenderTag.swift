/// `{% render 'name' with|for value as alias, key: value %}`: renders a partial in an isolated scope
/// (only its arguments are visible; its assigns and counters stay inside).
final class RenderTag: Sendable {
    let templateName: String
    let variable: Expression?
    let isFor: Bool
    let alias: String?
    let attributes: [(name: String, value: Expression)]

    init(templateName: String, variable: Expression?, isFor: Bool, alias: String?, attributes: [(name: String, value: Expression)]) {
        self.templateName = templateName
        self.variable = variable
        self.isFor = isFor
        self.alias = alias
        self.attributes = attributes
    }

    static func parse(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) -> RenderTag {
        let m = p.markup(token)
        var start = 0
        while start < m.count, Lax.quotedString(m, start, m.count) == nil { start += 1 }
        guard start < m.count, var end = Lax.quotedString(m, start, m.count) else {
            throw p.syntaxError("Syntax error in tag 'render' - Template name must be a quoted string", at: token)
        }
        while let e = Lax.quotedString(m, end, m.count) { end = e }
        let clauses = IncludeTag.parseClauses(m, nameRange: start..<end)
        let attributes = Lax.tagAttributes(m).map { (name: $0.0, value: Lax.expression(m, $0.1)) }
        guard case .literal(.string(let name)) = Lax.expression(m, start..<end) else {
            throw p.syntaxError("Syntax error in tag 'render' - Template name must be a quoted string", at: token)
        }
        return RenderTag(
            templateName: name, variable: clauses.variable.map { Lax.expression(m, $0) }, isFor: clauses.isFor,
            alias: clauses.alias, attributes: attributes)
    }

    func render(_ s: inout RenderState) throws(LiquidError) {
        let partial = try s.loadPartial(templateName)
        let variableName = alias ?? String(templateName.split(separator: "/").last ?? Substring(templateName))
        let value = try variable.map { e throws(LiquidError) in try s.evaluate(e) }
        var arguments: [(name: String, value: LiquidValue)] = []
        for attribute in attributes { arguments.append((attribute.name, try s.evaluate(attribute.value))) }
        try s.enterPartial()
        defer { s.depth -= 1 }
        let saved = (s.locals, s.root, s.globals, s.forloop, s.cycles, s.forOffsets, s.ifchanged)
        defer { (s.locals, s.root, s.globals, s.forloop, s.cycles, s.forOffsets, s.ifchanged) = saved }
        s.locals = []
        s.globals = LiquidObject()
        s.forloop = nil
        s.cycles = SmallMap()
        s.forOffsets = SmallMap()
        s.ifchanged = nil

        func once(_ item: LiquidValue?, _ forloop: LiquidDropBox?, _ s: inout RenderState) throws(LiquidError) {
            s.root = []
            if let forloop { s.root.append(Binding(key: .forloop, value: .drop(forloop))) }
            for a in arguments { s.assign(Key(a.name), a.value) }
            if let item, item != .nil { s.assign(Key(variableName), item) }
            try s.render(partial.nodes)
            s.interrupt = 0
        }

        if isFor, let value {
            let items: [LiquidValue]?
            switch value {
            case .array(let a): items = a
            case .range, .object: items = (0..<LoopSegment(value, from: 0, to: nil, reversed: false).count).map {
                LoopSegment(value, from: 0, to: nil, reversed: false).item($0)
            }
            default: items = nil
            }
            if let items {
                let drop = ForloopDrop(name: templateName, length: items.count, parent: nil)
                let box = LiquidDropBox(drop)
                for (k, item) in items.enumerated() {
                    try s.countIteration()
                    drop.index = k
                    try once(item, box, &s)
                }
                return
            }
        }
        try once(value, nil, &s)
    }
}
