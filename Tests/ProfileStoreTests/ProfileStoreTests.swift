import FleetCore
import FleetTestSupport
import Foundation
import ProfileStore
import Testing

/// The profile store on a real SQLite file, without a broker: what only SQLite has (the erased bytes gone from the
/// file, segments). The semantics both backends share are in FleetPostgresTests/ProfileBackendTests.
@Suite("Profile store")
struct ProfileStoreTests {
    static func store() throws -> (ProfileStore, URL) {
        let dir = try TestEnvironment.temporaryDirectory()
        return (ProfileStore(path: dir.appendingPathComponent("fleet.sqlite").path), dir)
    }

    static func identify(_ op: String, _ id: String, at ms: Int64, _ traits: JSONValue, email: String? = nil) -> ProfileOperation {
        ProfileOperation(opID: op, timestampMillis: ms, body: .identify(
            profileID: id, traits: traits.objectValue ?? JSONObject(), identities: email.map { [ProfileIdentity(.email, $0)] } ?? []))
    }

    @Test("SHA-256 matches the FIPS test vectors")
    func sha256() {
        #expect(Digests.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digests.sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Digests.sha256Hex(String(repeating: "a", count: 1000)).hasPrefix("41edece42d63e8d9bf515a9ba6932e1c"))
    }

    @Test("events whose items are not objects (CRM input allows them) are left out of the content worker's interactions, not an error")
    func interactionsSkipOddItems() async throws {
        let (store, dir) = try Self.store()
        defer { store.close(); try? FileManager.default.removeItem(at: dir) }
        func track(_ id: String, _ event: TrackedEvent) -> ProfileOperation {
            ProfileOperation(opID: id, timestampMillis: 1000, body: .track(profileID: "p1", event: event))
        }
        _ = try await store.apply([
            track("a", TrackedEvent(eventID: "a", name: "viewed", occurredAt: 1000, items: [["sku": "s1"], "s2", 3, .null])),
            track("b", TrackedEvent(eventID: "b", name: "viewed", properties: ["items": "s3"], occurredAt: 1000)),
            track("c", TrackedEvent(eventID: "c", name: "purchase", occurredAt: 1000, amount: 5, items: [["sku": "s4"]])),
        ])
        let interactions = try await store.read { try $0.interactions(weights: ["viewed": 1], purchaseWeight: 5) }
        #expect(interactions.map(\.sku).sorted() == ["s1", "s4"])
    }

    @Test("erase leaves none of the person's data in the file's bytes, and suppresses the addresses")
    func erase() async throws {
        let (store, dir) = try Self.store()
        defer { store.close(); try? FileManager.default.removeItem(at: dir) }
        let secrets = ["zelda.secret@example.org", "+4915112345678", "Zeldastrasse 42", "tok-ZELDA-0001", "ZeldaFirstName"]
        var ops: [ProfileOperation] = []
        for i in 0..<50 {  // other people around, and many versions of Zelda's row
            ops.append(Self.identify("other-\(i)", "p\(i)", at: 1000, ["first_name": "bob", "n": .int(Int64(i))], email: "p\(i)@example.com"))
            ops.append(Self.identify("z-\(i)", "zelda", at: 1000 + Int64(i), ["street": .string(secrets[2]), "first_name": .string(secrets[4]), "n": .int(Int64(i))], email: secrets[0]))
        }
        ops.append(ProfileOperation(opID: "zp", timestampMillis: 3000, body: .identify(profileID: "zelda", traits: JSONObject(), identities: [ProfileIdentity(.phone, secrets[1])])))
        ops.append(ProfileOperation(opID: "zd", timestampMillis: 3000, body: .device(profileID: "zelda", token: secrets[3], platform: "ios", app: "shop", registered: true)))
        ops.append(ProfileOperation(opID: "ze", timestampMillis: 3000, body: .track(profileID: "zelda", event: TrackedEvent(
            eventID: "zev", name: "viewed", properties: JSONObject(["street": .string(secrets[2])]), occurredAt: 3000))))
        _ = try await store.apply(ops)
        #expect(try await store.view(email: secrets[0]) != nil)
        // Not vacuous: before the erase, the values are in the files.
        let before = ["fleet.sqlite", "fleet.sqlite-wal"].compactMap { FileManager.default.contents(atPath: dir.appendingPathComponent($0).path) }
        for secret in secrets where !secret.hasPrefix("+") {
            #expect(before.contains { $0.range(of: Data(secret.utf8)) != nil }, "the value was never written")
        }

        let result = try await store.erase(.id("zelda"))
        #expect(result.status == .applied)
        #expect(try await store.view(id: "zelda") == nil)
        #expect(try await store.isSuppressed(address: " ZELDA.secret@example.org", channel: .email))
        #expect(try await store.isSuppressed(address: secrets[3], channel: .push))
        #expect(try await store.isSuppressed(address: "+49 151 12345678", channel: .sms))
        #expect(try await !store.isSuppressed(address: "p1@example.com", channel: .email))
        #expect(try await store.view(id: "p1") != nil)

        for file in ["fleet.sqlite", "fleet.sqlite-wal"] {
            let url = dir.appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: url.path) else { continue }
            for secret in secrets + ["zelda.secret"] {
                #expect(data.range(of: Data(secret.utf8)) == nil, "\(file) still holds a value of the erased person")
            }
        }
        // The CRM syncs the person again: suppressed, nothing stored.
        let again = try await store.apply([Self.identify("z-again", "zelda", at: 9000, ["first_name": "zelda"], email: secrets[0])])
        #expect(again[0].status == .skipped && again[0].reason == "suppressed")
        let again2 = try await store.apply([Self.identify("z-again2", "zelda-2", at: 9000, ["first_name": "zelda"], email: secrets[0])])
        #expect(again2[0].status == .skipped && again2[0].reason == "suppressed")
    }
}
