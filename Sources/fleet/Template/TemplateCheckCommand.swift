import ArgumentParser
import Foundation
import Liquid

/// `fleet template check [DIR]`: parses every `*.liquid` under DIR (recursively) and reports each syntax
/// error as `FILE:LINE:COLUMN: message` on stderr, then a summary line; exits 65 when any template fails.
struct TemplateCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Parse every *.liquid template under a directory and report syntax errors with their locations.",
        discussion: """
            Errors go to stderr as FILE:LINE:COLUMN: message. Prints 'N templates, M errors'; exits 0 when every \
            template parses, 65 when any does not, 66 when the directory does not exist.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The directory to check (default: the templates directory: --templates, FLEET_TEMPLATES, config 'templates', ./Templates).")
    var directory: String?

    @Option(help: "The templates directory, when DIR is not given.")
    var templates: String?

    @Flag(help: "Strict parsing and strict filters (as 'template render --strict' parses).")
    var strict = false

    @OptionGroup var parseFlags: TemplateParseFlags

    func run() throws {
        let root = try directory ?? global.templatesDirectory(templates)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CLIError("\(root) is not a directory", exitCode: CLIError.notFound)
        }
        let options = parseFlags.parseOptions(strict: strict)
        let files = try Self.templateFiles(under: root)
        var errors = 0
        for relative in files {
            let path = root.hasSuffix("/") ? root + relative : root + "/" + relative
            guard let data = FileManager.default.contents(atPath: path) else {
                errors += 1
                Self.report("\(path): cannot read the file")
                continue
            }
            do {
                _ = try LiquidTemplate(String(decoding: data, as: UTF8.self), name: relative, options: options)
            } catch {
                errors += 1
                Self.report(Self.describe(error, path: path))
            }
        }
        let summary = "\(files.count) template\(files.count == 1 ? "" : "s"), \(errors) error\(errors == 1 ? "" : "s")"
        guard errors == 0 else { throw CLIError(summary, exitCode: 65) }
        print(summary)
    }

    /// `path:line:column: Liquid syntax error: message` (the location parts the error has).
    static func describe(_ error: LiquidError, path: String) -> String {
        var location = path
        if let line = error.line {
            location += ":\(line)"
            if let column = error.column { location += ":\(column)" }
        }
        var plain = error
        plain.templateName = nil
        plain.line = nil
        plain.column = nil
        return location + ": " + plain.description.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: " ")
    }

    /// The `*.liquid` files under `root`, relative to it, sorted; hidden files and directories are skipped.
    static func templateFiles(under root: String) throws -> [String] {
        let url = URL(fileURLWithPath: root, isDirectory: true)
        guard let enumerator = FileManager.default.enumerator(
            at: url, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles])
        else { throw CLIError.usage("cannot list \(root)") }
        let base = url.standardizedFileURL.resolvingSymlinksInPath().path
        var files: [String] = []
        for case let file as URL in enumerator where file.pathExtension == "liquid" {
            guard (try? file.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let full = file.standardizedFileURL.resolvingSymlinksInPath().path
            files.append(full.hasPrefix(base + "/") ? String(full.dropFirst(base.count + 1)) : full)
        }
        return files.sorted()
    }

    private static func report(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
