import FleetCore
import FleetRuntime
import FleetTestSupport
import Foundation
import ProfileStore
@testable import PushWorker
import Testing

/// Campaign-sized runs: 1,000 people in process, and `fleet worker --kinds push` on the real broker SIGKILLed mid-run.
@Suite("Push campaigns (emulator, SQLite, broker)", .timeLimit(.minutes(5)))
struct PushCampaignTests {
    /// Person `i`'s devices: iOS for i % 3 == 0, Android for 1, both for 2.
    static func devices(_ i: Int) -> [(String, String)] {
        var d: [(String, String)] = []
        if i % 3 != 1 { d.append((PushHandlerTests.iosToken(10_000 + i), "ios")) }
        if i % 3 != 0 { d.append((PushHandlerTests.fcmToken(10_000 + i), "android")) }
        return d
    }

    @Test("1,000 people (iOS and Android, some unregistered, some opted out, some in quiet hours): each eligible device gets exactly one push, none goes to an opted-out or invalid device, invalid tokens are pruned, quiet-hour ones deferred")
    func thousand() async throws {
        let n = 1000
        // i % 20 == 0: the iOS token is dead (or, for Android-only people, the FCM one); i % 10 == 3: opted out of
        // offers; i % 10 == 7: 02:00 in Kiritimati, inside the quiet hours.
        let dead = (0..<n).filter { $0 % 20 == 0 }.map { Self.devices($0)[0].0 }
        try await PushEmulator.with(unregistered: dead) { emulator in
            try await PushFleet(emulator: emulator, start: PushHandlerTests.noonUTC, environment: ["FLEET_PUSH_QUIET_HOURS": "21:00-08:00"]).run { fleet in
                for i in 0..<n {
                    try await fleet.person("u\(i)", traits: ["first_name": .string("U\(i)"), "timezone": i % 10 == 7 ? "Pacific/Kiritimati" : "Europe/Berlin"],
                                           devices: Self.devices(i), consents: i % 10 == 3 ? ["offers": false] : [:])
                }
                for i in 0..<n { fleet.push(PushFleet.job("k\(i)", profile: "u\(i)", campaign: "thousand")) }
                await fleet.driver.waitFor { events in
                    events.count { if case .result(let r) = $0 { r.status.isFinal || r.status == .deferred } else { false } } >= n
                }
                let results = Dictionary(fleet.driver.results.map { ($0.jobID, $0) }, uniquingKeysWith: { $1 })
                var expected: [String: Int] = [:]
                for i in 0..<n {
                    let r = try #require(results["k\(i)"])
                    if i % 10 == 3 {
                        #expect(r.status == .suppressed && r.output["reason"] == "opted_out", "k\(i)")
                    } else if i % 10 == 7 {
                        #expect(r.status == .deferred, "k\(i)")
                    } else if i % 20 == 0 && Self.devices(i).count == 1 {
                        #expect(r.status == .suppressed && r.output["reason"] == "devices_invalid", "k\(i): the one device is dead")
                    } else {
                        #expect(r.status == .succeeded, "k\(i): \(r.status) \(r.error?.description ?? "")")
                        for (k, (token, _)) in Self.devices(i).enumerated() where !(i % 20 == 0 && k == 0) { expected[token] = 1 }
                    }
                }
                let accepted = try await fleet.accepted()
                var got: [String: Int] = [:]
                for push in accepted { got[push["device_token"]?.stringValue ?? "", default: 0] += 1 }
                #expect(got == expected, "\(got.count) devices got pushes, \(expected.count) expected; \(got.values.filter { $0 > 1 }.count) got more than one")
                // The dead tokens of people who were sent to are invalid in the store; the others untouched.
                for i in stride(from: 0, to: n, by: 20) where i % 10 != 3 && i % 10 != 7 {
                    let view = try #require(try await fleet.store.view(id: "u\(i)"))
                    #expect(view.devices.first { $0.token == dead[i / 20] }?.isValid == false, "u\(i)")
                }
            }
        }
    }

    @Test("fleet worker --kinds push on the broker, SIGKILLed mid-run and started again: every device gets its push, and none two different ones (a resend after the kill carries the same apns-id and collapse id)")
    func sigkill() async throws {
        // A new process mints a new provider token at once; the emulator's 20-minute rule per key would refuse it (as
        // APNs may): the worker's retry would then wait for the rule, too long for a test.
        try await PushEmulator.with(arguments: ["--no-apns-token-update-limit"]) { emulator in
            let directory = try TestEnvironment.temporaryDirectory()
            let fleet = try await KindFleet(kind: "push", name: "push-kill", directory: directory,
                                            environment: try emulator.environment(directory: directory))
            let n = 600
            let store = ProfileStore(path: fleet.store)
            var ops: [ProfileOperation] = []
            for i in 0..<n {
                ops.append(ProfileOperation(opID: "i\(i)", timestampMillis: 1_000, body: .identify(profileID: "v\(i)", traits: ["first_name": .string("V\(i)")], identities: [])))
                for (k, (token, platform)) in Self.devices(i).enumerated() {
                    ops.append(ProfileOperation(opID: "d\(i)-\(k)", timestampMillis: 1_000,
                                                body: .device(profileID: "v\(i)", token: token, platform: platform, app: "shop", registered: true)))
                }
            }
            _ = try await store.apply(ops)
            store.close()
            // Every answer 15 ms late: the run lasts long enough to be killed in the middle.
            let http = try PushHTTP(caFile: emulator.caFile)
            _ = try await http.post(emulator.url + "/_emulator/faults", headers: [("content-type", "application/json")],
                                    body: JSONValue.object(["service": "any", "status": 0, "delay_ms": 15, "count": 1_000_000]).serialized())
            await http.shutdown()

            let first = try fleet.startWorker(arguments: ["--concurrency", "16"])
            try await fleet.publish((0..<n).map { ["id": .string("v\($0)"), "kind": "push", "profile_id": .string("v\($0)"), "template": "offer", "campaign": "kill"] })
            let midway = await TestEnvironment.eventually(timeout: .seconds(120), every: .milliseconds(10)) { emulator.accepted().count >= 150 }
            #expect(midway)
            kill(first.processIdentifier, SIGKILL)
            let killedAt = emulator.accepted().count
            try fleet.startWorker(arguments: ["--concurrency", "16"])
            let ids = Set((0..<n).map { "v\($0)" })
            #expect(await fleet.waitForFinals(ids, timeout: .seconds(240)), "\(fleet.finals.count) of \(n) final")
            await fleet.stopWorkers()
            #expect(fleet.finals.values.allSatisfy { $0.status == .succeeded })

            let http2 = try PushHTTP(caFile: emulator.caFile)
            _ = try await http2.post(emulator.url + "/_emulator/flush", headers: [], body: [])
            await http2.shutdown()
            var byDevice: [String: Set<String>] = [:]
            var count: [String: Int] = [:]
            for push in emulator.accepted() {
                let token = push["device_token"]?.stringValue ?? ""
                let id = push["service"] == "apns" ? push["headers"]?["apns-id"]?.stringValue : push["payload"]?["message"]?["data"]?["fleet_message_id"]?.stringValue
                let collapse = push["service"] == "apns" ? push["headers"]?["apns-collapse-id"]?.stringValue : push["payload"]?["message"]?["android"]?["notification"]?["tag"]?.stringValue
                byDevice[token, default: []].insert("\(id ?? "-") \(collapse ?? "-")")
                count[token, default: 0] += 1
            }
            let expected = Set((0..<n).flatMap { Self.devices($0).map(\.0) })
            #expect(Set(byDevice.keys) == expected, "\(expected.subtracting(byDevice.keys).count) devices without a push")
            #expect(byDevice.values.allSatisfy { $0.count == 1 }, "a device got two different pushes")
            let resent = count.values.filter { $0 > 1 }.count
            print("push SIGKILL test: killed after \(killedAt) accepted pushes; \(resent) device(s) got their uncertain push again with the same ids")
            await fleet.tearDown()
        }
    }
}
