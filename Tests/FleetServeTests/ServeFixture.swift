import EmailWorker
import FleetCore
import FleetLinks
import FleetServe
import FleetStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import ProfileStore

/// A profile store in a fresh directory with a few people and a campaign, and `fleet serve`'s settings on it.
final class ServeFixture: @unchecked Sendable {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let templates = repository + "/Templates"
    /// The built `fleet` executable (`FLEET_BIN`, else the debug build).
    static var fleetBinary: String {
        if let b = ProcessInfo.processInfo.environment["FLEET_BIN"], !b.isEmpty { return b }
        return repository + "/.build/debug/fleet"
    }
    static let publicURL = "https://mail.example.test"
    /// Two keys: `k2` signs, `k1` (an older one) still verifies.
    static let keys = try! LinkKeys(parsing: "k2:serve-secret-new,k1:serve-secret-old")

    let directory: URL
    let path: String
    let store: ProfileStore
    var settings: ServeSettings

    init(campaign: String = "spring", profiles: [(String, String)] = [("p-ada", "en"), ("p-bea", "de"), ("p-cyr", "fr")]) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("fleet.sqlite").path
        store = ProfileStore(path: path, readers: 2)
        try await store.open()
        var ops: [ProfileOperation] = []
        for (i, (id, locale)) in profiles.enumerated() {
            ops.append(ProfileOperation(opID: "id-\(id)", timestampMillis: 1_000 + Int64(i), body: .identify(
                profileID: id, traits: ["first_name": .string("N\(i)"), "locale": .string(locale)],
                identities: [ProfileIdentity(.email, "\(id)@example.test")])))
        }
        _ = try await store.apply(ops)
        _ = try await store.createCampaign(CampaignRecord(id: campaign, kind: "email", template: "newsletter", segment: "everyone",
                                                          createdAt: ProfileStore.nowMillis() - 60_000))
        settings = ServeSettings(host: "127.0.0.1", port: 0, storePath: path, templatesDirectory: Self.templates,
                                 links: LinkSigner(keys: Self.keys, publicURL: Self.publicURL))
    }

    deinit {
        store.close()
        try? FileManager.default.removeItem(at: directory)
    }

    var links: LinkSigner { settings.links }

    /// Runs `body` against a live server on a free loopback port.
    func withServer<T: Sendable>(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        var logger = Logger(label: "fleet.serve.test")
        logger.logLevel = .warning
        let app = EngagementServer.application(settings: settings, store: store, logger: logger, metrics: { Array("fleet_test 1\n".utf8) })
        return try await app.test(.live, body)
    }

    /// The path of a full link (`https://mail.example.test/c/...` → `/c/...`).
    static func path(_ url: String) -> String {
        url.hasPrefix(publicURL) ? String(url.dropFirst(publicURL.count)) : url
    }

    /// The person's email consent for `topic`.
    func consent(_ profileID: String, _ topic: String) async throws -> Bool? {
        try await store.view(id: profileID)?.consent(channel: "email", topic: topic)
    }

    /// Events of a profile named `name`.
    func events(_ name: String) async throws -> [StoredEvent] {
        try await store.read { try $0.events(since: 0, named: [name], purchases: false) }
    }

    static func form(_ text: String) -> (HTTPFields, ByteBuffer) {
        var h = HTTPFields()
        h[.contentType] = "application/x-www-form-urlencoded"
        return (h, ByteBuffer(string: text))
    }
}
