import ArgumentParser
import FleetCore
import Foundation
import ProfileStore
import PushWorker

/// `fleet push preview`: the exact APNs and FCM requests of a push template for one person.
struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push", abstract: "Push campaign tools (the push worker is `fleet worker --kinds push`).",
        subcommands: [Preview.self])

    /// `fleet push preview TEMPLATE --profile ID [--variant V] [--campaign ID]`.
    struct Preview: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the APNs and FCM requests (headers with the tokens redacted, body, size) of TEMPLATE for a profile, as JSON.",
            discussion: "Nothing is sent. Exit 66 when the profile or template does not exist, 65 for a template error or a payload over 4,096 bytes.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "A template under Templates/push/.")
        var template: String

        @Option(help: "The profile id.")
        var profile: String

        @Option(help: "A variant name of the campaign.")
        var variant: String?

        @Option(help: "The campaign id (default 'preview').")
        var campaign: String = "preview"

        @Option(help: "The templates directory (else FLEET_PUSH_TEMPLATES, FLEET_TEMPLATES, the config's templates, ./Templates).")
        var templates: String?

        func run() async throws {
            _ = try global.bootstrapLogging()
            var env = ProcessInfo.processInfo.environment
            env["FLEET_PUSH_DELIVERY"] = "result"
            if let templates { env["FLEET_PUSH_TEMPLATES"] = templates }
            let fallback = try global.templatesDirectory(nil)
            let settings: PushSettings
            do {
                settings = try PushSettings.fromEnvironment(env, templatesFallback: fallback)
            } catch { throw CLIError.usage(error.message) }
            let store = ProfileStore(path: try global.storePath())
            defer { store.close() }
            let handler = try PushHandler(store: store, settings: settings)
            let out: JSONObject
            do {
                out = try await handler.preview(template: template, profileID: profile, variant: variant, campaignID: campaign)
            } catch let error as PushError {
                throw CLIError("\(error)", exitCode: Self.exitCode(error.code))
            } catch let error as JobError {
                throw CLIError("\(error)", exitCode: Self.exitCode(error.code))
            }
            print(JSONValue.object(out).prettyPrinted())
        }

        /// 66 when the profile or the template does not exist, 65 for a template error or an oversized payload.
        static func exitCode(_ code: String) -> Int32 {
            switch code {
            case "profile_not_found", "template_not_found": return CLIError.notFound
            case "template_error", "payload_too_large", "invalid_parameters": return 65
            default: return 1
            }
        }
    }
}
