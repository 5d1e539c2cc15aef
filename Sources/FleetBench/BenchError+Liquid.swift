import Liquid

extension BenchError {
    /// A Liquid error of a benchmark's template as one line, as `fleet template render` prints it: `Liquid syntax
    /// error (path/x.liquid, line 3, column 5): Expected ...`. `templatePath` replaces the engine's template name
    /// when the error is in the template `name` itself (partials keep their names). Exit status 3 for
    /// `abort_message`, 65 otherwise.
    init(_ error: LiquidError, name: String?, templatePath: String?) {
        var e = error
        if let templatePath, e.templateName == nil || e.templateName == name { e.templateName = templatePath }
        self.init(e.description.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: " "),
                  code: error.code == .aborted ? .templateAborted : .badData)
    }
}
