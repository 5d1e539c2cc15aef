import ArgumentParser

/// `fleet template`: render a Liquid template with JSON data, or check that every template parses.
///
/// Exit codes: 0 success; 64 bad arguments or a template / data file that cannot be found or read;
/// 65 a template that does not parse, a render error under strictness, data that is not a JSON object,
/// or (`check`) any template with an error; ``TemplateCommand/abortedExitCode`` (3) when the template ran
/// `{% abort_message %}` (the message is suppressed; the reason goes to stderr).
struct TemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Render Liquid templates with JSON data, and check that templates parse.",
        discussion: """
            Templates are found in the templates directory: --templates, else FLEET_TEMPLATES, else 'templates' \
            in the config file, else ./Templates. Exit codes: 64 bad arguments or missing files, 65 syntax, \
            data or (strict) render errors, 3 when the template ran abort_message.
            """,
        subcommands: [TemplateRenderCommand.self, TemplateCheckCommand.self])

    /// The exit status of `fleet template render` when the template ran `{% abort_message %}`.
    static let abortedExitCode: Int32 = 3
}
