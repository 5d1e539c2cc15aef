/// `{% ifchanged %}...{% endifchanged %}`: renders the body only when its output differs from the last time.
final class IfchangedTag: Sendable {
    let body: Block

    init(body: [Node]) { self.body = Block(body) }

    static func parse(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) -> IfchangedTag {
        let (body, _, end) = try p.parseBlockBody(token)
        guard end.name == "endifchanged" else { throw p.unknownTagError(end, in: "ifchanged") }
        return IfchangedTag(body: body)
    }

    func render(_ s: inout RenderState) throws(LiquidError) {
        let text = try s.capture(body)
        if text != s.ifchanged {
            s.ifchanged = text
            s.out.append(contentsOf: text.utf8)
        }
    }
}
