/// The nodes of a template or of a tag's body, ready to render.
///
/// Besides the nodes (which own their tags), a block keeps each node as a plain ``NodeRef``: its kind and an
/// unowned reference to its object. Rendering walks the references, so reading a node retains nothing (a
/// `switch` over `Node` copies the payload, one retain and release per node, because the optimizer cannot
/// prove the array keeps it alive across the throwing render call). A class: tags hold blocks in `let`
/// properties, which rendering reads without retaining.
final class Block: Sendable {
    let nodes: [Node]
    /// One per node, pointing into `nodes` (or `texts`); valid as long as the block is.
    let refs: [NodeRef]
    /// The text nodes' bytes, boxed so that a ``NodeRef`` can point at them.
    private let texts: [TextNode]

    init(_ nodes: [Node]) {
        self.nodes = nodes
        var texts: [TextNode] = []
        var refs: [NodeRef] = []
        refs.reserveCapacity(nodes.count)
        for node in nodes {
            let object: AnyObject
            let kind: NodeRef.Kind
            switch node {
            case .text(let bytes):
                let text = TextNode(bytes)
                texts.append(text)
                (kind, object) = (.text, text)
            case .output(let e): (kind, object) = (.output, e)
            case .assign(let t): (kind, object) = (.assign, t)
            case .capture(let t): (kind, object) = (.capture, t)
            case .conditional(let t): (kind, object) = (.conditional, t)
            case .caseTag(let t): (kind, object) = (.caseTag, t)
            case .forLoop(let t): (kind, object) = (.forLoop, t)
            case .tablerow(let t): (kind, object) = (.tablerow, t)
            case .cycle(let t): (kind, object) = (.cycle, t)
            case .counter(let t): (kind, object) = (.counter, t)
            case .ifchanged(let t): (kind, object) = (.ifchanged, t)
            case .include(let t): (kind, object) = (.include, t)
            case .render(let t): (kind, object) = (.render, t)
            case .interrupt(let isBreak): (kind, object) = (isBreak ? .breakLoop : .continueLoop, TextNode.empty)
            case .abort(let t): (kind, object) = (.abort, t)
            }
            refs.append(NodeRef(kind: kind, printsErrors: node.printsErrors, object: Unmanaged.passUnretained(object)))
        }
        self.refs = refs
        self.texts = texts
    }
}

/// A text node's bytes in an object (see ``Block``).
final class TextNode: Sendable {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The object of nodes that have none (`break`, `continue`).
    static let empty = TextNode([])
}

/// A node of a ``Block`` as its kind and an unowned reference to its object (a tag, an output expression or
/// a ``TextNode``), which the block owns.
///
/// `@unchecked Sendable`: the reference is to an immutable `Sendable` object, and a `NodeRef` is only read
/// through the ``Block`` that keeps that object alive.
struct NodeRef: @unchecked Sendable {
    enum Kind: UInt8 {
        case text, output, assign, capture, conditional, caseTag, forLoop, tablerow, cycle, counter, ifchanged
        case include, render, breakLoop, continueLoop, abort
    }

    let kind: Kind
    /// ``Node/printsErrors`` of the node.
    let printsErrors: Bool
    let object: Unmanaged<AnyObject>

    /// Runs `body` with the object as a `T` (which `kind` says it is), without retaining it.
    @inline(__always)
    func with<T: AnyObject>(_ type: T.Type, _ body: (T) throws(LiquidError) -> Void) throws(LiquidError) {
        var failure: LiquidError?
        object._withUnsafeGuaranteedRef { object in
            do throws(LiquidError) {
                try body(unsafeDowncast(object, to: T.self))
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }
}
