/// `{% assign name = value | filters %}`: sets a variable in the template scope.
final class AssignTag: Sendable {
    let name: Key
    let value: FilteredExpression

    init(name: String, value: FilteredExpression) {
        self.name = Key(name)
        self.value = value
    }

    /// Ruby's `VariableSignature` characters: `[\w\-\.\[\]()]`.
    static func isSignature(_ b: UInt8) -> Bool {
        TemplateLexer.isWord(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "[")
            || b == UInt8(ascii: "]") || b == UInt8(ascii: "(") || b == UInt8(ascii: ")")
    }

    /// Ruby's `Assign::Syntax`: `(VariableSignature+)\s*=\s*(.*)`.
    static func parse(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) -> AssignTag {
        let m = p.markup(token)
        var i = 0
        while i < m.count {
            guard isSignature(m[i]) else {
                i += 1
                continue
            }
            var j = i
            while j < m.count, isSignature(m[j]) { j += 1 }
            var k = j
            while k < m.count, TemplateLexer.isSpace(m[k]) { k += 1 }
            if k < m.count, m[k] == UInt8(ascii: "=") {
                let name = Lax.string(m, i..<j)
                let value = try p.filteredExpression(Array(m[(k + 1)...]), token)
                return AssignTag(name: name, value: value)
            }
            i = j
        }
        throw p.syntaxError("Syntax Error in 'assign' - Valid syntax: assign [var] = [source]", at: token)
    }

    func render(_ s: inout RenderState) throws(LiquidError) {
        let v = try s.evaluate(value)
        if case .string(let str) = v { try s.checkSize(str.utf8.count) }
        s.assign(name, v)
    }
}
