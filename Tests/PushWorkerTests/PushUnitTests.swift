import FleetCore
import FleetMarketing
import Foundation
@testable import PushWorker
import Testing

@Suite("Push worker units")
struct PushUnitTests {
    @Test("quiet hours: HH:MM-HH:MM across midnight; the end is the next local end time, daylight saving included")
    func quietHours() throws {
        let q = try #require(QuietHours("21:00-08:00"))
        #expect(q.contains(minute: 21 * 60) && q.contains(minute: 2 * 60) && !q.contains(minute: 8 * 60) && !q.contains(minute: 12 * 60))
        #expect(QuietHours("25:00-08:00") == nil && QuietHours("8:00-9:00") == nil && QuietHours("08:00-08:00") == nil)
        let day = try #require(QuietHours("09:00-17:00"))
        #expect(day.contains(minute: 9 * 60) && !day.contains(minute: 17 * 60))
        // Berlin, the night of the switch to summer time (2026-03-29, 02:00 -> 03:00): 23:30 local on the 28th (22:30Z)
        // ends at 08:00 CEST (06:00Z), 6.5 hours later.
        let berlin = LocalDay(timezone: "Europe/Berlin")
        let late = Date(timeIntervalSince1970: 1_774_737_000)  // 2026-03-28T22:30:00Z
        #expect(q.end(of: late, in: berlin) == Date(timeIntervalSince1970: 1_774_764_000))  // 2026-03-29T06:00:00Z
        #expect(q.end(of: Date(timeIntervalSince1970: 1_774_764_000), in: berlin) == nil, "08:00 is outside")
        #expect(LocalDay(timezone: "No/Such_Zone").day(of: late) == "2026-03-28", "an unknown zone is UTC")
    }

    @Test("the apns-id of a job's push to a device: a canonical UUID, the same in every run, different per device and job")
    func messageID() {
        let a = PushSender.messageID(jobID: "j1", token: "t1")
        #expect(a == PushSender.messageID(jobID: "j1", token: "t1"))
        #expect(a != PushSender.messageID(jobID: "j1", token: "t2") && a != PushSender.messageID(jobID: "j2", token: "t1"))
        #expect(a.range(of: #"^[0-9A-F]{8}-[0-9A-F]{4}-8[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$"#, options: .regularExpression) != nil, "\(a)")
        #expect(PushSender.deviceID("t1").count == 16 && PushSender.deviceID("t1") != PushSender.deviceID("t2"))
    }

    @Test("truncation keeps whole characters (an emoji is never split) and both payloads within 4,096 bytes")
    func truncation() throws {
        let meta = try PushTemplateMetadata(json: ["truncate_body": true], template: "push/x")
        let composer = PushComposer(catalog: PushTemplateCatalog(directory: "/nonexistent"))
        let body = String(repeating: "👩‍👩‍👧‍👦 é ", count: 400)
        let content = PushComposer.Content(title: "T", subtitle: nil, body: body, image: nil, link: nil, data: [])
        let p = try composer.payloads(content, metadata: meta, ids: [("job_id", "j")], ttlSeconds: 60, collapseKey: nil, tag: "tag")
        #expect(p.truncated && p.apns.count <= 4096 && p.fcmBytes <= 4096)
        let cut = try #require(try JSONValue(parsing: p.apns)["aps"]?["alert"]?["body"]?.stringValue)
        #expect(cut.hasSuffix("…"))
        #expect(body.hasPrefix(String(cut.dropLast())), "a prefix of whole characters")
        #expect(p.apns.count > 3900, "as much as fits: \(p.apns.count)")
        let strict = try PushTemplateMetadata(json: [:], template: "push/x")
        #expect(throws: PushError.self) { try composer.payloads(content, metadata: strict, ids: [], ttlSeconds: 60, collapseKey: nil, tag: "t") }
    }

    @Test("settings: a wrong value names its variable; a key file without its ids is refused")
    func settings() {
        #expect(throws: PushError("push_configuration", "FLEET_PUSH_QUIET_HOURS must be HH:MM-HH:MM (e.g. 21:00-08:00)")) {
            try PushSettings.fromEnvironment(["FLEET_PUSH_QUIET_HOURS": "late"])
        }
        #expect(throws: PushError("push_configuration", "FLEET_PUSH_APNS_URL must be an https:// URL (APNs and FCM speak HTTP/2 over TLS)")) {
            try PushSettings.fromEnvironment(["FLEET_PUSH_APNS_URL": "http://x"])
        }
        #expect(throws: PushError("push_configuration", "FLEET_PUSH_APNS_KEY_FILE is not a readable file")) {
            try PushSettings.fromEnvironment(["FLEET_PUSH_APNS_KEY_FILE": "/nonexistent.p8"])
        }
    }
}
