/// `{% increment name %}` / `{% decrement name %}`: counters kept in the render environment, separate
/// from `assign`ed variables (as Shopify Liquid does).
final class CounterTag: Sendable {
    let name: String
    let delta: Int

    init(name: String, delta: Int) {
        self.name = name
        self.delta = delta
    }

    static func parse(_ p: inout Parser, _ token: TemplateToken) -> CounterTag {
        let m = p.markup(token)
        let r = Lax.trimmed(m, 0..<m.count)
        return CounterTag(name: Lax.string(m, r), delta: token.name == "increment" ? 1 : -1)
    }

    func render(_ s: inout RenderState) {
        var value = 0
        if case .int(let i) = s.globals[name] { value = i }
        if delta > 0 {
            s.writeInt(value)
            s.globals[name] = .int(value + 1)
        } else {
            value -= 1
            s.globals[name] = .int(value)
            s.writeInt(value)
        }
    }
}
