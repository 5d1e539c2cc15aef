/// `{% capture name %}...{% endcapture %}`: renders the body into a variable of the template scope.
final class CaptureTag: Sendable {
    let name: Key
    let body: Block

    init(name: String, body: [Node]) {
        self.name = Key(name)
        self.body = Block(body)
    }

    static func parse(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) -> CaptureTag {
        let m = p.markup(token)
        guard let start = m.firstIndex(where: AssignTag.isSignature) else {
            throw p.syntaxError("Syntax Error in 'capture' - Valid syntax: capture [var]", at: token)
        }
        var end = start
        while end < m.count, AssignTag.isSignature(m[end]) { end += 1 }
        let (nodes, _, endToken) = try p.parseBlockBody(token)
        guard endToken.name == "endcapture" else { throw p.unknownTagError(endToken, in: "capture") }
        return CaptureTag(name: Lax.string(m, start..<end), body: nodes)
    }

    func render(_ s: inout RenderState) throws(LiquidError) {
        let text = try s.capture(body)
        s.assign(name, .string(text))
    }
}
