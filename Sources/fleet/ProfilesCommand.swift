import ArgumentParser
import FleetCore
import Foundation
import ProfileStore

/// `fleet profiles import|show|erase`: the shared profile store from the command line.
struct ProfilesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profiles", abstract: "Import, show and erase profiles of the store (--store / FLEET_STORE).",
        subcommands: [Import.self, Show.self, Erase.self])

    /// `fleet profiles import FILE`.
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import profiles: NDJSON of flat JSON objects (id, email, phone, then traits) or CSV with a header.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "An .ndjson or .csv file.")
        var file: String

        @Option(help: "The source timestamp of the imported values (RFC 3339; default now). Newer values in the store win.")
        var timestamp: String?

        @Flag(name: .customLong("no-progress"), help: "No progress bar, even on a terminal.")
        var noProgress = false

        func run() async throws {
            _ = try global.bootstrapLogging()
            let reader = try RecordReader(path: file)
            var millis = ProfileStore.nowMillis()
            if let timestamp {
                guard let date = Timestamp.parse(timestamp) else { throw CLIError.usage("--timestamp must be RFC 3339") }
                millis = Int64((date.timeIntervalSince1970 * 1000).rounded())
            }
            let store = ProfileStore(path: try global.storePath())
            defer { store.close() }
            let progress = ProgressBar(total: reader.lineCount(), enabled: !noProgress && isatty(STDERR_FILENO) == 1, label: "import")
            var pending: [(ProfileOperation, Int)] = []
            var counts = (applied: 0, skipped: 0, rejected: 0, bad: 0)
            var lines = 0
            func report(_ line: Int, _ message: String) {
                progress.clear()
                FileHandle.standardError.write(Data("fleet: line \(line): \(message)\n".utf8))
            }
            func flush() async throws {
                guard !pending.isEmpty else { return }
                let results = try await store.apply(pending.map(\.0))
                for (result, (_, line)) in zip(results, pending) {
                    switch result.status {
                    case .applied: counts.applied += 1
                    case .skipped: counts.skipped += 1
                    case .rejected:
                        counts.rejected += 1
                        report(line, "\(result.reason ?? "rejected"): \(result.message ?? "")")
                    }
                }
                pending.removeAll(keepingCapacity: true)
            }
            try await reader.forEach { record in
                switch record {
                case .bad(let why, let line):
                    counts.bad += 1
                    lines = line
                    report(line, why)
                case .object(let object, let line):
                    lines = line
                    do throws(ProfileStoreError) {
                        pending.append((try Self.operation(object, timestamp: millis), line))
                    } catch {
                        counts.bad += 1
                        report(line, "\(error.code): \(error.message)")
                    }
                    if pending.count >= 500 { try await flush() }
                }
                progress.update(lines)
            }
            try await flush()
            progress.finish()
            print("imported \(counts.applied + counts.skipped + counts.rejected) profiles from \(file): applied \(counts.applied), skipped \(counts.skipped) (unchanged or older than the store), rejected \(counts.rejected + counts.bad) (bad lines, listed above)")
            if counts.rejected + counts.bad > 0 {
                // Like `fleet enqueue`: the good lines are in, and the exit status says some were not.
                throw CLIError("\(counts.rejected + counts.bad) lines were not imported", exitCode: 65)
            }
        }

        /// A flat profile as an identify op: `id` the profile id, `email`/`phone`/`crm_id`/`anonymous_id`
        /// identities, every other field a trait. The op id hashes the record, so re-importing the same records is a
        /// no-op (skipped as duplicates).
        static func operation(_ object: JSONObject, timestamp: Int64) throws(ProfileStoreError) -> ProfileOperation {
            guard let idValue = object["id"] else { throw .missingField("id") }
            let id: String
            switch idValue {
            case .string(let s) where !s.isEmpty: id = s
            case .int(let i): id = String(i)
            default: throw .wrongType("id", expected: "a non-empty string")
            }
            var traits = JSONObject()
            var identities: [ProfileIdentity] = []
            for (key, value) in object where key != "id" {
                if let kind = ProfileIdentity.Kind(rawValue: key) {
                    guard case .string(let s) = value else {
                        if value == .null { continue }
                        throw .wrongType(key, expected: "a string")
                    }
                    identities.append(ProfileIdentity(kind, s))
                } else {
                    traits[key] = value
                }
            }
            let opID = "import:" + SHA256.hex(JSONValue.object(object).jsonString).prefix(40)
            return ProfileOperation(opID: String(opID), timestampMillis: timestamp,
                                    body: .identify(profileID: id, traits: traits, identities: identities))
        }
    }

    /// `fleet profiles show ID|EMAIL`.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a profile's read model as JSON (by id or email).")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "A profile id or an email address.")
        var key: String

        func run() async throws {
            _ = try global.bootstrapLogging()
            let store = ProfileStore(path: try global.storePath(), readers: 1)
            defer { store.close() }
            let key = self.key
            guard let view = try await store.read({ try $0.view(idOrEmail: key) }) else {
                throw CLIError("no profile \(key.contains("@") ? "with that email" : "'\(key)'")", exitCode: 1)
            }
            print(view.json.prettyPrinted())
        }
    }

    /// `fleet profiles erase ID`.
    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Erase a person (by id or email): delete their data, keep hashed suppressions, compact the file.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "A profile id or an email address.")
        var key: String

        @Flag(help: "Also VACUUM the file (rewrites it; slow on large stores).")
        var vacuum = false

        func run() async throws {
            _ = try global.bootstrapLogging()
            let store = ProfileStore(path: try global.storePath())
            defer { store.close() }
            let result = try await store.erase(key.contains("@") ? .email(key) : .id(key))
            let emptied = try await store.compact(vacuum: vacuum)
            if result.reason == "not_found" {
                print("no such profile; the address is suppressed")
            } else {
                print("erased; the person's addresses are suppressed (hashed)")
            }
            if !emptied {
                FileHandle.standardError.write(Data("fleet: warning: other processes hold the WAL; run 'fleet profiles erase' again or wait for their next checkpoint\n".utf8))
            }
        }
    }
}
