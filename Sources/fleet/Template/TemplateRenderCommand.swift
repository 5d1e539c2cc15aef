import ArgumentParser
import Foundation
import Liquid

/// `fleet template render NAME_OR_FILE --data FILE.json`: renders one template and prints the output.
///
/// A path to an existing `.liquid` file is rendered from that file, and `include` / `render` find partials in
/// `--templates DIR` when that flag is given, else in the file's own directory; anything else is a template name
/// in the templates directory (`email/welcome` is `Templates/email/welcome.liquid`, else
/// `Templates/email/_welcome.liquid`).
struct TemplateRenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Render a template with JSON data and print the output.",
        discussion: """
            Render errors (a filter given the wrong arguments, a division by zero, a missing partial) print \
            'Liquid error: ...' in place of the output or tag that failed and the render goes on, as Ruby \
            Liquid's render does; like Ruby, errors inside assign and capture print nothing (the variable stays \
            unset). --raise-errors makes every render error fail the render (Ruby's render!) while undefined \
            variables stay blank; --strict also makes undefined variables and unknown filters errors. \
            Exit codes: 0 rendered; 64 bad arguments; 65 a syntax error, data that is not a JSON object, or a \
            render error with --raise-errors, --strict or --strict-variables; 66 the template or the data file \
            does not exist; 3 the template ran abort_message (the reason is printed on stderr, nothing on stdout).
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "A template name in the templates directory, or a path to a .liquid file.")
    var template: String

    @Option(help: "A JSON object file whose keys are the template's variables ('-' for standard input; default: no variables).")
    var data: String?

    @Option(help: "The templates directory (env FLEET_TEMPLATES, config 'templates'; default ./Templates). With a .liquid file, this flag (not the environment or the config) makes include/render read partials here instead of the file's directory.")
    var templates: String?

    @Flag(help: "All strictness: strict parsing, unknown filters and undefined variables are errors, and render errors fail the render instead of printing 'Liquid error: ...' inline.")
    var strict = false

    @Flag(name: .customLong("strict-variables"), help: "An undefined variable or attribute fails the render (Ruby's strict_variables).")
    var strictVariables = false

    @Flag(name: .customLong("raise-errors"), help: "Any render error fails the render with exit 65 (Ruby's render!); undefined variables stay blank unless --strict-variables.")
    var raiseErrors = false

    @OptionGroup var parseFlags: TemplateParseFlags

    @Option(help: "The instant 'now' for the date filter, in seconds since 1970 (default: the clock).")
    var now: Double?

    func run() throws {
        let environment = try loadData()
        let (library, name, path, source) = try resolveTemplate()
        let compiled: LiquidTemplate
        do {
            if let source {
                compiled = try LiquidTemplate(source, name: name, options: library.options)
            } else {
                compiled = try library.template(named: name)
            }
        } catch where error.code == .templateNotFound {
            throw CLIError("no template '\(template)' in \(library.directory) (and no such .liquid file)", exitCode: CLIError.notFound)
        } catch {
            throw CLIError(error, name: name, templatePath: path)
        }
        let options = LiquidRenderOptions(
            errorMode: strict || raiseErrors ? .raise : nil, missingVariables: strict || strictVariables ? .error : .blank,
            fileSystem: library, now: now)
        do {
            let bytes = try compiled.renderBytes(environment, options: options)
            FileHandle.standardOutput.write(Data(bytes))
        } catch {
            throw CLIError(error, name: name, templatePath: path)
        }
    }

    /// The library that serves the partials (and, for a name, the template), the template's name, the path to
    /// show in messages, and the source when the template is a file given by path (read here, so that any
    /// file name works).
    private func resolveTemplate() throws -> (LiquidTemplateLibrary, String, String, String?) {
        let parseOptions = parseFlags.parseOptions(strict: strict)
        var isDirectory: ObjCBool = false
        if template.hasSuffix(".liquid"), FileManager.default.fileExists(atPath: template, isDirectory: &isDirectory),
            !isDirectory.boolValue
        {
            guard let data = FileManager.default.contents(atPath: template) else {
                throw CLIError.usage("cannot read \(template)")
            }
            // An explicit --templates wins over the file's directory for partials.
            let directory = templates ?? URL(fileURLWithPath: template).deletingLastPathComponent().path
            if templates != nil {
                guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                    throw CLIError("the templates directory \(directory) does not exist", exitCode: CLIError.notFound)
                }
            }
            let library = LiquidTemplateLibrary(directory: directory, options: parseOptions)
            return (library, template, template, String(decoding: data, as: UTF8.self))
        }
        let directory = try global.templatesDirectory(templates)
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CLIError("no template file '\(template)', and the templates directory \(directory) does not exist",
                           exitCode: CLIError.notFound)
        }
        let library = LiquidTemplateLibrary(directory: directory, options: parseOptions)
        return (library, template, Self.displayPath(directory: directory, name: template), nil)
    }

    /// `DIR/name.liquid` or `DIR/_name.liquid`, whichever the library will read, for messages.
    private static func displayPath(directory: String, name: String) -> String {
        let base = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        if name.hasSuffix(".liquid") { return base + "/" + name }
        let plain = base + "/" + name + ".liquid"
        if FileManager.default.fileExists(atPath: plain) { return plain }
        var parts = name.split(separator: "/").map(String.init)
        if let last = parts.popLast() { parts.append("_" + last) }
        let partial = base + "/" + parts.joined(separator: "/") + ".liquid"
        return FileManager.default.fileExists(atPath: partial) ? partial : plain
    }

    /// The variables from `--data` (a JSON object), or none.
    private func loadData() throws -> LiquidObject {
        guard let data else { return LiquidObject() }
        let bytes: [UInt8]
        if data == "-" {
            bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
        } else {
            guard let contents = FileManager.default.contents(atPath: data) else {
                throw CLIError("cannot read the data file \(data)", exitCode: CLIError.notFound)
            }
            bytes = Array(contents)
        }
        let name = data == "-" ? "standard input" : data
        let value: LiquidValue
        do {
            value = try LiquidJSON.parse(bytes: bytes)
        } catch {
            throw CLIError("the data in \(name) is not valid JSON: \(error.message)", exitCode: 65)
        }
        guard case .object(let object) = value else {
            throw CLIError("the data in \(name) must be a JSON object (its keys are the template's variables)", exitCode: 65)
        }
        return object
    }
}
