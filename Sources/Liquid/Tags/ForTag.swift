/// `{% for item in collection limit: n offset: m|continue reversed %}...{% else %}...{% endfor %}`.
final class ForTag: Sendable {
    let variable: Key
    let collection: Expression
    /// `forloop.name` and the key of `offset: continue` (`item-collection`).
    let name: String
    let limit: Expression?
    let offset: Expression?
    let offsetContinue: Bool
    let reversed: Bool
    let body: Block
    let elseBody: Block?
    let blank: Bool
    /// Whether the body may read `forloop` (checked on its source text; `include` counts as may).
    let needsForloop: Bool

    init(
        variable: String, collection: Expression, name: String, limit: Expression?, offset: Expression?,
        offsetContinue: Bool, reversed: Bool, body: [Node], elseBody: [Node]?, blank: Bool, needsForloop: Bool
    ) {
        self.needsForloop = needsForloop
        self.variable = Key(variable)
        self.collection = collection
        self.name = name
        self.limit = limit
        self.offset = offset
        self.offsetContinue = offsetContinue
        self.reversed = reversed
        self.body = Block(body)
        self.elseBody = elseBody.map(Block.init)
        self.blank = blank
    }

    struct Header {
        var variable = ""
        var collection: Expression = .nilLiteral
        var collectionText = ""
        var limit: Expression?
        var offset: Expression?
        var offsetContinue = false
        var reversed = false
    }

    static func parseHeader(_ p: Parser, _ token: TemplateToken) throws(LiquidError) -> Header {
        let m = p.markup(token)
        var h = Header()
        if p.strict {
            do throws(LiquidError) {
                var sp = try StrictExpressionParser(m, options: p.options)
                h.variable = try sp.consume(.id)
                guard sp.id("in") else { throw LiquidError(.syntax, "For loops require an 'in' clause") }
                let (collection, text) = try sp.expression()
                h.collection = collection
                h.collectionText = text
                h.reversed = sp.id("reversed")
                while sp.look(.id), sp.look(.colon, 1) {
                    let attribute = try sp.consume(.id)
                    guard attribute == "limit" || attribute == "offset" else {
                        throw LiquidError(.syntax, "Invalid attribute in for loop. Valid attributes are limit and offset")
                    }
                    try sp.consume(.colon)
                    let (value, valueText) = try sp.expression()
                    set(&h, attribute, value, valueText)
                    _ = sp.consumeIf(.comma)
                }
                try sp.consume(.end)
            } catch {
                throw p.located(error, token)
            }
            return h
        }
        // Lax: \A([\w-]+)\s+in\s+(QuotedFragment+)\s*(reversed)?
        var i = 0
        while i < m.count, TemplateLexer.isWord(m[i]) || m[i] == UInt8(ascii: "-") { i += 1 }
        var j = i
        while j < m.count, TemplateLexer.isSpace(m[j]) { j += 1 }
        guard i > 0, j > i, j + 2 < m.count, m[j] == UInt8(ascii: "i"), m[j + 1] == UInt8(ascii: "n"),
            TemplateLexer.isSpace(m[j + 2])
        else {
            throw p.syntaxError("Syntax Error in 'for loop' - Valid syntax: for [item] in [collection]", at: token)
        }
        var k = j + 2
        while k < m.count, TemplateLexer.isSpace(m[k]) { k += 1 }
        guard let e = Lax.quotedFragmentPlus(m, k, m.count) else {
            throw p.syntaxError("Syntax Error in 'for loop' - Valid syntax: for [item] in [collection]", at: token)
        }
        h.variable = Lax.string(m, 0..<i)
        h.collectionText = Lax.string(m, k..<e)
        h.collection = Lax.expression(m, k..<e)
        var r = e
        while r < m.count, TemplateLexer.isSpace(m[r]) { r += 1 }
        h.reversed = r + 8 <= m.count && Lax.string(m, r..<(r + 8)) == "reversed"
        for (key, range) in Lax.tagAttributes(m) {
            set(&h, key, Lax.expression(m, range), Lax.string(m, range))
        }
        return h
    }

    static func set(_ h: inout Header, _ key: String, _ value: Expression, _ text: String) {
        switch key {
        case "offset":
            if text == "continue" {
                h.offsetContinue = true
                h.offset = nil
            } else {
                h.offsetContinue = false
                h.offset = value
            }
        case "limit": h.limit = value
        default: break
        }
    }

    static func parse(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) -> ForTag {
        let h = try parseHeader(p, token)
        if h.offsetContinue { p.continuesLoops = true }
        let bodyStart = token.end
        var (body, blank, end) = try p.parseBlockBody(token)
        let bodyText = p.src[bodyStart..<max(bodyStart, end.start)]
        let needsForloop = contains(bodyText, "forloop") || contains(bodyText, "include")
        var elseBody: [Node]?
        if end.name == "else" {
            let (nodes, elseBlank, next) = try p.parseBlockBody(token)
            elseBody = nodes
            blank = blank && elseBlank
            end = next
        }
        guard end.name == "endfor" else { throw p.unknownTagError(end, in: "for") }
        if blank {
            body = Node.removingBlankText(body)
            elseBody = elseBody.map(Node.removingBlankText)
        }
        return ForTag(
            variable: h.variable, collection: h.collection, name: h.variable + "-" + h.collectionText,
            limit: h.limit, offset: h.offset, offsetContinue: h.offsetContinue, reversed: h.reversed, body: body,
            elseBody: elseBody, blank: blank, needsForloop: needsForloop)
    }

    static func contains(_ text: ArraySlice<UInt8>, _ word: String) -> Bool {
        let w = Array(word.utf8)
        guard text.count >= w.count else { return false }
        var i = text.startIndex
        while i <= text.endIndex - w.count {
            if text[i] == w[0], text[i..<(i + w.count)].elementsEqual(w) { return true }
            i += 1
        }
        return false
    }

    func render(_ s: inout RenderState) throws(LiquidError) {
        var from = 0
        if offsetContinue {
            from = s.forOffsets[name] ?? 0
        } else if let offset {
            let v = try s.evaluate(offset)
            if v != .nil { from = try RenderState.toInteger(v) }
        }
        let items = try s.evaluate(collection)
        var to: Int?
        if let limit {
            let v = try s.evaluate(limit)
            if v != .nil { to = try RenderState.toInteger(v).addingReportingOverflow(from).partialValue }
        }
        let segment = LoopSegment(items, from: from, to: to, reversed: reversed)
        if s.recordsForOffsets { s.forOffsets[name] = from &+ segment.count }
        guard segment.count > 0 else {
            if let elseBody { try s.render(elseBody) }
            return
        }
        let mark = s.locals.count
        let enclosing = s.forloop
        var drop: ForloopDrop?
        if needsForloop {
            let parent = enclosing.map { LiquidDropBox($0) }
            let d = ForloopDrop(name: name, length: segment.count, parent: parent)
            s.forloop = d
            s.locals.append(Binding(key: .forloop, value: .drop(LiquidDropBox(d))))
            drop = d
        }
        s.locals.append(Binding(key: variable, value: .nil))
        defer {
            while s.locals.count > mark { s.locals.removeLast() }
            s.forloop = enclosing
        }
        let slot = s.locals.count - 1
        for k in 0..<segment.count {
            try s.countIteration()
            s.locals[slot].value = segment.item(k)
            drop?.index = k
            try s.render(body)
            if s.interrupt != 0 {
                let isBreak = s.interrupt == 1
                s.interrupt = 0
                if isBreak { break }
            }
        }
    }
}
