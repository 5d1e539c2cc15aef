/// `{% abort_message "reason" %}` — OUR EXTENSION, not Shopify Liquid: stops rendering this message.
/// The render fails with ``LiquidError/Code/aborted`` carrying the reason (``LiquidTemplate/evaluate(_:options:)``
/// returns it as ``LiquidRenderResult/aborted(reason:)``), so callers can record a `suppressed` result.
final class AbortMessageTag: Sendable {
    let reason: FilteredExpression

    init(reason: FilteredExpression) { self.reason = reason }

    static func parse(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) -> AbortMessageTag {
        AbortMessageTag(reason: try p.filteredExpression(p.markup(token), token))
    }

    func render(_ s: inout RenderState) throws(LiquidError) {
        let value = try s.evaluate(reason)
        throw LiquidError(.aborted, value.rubyString)
    }
}
