/// One token of template source: text, `{{ output }}` or `{% tag %}`, as Ruby's `Tokenizer` splits it.
struct TemplateToken {
    enum Kind {
        case text
        case output
        case tag
        /// A `{%` without `%}` or a `{{` without `}`.
        case unterminated
    }

    var kind: Kind
    /// Byte range of the whole token in the source.
    var start: Int
    var end: Int
    /// For tags: the tag name (`#` for an inline comment); for a liquid-tag line that is not a tag, the line.
    var name: String = ""
    /// For tags and outputs: the byte range of the markup (between name and delimiter).
    var markupStart: Int = 0
    var markupEnd: Int = 0
    /// `{%-` / `{{-`.
    var trimLeft = false
    /// `-%}` / `-}}`.
    var trimRight = false
    /// True for a tag token that does not match Ruby's `FullToken` (no tag name).
    var malformed = false
}
