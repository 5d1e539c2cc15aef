import ArgumentParser
import FleetCore
import Foundation
import ProfileStore

/// `fleet segment define|count|list|remove`: named rules over the profile store.
struct SegmentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment", abstract: "Define segments and evaluate them over the store.",
        subcommands: [Define.self, Count.self, List.self, Remove.self])

    /// `fleet segment define NAME RULE`.
    struct Define: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Define a segment from a JSON rule, e.g. '{\"all\":[{\"trait\":\"tier\",\"value\":\"gold\"},{\"event\":\"purchase\",\"count\":1,\"within_days\":30}]}'.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        @Argument(help: "The rule as JSON (see Docs/contract/crm.md, Segments).") var rule: String

        func run() async throws {
            _ = try global.bootstrapLogging()
            let json: JSONValue
            do { json = try JSONValue(parsing: rule) } catch { throw CLIError.usage("the rule is not JSON: \(error)") }
            do { _ = try SegmentRule(json: json) } catch { throw CLIError.usage("bad rule: \(error.message)") }
            let name = self.name
            try await global.withProfileStore { store in try await store.defineSegment(name: name, rule: json) }
            print("defined segment \(name)")
        }
    }

    /// `fleet segment count NAME`.
    struct Count: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Count the profiles in a segment.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String

        func run() async throws {
            _ = try global.bootstrapLogging()
            print(try await SegmentCommand.members(global: global, name: name, limit: 0).count)
        }
    }

    /// `fleet segment list NAME`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the ids of the profiles in a segment.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        @Option(help: "At most this many ids.") var limit: Int = Int.max

        func run() async throws {
            _ = try global.bootstrapLogging()
            for id in try await SegmentCommand.members(global: global, name: name, limit: limit).ids { print(id) }
        }
    }

    /// `fleet segment remove NAME`.
    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a segment.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String

        func run() async throws {
            _ = try global.bootstrapLogging()
            let name = self.name
            guard try await global.withProfileStore({ store in try await store.removeSegment(name: name) }) else {
                throw CLIError("no segment '\(name)'", exitCode: CLIError.notFound)
            }
        }
    }

    static func members(global: GlobalOptions, name: String, limit: Int) async throws -> (count: Int, ids: [String]) {
        let found = try await global.withProfileStore(readers: 1) { store in try await store.segmentMembers(named: name, limit: limit) }
        guard let found else { throw CLIError("no segment '\(name)'", exitCode: CLIError.notFound) }
        return found
    }
}
