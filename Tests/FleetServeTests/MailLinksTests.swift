import EmailWorker
import FleetCore
import FleetLinks
import FleetRuntime
import FleetServe
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import ProfileStore
import Testing

/// The email worker's real mail, its links followed against `fleet serve`: the two agree on keys, paths and claims.
@Suite("Mail links end to end")
struct MailLinksTests {
    static func handler(_ f: ServeFixture) -> EmailHandler {
        EmailHandler(store: f.store, settings: EmailSettings(
            templatesDirectory: ServeFixture.templates, delivery: .result, linkKeys: ServeFixture.keys,
            publicURL: ServeFixture.publicURL, trackOpens: true, trackClicks: true))
    }

    static func send(_ handler: EmailHandler, id: String, profile: String, template: String = "monthly") async throws -> JobOutcome {
        let body: JSONValue = ["id": .string(id), "kind": "email", "profile_id": .string(profile), "template": .string(template),
                               "campaign": "spring"]
        let job = try JobEnvelope.decode(body.serialized())
        return try await handler.handle(job: job, context: JobContext(job: job, logger: Logger(label: "test"), worker: "test"))
    }

    /// The MIME text with quoted-printable undone (soft breaks joined, `=XX` decoded).
    static func unQP(_ mime: String) -> String {
        let joined = mime.replacingOccurrences(of: "=\r\n", with: "")
        var out: [UInt8] = []
        let b = Array(joined.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "="), i + 2 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
                out.append(v)
                i += 3
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func urls(_ text: String, _ prefix: String) -> [String] {
        var found: [String] = []
        var rest = Substring(text)
        while let r = rest.range(of: prefix) {
            let url = rest[r.lowerBound...].prefix { !"\"'<> \r\n)".contains($0) }
            found.append(String(url))
            rest = rest[r.upperBound...]
        }
        return found
    }

    @Test("a rendered mail's pixel, tracked links and List-Unsubscribe work against the server; the next mail of the group is suppressed")
    func followTheMail() async throws {
        let f = try await ServeFixture()
        let handler = Self.handler(f)
        guard case .succeeded(let output) = try await Self.send(handler, id: "spring:p-ada", profile: "p-ada") else {
            Issue.record("the first mail was not sent")
            return
        }
        let mime = Self.unQP(try #require(output["mime"]?.stringValue))
        let base = ServeFixture.publicURL
        let pixels = Self.urls(mime, base + "/o/")
        let clicks = Set(Self.urls(mime, base + "/c/"))
        let unsubscribe = try #require(mime.range(of: "List-Unsubscribe: <").map { mime[$0.upperBound...].prefix { $0 != ">" } })
        #expect(pixels.count == 1)
        #expect(clicks.count >= 2, "the monthly mail has a logo link and a blog link")
        #expect(unsubscribe.hasPrefix(base + "/u/"))
        #expect(!mime.contains("https://shop.example.com/blog?"), "html links go through /c/ (the text part is derived from the tracked html)")
        try await f.withServer { client in
            try await client.execute(uri: ServeFixture.path(pixels[0]), method: .get) { #expect($0.status == .ok) }
            var targets: [String] = []
            for c in clicks.sorted() {
                try await client.execute(uri: ServeFixture.path(c), method: .get) { r in
                    #expect(r.status == .found)
                    targets.append(r.headers[.location] ?? "")
                }
            }
            #expect(targets.contains("https://shop.example.com/blog?utm_source=email&utm_medium=email"))
            let (h, body) = ServeFixture.form("List-Unsubscribe=One-Click")
            try await client.execute(uri: ServeFixture.path(String(unsubscribe)), method: .post, headers: h, body: body) { #expect($0.status == .ok) }
        }
        let opens = try await f.events("email_opened")
        #expect(opens.count == 1 && opens[0].properties["message"] == "spring:p-ada" && opens[0].properties["variant"] == "default")
        #expect(try await f.events("email_clicked").count == clicks.count)
        #expect(try await f.consent("p-ada", "newsletter") == false)
        let next = try await Self.send(handler, id: "summer:p-ada", profile: "p-ada")
        guard case .suppressed(let reason, _) = next else {
            Issue.record("the next newsletter was not suppressed: \(next)")
            return
        }
        #expect(reason == "opted_out")
    }
}
