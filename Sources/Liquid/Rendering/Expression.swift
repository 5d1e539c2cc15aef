/// A parsed expression: a literal (pre-evaluated), a variable lookup, a range, or one of the special
/// `blank` / `empty` literals (which only mean something on one side of `==` / `!=` in a condition).
enum Expression: Sendable {
    case literal(LiquidValue)
    case variable(VariableLookup)
    indirect case range(Expression, Expression)
    /// Ruby's `MethodLiteral` `blank` (`blank?`); evaluates to `""` outside conditions.
    case blank
    /// Ruby's `MethodLiteral` `empty` (`empty?`); evaluates to `""` outside conditions.
    case empty

    static let nilLiteral = Expression.literal(.nil)

    /// Whether it is `blank` or `empty`.
    var isMethodLiteral: Bool {
        switch self {
        case .blank, .empty: true
        default: false
        }
    }

    /// Whether it is `blank`.
    var isBlankLiteral: Bool {
        if case .blank = self { true } else { false }
    }

    /// The literal value when the expression is constant.
    var constantValue: LiquidValue? {
        switch self {
        case .literal(let v): v
        case .blank, .empty: .string("")
        default: nil
        }
    }

    /// Ruby's `inspect` of the parsed expression (cycle group keys are built from it).
    var rubyInspect: String {
        switch self {
        case .literal(let v): LiquidValue.rubyInspect(v)
        case .variable(let v): "#<VariableLookup \(v.path)>"
        case .range(let a, let b): "(\(a.rubyInspect)..\(b.rubyInspect))"
        case .blank, .empty: "\"\""
        }
    }
}

/// A variable path resolved at parse time: a root name (or a computed root like `[name]`) and segments.
final class VariableLookup: Sendable {
    enum Root: Sendable {
        case name(Key)
        case dynamic(Expression)
    }

    enum Segment: Sendable {
        /// `.name` or `["name"]`.
        case key(Key)
        /// `.size`, `.first`, `.last`: a key, or Ruby's method of that name when there is no such key.
        case command(Key)
        /// `[0]`.
        case index(Int)
        /// `[expr]`.
        case dynamic(Expression)
    }

    let root: Root
    let segments: [Segment]
    /// The path as written, for error messages (`profile.first_name`).
    let path: String

    /// The common shape `name.key` (one plain key after a named root), resolved without a loop.
    let simple: (root: Key, key: Key)?
    /// Where the root name was last found in the render environment.
    let rootHint = LookupHint()
    /// Where the first key segment was last found in its object.
    let keyHint = LookupHint()

    init(root: Root, segments: [Segment], path: String) {
        self.root = root
        self.segments = segments
        self.path = path
        if case .name(let r) = root, segments.count == 1, case .key(let k) = segments[0] {
            simple = (r, k)
        } else {
            simple = nil
        }
    }

    static let commands: Set<String> = ["size", "first", "last"]

    /// Stands for no lookup (never resolved).
    static let placeholder = VariableLookup(root: .name(Key("")), segments: [], path: "")
}

/// A name with its ``LiquidObject`` hash, computed once at parse time.
struct Key: Sendable {
    let name: String
    let hash: UInt64

    init(_ name: String) {
        self.name = name
        hash = LiquidObject.hash(name)
    }
}

extension Key {
    static let forloop = Key("forloop")
    static let tablerowloop = Key("tablerowloop")
}

/// A variable in a scope.
struct Binding {
    var key: Key
    var value: LiquidValue
}

/// A filter application resolved at parse time.
final class FilterCall: Sendable {
    let name: String
    /// `nil` for an unknown filter in lax mode: the input passes through, as Liquid does.
    let function: LiquidFilterFunction?
    let positional: [Expression]
    let keyword: [(name: String, value: Expression)]
    /// The arguments, when all of them are literals (built once at parse time).
    let constantArguments: LiquidFilterArguments?
    /// The standard filter run directly (at most two positional arguments, no keyword argument).
    let builtin: BuiltinFilter?
    /// The first two positional arguments (`nil` literals when absent), read without indexing an array.
    let argument0: Expression
    let argument1: Expression
    /// The number of positional arguments.
    let argc: Int
    /// Whether `argument0` and `argument1` are literals, whose values are then `literal0` and `literal1`
    /// (passed to the built-in as they are, with no evaluation or copy).
    let literalArguments: Bool
    let literal0: LiquidValue
    let literal1: LiquidValue

    init(name: String, resolved: ResolvedFilter, positional: [Expression], keyword: [(name: String, value: Expression)]) {
        self.name = name
        self.function = resolved.function
        builtin = keyword.isEmpty && positional.count <= 2 ? resolved.builtin : nil
        argument0 = positional.count > 0 ? positional[0] : .nilLiteral
        argument1 = positional.count > 1 ? positional[1] : .nilLiteral
        argc = positional.count
        let (l0, l1) = (argument0.constantValue, argument1.constantValue)
        literalArguments = l0 != nil && l1 != nil
        literal0 = l0 ?? .nil
        literal1 = l1 ?? .nil
        self.positional = positional
        self.keyword = keyword
        var constants: [LiquidValue] = []
        var keywordConstants: [(name: String, value: LiquidValue)] = []
        var allConstant = true
        for p in positional {
            if let v = p.constantValue { constants.append(v) } else { allConstant = false }
        }
        for k in keyword {
            if let v = k.value.constantValue { keywordConstants.append((k.name, v)) } else { allConstant = false }
        }
        constantArguments = allConstant ? LiquidFilterArguments(positional: constants, keyword: keywordConstants) : nil
    }
}

/// A filter name resolved at parse time: the function in effect, and the built-in fast path when the
/// function is the standard one.
struct ResolvedFilter {
    let function: LiquidFilterFunction?
    let builtin: BuiltinFilter?
}

/// An expression with filters, as in `{{ x | f: a }}`, `{% echo %}` and `{% assign y = ... %}`.
final class FilteredExpression: Sendable {
    let expression: Expression
    let filters: [FilterCall]
    /// Whether there are filters; `chain` links them in order (else it is a shared placeholder). Rendering
    /// follows `let` properties, which retains nothing, where reading an array element or unwrapping an
    /// optional would copy the reference.
    let hasFilters: Bool
    let chain: FilterLink
    /// Whether `expression` is a variable, whose lookup is then `lookup` (read in place: switching over
    /// `expression` would copy it).
    let isVariable: Bool
    let lookup: VariableLookup
    /// The filters but the last (when `hasLeading`) and the last (when there are filters), for printing
    /// through the last one's writer; placeholders otherwise.
    let hasLeading: Bool
    let leading: FilterLink
    let last: FilterCall
    /// Whether the value is a bare lookup (for the `.errorInOutput` missing-variable policy).
    var isBareLookup: Bool {
        if case .variable = expression, filters.isEmpty { return true }
        return false
    }

    /// The last filter when it is a built-in that can write its text straight into the output.
    let lastWriter: BuiltinFilter?

    init(expression: Expression, filters: [FilterCall]) {
        self.expression = expression
        self.filters = filters
        var next: FilterLink?
        for call in filters.reversed() { next = FilterLink(call: call, next: next) }
        hasFilters = next != nil
        chain = next ?? FilterLink.placeholder
        var leadingNext: FilterLink?
        for call in filters.dropLast().reversed() { leadingNext = FilterLink(call: call, next: leadingNext) }
        hasLeading = leadingNext != nil
        leading = leadingNext ?? FilterLink.placeholder
        last = filters.last ?? FilterLink.placeholder.call
        if case .variable(let v) = expression {
            (isVariable, lookup) = (true, v)
        } else {
            (isVariable, lookup) = (false, VariableLookup.placeholder)
        }
        if let b = filters.last?.builtin, b.writesText { lastWriter = b } else { lastWriter = nil }
    }

    static let empty = FilteredExpression(expression: .nilLiteral, filters: [])
}

/// A filter call and the ones after it.
final class FilterLink: Sendable {
    let call: FilterCall
    let next: FilterLink?

    init(call: FilterCall, next: FilterLink?) {
        self.call = call
        self.next = next
    }

    /// Stands for no filters (never applied).
    static let placeholder = FilterLink(
        call: FilterCall(name: "", resolved: ResolvedFilter(function: nil, builtin: nil), positional: [], keyword: []),
        next: nil)
}

/// A condition of `if` / `unless` / `elsif` / `when`: comparisons chained with `and` / `or`, evaluated
/// right to left as Shopify does (`a and b or c` is `a and (b or c)`).
///
/// Immutable reference types (a condition and its comparisons are read in place when rendering, not copied).
final class Condition: Sendable {
    enum Operator: Sendable {
        case equal, notEqual, less, greater, lessOrEqual, greaterOrEqual, contains
        /// An operator lax parsing accepted but Liquid does not know: an error at render time.
        case unknown(String)

        init(_ text: String) {
            switch text {
            case "==": self = .equal
            case "!=", "<>": self = .notEqual
            case "<": self = .less
            case ">": self = .greater
            case "<=": self = .lessOrEqual
            case ">=": self = .greaterOrEqual
            case "contains": self = .contains
            default: self = .unknown(text)
            }
        }
    }

    final class Comparison: Sendable {
        let left: Expression
        let op: Operator?
        let right: Expression

        init(left: Expression, op: Operator?, right: Expression) {
            self.left = left
            self.op = op
            self.right = right
        }
    }

    /// A comparison linked to the next one (rendering follows `let` properties, which retains nothing).
    final class Link: Sendable {
        let comparison: Comparison
        /// How it joins `next`: true for `and`, false for `or`.
        let and: Bool
        let next: Link?

        init(comparison: Comparison, and: Bool, next: Link?) {
            self.comparison = comparison
            self.and = and
            self.next = next
        }
    }

    /// The first comparison.
    let first: Link

    /// Stands for no condition (never evaluated).
    static let placeholder = Condition(comparisons: [Comparison(left: .nilLiteral, op: nil, right: .nilLiteral)], relations: [])

    /// `relations[i]` joins `comparisons[i]` to `comparisons[i + 1]` (true for `and`, false for `or`).
    init(comparisons: [Comparison], relations: [Bool]) {
        var next: Link?
        for i in comparisons.indices.reversed() {
            next = Link(comparison: comparisons[i], and: i < relations.count && relations[i], next: next)
        }
        first = next!
    }
}
