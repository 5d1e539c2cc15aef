import Liquid

extension CLIError {
    /// A Liquid error as one line: `Liquid syntax error (Templates/x.liquid, line 3, column 5): Expected ...`.
    /// `templatePath` replaces the engine's template name when the error is in the template `name` itself
    /// (partials keep their names). Exit 3 for `abort_message`, 65 otherwise.
    init(_ error: LiquidError, name: String?, templatePath: String?) {
        var e = error
        if let templatePath, e.templateName == nil || e.templateName == name { e.templateName = templatePath }
        let code: Int32 = error.code == .aborted ? TemplateCommand.abortedExitCode : 65
        self.init(e.description.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: " "), exitCode: code)
    }
}
