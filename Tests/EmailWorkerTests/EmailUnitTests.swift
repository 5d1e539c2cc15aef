@testable import EmailWorker
import FleetCore
import FleetMarketing
import FleetRuntime
import FleetTestSupport
import Foundation
import Liquid
import Logging
import ProfileStore
import Testing

/// The pure parts of the email worker: quoted-printable, RFC 2047, variants, tokens, links.
@Suite("Email building blocks")
struct EmailUnitTests {
    @Test("quoted-printable keeps lines within 76 characters and round-trips UTF-8")
    func quotedPrintable() {
        let text = String(repeating: "Grüße aus München = schön. ", count: 20) + "\n.leading dot\ntrailing space \n"
        let encoded = String(decoding: QuotedPrintable.encode(text), as: UTF8.self)
        for line in encoded.components(separatedBy: "\r\n") { #expect(line.utf8.count <= 76) }
        #expect(!encoded.components(separatedBy: "\r\n").contains { $0.hasPrefix(".") })
        #expect(encoded.contains("space=20\r\n"))
        // A `.` that a soft break moves to the start of a line is encoded too.
        for width in 70...80 {
            let lines = String(decoding: QuotedPrintable.encode(String(repeating: "a", count: width) + "...b"), as: UTF8.self)
                .components(separatedBy: "\r\n")
            #expect(!lines.contains { $0.hasPrefix(".") }, "\(lines)")
            #expect(lines.allSatisfy { $0.utf8.count <= 76 })
        }
    }

    /// Decodes quoted-printable (soft breaks removed, `=XX` turned back into bytes).
    static func decodeQuotedPrintable(_ encoded: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        func hex(_ b: UInt8) -> UInt8 { b <= 0x39 ? b - 0x30 : b - 0x41 + 10 }
        while i < encoded.count {
            if encoded[i] == 0x3D {
                if i + 2 < encoded.count && encoded[i + 1] == 0x0D && encoded[i + 2] == 0x0A { i += 3; continue }
                out.append(hex(encoded[i + 1]) << 4 | hex(encoded[i + 2]))
                i += 3
            } else {
                out.append(encoded[i])
                i += 1
            }
        }
        return out
    }

    @Test("quoted-printable decodes back to the text on many generated inputs, within the line rules")
    func quotedPrintableGenerated() {
        let pieces = ["a", "Z", "=", ".", " ", "\t", "\n", "\r\n", "é", "€", "~", "\u{7F}", "\r", "<a href=\"x\">"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let count = Int.random(in: 0...400, using: &generator)
            let text = (0..<count).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let encoded = QuotedPrintable.encode(text)
            // The expected bytes: every line end as CRLF (a lone CR stays a CR, encoded).
            let expected = Array(text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n").utf8)
            let decoded = Self.decodeQuotedPrintable(encoded)
            #expect(decoded == expected, "\(text.debugDescription)")
            let lines = String(decoding: encoded, as: UTF8.self).components(separatedBy: "\r\n")
            for line in lines {
                #expect(line.utf8.count <= 76, "\(line)")
                #expect(!line.hasPrefix("."), "\(line)")
                #expect(!line.hasSuffix(" ") && !line.hasSuffix("\t"), "\(line.debugDescription)")
                #expect(line.utf8.allSatisfy { ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x09 }, "\(line.debugDescription)")
            }
        }
    }

    @Test("non-ASCII headers become RFC 2047 encoded words of at most 75 characters")
    func encodedWords() {
        #expect(EncodedWord.encode("Hello") == "Hello")
        let e = EncodedWord.encode(String(repeating: "chloé ", count: 20))
        for word in e.components(separatedBy: "\r\n ") {
            #expect(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?=") && word.count <= 75)
        }
        #expect(EncodedWord.mailbox("Zoë <z@example.com>").hasPrefix("=?UTF-8?B?"))
        #expect(EncodedWord.isPlain("Spring sale: 20% off = good? yes"))
        #expect(!EncodedWord.isPlain("looks like =?an encoded word"))
        #expect(!EncodedWord.isPlain("tab\there"))
        #expect(EncodedWord.mailbox("Shop, Inc. <n@shop.example>") == #""Shop, Inc." <n@shop.example>"#)
    }

    @Test("variant assignment is deterministic and follows weights and the holdout share")
    func variants() throws {
        let assigner = try VariantAssigner(campaign: JSONObject([
            "variants": [["name": "a", "weight": 3], ["name": "b", "weight": 1]], "holdout": 0.2]))
        var counts: [String: Int] = [:]
        for i in 0..<10_000 {
            let first = assigner.assign(campaignID: "c1", profileID: "p\(i)")
            #expect(first == assigner.assign(campaignID: "c1", profileID: "p\(i)"))
            switch first {
            case .holdout: counts["holdout", default: 0] += 1
            case .variant(let v): counts[v.name, default: 0] += 1
            }
        }
        #expect((1_800...2_200).contains(counts["holdout"] ?? 0))
        #expect((5_700...6_300).contains(counts["a"] ?? 0))
        #expect((1_750...2_250).contains(counts["b"] ?? 0))
    }

    @Test("click tracking: each http(s) link not skipped becomes the tracker's URL, numbered in order, with its target as the browser reads it")
    func clickTracking() {
        let d = LinkDecorator(parameters: [("utm_source", "email")], skipPrefixes: ["https://u.example/"])
        let html = #"<link rel="stylesheet" href="https://cdn.example/s.css"><a href="https://a.example/x?y=1">A</a> <a href='mailto:z@example.com'>M</a> <a href="https://u.example/u/t">U</a> <A class="x" href="http://b.example/#top">B</a>"#
        var seen: [(Int, String)] = []
        let out = String(decoding: d.decorate(bytes: Array(html.utf8)) { i, url in seen.append((i, url)); return "https://t.example/c/\(i)?k=1&v=2" }, as: UTF8.self)
        #expect(seen.map(\.0) == [0, 1])
        #expect(seen.map(\.1) == ["https://a.example/x?y=1&utm_source=email", "http://b.example/?utm_source=email#top"])
        #expect(out.contains(#"href="https://t.example/c/0?k=1&amp;v=2""#))
        #expect(out.contains("mailto:z@example.com") && out.contains("https://u.example/u/t"))
        #expect(out.contains(#"<link rel="stylesheet" href="https://cdn.example/s.css?utm_source=email">"#), "a stylesheet is not a click")
    }

    @Test("UTM parameters go on http(s) links only, not on skipped prefixes, keeping fragments")
    func links() {
        let d = LinkDecorator(parameters: [("utm_source", "email"), ("utm_campaign", "spring sale")], skipPrefixes: ["https://u.example"])
        let html = #"<a href="https://a.example/p?x=1#top">a</a><a href='mailto:x@y'>m</a><a href="https://u.example/unsub">u</a><a href="http://b.example/?utm_source=x">b</a>"#
        let out = d.decorate(html)
        #expect(out.contains(#"href="https://a.example/p?x=1&amp;utm_source=email&amp;utm_campaign=spring%20sale#top""#))
        #expect(out.contains("mailto:x@y'"))
        #expect(out.contains(#"href="https://u.example/unsub""#))
        #expect(out.contains(#"href="http://b.example/?utm_source=x&amp;utm_campaign=spring%20sale""#))
    }

    @Test("the MIME message is multipart/alternative, text first, with the RFC 8058 headers")
    func mime() {
        let m = MIMEMessage(from: "Shop <n@shop.example>", to: "a@example.com", subject: "Grüße", text: "hi", html: "<p>hi</p>",
                            date: Date(timeIntervalSince1970: 0), messageID: MIMEMessage.messageID(jobID: "j1", domain: "shop.example"),
                            listUnsubscribeURL: "https://u.example/unsubscribe?t=x", listID: "News <news.shop.example>")
        let s = String(decoding: m.encoded(), as: UTF8.self)
        #expect(s.contains("List-Unsubscribe: <https://u.example/unsubscribe?t=x>\r\n"))
        #expect(s.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"))
        #expect(s.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"))
        #expect(s.contains("Subject: =?UTF-8?B?"))
        let text = s.range(of: "text/plain")!, html = s.range(of: "text/html")!
        #expect(text.lowerBound < html.lowerBound)
        #expect(MIMEMessage.messageID(jobID: "j1", domain: "d") == MIMEMessage.messageID(jobID: "j1", domain: "d"))
    }

    @Test("the text part derived from html: head dropped, blocks as line breaks, links as text (url), entities decoded")
    func htmlText() {
        let html = "<html><head><title>T</title><style>p{x}</style></head><BODY>\n<h1>Hello &amp; welcome</h1>\n"
            + "<p>Line   one<br/>line two</p>\n\n\n<ul><li>first</li><li>second</li></ul>\n"
            + "<p>See <a href=\"https://shop.example/x?a=1&amp;b=2\">our shop</a> &lt;3 &#x41;&#66; &bogus; &nbsp;end</p>\n"
            + "<table><tr><td>a</td><td>b</td></tr></table><a href='mailto:x@y'>mail</a>\n</BODY></html>\nx < y"
        #expect(HTMLText.text(from: html) == "Hello & welcome\n\nLine one\nline two\n\n- first\n- second\n\n"
            + "See our shop (https://shop.example/x?a=1&b=2) <3 AB &bogus; end\n\na b\n\nmail\n\nx < y\n")
        #expect(HTMLText.text(from: "") == "\n")
        // Tag names longer than the packed 8 bytes are no tag the pass acts on; case does not matter.
        #expect(HTMLText.text(from: "<blockquote>q</blockquote><SCRIPT>x</SCRIPT><Br>y</P><stylesheet>z") == "q\ny\n\nz\n")
        #expect(HTMLText.text(from: "  <p>  Grüße,\r\n  Jürgen  </p>  ") == "Grüße,\nJürgen\n")
    }

    @Test("the Message-ID is the first 128 bits of SHA-256(job id) in hex")
    func messageID() {
        #expect(MIMEMessage.messageID(jobID: "j1", domain: "shop.example") == "08243666f926aa4e5b884b8ef1fc3b93@shop.example")
    }

    @Test("the preheader goes right after <body ...>, escaped; the pixel right before the last </body>, or at the end")
    func preheaderAndPixel() {
        let html = Array(#"<html><body class="x"><p>Hi</p></body></html>"#.utf8)
        let withPreheader = String(decoding: EmailComposer.insertPreheader("Sale <now> & more", into: html), as: UTF8.self)
        #expect(withPreheader == #"<html><body class="x"><div style="display:none;max-height:0;overflow:hidden;mso-hide:all">Sale &lt;now&gt; &amp; more</div><p>Hi</p></body></html>"#)
        #expect(String(decoding: EmailComposer.insertPreheader("P", into: Array("<p>x</p>".utf8)), as: UTF8.self).hasPrefix("<div style="))
        let pixel = LinkDecorator.addPixel("<body>a</body><!-- </body> --></body>", url: "https://t.example/o.gif?m=1")
        #expect(pixel == #"<body>a</body><!-- </body> --><img src="https://t.example/o.gif?m=1" width="1" height="1" alt="" style="display:block;border:0"></body>"#)
        #expect(LinkDecorator.addPixel("no body", url: "u").hasSuffix(#"<img src="u" width="1" height="1" alt="" style="display:block;border:0">"#))
        #expect(LinkDecorator(parameters: [("a", "1")]).decorate(bytes: Array(#"<a href="https://x.example/">"#.utf8))
                == Array(#"<a href="https://x.example/?a=1">"#.utf8))
    }
}

/// Templates/README.md's description of `profile` is what a template sees (the example there, rendered).
@Suite("The profile a template sees")
struct TemplateProfileModelTests {
    @Test("traits at the top level and under traits, normalized email, consents by channel and topic, no tokens")
    func documentedExample() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = ProfileStore(path: dir.appendingPathComponent("fleet.sqlite").path)
        defer { store.close() }
        let results = try await store.apply([
            ProfileOperation(opID: "o1", timestampMillis: 1000, body: .identify(
                profileID: "p1", traits: JSONObject(["first_name": "Ada", "tier": "gold", "id": "trait-id"]),
                identities: [ProfileIdentity(.email, "Ada@Example.com")])),
            ProfileOperation(opID: "o2", timestampMillis: 1000, body: .consent(
                profileID: "p1", channel: "email", topic: "newsletter", optedIn: true, source: "import")),
            ProfileOperation(opID: "o3", timestampMillis: 1000, body: .device(
                profileID: "p1", token: "secret-token-123", platform: "ios", app: "default", registered: true)),
        ])
        #expect(results.allSatisfy { $0.status == .applied })
        let view = try #require(try await store.read { try $0.view(id: "p1") })
        let template = try LiquidTemplate(
            "{{ profile.first_name }}|{{ profile.traits.tier }}|{{ profile.email }}|{{ profile.consents.email.newsletter }}|{{ profile.id }}|{{ profile.traits.id }}|{{ profile.devices[0].platform }}{{ profile.devices[0].token }}",
            name: "t")
        let out = try template.render(LiquidObject([("profile", LiquidBridge.liquid(view.templateValue))]))
        #expect(out == "Ada|gold|ada@example.com|true|p1|trait-id|ios")
        // `profiles show`: the documented keys only, traits nested.
        let shown = try #require(view.json.objectValue)
        #expect(shown.keys == ["id", "email", "phone", "created_at", "updated_at", "traits", "consents", "devices", "purchases", "segments"])
        #expect(shown["first_name"] == nil)
        #expect(shown["traits"]?["tier"] == "gold")
    }
}

/// Docs/contract/email-job.schema.json and EmailParameters agree on the contract's examples.
@Suite("Email parameters against the contract's examples")
struct EmailParametersContractTests {
    static func examples(_ folder: String) throws -> [(String, JobEnvelope)] {
        let dir = TestEnvironment.repo.appendingPathComponent("Docs/contract/examples/\(folder)")
        return try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("job-") }.sorted().map { name in
            (name, try JobEnvelope.decode(Array(try Data(contentsOf: dir.appendingPathComponent(name)))))
        }
    }

    @Test("every valid example decodes; every invalid one is refused naming the field")
    func examples() throws {
        let valid = try Self.examples("email")
        #expect(valid.count >= 3)
        for (name, job) in valid {
            #expect(throws: Never.self, "\(name)") { _ = try EmailParameters(job: job) }
        }
        let invalid = try Self.examples("email/invalid")
        #expect(invalid.count >= 3)
        for (name, job) in invalid {
            do {
                _ = try EmailParameters(job: job)
                Issue.record("\(name) was accepted")
            } catch {
                #expect(error.message.hasPrefix("'"), "\(name): \(error.message)")
            }
        }
    }

    @Test("campaign: a string, or an object with a string id; data.campaign merged; variants checked")
    func campaign() throws {
        func parameters(_ fields: JSONObject, data: JSONValue = .null) throws(JobParameterError) -> EmailParameters {
            var all: JSONObject = ["template": "t", "profile_id": "p"]
            for (k, v) in fields { all[k] = v }
            return try EmailParameters(job: JobEnvelope(id: "j", kind: "email", data: data, fields: all))
        }
        #expect(try parameters(["campaign": "bf"]).campaignID == "bf")
        let merged = try parameters(["campaign": ["id": "bf", "name": "x"]], data: ["campaign": ["name": "y", "holdout": 0.1]])
        #expect(merged.campaign["name"] == "x")
        #expect(merged.campaign["holdout"] == 0.1)
        #expect(try parameters([:]).campaignID == "none")
        for (bad, field) in [(["campaign": 5] as JSONObject, "campaign"), (["campaign": ["name": "x"]], "campaign.id"),
                             (["campaign": ["id": "c", "holdout": 2]], "campaign.holdout"), (["campaign": ["id": "c", "cap_action": "drop"]], "campaign.cap_action"),
                             (["campaign": ["id": "c", "variants": [["weight": 1]]]], "campaign.variants"), (["template": 7], "template")] {
            do {
                _ = try parameters(bad)
                Issue.record("\(bad) was accepted")
            } catch {
                #expect(error.field == field, "\(bad): \(error.message)")
            }
        }
    }
}

@Suite("Email worker and the content worker's blocks")
struct EmailContentBlockTests {
    @Test("a person's email_hero block is the monthly mail's picks and content.<slot>; an expired block is not shown; without one the catalog's top sellers serve")
    func picksFromTheBlock() async throws {
        let dir = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = ProfileStore(path: dir.appendingPathComponent("fleet.sqlite").path)
        defer { store.close() }
        _ = try await store.apply([
            ProfileOperation(opID: "o1", timestampMillis: 1000, body: .identify(profileID: "p1", traits: ["locale": "en"], identities: [ProfileIdentity(.email, "p1@example.com")])),
            ProfileOperation(opID: "o2", timestampMillis: 1000, body: .identify(profileID: "p2", traits: ["locale": "en"], identities: [ProfileIdentity(.email, "p2@example.com")])),
        ])
        _ = try await store.importCatalog([CatalogProduct(sku: "top-1", name: "Catalog Bestseller", price: 9, currency: "EUR", category: "x")])
        let block: JSONValue = ["slot": "email_hero", "items": [["sku": "pick-1", "name": "Trail Runner Pro", "price": 120.0, "currency": "EUR", "url": "https://shop.example.com/p/pick-1"]]]
        try await store.saveContentBlock(profileID: "p1", slot: "email_hero", block: block, modelVersion: 1,
                                         expiresAt: ProfileStore.nowMillis() + 3_600_000)
        try await store.saveContentBlock(profileID: "p2", slot: "email_hero", block: block, modelVersion: 1, expiresAt: ProfileStore.nowMillis() - 1)
        let handler = EmailHandler(store: store, settings: EmailSettings(templatesDirectory: TestEnvironment.repo.appendingPathComponent("Templates").path, secret: "s"))
        let withBlock = try await handler.preview(template: "monthly", profileID: "p1", variant: "a")
        #expect(withBlock.contains("Trail Runner Pro") && withBlock.contains("https://shop.example.com/p/pick-1"))
        #expect(!withBlock.contains("Catalog Bestseller"))
        let expired = try await handler.preview(template: "monthly", profileID: "p2", variant: "a")
        #expect(!expired.contains("Trail Runner Pro"), "an expired block is not shown")
        #expect(expired.contains("Catalog Bestseller"), "the top sellers serve without a block")
    }
}

@Suite("Email worker and the variant bandit")
struct EmailBanditTests {
    @Test("a campaign with variants \"bandit\": each mail gets one of the arms (no results yet: both are tried); the holdout still applies first")
    func banditCampaign() async throws {
        let dir = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = ProfileStore(path: dir.appendingPathComponent("fleet.sqlite").path)
        defer { store.close() }
        var ops: [ProfileOperation] = []
        for i in 0..<40 {
            ops.append(ProfileOperation(opID: "o\(i)", timestampMillis: 1000, body: .identify(
                profileID: "p\(i)", traits: ["locale": "en"], identities: [ProfileIdentity(.email, "p\(i)@example.com")])))
        }
        _ = try await store.apply(ops)
        let handler = EmailHandler(store: store, settings: EmailSettings(templatesDirectory: TestEnvironment.repo.appendingPathComponent("Templates").path, secret: "s"))
        var seen: Set<String> = []
        for i in 0..<40 {
            let job = JobEnvelope(id: "spring:p\(i)", kind: "email", data: nil, fields: [
                "profile_id": .string("p\(i)"), "template": "monthly", "campaign": ["id": "spring", "variants": "bandit", "arms": ["a", "b"]]])
            guard case .succeeded(let out) = try await handler.handle(job: job, context: JobContext(job: job, logger: Logger(label: "t"))) else {
                Issue.record("p\(i) not sent"); continue
            }
            seen.insert(out["variant"]?.stringValue ?? "")
        }
        #expect(seen == ["a", "b"])
        let held = JobEnvelope(id: "h:p1", kind: "email", data: nil, fields: [
            "profile_id": "p1", "template": "monthly", "campaign": ["id": "h", "variants": "bandit", "arms": ["a", "b"], "holdout": 1]])
        guard case .suppressed(let reason, _) = try await handler.handle(job: held, context: JobContext(job: held, logger: Logger(label: "t"))) else {
            Issue.record("the holdout did not apply"); return
        }
        #expect(reason == "holdout")
    }
}
