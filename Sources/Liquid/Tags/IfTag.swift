/// `{% if %}` / `{% unless %}` with `elsif` and `else` branches.
final class IfTag: Sendable {
    struct Branch: Sendable {
        /// `nil` for `else`.
        var condition: Condition?
        var body: Block
    }

    let branches: [Branch]
    /// `unless`: the first branch renders when its condition is false.
    let negateFirst: Bool
    let blank: Bool

    init(branches: [Branch], negateFirst: Bool, blank: Bool) {
        self.branches = branches
        self.negateFirst = negateFirst
        self.blank = blank
    }

    static func parse(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) -> IfTag {
        let tagName = token.name
        var branches: [Branch] = []
        var condition: Condition? = try p.condition(p.markup(token), token)
        var blank = true
        while true {
            let (nodes, bodyBlank, end) = try p.parseBlockBody(token)
            blank = blank && bodyBlank
            branches.append(Branch(condition: condition, body: Block(nodes)))
            switch end.name {
            case "end" + tagName:
                if blank {
                    for i in branches.indices { branches[i].body = Block(Node.removingBlankText(branches[i].body.nodes)) }
                }
                return IfTag(branches: branches, negateFirst: tagName == "unless", blank: blank)
            case "elsif":
                condition = try p.condition(p.markup(end), end)
            case "else":
                condition = nil
            default:
                throw p.unknownTagError(end, in: tagName)
            }
        }
    }

    func render(_ s: inout RenderState) throws(LiquidError) {
        for i in branches.indices {
            guard let condition = branches[i].condition else { return try s.render(branches[i].body) }
            var result = try s.evaluate(condition)
            if i == 0, negateFirst { result.toggle() }
            if result { return try s.render(branches[i].body) }
        }
    }
}
