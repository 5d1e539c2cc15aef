/// Parses template source into nodes: Shopify's `BlockBody` / `Block` logic (whitespace control, blank
/// blocks, unknown-tag errors, nesting depth) with tags dispatched by name.
struct Parser {
    let src: [UInt8]
    let options: LiquidParseOptions
    let templateName: String?
    var tokens: [TemplateToken]
    var index = 0
    var depth = 0
    var trimNext = false
    var liquidMode = false
    var cycleCounter = 0
    /// Whether a loop may start where an earlier one stopped: there is a `for` with `offset: continue`, or a
    /// partial (which may have one). Renders record where loops stop only then.
    var continuesLoops = false

    init(source: String, name: String?, options: LiquidParseOptions) {
        src = Array(source.utf8)
        self.options = options
        templateName = name
        tokens = TemplateLexer.tokenize(src)
    }

    var strict: Bool { options.errorMode == .strict }

    // MARK: Errors

    func location(_ offset: Int) -> (line: Int, column: Int) {
        var line = 1
        var lineStart = 0
        var i = 0
        let end = min(offset, src.count)
        while i < end {
            if src[i] == UInt8(ascii: "\n") {
                line += 1
                lineStart = i + 1
            }
            i += 1
        }
        let column = String(decoding: src[lineStart..<end], as: UTF8.self).count + 1
        return (line, column)
    }

    func syntaxError(_ message: String, at token: TemplateToken) -> LiquidError {
        let (line, column) = location(token.start)
        return LiquidError(.syntax, message, templateName: templateName, line: line, column: column)
    }

    /// Gives an error from an expression parser the location of the token.
    func located(_ error: LiquidError, _ token: TemplateToken) -> LiquidError {
        var e = error
        if e.line == nil {
            let (line, column) = location(token.start)
            e.line = line
            e.column = column
            e.templateName = templateName
        }
        return e
    }

    func text(_ token: TemplateToken) -> String { String(decoding: src[token.start..<token.end], as: UTF8.self) }
    func markup(_ token: TemplateToken) -> [UInt8] { Array(src[token.markupStart..<token.markupEnd]) }
    func markupString(_ token: TemplateToken) -> String {
        String(decoding: src[token.markupStart..<token.markupEnd], as: UTF8.self)
    }

    func unknownTagError(_ token: TemplateToken, in blockName: String) -> LiquidError {
        if token.name == "else" {
            return syntaxError("\(blockName) tag does not expect 'else' tag", at: token)
        }
        if token.name.hasPrefix("end") {
            return syntaxError(
                "'\(token.name)' is not a valid delimiter for \(blockName) tags. use end\(blockName)", at: token)
        }
        return syntaxError("Unknown tag '\(token.name)'", at: token)
    }

    // MARK: Document and bodies

    mutating func parseDocument() throws(LiquidError) -> [Node] {
        var nodes: [Node] = []
        var blank = true
        if let token = try parseBody(&nodes, &blank) {
            if token.name == "else" || token.name == "end" {
                throw syntaxError("Unexpected outer '\(token.name)' tag", at: token)
            }
            throw syntaxError("Unknown tag '\(token.name)'", at: token)
        }
        return nodes
    }

    /// Parses nodes until end of input (returns nil) or a tag no parser handles (returns its token: an end
    /// tag, `else`, `when`, ... for the enclosing block to judge).
    mutating func parseBody(_ nodes: inout [Node], _ blank: inout Bool) throws(LiquidError) -> TemplateToken? {
        while index < tokens.count {
            let token = tokens[index]
            index += 1
            switch token.kind {
            case .text:
                var s = token.start
                if trimNext {
                    while s < token.end, TemplateLexer.isSpace(src[s]) { s += 1 }
                    trimNext = false
                }
                if s < token.end {
                    let slice = src[s..<token.end]
                    if blank, !slice.allSatisfy(TemplateLexer.isSpace) { blank = false }
                    nodes.append(.text(Array(slice)))
                }
            case .unterminated:
                if src[token.start + 1] == UInt8(ascii: "%") {
                    throw syntaxError("Tag '{%' was not properly terminated with regexp: /\\%\\}/", at: token)
                }
                throw syntaxError("Variable '{{' was not properly terminated with regexp: /\\}\\}/", at: token)
            case .output:
                whitespace(token, &nodes)
                if token.malformed {
                    throw syntaxError(
                        "Variable '\(text(token))' was not properly terminated with regexp: /\\}\\}/", at: token)
                }
                nodes.append(.output(try filteredExpression(markup(token), token)))
                blank = false
            case .tag:
                if !liquidMode { whitespace(token, &nodes) }
                if token.malformed {
                    if liquidMode { return token }
                    throw syntaxError("Tag '\(text(token))' was not properly terminated with regexp: /\\%\\}/", at: token)
                }
                if token.name == "liquid" {
                    try parseLiquidTag(token, &nodes, &blank)
                    continue
                }
                switch try parseTag(token) {
                case .node(let node):
                    if blank, !node.isBlank { blank = false }
                    nodes.append(node)
                case .nonBlankNode(let node):
                    blank = false
                    nodes.append(node)
                case .nothing:
                    break
                case .unknown:
                    return token
                }
            }
        }
        return nil
    }

    /// Ruby's `whitespace_handler`: `{%-` strips the preceding text, `-%}` the following.
    mutating func whitespace(_ token: TemplateToken, _ nodes: inout [Node]) {
        if token.trimLeft, case .text(var bytes) = nodes.last {
            while let last = bytes.last, TemplateLexer.isSpace(last) { bytes.removeLast() }
            if bytes.isEmpty {
                nodes.removeLast()
            } else {
                nodes[nodes.count - 1] = .text(bytes)
            }
        }
        trimNext = token.trimRight
    }

    mutating func parseLiquidTag(_ token: TemplateToken, _ nodes: inout [Node], _ blank: inout Bool) throws(LiquidError) {
        depth += 1
        defer { depth -= 1 }
        if depth > options.maxNestingDepth { throw syntaxError("Nesting too deep", at: token) }
        let lines = TemplateLexer.liquidLines(src, from: token.markupStart, to: token.markupEnd)
        let saved = (tokens, index, liquidMode)
        tokens = lines
        index = 0
        liquidMode = true
        defer { (tokens, index, liquidMode) = saved }
        if let end = try parseBody(&nodes, &blank) {
            if end.malformed { throw syntaxError("Unknown tag '\(end.name)'", at: end) }
            if end.name.hasPrefix("end") {
                throw syntaxError("'\(end.name)' is not a valid delimiter for liquid tags. use %}", at: end)
            }
            throw syntaxError("Unknown tag '\(end.name)'", at: end)
        }
    }

    /// Parses the body of a block tag up to the next tag it does not handle itself.
    mutating func parseBlockBody(_ opening: TemplateToken) throws(LiquidError) -> (nodes: [Node], blank: Bool, end: TemplateToken) {
        depth += 1
        defer { depth -= 1 }
        if depth > options.maxNestingDepth { throw syntaxError("Nesting too deep", at: opening) }
        var nodes: [Node] = []
        var blank = true
        guard let end = try parseBody(&nodes, &blank) else {
            throw syntaxError("'\(opening.name)' tag was never closed", at: opening)
        }
        return (nodes, blank, end)
    }

    enum TagResult {
        case node(Node)
        /// A node that is not blank even though it may look like whitespace (raw).
        case nonBlankNode(Node)
        case nothing
        case unknown
    }

    mutating func parseTag(_ token: TemplateToken) throws(LiquidError) -> TagResult {
        switch token.name {
        case "assign": return .node(.assign(try AssignTag.parse(&self, token)))
        case "capture": return .node(.capture(try CaptureTag.parse(&self, token)))
        case "if", "unless": return .node(.conditional(try IfTag.parse(&self, token)))
        case "case": return .node(.caseTag(try CaseTag.parse(&self, token)))
        case "for": return .node(.forLoop(try ForTag.parse(&self, token)))
        case "tablerow": return .node(.tablerow(try TablerowTag.parse(&self, token)))
        case "cycle": return .node(.cycle(try CycleTag.parse(&self, token)))
        case "increment", "decrement": return .node(.counter(CounterTag.parse(&self, token)))
        case "ifchanged": return .node(.ifchanged(try IfchangedTag.parse(&self, token)))
        case "include":
            continuesLoops = true
            return .node(.include(try IncludeTag.parse(&self, token)))
        case "render":
            continuesLoops = true
            return .node(.render(try RenderTag.parse(&self, token)))
        case "break": return .node(.interrupt(isBreak: true))
        case "continue": return .node(.interrupt(isBreak: false))
        case "echo":
            return .nonBlankNode(.output(try filteredExpression(markup(token), token)))
        case "abort_message": return .nonBlankNode(.abort(try AbortMessageTag.parse(&self, token)))
        case "comment":
            try CommentTag.skip(&self, token)
            return .nothing
        case "doc":
            try CommentTag.skipDoc(&self, token)
            return .nothing
        case "#":
            try CommentTag.checkInline(&self, token)
            return .nothing
        case "raw":
            let body = try CommentTag.raw(&self, token)
            return body.isEmpty ? .nothing : .nonBlankNode(.text(Array(body.utf8)))
        default:
            return .unknown
        }
    }

    // MARK: Expressions

    func resolveFilter(_ name: String, _ token: TemplateToken) throws(LiquidError) -> ResolvedFilter {
        if let f = options.filters[name] { return ResolvedFilter(function: f, builtin: nil) }
        if let f = LiquidFilters.standard[name] { return ResolvedFilter(function: f, builtin: BuiltinFilter(rawValue: name)) }
        if options.strictFilters { throw syntaxError("undefined filter \(name)", at: token) }
        return ResolvedFilter(function: nil, builtin: nil)
    }

    /// An output / echo / assign value: strict grammar, falling back to lax parsing in lax mode (Ruby's
    /// `strict_parse_with_error_mode_fallback`).
    func filteredExpression(_ markup: [UInt8], _ token: TemplateToken) throws(LiquidError) -> FilteredExpression {
        let resolve = { (name: String) throws(LiquidError) -> ResolvedFilter in
            try self.resolveFilter(name, token)
        }
        do {
            var p = try StrictExpressionParser(markup, options: options)
            return try p.filteredExpression(resolve: resolve)
        } catch {
            if strict || error.code != .syntax || error.line != nil { throw located(error, token) }
        }
        do {
            return try Lax.filteredExpression(markup, resolve: resolve)
        } catch {
            throw located(error, token)
        }
    }

    /// A condition (`if`, `elsif`, `unless`): strict grammar in strict mode, Ruby's regexes in lax mode.
    func condition(_ markup: [UInt8], _ token: TemplateToken) throws(LiquidError) -> Condition {
        do {
            if strict {
                var p = try StrictExpressionParser(markup, options: options)
                return try p.condition()
            }
            return try Lax.condition(markup)
        } catch {
            throw located(error, token)
        }
    }
}
