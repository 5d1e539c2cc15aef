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
import Testing

@Suite("fleet serve")
struct EngagementServerTests {
    @Test("RFC 8058 one-click: POST records the opt-out of the token's group, 200, no redirect; again: 200, same state; GET changes nothing")
    func oneClick() async throws {
        let f = try await ServeFixture()
        let token = f.links.token(.subscription(profileID: "p-ada", group: "newsletter", campaignID: "spring"))
        try await f.withServer { client in
            try await client.execute(uri: "/u/\(token)", method: .get) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains("List-Unsubscribe"))
            }
            #expect(try await f.consent("p-ada", "newsletter") == nil, "a GET (link scanners) must not unsubscribe")
            let (h, body) = ServeFixture.form("List-Unsubscribe=One-Click")
            for _ in 0..<2 {
                try await client.execute(uri: "/u/\(token)", method: .post, headers: h, body: body) { r in
                    #expect(r.status == .ok)
                    #expect(r.headers[.location] == nil)
                }
            }
            #expect(try await f.consent("p-ada", "newsletter") == false)
            #expect(try await f.consent("p-ada", "other") == nil, "only the token's group")
            let (h2, other) = ServeFixture.form("foo=bar")
            try await client.execute(uri: "/u/\(token)", method: .post, headers: h2, body: other) { r in #expect(r.status == .badRequest) }
        }
    }

    @Test("forged, foreign-key and expired tokens get the same 404 on every route and change nothing")
    func badTokens() async throws {
        let f = try await ServeFixture()
        let good = f.links.token(.subscription(profileID: "p-ada", group: "newsletter", campaignID: "spring"))
        let forged = String(good.dropLast(2)) + (good.hasSuffix("AA") ? "BB" : "AA")
        let foreign = LinkSigner(keys: try LinkKeys(parsing: "k2:someone-else"), publicURL: ServeFixture.publicURL)
            .token(.subscription(profileID: "p-ada", group: "newsletter", campaignID: "spring"))
        let expired = f.links.token(.subscription(profileID: "p-ada", group: "newsletter", campaignID: "spring"),
                                    now: Date().addingTimeInterval(-400 * 86_400))
        let (h, body) = ServeFixture.form("List-Unsubscribe=One-Click")
        try await f.withServer { client in
            var bodies = Set<String>()
            for t in [forged, foreign, expired, "x", "k2.a.b"] {
                for (uri, method) in [("/u/\(t)", HTTPRequest.Method.post), ("/p/\(t)", .get), ("/o/\(t).gif", .get), ("/c/\(t)", .get)] {
                    try await client.execute(uri: uri, method: method, headers: h, body: body) { r in
                        #expect(r.status == .notFound, "\(uri)")
                        #expect(r.headers[.location] == nil)
                        bodies.insert(String(buffer: r.body))
                    }
                }
            }
            #expect(bodies.count == 1, "one answer for every kind of bad token")
        }
        #expect(try await f.consent("p-ada", "newsletter") == nil)
    }

    @Test("opens: a GIF, one event per message however often; from a proxy range within the window: a machine open, counted apart")
    func opens() async throws {
        let f = try await ServeFixture()
        let m = LinkClaims.Message(messageID: "spring:p-ada", profileID: "p-ada", campaignID: "spring", variant: "a")
        let pixel = ServeFixture.path(f.links.openURL(m))
        try await f.withServer { client in
            for _ in 0..<3 {
                try await client.execute(uri: pixel, method: .get) { r in
                    #expect(r.status == .ok)
                    #expect(r.headers[.contentType] == "image/gif")
                    #expect(Array(r.body.readableBytesView.prefix(6)) == Array("GIF89a".utf8))
                }
            }
        }
        var opens = try await f.events("email_opened")
        #expect(opens.count == 1)
        #expect(opens.first?.properties["machine"] == false)
        #expect(opens.first?.properties["message"] == "spring:p-ada")
        f.settings.machineRanges = [AddressRange("127.0.0.0/8")!]
        try await f.withServer { client in
            for _ in 0..<2 { try await client.execute(uri: pixel, method: .get) { #expect($0.status == .ok) } }
        }
        opens = try await f.events("email_opened")
        #expect(opens.count == 2)
        #expect(opens.filter { $0.properties["machine"] == true }.count == 1)
        // Outside the window after the send, the same range is a human open (already recorded: still 2 events).
        f.settings.machineOpenSeconds = 1
        let old = ServeFixture.path(f.links.openURL(LinkClaims.Message(messageID: "spring:p-bea", profileID: "p-bea", campaignID: "spring", variant: "b"),
                                                    now: Date().addingTimeInterval(-3600)))
        try await f.withServer { client in try await client.execute(uri: old, method: .get) { #expect($0.status == .ok) } }
        let bea = try await f.events("email_opened").filter { $0.profileID == "p-bea" }
        #expect(bea.count == 1 && bea.first?.properties["machine"] == false)
    }

    @Test("clicks: 302 to the signed URL with no referrer, one event per message and link")
    func clicks() async throws {
        let f = try await ServeFixture()
        let m = LinkClaims.Message(messageID: "spring:p-ada", profileID: "p-ada", campaignID: "spring", variant: "b")
        let target = "https://shop.example.com/new?utm_source=email&utm_medium=email"
        let first = ServeFixture.path(f.links.clickURL(m, link: 0, url: target))
        let second = ServeFixture.path(f.links.clickURL(m, link: 1, url: "https://shop.example.com/blog"))
        try await f.withServer { client in
            for uri in [first, first, second] {
                try await client.execute(uri: uri, method: .get) { r in
                    #expect(r.status == .found)
                    #expect(r.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer")
                    #expect(r.headers[.location] == (uri == second ? "https://shop.example.com/blog" : target))
                }
            }
        }
        let clicks = try await f.events("email_clicked")
        #expect(clicks.count == 2)
        #expect(Set(clicks.compactMap { $0.properties["link"]?.intValue }) == [0, 1])
        #expect(clicks.allSatisfy { $0.properties["variant"] == "b" && $0.properties["campaign"] == "spring" })
    }

    @Test("the preference centre: localized, lists the groups, saves changes with a valid form token only, unsubscribes from all")
    func preferences() async throws {
        let f = try await ServeFixture()
        let token = f.links.token(.subscription(profileID: "p-bea", group: "newsletter", campaignID: "spring"))
        try await f.withServer { client in
            let page = try await client.execute(uri: "/p/\(token)", method: .get) { String(buffer: $0.body) }
            #expect(page.contains("lang=\"de\"") && page.contains("Ihre E-Mail-Einstellungen"))
            #expect(page.contains("value=\"newsletter\" checked"))
            #expect(!page.contains("<script"))
            let csrf = try #require(page.range(of: "name=\"csrf\" value=\"").map { page[$0.upperBound...].prefix { $0 != "\"" } })
            let (h, bad) = ServeFixture.form("csrf=nope&action=save")
            try await client.execute(uri: "/p/\(token)", method: .post, headers: h, body: bad) { #expect($0.status == .forbidden) }
            #expect(try await f.consent("p-bea", "newsletter") == nil)
            // Nothing ticked: opted out of every listed group.
            let (_, save) = ServeFixture.form("csrf=\(csrf)&action=save")
            try await client.execute(uri: "/p/\(token)", method: .post, headers: h, body: save) { r in
                #expect(r.status == .seeOther)
                #expect(r.headers[.location] == "\(token)?saved=1", "relative to /p/: a path prefix of the public URL is kept")
            }
            #expect(try await f.consent("p-bea", "newsletter") == false)
            let (_, tick) = ServeFixture.form("csrf=\(csrf)&group=newsletter&action=save")
            try await client.execute(uri: "/p/\(token)", method: .post, headers: h, body: tick) { #expect($0.status == .seeOther) }
            #expect(try await f.consent("p-bea", "newsletter") == true)
            let (_, all) = ServeFixture.form("csrf=\(csrf)&group=newsletter&action=unsubscribe_all")
            try await client.execute(uri: "/p/\(token)", method: .post, headers: h, body: all) { #expect($0.status == .seeOther) }
            #expect(try await f.consent("p-bea", "newsletter") == false)
            #expect(try await f.consent("p-bea", "") == false)
            let saved = try await client.execute(uri: "/p/\(token)?saved=1", method: .get) { String(buffer: $0.body) }
            #expect(saved.contains("Ihre Einstellungen sind gespeichert."))
            #expect(!saved.contains("value=\"newsletter\" checked"))
        }
    }

    @Test("POSTs over the rate get 429 with Retry-After: per link token when it verifies, per address when not; bodies over 16 KiB are refused")
    func limits() async throws {
        let f = try await ServeFixture()
        f.settings.postsPerMinute = 3
        let frozen = ContinuousClock.now
        f.settings.limitClock = { frozen }
        let token = f.links.token(.subscription(profileID: "p-ada", group: "newsletter", campaignID: "spring"))
        let other = f.links.token(.subscription(profileID: "p-bea", group: "newsletter", campaignID: "spring"))
        try await f.withServer { client in
            let (h, body) = ServeFixture.form("List-Unsubscribe=One-Click")
            var statuses: [Int] = []
            for uri in Array(repeating: "/u/\(token)", count: 5) + ["/u/\(other)"] + Array(repeating: "/u/forged", count: 5) {
                try await client.execute(uri: uri, method: .post, headers: h, body: body) { r in
                    statuses.append(r.status.code)
                    if r.status == .tooManyRequests { #expect(Int(r.headers[.retryAfter] ?? "") ?? 0 >= 1) }
                }
            }
            #expect(statuses == [200, 200, 200, 429, 429, 200, 404, 404, 404, 429, 429])
        }
        f.settings.postsPerMinute = 100
        try await f.withServer { client in
            let (h, _) = ServeFixture.form("")
            let big = ByteBuffer(string: "List-Unsubscribe=One-Click&pad=" + String(repeating: "x", count: 20_000))
            try await client.execute(uri: "/u/\(token)", method: .post, headers: h, body: big) { #expect($0.status == .contentTooLarge) }
        }
    }

    @Test("one-click as multipart/form-data (RFC 8058's SHOULD) records the opt-out too")
    func oneClickMultipart() async throws {
        let f = try await ServeFixture()
        let token = f.links.token(.subscription(profileID: "p-cyr", group: "newsletter", campaignID: "spring"))
        var fields = HTTPFields()
        fields[.contentType] = "multipart/form-data; boundary=\"----b1\""
        let h = fields
        let body = "------b1\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n------b1--\r\n"
        try await f.withServer { client in
            try await client.execute(uri: "/u/\(token)", method: .post, headers: h, body: ByteBuffer(string: body)) { #expect($0.status == .ok) }
        }
        #expect(try await f.consent("p-cyr", "newsletter") == false)
    }

    @Test("health, readiness and metrics on the same stack; reports need loopback or the admin password")
    func healthAndReports() async throws {
        let f = try await ServeFixture()
        try await f.withServer { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok && String(buffer: $0.body) == "ok\n") }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok && String(buffer: $0.body) == "ready\n") }
            try await client.execute(uri: "/metrics", method: .get) { r in
                #expect(r.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
                #expect(String(buffer: r.body) == "fleet_test 1\n")
            }
            try await client.execute(uri: "/nope", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/campaigns/spring", method: .get) { r in
                #expect(r.status == .ok)
                let html = String(buffer: r.body)
                #expect(html.contains("<svg id=\"chart\"") || html.contains("Campaign spring"))
            }
            try await client.execute(uri: "/campaigns/missing", method: .get) { #expect($0.status == .notFound) }
        }
        f.settings.trustForwardedFor = true
        try await f.withServer { client in
            var h = HTTPFields()
            h[HTTPField.Name("X-Forwarded-For")!] = "203.0.113.5"
            try await client.execute(uri: "/campaigns/spring", method: .get, headers: h) { r in
                #expect(r.status == .forbidden, "a forwarded client is not loopback: no report without a password")
                #expect(r.headers[.wwwAuthenticate] == nil)
            }
        }
        f.settings.trustForwardedFor = false
        f.settings.adminPassword = "pw"
        try await f.withServer { client in
            try await client.execute(uri: "/campaigns/spring", method: .get) { r in
                #expect(r.status == .unauthorized)
                #expect(r.headers[.wwwAuthenticate] == "Basic realm=\"fleet\"")
            }
            var h = HTTPFields()
            h[.authorization] = "Basic " + Data("admin:pw".utf8).base64EncodedString()
            try await client.execute(uri: "/campaigns/spring?format=json", method: .get, headers: h) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains("\"campaign_id\":\"spring\""))
            }
            h[.authorization] = "Basic " + Data("admin:px".utf8).base64EncodedString()
            try await client.execute(uri: "/campaigns/spring", method: .get, headers: h) { #expect($0.status == .unauthorized) }
        }
    }

    @Test("settings: listen addresses, ranges and rates are checked; a bad one names its variable")
    func settings() throws {
        let base = ["FLEET_EMAIL_SECRET": "s"]
        let s = try ServeSettings.fromEnvironment(base, storePath: "x", templatesDirectory: "t")
        #expect(s.host == "127.0.0.1" && s.port == 8080 && s.links.keys.signing.id == "k0")
        #expect(try ServeSettings.parseListen("[::1]:9000") == ("::1", 9000))
        for (k, v) in [("FLEET_SERVE_LISTEN", "nope"), ("FLEET_SERVE_MACHINE_OPEN_RANGES", "17.0.0.0/99"),
                       ("FLEET_SERVE_POST_RATE", "0"), ("FLEET_SERVE_TRUST_FORWARDED", "yes"), ("FLEET_CONVERSION_WINDOW_HOURS", "-1")] {
            var env = base
            env[k] = v
            #expect(throws: ServeError.self) { _ = try ServeSettings.fromEnvironment(env, storePath: "x", templatesDirectory: "t") }
        }
        #expect(throws: ServeError.self) { _ = try ServeSettings.fromEnvironment([:], storePath: "x", templatesDirectory: "t") }
        #expect(AddressRange("2a01:b740::/32")!.contains("2a01:b740:1::5"))
        #expect(AddressRange("17.0.0.0/8")!.contains("17.58.1.2") && !AddressRange("17.0.0.0/8")!.contains("18.0.0.1"))
        #expect(AddressRange("17.0.0.0/8")!.contains("::ffff:17.1.2.3"))
    }
}
