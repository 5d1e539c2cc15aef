/// `{% if %}` / `{% unless %}` with `elsif` and `else` branches.
final class IfTag: Sendable {
    /// A branch, linked to the ones after it (rendering follows `let` properties, which retains nothing,
    /// where reading an array element would copy it).
    final class Branch: Sendable {
        /// Whether it is the `else` branch; if not, `condition` is its condition (not optional: a `let`
        /// is read in place, an unwrapped optional would be retained).
        let isElse: Bool
        let condition: Condition
        let body: Block
        let next: Branch?

        init(condition: Condition?, body: [Node], next: Branch?) {
            isElse = condition == nil
            self.condition = condition ?? Condition.placeholder
            self.body = Block(body)
            self.next = next
        }
    }

    let first: Branch
    /// `unless`: the first branch renders when its condition is false.
    let negateFirst: Bool
    let blank: Bool

    /// `branches`: each condition (`nil` for `else`) and body, in order.
    init(branches: [(condition: Condition?, body: [Node])], negateFirst: Bool, blank: Bool) {
        var next: Branch?
        for b in branches.reversed() { next = Branch(condition: b.condition, body: b.body, next: next) }
        first = next!
        self.negateFirst = negateFirst
        self.blank = blank
    }

    static func parse(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) -> IfTag {
        let tagName = token.name
        var branches: [(condition: Condition?, body: [Node])] = []
        var condition: Condition? = try p.condition(p.markup(token), token)
        var blank = true
        while true {
            let (nodes, bodyBlank, end) = try p.parseBlockBody(token)
            blank = blank && bodyBlank
            branches.append((condition, nodes))
            switch end.name {
            case "end" + tagName:
                if blank {
                    for i in branches.indices { branches[i].body = Node.removingBlankText(branches[i].body) }
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
        try render(first, negate: negateFirst, &s)
    }

    private func render(_ branch: Branch, negate: Bool, _ s: inout RenderState) throws(LiquidError) {
        if !branch.isElse, try s.evaluate(branch.condition) == negate {
            if let next = branch.next { try render(next, negate: false, &s) }
            return
        }
        try s.render(branch.body)
    }
}
