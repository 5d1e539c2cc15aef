import FleetCampaign
import Foundation
import HTTPTypes
import Hummingbird

/// `GET /campaigns/<id>`: the campaign report as a page, with a chart (inline SVG: click, conversion and converted
/// rates per group with their 95% intervals) and the verdicts. `?format=json` gives the JSON of
/// `fleet campaign report --json`. Readable by loopback clients, or by anyone with the admin password (HTTP Basic,
/// user `admin`) when `FLEET_SERVE_ADMIN_PASSWORD` is set.
struct ReportPage: Sendable {
    let routes: EngagementRoutes

    func authorized(_ request: Request, _ context: ServeContext) -> Bool {
        if let password = routes.settings.adminPassword {
            guard let header = request.headers[.authorization], header.hasPrefix("Basic "),
                  let data = Data(base64Encoded: String(header.dropFirst(6))) else { return false }
            let given = Array(data), expected = Array("admin:\(password)".utf8)
            // Constant time in the length of the expected value.
            var diff = given.count ^ expected.count
            for i in expected.indices { diff |= Int(expected[i] ^ (i < given.count ? given[i] : 0)) }
            return diff == 0
        }
        // The client (the last X-Forwarded-For hop when FLEET_SERVE_TRUST_FORWARDED=on): a reverse proxy on this
        // host is itself a loopback peer (Docs/contract/README.md section 10 says to set a password then).
        let address = routes.clientAddress(request, context)
        return address.hasPrefix("127.") || address == "::1"
    }

    func show(_ request: Request, _ context: ServeContext) async throws -> Response {
        guard authorized(request, context) else {
            // With a password: 401 and a challenge; without: only loopback clients may read (403).
            guard routes.settings.adminPassword != nil else {
                return HTML.page(.forbidden, lang: "en", title: "Forbidden", body: "<p>Campaign reports are for loopback clients (or set FLEET_SERVE_ADMIN_PASSWORD).</p>")
            }
            var response = HTML.page(.unauthorized, lang: "en", title: "Unauthorized", body: "<p>Campaign reports need the admin password.</p>")
            response.headers[.wwwAuthenticate] = "Basic realm=\"fleet\""
            return response
        }
        let id = context.parameters.get("id") ?? ""
        guard let report = try await CampaignReport.load(campaignID: id, store: routes.store, storePath: routes.settings.storePath,
                                                         options: routes.settings.report) else {
            return HTML.page(.notFound, lang: "en", title: "No such campaign", body: "<p>No campaign with this id.</p>")
        }
        if request.uri.queryParameters.get("format") == "json" {
            return Response(status: .ok, headers: HTML.securityHeaders(contentType: "application/json"),
                            body: .init(byteBuffer: ByteBuffer(bytes: report.json().serialized())))
        }
        return HTML.page(.ok, lang: "en", title: "Campaign \(id)", body: Self.body(report), wide: true)
    }

    static func pct(_ r: Double) -> String { String(format: "%.2f%%", r * 100) }

    static func body(_ r: CampaignReport) -> String {
        var html = "<h1>Campaign \(HTML.escape(r.campaign.id))</h1>\n<p class=\"note\">\(HTML.escape(r.campaign.kind)), template "
            + "\(HTML.escape(r.campaign.template)), segment \(HTML.escape(r.campaign.segment)); \(r.finals) final results"
            + (r.campaign.cancelledAt != nil ? "; cancelled" : "") + "</p>\n"
        html += "<table><thead><tr><th>group</th><th>sends</th><th>delivered</th><th>opens (machine)</th><th>open rate</th>"
            + "<th>clickers</th><th>click rate</th><th>conversions</th><th>conversion rate</th><th>converted</th></tr></thead><tbody>\n"
        func ci(_ x: (rate: Double, low: Double, high: Double)) -> String { "\(pct(x.rate)) <small>[\(pct(x.low))–\(pct(x.high))]</small>" }
        for g in r.groups {
            html += "<tr><td>\(HTML.escape(g.name))</td><td>\(g.sends)</td><td>\(g.delivered)</td><td>\(g.humanOpens) (\(g.machineOpens))</td>"
                + "<td>\(g.isHoldout ? "–" : ci(g.openRate))</td><td>\(g.clickers)</td><td>\(g.isHoldout ? "–" : ci(g.clickRate))</td>"
                + "<td>\(g.conversions)</td><td>\(g.isHoldout ? "–" : ci(g.conversionRate))</td><td>\(g.converted) \(ci(g.convertedRate))</td></tr>\n"
        }
        html += "</tbody></table>\n"
        if !r.notAssigned.isEmpty {
            html += "<p class=\"note\">Not assigned to a group: " + r.notAssigned.sorted { $0.key < $1.key }
                .map { "\(HTML.escape($0.key)) \($0.value)" }.joined(separator: ", ") + "</p>\n"
        }
        html += chart(r)
        html += "<h2>Verdict</h2>\n<ul id=\"verdicts\">\n"
        if r.findings.isEmpty { html += "<li>Nothing to compare (one group).</li>\n" }
        for f in r.findings { html += "<li>\(HTML.escape(f.verdict))</li>\n" }
        html += "</ul>\n"
        return html
    }

    /// Bars per group for three rates, with 95% interval whiskers, scaled to the largest upper bound.
    static func chart(_ r: CampaignReport) -> String {
        let measures: [(String, String, (CampaignReport.Group) -> (rate: Double, low: Double, high: Double))] = [
            ("click rate", "#1a73e8", { $0.clickRate }), ("conversion rate", "#188038", { $0.conversionRate }),
            ("converted", "#e37400", { $0.convertedRate }),
        ]
        let groups = r.groups
        guard !groups.isEmpty else { return "" }
        let top = max(0.0001, groups.flatMap { g in measures.map { $0.2(g).high } }.max() ?? 0)
        let barWidth = 28.0, gap = 6.0, groupGap = 30.0, height = 220.0, left = 50.0, bottom = 30.0
        let groupWidth = Double(measures.count) * (barWidth + gap) + groupGap
        let width = left + Double(groups.count) * groupWidth + 160
        var svg = "<svg id=\"chart\" role=\"img\" aria-label=\"Rates per group with 95% confidence intervals\" width=\"\(Int(width))\" "
            + "height=\"\(Int(height + bottom + 10))\" viewBox=\"0 0 \(Int(width)) \(Int(height + bottom + 10))\" xmlns=\"http://www.w3.org/2000/svg\" "
            + "font-family=\"Helvetica,Arial,sans-serif\" font-size=\"11\">\n"
        func y(_ v: Double) -> Double { 10 + height - v / top * height }
        svg += "<line x1=\"\(left)\" y1=\"\(y(0))\" x2=\"\(width - 160)\" y2=\"\(y(0))\" stroke=\"#444\"/>\n"
        svg += "<text x=\"4\" y=\"\(y(top) + 4)\">\(pct(top))</text><text x=\"4\" y=\"\(y(0))\">0%</text>\n"
        for (i, g) in groups.enumerated() {
            let x0 = left + Double(i) * groupWidth + 10
            for (j, m) in measures.enumerated() {
                let v = m.2(g)
                let x = x0 + Double(j) * (barWidth + gap)
                svg += "<rect class=\"bar\" x=\"\(x)\" y=\"\(y(v.rate))\" width=\"\(barWidth)\" height=\"\(y(0) - y(v.rate))\" fill=\"\(m.1)\">"
                    + "<title>\(HTML.escape(g.name)) \(m.0): \(pct(v.rate))</title></rect>\n"
                let cx = x + barWidth / 2
                svg += "<line x1=\"\(cx)\" y1=\"\(y(v.low))\" x2=\"\(cx)\" y2=\"\(y(v.high))\" stroke=\"#000\"/>"
                    + "<line x1=\"\(cx - 5)\" y1=\"\(y(v.high))\" x2=\"\(cx + 5)\" y2=\"\(y(v.high))\" stroke=\"#000\"/>"
                    + "<line x1=\"\(cx - 5)\" y1=\"\(y(v.low))\" x2=\"\(cx + 5)\" y2=\"\(y(v.low))\" stroke=\"#000\"/>\n"
            }
            svg += "<text x=\"\(x0)\" y=\"\(y(0) + 18)\">\(HTML.escape(g.name))</text>\n"
        }
        for (j, m) in measures.enumerated() {
            let ly = 20.0 + Double(j) * 18
            svg += "<rect x=\"\(width - 150)\" y=\"\(ly - 9)\" width=\"10\" height=\"10\" fill=\"\(m.1)\"/><text x=\"\(width - 135)\" y=\"\(ly)\">\(m.0)</text>\n"
        }
        return svg + "</svg>\n"
    }
}
