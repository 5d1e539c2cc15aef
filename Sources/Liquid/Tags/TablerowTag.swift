/// `{% tablerow item in collection cols: n limit: n offset: n %}...{% endtablerow %}`: HTML table rows.
final class TablerowTag: Sendable {
    let variable: String
    let collection: Expression
    let cols: Expression?
    let limit: Expression?
    let offset: Expression?
    let body: Block

    init(variable: String, collection: Expression, cols: Expression?, limit: Expression?, offset: Expression?, body: [Node]) {
        self.variable = variable
        self.collection = collection
        self.cols = cols
        self.limit = limit
        self.offset = offset
        self.body = Block(body)
    }

    /// Ruby's `TableRow::Syntax`: `(\w+)\s+in\s+(QuotedFragment+)`, then `TagAttributes`.
    static func parse(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) -> TablerowTag {
        let m = p.markup(token)
        var found: (String, Expression)?
        var i = 0
        search: while i < m.count {
            guard TemplateLexer.isWord(m[i]), i == 0 || !TemplateLexer.isWord(m[i - 1]) else {
                i += 1
                continue
            }
            var j = i
            while j < m.count, TemplateLexer.isWord(m[j]) { j += 1 }
            var k = j
            while k < m.count, TemplateLexer.isSpace(m[k]) { k += 1 }
            if k > j, k + 2 < m.count, m[k] == UInt8(ascii: "i"), m[k + 1] == UInt8(ascii: "n"),
                TemplateLexer.isSpace(m[k + 2])
            {
                var c = k + 2
                while c < m.count, TemplateLexer.isSpace(m[c]) { c += 1 }
                if let e = Lax.quotedFragmentPlus(m, c, m.count) {
                    found = (Lax.string(m, i..<j), Lax.expression(m, c..<e))
                    break search
                }
            }
            i = j
        }
        guard let (variable, collection) = found else {
            throw p.syntaxError("Syntax Error in 'table_row loop' - Valid syntax: table_row [item] in [collection] cols=3", at: token)
        }
        var cols: Expression?, limit: Expression?, offset: Expression?
        for (key, range) in Lax.tagAttributes(m) {
            switch key {
            case "cols": cols = Lax.expression(m, range)
            case "limit": limit = Lax.expression(m, range)
            case "offset": offset = Lax.expression(m, range)
            default: break
            }
        }
        let (body, _, end) = try p.parseBlockBody(token)
        guard end.name == "endtablerow" else { throw p.unknownTagError(end, in: "tablerow") }
        return TablerowTag(variable: variable, collection: collection, cols: cols, limit: limit, offset: offset, body: body)
    }

    func render(_ s: inout RenderState) throws(LiquidError) {
        let items = try s.evaluate(collection)
        guard items.isTruthy else { return }
        let from = try offset.map { e throws(LiquidError) in try RenderState.rubyToIValue(s.evaluate(e)) } ?? 0
        let to = try limit.map { e throws(LiquidError) in try from &+ RenderState.rubyToIValue(s.evaluate(e)) }
        let segment = LoopSegment(items, from: from, to: to, reversed: false)
        let length = segment.count
        let columns = try cols.map { e throws(LiquidError) in try RenderState.rubyToIValue(s.evaluate(e)) } ?? length
        s.out.append(contentsOf: "<tr class=\"row1\">\n".utf8)
        let drop = TablerowloopDrop(length: length, cols: columns)
        let mark = s.locals.count
        s.locals.append(Binding(key: .tablerowloop, value: .drop(LiquidDropBox(drop))))
        s.locals.append(Binding(key: Key(variable), value: .nil))
        defer { s.locals.removeSubrange(mark...) }
        for k in 0..<length {
            try s.countIteration()
            s.locals[mark + 1].value = segment.item(k)
            s.out.append(contentsOf: "<td class=\"col".utf8)
            s.writeInt(drop.col)
            s.out.append(contentsOf: "\">".utf8)
            try s.render(body)
            s.out.append(contentsOf: "</td>".utf8)
            if s.interrupt != 0 {
                let isBreak = s.interrupt == 1
                s.interrupt = 0
                if isBreak { break }
            }
            if drop.col == columns, drop.index != length - 1 {
                s.out.append(contentsOf: "</tr>\n<tr class=\"row".utf8)
                s.writeInt(drop.row + 1)
                s.out.append(contentsOf: "\">".utf8)
            }
            drop.increment()
        }
        s.out.append(contentsOf: "</tr>\n".utf8)
    }
}
