import Liquid

/// How a template error reads in a job's result: the file, line and column, then Liquid's message.
public enum LiquidErrorText {
    /// `email/x/html.liquid line 3, column 7: <message>` (what is known of the place).
    public static func located(_ error: LiquidError) -> String {
        var s = ""
        if let name = error.templateName { s += "\(name).liquid" }
        if let line = error.line { s += "\(s.isEmpty ? "" : " ")line \(line)" }
        if let column = error.column { s += ", column \(column)" }
        return (s.isEmpty ? "" : s + ": ") + redacted(error.message)
    }

    /// The message without a value from the data: Ruby's `comparison of String with 30 failed` names the number
    /// compared, which can be a trait's (the text goes into results and dead letters).
    static func redacted(_ message: String) -> String {
        guard message.hasPrefix("comparison of String with "), message.hasSuffix(" failed") else { return message }
        return "comparison of String with a number failed"
    }

    /// Whether `name` may name a template directory: 1 to 100 of `a-z`, `0-9`, `-`, `_`.
    public static func isValidTemplateName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 100 && name.utf8.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F
        }
    }
}
