/// A node of a compiled template. Tags are final classes (one pointer per node); rendering switches on
/// the case, with no existential or dictionary lookup per node.
enum Node: Sendable {
    case text([UInt8])
    case output(FilteredExpression)
    case assign(AssignTag)
    case capture(CaptureTag)
    case conditional(IfTag)
    case caseTag(CaseTag)
    case forLoop(ForTag)
    case tablerow(TablerowTag)
    case cycle(CycleTag)
    case counter(CounterTag)
    case ifchanged(IfchangedTag)
    case include(IncludeTag)
    case render(RenderTag)
    case interrupt(isBreak: Bool)
    case abort(AbortMessageTag)

    /// Ruby's `blank?` of the node: blocks whose nodes are all blank render nothing but whitespace, which
    /// is then dropped.
    var isBlank: Bool {
        switch self {
        case .text(let s): s.allSatisfy(TemplateLexer.isSpace)
        case .assign, .capture: true
        case .conditional(let t): t.blank
        case .caseTag(let t): t.blank
        case .forLoop(let t): t.blank
        default: false
        }
    }

    /// Blank tags do not print `Liquid error: ...` in lax rendering (Ruby's `rescue_render_node`).
    var printsErrors: Bool {
        switch self {
        case .output, .cycle, .counter, .include, .render, .tablerow, .ifchanged: true
        case .conditional(let t): !t.blank
        case .caseTag(let t): !t.blank
        case .forLoop(let t): !t.blank
        default: false
        }
    }

    static func removingBlankText(_ nodes: [Node]) -> [Node] {
        nodes.filter { if case .text = $0 { return false } else { return true } }
    }
}
