import ArgumentParser
import FleetCore
import Foundation
import FleetPostgres
import ProfileStore

/// `fleet profiles import|show|erase`: the shared profile store from the command line.
struct ProfilesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profiles", abstract: "Import, show and erase profiles of the store (--store / FLEET_STORE).",
        subcommands: [Import.self, Show.self, Erase.self])

    /// `fleet profiles import FILE`.
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import profiles: NDJSON of flat JSON objects or CSV with a header (layout in README, 'Importing profiles').",
            discussion: """
                Each record: 'id' (required), 'email', 'phone', 'crm_id', 'anonymous_id' (identities), \
                'consent.<channel>' or 'consent.<channel>.<group>' (true/false, or opted_in/opted_out: a consent \
                of the channel, or of one subscription group), every other field a trait. A record with a field \
                that looks like a consent but is not a consent.* column (email_opt_in, newsletter_consent, \
                unsubscribed, ...) is refused, so that an opt-out is never stored as a mere trait; \
                --allow-consent-traits stores such fields as traits. Exit 0 when every line was imported, 65 when \
                some were not (each reported with its line number), 66 when the file does not exist.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "An .ndjson or .csv file.")
        var file: String

        @Option(help: "The source timestamp of the imported values (RFC 3339; default now). Newer values in the store win.")
        var timestamp: String?

        @Flag(name: .customLong("allow-consent-traits"), help: "Store fields that look like consents (email_opt_in, ...) as plain traits instead of refusing their lines.")
        var allowConsentTraits = false

        @Flag(name: .customLong("no-progress"), help: "No progress bar, even on a terminal.")
        var noProgress = false

        /// Bad lines reported one by one up to this many; then only counted.
        static let reportedLines = 50

        func run() async throws {
            _ = try global.bootstrapLogging()
            let reader = try RecordReader(path: file)
            var millis = ProfileStore.nowMillis()
            if let timestamp {
                guard let date = Timestamp.parse(timestamp) else { throw CLIError.usage("--timestamp must be RFC 3339") }
                millis = Int64((date.timeIntervalSince1970 * 1000).rounded())
            }
            try await global.withProfileStore { store in try await importRecords(reader, millis: millis, into: store) }
        }

        private func importRecords(_ reader: RecordReader, millis: Int64, into store: any ProfileOperationStore) async throws {
            let progress = ProgressBar(total: reader.lineCount(), enabled: !noProgress && isatty(STDERR_FILENO) == 1, label: "import")
            // The ops of each line (its identify first, then its consents) and the line's number.
            var pending: [([ProfileOperation], Int)] = []
            var counts = (applied: 0, skipped: 0, rejected: 0, bad: 0)
            var lines = 0
            var reported = 0
            func report(_ line: Int, _ message: String) {
                reported += 1
                guard reported <= Self.reportedLines else { return }
                progress.clear()
                FileHandle.standardError.write(Data("fleet: line \(line): \(message)\n".utf8))
            }
            func flush() async throws {
                guard !pending.isEmpty else { return }
                let results = try await store.apply(pending.flatMap(\.0))
                var next = results.makeIterator()
                for (ops, line) in pending {
                    let outcome = ops.compactMap { _ in next.next() }
                    if let rejected = outcome.first(where: { $0.status == .rejected }) {
                        counts.rejected += 1
                        let what = rejected.op == "identify" ? "" : "\(rejected.op) "
                        report(line, "\(what)\(rejected.reason ?? "rejected"): \(rejected.message ?? "")")
                    } else if outcome.contains(where: { $0.status == .applied }) {
                        counts.applied += 1
                    } else {
                        counts.skipped += 1
                    }
                }
                pending.removeAll(keepingCapacity: true)
            }
            let allowConsentTraits = self.allowConsentTraits
            try await reader.forEach { record in
                switch record {
                case .bad(let why, let line):
                    counts.bad += 1
                    lines = line
                    report(line, why)
                case .object(let object, let line):
                    lines = line
                    do throws(ProfileStoreError) {
                        pending.append((try Self.operations(object, timestamp: millis, allowConsentTraits: allowConsentTraits), line))
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
            if reported > Self.reportedLines {
                FileHandle.standardError.write(Data("fleet: ... and \(reported - Self.reportedLines) more bad lines\n".utf8))
            }
            print("imported \(counts.applied + counts.skipped + counts.rejected) profiles from \(file): applied \(counts.applied), skipped \(counts.skipped) (unchanged or older than the store), rejected \(counts.rejected + counts.bad) (bad lines, listed above)")
            if counts.rejected + counts.bad > 0 {
                // Like `fleet enqueue`: the good lines are in, and the exit status says some were not.
                throw CLIError("\(counts.rejected + counts.bad) lines were not imported", exitCode: 65)
            }
        }

        /// The prefix of consent columns: `consent.<channel>` or `consent.<channel>.<group>`.
        static let consentPrefix = "consent."

        /// Whether a field name looks like a consent (lower-cased, letters and digits only, it holds one of
        /// `optin`, `optout`, `consent`, `unsubscri`, `subscribed`, `donotemail`, `donotcontact`, `donotcall`,
        /// `donotsms`, `donotmail`, `marketingok`).
        static func looksLikeConsent(_ key: String) -> Bool {
            let folded = String(key.lowercased().unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) })
            let markers = ["optin", "optout", "consent", "unsubscri", "subscribed", "donotemail", "donotcontact",
                           "donotcall", "donotsms", "donotmail", "marketingok"]
            return markers.contains { folded.contains($0) }
        }

        /// A flat profile as an identify op (`id` the profile id, `email`/`phone`/`crm_id`/`anonymous_id` identities,
        /// every other field a trait) followed by one consent op per `consent.*` column. The op ids hash the record,
        /// so re-importing the same records is a no-op (skipped as duplicates).
        static func operations(_ object: JSONObject, timestamp: Int64, allowConsentTraits: Bool = false) throws(ProfileStoreError)
            -> [ProfileOperation]
        {
            guard let idValue = object["id"] else { throw .missingField("id") }
            let id: String
            switch idValue {
            case .string(let s) where !s.isEmpty: id = s
            case .int(let i): id = String(i)
            default: throw .wrongType("id", expected: "a non-empty string")
            }
            var traits = JSONObject()
            var identities: [ProfileIdentity] = []
            var consents: [(channel: String, topic: String, optedIn: Bool, column: String)] = []
            for (key, value) in object where key != "id" {
                if let kind = ProfileIdentity.Kind(rawValue: key) {
                    guard case .string(let s) = value else {
                        if value == .null { continue }
                        throw .wrongType(key, expected: "a string")
                    }
                    identities.append(ProfileIdentity(kind, s))
                } else if key.hasPrefix(consentPrefix) {
                    let parts = key.dropFirst(consentPrefix.count).split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
                    guard let channel = parts.first, !channel.isEmpty, parts.count == 1 || !parts[1].isEmpty else {
                        throw .invalidValue(key, "must be consent.<channel> or consent.<channel>.<group>")
                    }
                    let optedIn: Bool
                    switch value {
                    case .null: continue
                    case .bool(let b): optedIn = b
                    case .string("opted_in"): optedIn = true
                    case .string("opted_out"): optedIn = false
                    default: throw .wrongType(key, expected: "true, false, \"opted_in\" or \"opted_out\"")
                    }
                    consents.append((String(channel), parts.count == 2 ? String(parts[1]) : "", optedIn, key))
                } else if !allowConsentTraits && looksLikeConsent(key) {
                    throw ProfileStoreError(
                        code: "consent_like_field",
                        message: "'\(key.prefix(64))' looks like a consent: import it as a consent.<channel>[.<group>] column (true/false), e.g. consent.email or consent.email.newsletter; --allow-consent-traits stores it as a plain trait")
                } else {
                    traits[key] = value
                }
            }
            let opID = "import:" + Digests.sha256Hex(JSONValue.object(object).jsonString).prefix(40)
            var ops = [ProfileOperation(opID: String(opID), timestampMillis: timestamp,
                                        body: .identify(profileID: id, traits: traits, identities: identities))]
            for consent in consents {
                ops.append(ProfileOperation(
                    opID: "\(opID):\(consent.column.prefix(120))", timestampMillis: timestamp,
                    body: .consent(profileID: id, channel: consent.channel, topic: consent.topic, optedIn: consent.optedIn,
                                   source: "import")))
            }
            return ops
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
            let key = self.key
            let found = try await global.withProfileStore(readers: 1) { store -> ProfileView? in
                if let view = try await store.view(id: key) { return view }
                return key.contains("@") ? try await store.view(email: key) : nil
            }
            guard let view = found else {
                throw CLIError("no profile \(key.contains("@") ? "with that email" : "'\(key)'")", exitCode: CLIError.notFound)
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

        @Flag(help: "Also VACUUM the file (rewrites it; slow on large stores). On PostgreSQL: VACUUM FULL of the person's tables (rewrites them under an exclusive lock).")
        var vacuum = false

        func run() async throws {
            _ = try global.bootstrapLogging()
            let key = self.key
            let vacuum = self.vacuum
            let (result, emptied) = try await global.withProfileStore { store -> (OperationResult, Bool) in
                let result = try await store.erase(key.contains("@") ? .email(key) : .id(key))
                if let sqlite = store as? ProfileStore { return (result, try await sqlite.compact(vacuum: vacuum)) }
                if let postgres = store as? PostgresProfileStore { return (result, try await postgres.compact(full: vacuum)) }
                return (result, true)
            }
            if result.reason == "not_found" {
                print("no such profile; the address is suppressed")
            } else {
                print("erased; the person's addresses are suppressed (hashed)")
            }
            if !emptied {
                let warning = PostgresURL.isPostgres(try global.storeLocation())
                    ? "fleet: warning: a transaction older than the erase stayed open for 30 s, or VACUUM FULL pg_statistic or CHECKPOINT was refused (they need the database's owner and the pg_checkpoint role): the files or the WAL may keep erased values; run 'fleet profiles erase --vacuum' again later\n"
                    : "fleet: warning: other processes hold the WAL; run 'fleet profiles erase' again or wait for their next checkpoint\n"
                FileHandle.standardError.write(Data(warning.utf8))
            }
        }
    }
}
