import ArgumentParser
import FleetCore
import FleetRuntime

/// `fleet settings`: every setting with its environment variable, flag, config key, default and whether it is
/// required (the table of Docs/settings.md).
struct SettingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings",
        abstract: "List every setting: environment variable, flag, config key, default, required (Docs/settings.md).")

    @Flag(help: "One JSON object a line instead of the Markdown table.")
    var json = false

    func run() throws {
        guard json else {
            print(SettingsCatalog.markdown, terminator: "")
            return
        }
        for s in SettingsCatalog.all {
            var o = JSONObject()
            o["environment"] = s.environment.map(JSONValue.string) ?? .null
            o["flag"] = s.flag.map(JSONValue.string) ?? .null
            o["config_key"] = s.configKey.map(JSONValue.string) ?? .null
            o["default"] = .string(s.defaultValue)
            o["required"] = .string(s.requiredText)
            o["scope"] = .string(s.scope)
            o["secret"] = .bool(s.isSecret)
            o["summary"] = .string(s.summary)
            print(JSONValue.object(o).jsonString)
        }
    }
}
