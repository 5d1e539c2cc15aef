import FleetCore
import FleetRuntime
import FleetTestSupport
import Foundation
import ProfileStore
@testable import PushWorker
import Testing

/// The push worker in process (memory queue, real SQLite store, the repository's templates) against the APNs/FCM
/// emulator: real HTTP/2 over TLS, real ES256 and RS256 checks.
@Suite("Push worker (emulator, SQLite)", .timeLimit(.minutes(5)))
struct PushHandlerTests {
    static func iosToken(_ n: Int) -> String { String(format: "%064x", n) }
    static func fcmToken(_ n: Int) -> String { "fcm-token-\(n)-" + String(repeating: "x", count: 20) }

    /// Today 12:00 UTC: 13:00 in Berlin, 02:00 (next day) in Kiritimati (UTC+14).
    static var noonUTC: Date {
        let now = Date().timeIntervalSince1970
        return Date(timeIntervalSince1970: (now / 86_400).rounded(.down) * 86_400 + 12 * 3600)
    }

    @Test("an iOS and an Android device each get one push, personalized; APNs headers and FCM blocks as documented; the result lists both without their tokens")
    func delivers() async throws {
        try await PushEmulator.with { emulator in
            try await PushFleet(emulator: emulator, start: Self.noonUTC).run { fleet in
                try await fleet.person("p1", traits: ["first_name": "Ada", "locale": "de", "timezone": "Europe/Berlin"],
                                       devices: [(Self.iosToken(1), "ios"), (Self.fcmToken(1), "android")])
                // The content worker's block for the person's `push` slot is `content.push` (offer's data carries its first pick).
                try await fleet.store.saveContentBlock(profileID: "p1", slot: "push", block: ["slot": "push", "items": [["sku": "run-7", "name": "Runner"]]],
                                                       modelVersion: 1, expiresAt: ProfileStore.nowMillis() + 3_600_000)
                fleet.push(PushFleet.job("j1", profile: "p1", data: ["category": "Schuhe"]))
                let r = await fleet.final("j1")
                #expect(r.status == .succeeded, "\(r.error?.description ?? "")")
                #expect(r.output["delivered"] == 2)
                let rows = r.output["devices"]?.arrayValue ?? []
                #expect(rows.count == 2)
                #expect(rows.allSatisfy { $0["status"] == "delivered" && $0["id"]?.stringValue?.isEmpty == false })
                let text = String(decoding: r.output.serialized(), as: UTF8.self)
                #expect(!text.contains(Self.iosToken(1)) && !text.contains(Self.fcmToken(1)), "no token in the result")

                let accepted = try await fleet.accepted()
                #expect(accepted.count == 2)
                let apns = try #require(accepted.first { $0["service"] == "apns" })
                #expect(apns["device_token"]?.stringValue == Self.iosToken(1))
                let h = apns["headers"]
                #expect(h?["apns-topic"] == "com.example.shop" && h?["apns-push-type"] == "alert" && h?["apns-priority"] == "10")
                #expect(h?["apns-collapse-id"] == "offer")
                #expect(h?["apns-id"]?.stringValue == PushSender.messageID(jobID: "j1", token: Self.iosToken(1)))
                let expiration = Int64(h?["apns-expiration"]?.stringValue ?? "") ?? 0
                #expect(expiration == Int64(Self.noonUTC.timeIntervalSince1970) + 43_200, "the template's ttl_seconds")
                #expect(apns["payload"]?["aps"]?["alert"]?["title"] == "Ada, nur heute: 20 % Rabatt")
                #expect(apns["payload"]?["aps"]?["alert"]?["body"] == "Auf alles in Schuhe. Tippen, um zu stöbern.")
                #expect(apns["payload"]?["link"] == "shop://offers/spring")
                #expect(apns["payload"]?["pick"] == "run-7", "content.push from the store")
                #expect(apns["payload"]?["fleet"]?["campaign_id"] == "spring")
                let fcm = try #require(accepted.first { $0["service"] == "fcm" })
                let m = fcm["payload"]?["message"]
                #expect(m?["token"]?.stringValue == Self.fcmToken(1))
                #expect(m?["notification"]?["title"] == "Ada, nur heute: 20 % Rabatt")
                #expect(m?["data"]?["link"] == "shop://offers/spring" && m?["data"]?["discount"] == "20" && m?["data"]?["fleet_variant"] == "default")
                #expect(m?["android"]?["collapse_key"] == "offer" && m?["android"]?["ttl"] == "43200s" && m?["android"]?["priority"] == "HIGH")
            }
        }
    }

    @Test("token hygiene: APNs 410 and FCM UNREGISTERED mark the device invalid in the store and it is never sent to again; a token re-registered after APNs' timestamp stays valid")
    func tokenHygiene() async throws {
        // Unregistered at 1970-01-01T00:00:00.500Z: before the re-registration at 1,000 ms of q1's device.
        let goneIOS = Self.iosToken(0xdead), goneFCM = Self.fcmToken(0xdead), reregistered = Self.iosToken(0xbeef)
        try await PushEmulator.with(unregistered: ["\(goneIOS) 1790000000000", goneFCM, "\(reregistered) 500"]) { emulator in
            try await PushFleet(emulator: emulator, start: Self.noonUTC).run { fleet in
                try await fleet.person("p1", devices: [(goneIOS, "ios"), (goneFCM, "android"), (Self.iosToken(2), "ios")])
                try await fleet.person("q1", devices: [(reregistered, "ios")])
                fleet.push(PushFleet.job("t1", profile: "p1"))
                let r = await fleet.final("t1")
                #expect(r.status == .succeeded)
                #expect(r.output["delivered"] == 1 && r.output["pruned"] == 2)
                let view = try #require(try await fleet.store.view(id: "p1"))
                #expect(view.devices.first { $0.token == goneIOS }?.invalidSince == 1_790_000_000_000, "APNs' timestamp")
                #expect(view.devices.first { $0.token == goneFCM }?.invalidSince != nil)
                #expect(view.devices.first { $0.token == Self.iosToken(2) }?.isValid == true)

                fleet.push(PushFleet.job("t2", profile: "p1"))
                let again = await fleet.final("t2")
                #expect(again.output["delivered"] == 1 && again.output["devices"]?.arrayValue?.count == 1, "the pruned tokens are not tried")

                fleet.push(PushFleet.job("t3", profile: "q1"))
                _ = await fleet.final("t3")
                let q = try #require(try await fleet.store.view(id: "q1"))
                #expect(q.devices.first?.isValid == true, "registered at 1,000 ms, after the service's 500 ms: kept")
                let accepted = try await fleet.accepted()
                #expect(accepted.count == 2, "one push to the valid device per job")
                #expect(Set(accepted.compactMap { $0["device_token"]?.stringValue }) == [Self.iosToken(2)])
            }
        }
    }

    @Test("marketing rules: opt-out, no devices, holdout, frequency cap, quiet hours (deferred to the window's end, or dropped); a transactional push ignores consent and quiet hours")
    func marketingRules() async throws {
        try await PushEmulator.with { emulator in
            try await PushFleet(emulator: emulator, start: Self.noonUTC, environment: ["FLEET_PUSH_QUIET_HOURS": "21:00-08:00"]).run { fleet in
                try await fleet.person("out", devices: [(Self.iosToken(10), "ios")], consents: ["offers": false])
                try await fleet.person("none")
                try await fleet.person("night", traits: ["timezone": "Pacific/Kiritimati"], devices: [(Self.iosToken(11), "ios")])
                try await fleet.person("day", traits: ["timezone": "Europe/Berlin"], devices: [(Self.iosToken(12), "ios")])
                fleet.push(PushFleet.job("m1", profile: "out"))
                fleet.push(PushFleet.job("m2", profile: "none"))
                fleet.push(PushFleet.job("m3", profile: "day", campaign: ["id": "h", "holdout": 1]))
                fleet.push(PushFleet.job("m4", profile: "night"))
                fleet.push(PushFleet.job("m5", profile: "night", campaign: ["id": "late", "quiet_action": "drop"]))
                fleet.push(PushFleet.job("m6", profile: "out", template: "order-shipped", data: ["order_id": "A-1"]))
                fleet.push(PushFleet.job("m7", profile: "night", template: "order-shipped", data: ["order_id": "A-2"]))
                #expect(await fleet.final("m1").output["reason"] == "opted_out")
                #expect(await fleet.final("m2").output["reason"] == "no_devices")
                #expect(await fleet.final("m3").output["reason"] == "holdout")
                let deferred = await fleet.result("m4", .deferred)
                // 02:00 in Kiritimati (UTC+14): the window ends at 08:00 local, six hours later.
                #expect(deferred.retryAt == Self.noonUTC.addingTimeInterval(6 * 3600))
                #expect(await fleet.final("m5").output["reason"] == "quiet_hours")
                #expect(await fleet.final("m6").status == .succeeded, "transactional: consent does not apply")
                #expect(await fleet.final("m7").status == .succeeded, "transactional: quiet hours do not apply")

                fleet.push(PushFleet.job("c1", profile: "day", campaign: ["id": "cap", "frequency_cap": 1]))
                #expect(await fleet.final("c1").status == .succeeded)
                fleet.push(PushFleet.job("c2", profile: "day", campaign: ["id": "cap2", "frequency_cap": 1]))
                let capped = await fleet.final("c2")
                #expect(capped.status == .suppressed && capped.output["reason"] == "frequency_cap")

                // At the window's end the deferred job runs and is sent.
                await fleet.advance(by: .seconds(6 * 3600))
                #expect(await fleet.final("m4").status == .succeeded)
                let accepted = try await fleet.accepted()
                #expect(accepted.filter { $0["device_token"]?.stringValue == Self.iosToken(10) }.count == 1, "only the transactional push to the opted-out person")
                #expect(accepted.filter { $0["device_token"]?.stringValue == Self.iosToken(11) }.count == 2, "m7 at once, m4 after the window")
                let m6 = accepted.first { $0["device_token"]?.stringValue == Self.iosToken(10) }
                #expect(m6?["headers"]?["apns-collapse-id"]?.stringValue == PushSender.messageID(jobID: "m6", token: ""),
                        "without a collapse key: the job's own, so that a resend replaces it")
                // Every shape of result seen here, as published, is valid against the contract's schemas.
                let bodies = ContractCheck.onePerKindAndStatus(fleet.driver.results.map { $0.encoded() })
                let check = try await ContractCheck.validate(bodies, requireKinds: ["push"])
                #expect(check.status == 0, "\(check.output)")
            }
        }
    }

    @Test("429 with Retry-After on one of two devices: the job is retried after the service's delay, and only that device is sent to again")
    func retryOnlyFailedDevices() async throws {
        try await PushEmulator.with { emulator in
            try await PushFleet(emulator: emulator, start: Self.noonUTC).run { fleet in
                try await fleet.person("p", devices: [(Self.iosToken(20), "ios"), (Self.iosToken(21), "ios")])
                _ = try await fleet.control("/_emulator/faults", ["service": "apns", "status": 429, "retry_after": 7, "token": .string(Self.iosToken(21))])
                fleet.push(PushFleet.job("r1", profile: "p"))
                let failed = await fleet.result("r1", .failed)
                #expect(failed.error?.code == "push_throttled")
                #expect(failed.retryAt == Self.noonUTC.addingTimeInterval(7), "Retry-After: 7")
                await fleet.advance(by: .seconds(7))
                let r = await fleet.final("r1")
                #expect(r.status == .succeeded && r.output["delivered"] == 2)
                #expect(r.output["devices"]?.arrayValue?.contains { $0["already_sent"] == true } == true)
                let accepted = try await fleet.accepted()
                #expect(accepted.count == 2, "each device once: \(accepted.map { $0["device_token"] ?? .null })")
                #expect(Set(accepted.compactMap { $0["device_token"]?.stringValue }) == [Self.iosToken(20), Self.iosToken(21)])
            }
        }
    }

    @Test("503 storms on both services end delivered through the retries; an expired FCM access token is renewed")
    func storms() async throws {
        try await PushEmulator.with { emulator in
            let fast = RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(20), maxDelay: .milliseconds(200), jitter: false)
            try await PushFleet(emulator: emulator, retry: fast, realTime: true).run { fleet in
                for i in 0..<10 {
                    try await fleet.person("s\(i)", devices: [(i % 2 == 0 ? Self.iosToken(100 + i) : Self.fcmToken(100 + i), i % 2 == 0 ? "ios" : "android")])
                }
                _ = try await fleet.control("/_emulator/faults", ["service": "any", "status": 503, "count": 12])
                for i in 0..<10 { fleet.push(PushFleet.job("s\(i)", profile: "s\(i)")) }
                for i in 0..<10 { #expect(await fleet.final("s\(i)").status == .succeeded) }
                #expect(fleet.driver.results.contains { $0.status == .failed && $0.error?.code == "push_unavailable" }, "the storm was met")
                _ = try await fleet.control("/_emulator/expire-tokens", .object([:]))
                try await fleet.person("late", devices: [(Self.fcmToken(999), "android")])
                fleet.push(PushFleet.job("late", profile: "late"))
                #expect(await fleet.final("late").status == .succeeded)
                #expect(try await fleet.accepted().count == 11)
            }
        }
    }

    @Test("a payload over 4,096 bytes: cut on a character boundary with an ellipsis when the template says truncate_body, else dead / payload_too_large with the size")
    func payloadLimit() async throws {
        try await PushEmulator.with { emulator in
            try await PushFleet(emulator: emulator, start: Self.noonUTC).run { fleet in
                try await fleet.person("p", devices: [(Self.iosToken(30), "ios"), (Self.fcmToken(30), "android")])
                let long = String(repeating: "Schuhe 👟 ", count: 600)
                fleet.push(PushFleet.job("big", profile: "p", data: ["category": .string(long)]))
                let r = await fleet.final("big")
                #expect(r.status == .succeeded && r.output["truncated"] == true)
                fleet.push(PushFleet.job("huge", profile: "p", template: "order-shipped", data: ["order_id": .string(long)]))
                let dead = await fleet.final("huge")
                #expect(dead.status == .dead && dead.error?.code == "payload_too_large")
                #expect(dead.error?.message.contains("bytes") == true)
                let accepted = try await fleet.accepted()
                #expect(accepted.count == 2)
                for push in accepted {
                    let body = push["service"] == "apns" ? push["payload"]?["aps"]?["alert"]?["body"]?.stringValue : push["payload"]?["message"]?["notification"]?["body"]?.stringValue
                    #expect(body?.hasSuffix("…") == true)
                }
                let apns = try #require(accepted.first { $0["service"] == "apns" })
                #expect(apns["payload"].map { $0.serialized().count } ?? 0 <= 4096)
            }
        }
    }

    @Test("FLEET_PUSH_DELIVERY=result sends nothing: the job succeeds with each device's exact request, no token in it")
    func resultDelivery() async throws {
        try await PushEmulator.with { emulator in
            try await PushFleet(emulator: emulator, start: Self.noonUTC, environment: ["FLEET_PUSH_DELIVERY": "result"]).run { fleet in
                try await fleet.person("p", traits: ["first_name": "Ada"], devices: [(Self.iosToken(40), "ios"), (Self.fcmToken(40), "android")])
                fleet.push(PushFleet.job("d1", profile: "p"))
                let r = await fleet.final("d1")
                #expect(r.status == .succeeded)
                let rows = r.output["devices"]?.arrayValue ?? []
                #expect(rows.count == 2 && rows.allSatisfy { $0["status"] == "rendered" })
                #expect(rows.contains { $0["service"] == "apns" && $0["headers"]?["apns-topic"] == "com.example.shop" && $0["payload"]?["aps"]?["alert"]?["title"] == "Ada, today only: 20% off" })
                #expect(rows.contains { $0["service"] == "fcm" && $0["payload"]?["message"]?["notification"]?["title"] == "Ada, today only: 20% off" })
                let text = String(decoding: r.output.serialized(), as: UTF8.self)
                #expect(!text.contains(Self.iosToken(40)) && !text.contains(Self.fcmToken(40)))
                #expect(try await fleet.accepted().isEmpty)
            }
        }
    }

    @Test("bad parameters are dead / invalid_parameters naming the field, before anything is read or sent")
    func badParameters() async throws {
        try await PushEmulator.with { emulator in
            try await PushFleet(emulator: emulator, start: Self.noonUTC).run { fleet in
                var j = PushFleet.job("b1", profile: "p")
                j["platform"] = "windows"
                fleet.push(j)
                fleet.push(PushFleet.job("b2", profile: "p", campaign: ["id": "c", "collapse_key": .string(String(repeating: "k", count: 65))]))
                fleet.push(PushFleet.job("b3", profile: "p", campaign: ["id": "c", "quiet_hours": "25:00-08:00"]))
                fleet.push(["id": "b4", "kind": "push", "profile_id": "p"])
                fleet.push(PushFleet.job("b5", profile: "p", template: "no-such-template"))
                #expect(await fleet.final("b1").error?.message.contains("'platform'") == true)
                #expect(await fleet.final("b2").error?.message.contains("'campaign.collapse_key'") == true)
                #expect(await fleet.final("b3").error?.message.contains("'campaign.quiet_hours'") == true)
                let b4 = await fleet.final("b4")
                #expect(b4.error?.code == "invalid_parameters" && b4.error?.message.contains("'template'") == true)
                #expect(await fleet.final("b5").error?.code == "template_not_found")
            }
        }
    }
}
