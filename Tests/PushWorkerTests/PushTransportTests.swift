import FleetCore
import Foundation
@testable import PushWorker
import Testing

/// The APNs and FCM clients against the emulator: real HTTP/2 over TLS, real ES256 and RS256 checks.
@Suite("Push transport (APNs and FCM emulator)")
struct PushTransportTests {
    static let device = String(repeating: "ab", count: 32)
    static let gone = String(repeating: "cd", count: 32)

    @Test("APNs: a push with a provider token is accepted (200, apns-id echoed); an unregistered device gets 410 with its timestamp; a malformed one 400 BadDeviceToken; the token is reused")
    func apns() async throws {
        try await PushEmulator.with(unregistered: ["\(Self.gone) 1790000000000"]) { emulator in
        let http = try PushHTTP(caFile: emulator.caFile)
        let apns = try APNsClient(http: http, baseURL: emulator.url,
                                  credentials: .init(keyID: emulator.keyID, teamID: emulator.teamID, keyPEM: emulator.keyPEM))
        let id = UUID().uuidString.uppercased()
        let headers = [("apns-topic", "com.example.shop"), ("apns-push-type", "alert"), ("apns-priority", "10"), ("apns-id", id)]
        let payload = Array(#"{"aps":{"alert":{"title":"Hi","body":"New in"}}}"#.utf8)
        let ok = try await apns.send(device: Self.device, headers: headers, payload: payload)
        #expect(ok.status == 200)
        #expect(ok.apnsID?.uppercased() == id)
        let first = try apns.providerToken()
        let unregistered = try await apns.send(device: Self.gone, headers: headers, payload: payload)
        #expect(unregistered.status == 410 && unregistered.reason == "Unregistered" && unregistered.timestamp == 1_790_000_000_000)
        let bad = try await apns.send(device: "zz", headers: headers, payload: payload)
        #expect(bad.status == 400 && bad.reason == "BadDeviceToken")
        #expect(try apns.providerToken() == first, "one provider token for every request")
        _ = try await http.post(emulator.url + "/_emulator/flush", headers: [], body: [])
        let accepted = emulator.accepted()
        #expect(accepted.count == 1)
        #expect(accepted.first?["headers"]?["apns-topic"] == "com.example.shop" && accepted.first?["device_token"]?.stringValue == Self.device)
        await http.shutdown()
        }
    }

    @Test("FCM: the service account's assertion is exchanged for an access token, messages:send answers the message name; an unregistered token is UNREGISTERED")
    func fcm() async throws {
        try await PushEmulator.with(unregistered: ["fcm-gone-token-0001"]) { emulator in
        let http = try PushHTTP(caFile: emulator.caFile)
        let account = try FCMClient.ServiceAccount(json: Array(try Data(contentsOf: URL(fileURLWithPath: emulator.serviceAccountFile))))
        let fcm = try FCMClient(http: http, baseURL: emulator.url, account: account)
        let ok = try await fcm.send(message: ["token": "fcm-device-token-0001", "notification": ["title": "Hi", "body": "New in"],
                                              "data": ["deep_link": "shop://new"], "android": ["collapse_key": "spring", "ttl": "3600s", "priority": "HIGH"]])
        #expect(ok.status == 200)
        #expect(ok.name?.hasPrefix("projects/\(account.projectID)/messages/") == true)
        let gone = try await fcm.send(message: ["token": "fcm-gone-token-0001", "notification": ["title": "Hi"]])
        #expect(gone.status == 404 && gone.errorCode == "UNREGISTERED")
        _ = try await http.post(emulator.url + "/_emulator/flush", headers: [], body: [])
        let accepted = emulator.accepted()
        #expect(accepted.count == 1)
        #expect(accepted.first?["payload"]?["message"]?["android"]?["collapse_key"] == "spring")
        await http.shutdown()
        }
    }
}
