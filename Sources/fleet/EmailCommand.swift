import ArgumentParser
import EmailWorker
import FleetCore
import Foundation

/// `fleet email preview`: the personalized html of an email template for one person, to look at in a browser.
struct EmailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "email", abstract: "Email campaign tools (the email worker is `fleet worker --kinds email`).",
        subcommands: [Preview.self])

    /// `fleet email preview TEMPLATE --profile ID [--variant V] --out FILE.html`.
    struct Preview: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the personalized html of TEMPLATE for a profile (settings from FLEET_EMAIL_*).")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "A template under Templates/email/.")
        var template: String

        @Option(help: "The profile id.")
        var profile: String

        @Option(help: "A variant name of the campaign (or 'holdout').")
        var variant: String?

        @Option(help: "The campaign id (default 'preview').")
        var campaign: String = "preview"

        @Option(help: "The html file to write.")
        var out: String

        @Option(help: "The templates directory (else FLEET_EMAIL_TEMPLATES, FLEET_TEMPLATES, the config's templates, ./Templates).")
        var templates: String?

        func run() async throws {
            _ = try global.bootstrapLogging()
            var env = ProcessInfo.processInfo.environment
            if env["FLEET_EMAIL_SECRET"]?.isEmpty ?? true { env["FLEET_EMAIL_SECRET"] = "preview-only" }
            env["FLEET_EMAIL_DELIVERY"] = "result"
            let settings: EmailSettings
            if let templates { env["FLEET_EMAIL_TEMPLATES"] = templates }
            do {
                settings = try EmailSettings.fromEnvironment(env, templatesFallback: try global.templatesDirectory(nil))
            } catch { throw CLIError.usage("\(error)") }
            let handler = EmailHandler(storePath: try global.storePath(), settings: settings)
            let html: String
            do {
                html = try await handler.preview(template: template, profileID: profile, variant: variant,
                                                 campaign: JSONObject(["id": .string(campaign)]))
            } catch let error as EmailError {
                throw CLIError("\(error)", exitCode: Self.exitCode(error.code))
            } catch let error as JobError {
                throw CLIError("\(error)", exitCode: Self.exitCode(error.code))
            } catch {
                throw CLIError("\(error)")
            }
            guard FileManager.default.createFile(atPath: out, contents: Data(html.utf8)) else {
                throw CLIError("cannot write \(out)")
            }
            print("wrote \(out) (\(html.utf8.count) bytes): open file://\(URL(fileURLWithPath: out).path) in a browser")
        }

        /// 66 when the profile or the template does not exist, 65 for a template error, 1 otherwise.
        static func exitCode(_ code: String) -> Int32 {
            switch code {
            case "profile_not_found", "template_not_found": return CLIError.notFound
            case "template_error", "invalid_email_job": return 65
            default: return 1
            }
        }
    }
}
