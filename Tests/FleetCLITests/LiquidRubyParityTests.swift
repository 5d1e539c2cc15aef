import Foundation
import Liquid
import Testing

/// Integration (slow, needs Ruby): our engine and Shopify's Ruby Liquid render the shared newsletter
/// template for all 2,000 workload profiles byte for byte the same.
@Suite("Liquid parity with Ruby Liquid (integration)")
struct LiquidRubyParityTests {
    /// The shared directory: FLEET_SHARED, else `<repo>/../shared`.
    static var shared: URL {
        if let s = ProcessInfo.processInfo.environment["FLEET_SHARED"], !s.isEmpty { return URL(fileURLWithPath: s) }
        return CLIRunner.repo.deletingLastPathComponent().appendingPathComponent("shared")
    }

    static var ruby: String? { CLIRunner.which("ruby") }

    /// Ruby can load the liquid gem (Debian ruby-liquid, installed by Ops/scripts/install-deps.sh).
    static let rubyLiquidInstalled: Bool = {
        guard let ruby else { return false }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ruby)
        p.arguments = ["-e", "require 'liquid'"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }()

    static var sharedPresent: Bool {
        FileManager.default.fileExists(atPath: shared.appendingPathComponent("peers/liquid/newsletter.liquid").path)
    }

    @Test(
        "all 2,000 newsletter renders are byte-identical to Ruby Liquid's", .tags(.slow),
        .enabled(if: rubyLiquidInstalled, "ruby with the liquid gem is not installed (apt-get install ruby ruby-liquid)"),
        .enabled(if: sharedPresent, "the shared workload (../shared/peers) is not present"))
    func newsletterMatchesRuby() async throws {
        let work = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : try #require(CLIRunner.which("python3"))
        let made = try await CLIRunner.run(python, [Self.shared.appendingPathComponent("peers/make_data.py").path, work.path, "1"])
        try #require(made.status == 0, "make_data.py: \(made.stderr)")
        let templatePath = Self.shared.appendingPathComponent("peers/liquid/newsletter.liquid").path
        let profilesPath = work.appendingPathComponent("profiles.ndjson").path
        let dumpPath = work.appendingPathComponent("ruby.txt").path
        let script = CLIRunner.repo.appendingPathComponent("Ops/bench/ruby_newsletter_dump.rb").path
        let dumped = try await CLIRunner.run(try #require(Self.ruby), [script, templatePath, profilesPath, dumpPath])
        try #require(dumped.status == 0, "ruby_newsletter_dump.rb: \(dumped.stdout) \(dumped.stderr)")

        let theirs = try Self.parseDump(try #require(FileManager.default.contents(atPath: dumpPath)))
        let template = try LiquidTemplate(try String(contentsOfFile: templatePath, encoding: .utf8), name: "newsletter")
        let campaign: LiquidValue = ["id": "spring-sale", "subject": "[name], your spring picks"]
        let lines = try #require(FileManager.default.contents(atPath: profilesPath)).split(separator: UInt8(ascii: "\n"))
        try #require(lines.count == 2000)
        try #require(theirs.count == 2000)
        var identical = 0
        var firstDifference: String?
        for (i, line) in lines.enumerated() {
            let profile = try LiquidJSON.parse(bytes: Array(line))
            guard case .object(let object) = profile, object["id"] == .string(theirs[i].id) else {
                Issue.record("Ruby's render \(i) is of profile \(theirs[i].id), not of line \(i + 1)")
                return
            }
            let ours = try template.renderBytes(LiquidObject([("profile", profile), ("campaign", campaign)]))
            if ours == theirs[i].bytes {
                identical += 1
            } else if firstDifference == nil {
                firstDifference = "profile \(theirs[i].id):\n--- Ruby\n\(String(decoding: theirs[i].bytes, as: UTF8.self))\n+++ ours\n\(String(decoding: ours, as: UTF8.self))"
            }
        }
        #expect(identical == 2000, "\(identical) of 2000 byte-identical; first difference: \(firstDifference ?? "")")
    }

    @Test(
        "render errors: inline for outputs, silent inside assign and capture, as Ruby's render; raised as Ruby's render!",
        .enabled(if: rubyLiquidInstalled, "ruby with the liquid gem is not installed (apt-get install ruby ruby-liquid)"))
    func renderErrorsMatchRuby() async throws {
        let templates = [
            "x{% assign b = a | split %}y{{ b }}z",
            "x{% assign b = 1 | divided_by: 0 %}y{{ b }}z",
            "x{% capture c %}{{ 1 | divided_by: 0 }}{% endcapture %}y{{ c }}z",
            "x{{ 1 | divided_by: 0 }}z",
            "x{{ a | split }}z",
            "{% if 1 | divided_by: 0 %}t{% endif %}z",
        ]
        // One line per template: Ruby's render (inspected), then render!'s outcome ("ok" or "raise").
        let script = """
            require 'liquid'
            require 'json'
            JSON.parse(ARGV[0]).each do |src|
              t = Liquid::Template.parse(src)
              lax = t.render({"a" => "1,2"})
              strict = begin; t.render!({"a" => "1,2"}); "ok"; rescue Liquid::Error; "raise"; end
              puts JSON.generate([lax, strict])
            end
            """
        let arguments = String(decoding: try JSONSerialization.data(withJSONObject: templates), as: UTF8.self)
        let ruby = try await CLIRunner.run(try #require(Self.ruby), ["-e", script, arguments])
        try #require(ruby.status == 0, "\(ruby.stderr)")
        let lines = ruby.stdout.split(separator: "\n")
        try #require(lines.count == templates.count)
        for (source, line) in zip(templates, lines) {
            let theirs = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String])
            let template = try LiquidTemplate(source, name: "t")
            let data = LiquidObject([("a", LiquidValue.string("1,2"))])
            let lax = try template.render(data)
            #expect(lax == theirs[0], "\(source): ours \(lax), Ruby \(theirs[0])")
            let raised: String
            do {
                _ = try template.render(data, options: LiquidRenderOptions(errorMode: .raise))
                raised = "ok"
            } catch {
                raised = "raise"
            }
            #expect(raised == theirs[1], "\(source): render! ours \(raised), Ruby \(theirs[1])")
        }
    }

    /// Records of `Ops/bench/ruby_newsletter_dump.rb`: `<id>\t<byte count>\n`, the bytes, `\n`.
    static func parseDump(_ data: Data) throws -> [(id: String, bytes: [UInt8])] {
        let bytes = Array(data)
        var records: [(id: String, bytes: [UInt8])] = []
        var i = 0
        while i < bytes.count {
            let newline = try #require(bytes[i...].firstIndex(of: UInt8(ascii: "\n")))
            let header = String(decoding: bytes[i..<newline], as: UTF8.self).split(separator: "\t")
            try #require(header.count == 2)
            let count = try #require(Int(header[1]))
            let start = newline + 1
            try #require(start + count < bytes.count && bytes[start + count] == UInt8(ascii: "\n"))
            records.append((String(header[0]), Array(bytes[start..<start + count])))
            i = start + count + 1
        }
        return records
    }
}
