import FleetCore
import FleetLinks
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import ProfileStore

/// One-click unsubscribe (RFC 8058) and the preference centre. Pages need no JavaScript; forms post back to their
/// own URL and links are relative (a path prefix of `FLEET_PUBLIC_URL` behind a proxy works); the person's `locale` trait picks the language (de, fr, else en).
///
/// Changes are consent ops on channel `email` with the request's time as source timestamp, so the CRM's
/// last-writer-wins order holds: a later CRM opt-in wins over an earlier unsubscribe, and the other way round.
struct PreferenceCentre: Sendable {
    let routes: EngagementRoutes

    var links: LinkSigner { routes.settings.links }

    /// The token's subscription claims, or nil.
    func claims(_ context: ServeContext) -> (token: String, profileID: String, group: String, campaignID: String)? {
        guard let token = context.parameters.get("token"), let (claims, _) = links.verify(Substring(token)),
              case .subscription(let p, let g, let c) = claims else { return nil }
        return (token, p, g, c)
    }

    func text(_ view: ProfileView?) -> PageText {
        PageText.forLocale(view?.traits["locale"]?.stringValue)
    }

    /// 429 when posting too often: POSTs with a valid token are counted per token (a mailbox provider posts
    /// many people's unsubscribes from few addresses), the others per client address.
    func limited(_ request: Request, _ context: ServeContext, token: String?) -> Response? {
        let key = token.map { "t:" + $0 } ?? "a:" + PostRateLimiter.addressKey(routes.clientAddress(request, context))
        guard let wait = routes.limiter.admit(key) else { return nil }
        var response = HTML.page(.tooManyRequests, lang: "en", title: PageText.en.tooMany, body: "<p>\(HTML.escape(PageText.en.tooMany))</p>")
        response.headers[.retryAfter] = String(wait)
        return response
    }

    func form(_ request: Request, _ context: ServeContext) async throws -> [(String, String)] {
        let buffer = try await request.body.collect(upTo: ServeSettings.maxBodyBytes)
        return HTML.form(String(buffer: buffer), contentType: request.headers[.contentType])
    }

    func consent(_ profileID: String, topic: String, optedIn: Bool, source: String) -> ProfileOperation {
        ProfileOperation(opID: "serve:\(UUID().uuidString)", timestampMillis: ProfileStore.nowMillis(),
                         body: .consent(profileID: profileID, channel: "email", topic: topic, optedIn: optedIn, source: source))
    }

    // MARK: - Unsubscribe

    func confirmUnsubscribe(_ request: Request, _ context: ServeContext) async throws -> Response {
        guard let c = claims(context) else { return routes.notFound() }
        let view = try? await routes.store.view(id: c.profileID)
        let t = text(view)
        let label = routes.groups.first { $0.id == c.group }?.label ?? c.group
        return HTML.page(.ok, lang: t.lang, title: t.unsubscribeTitle, body: """
            <h1>\(HTML.escape(t.unsubscribeTitle))</h1>
            <form method="post" action="">
            <p>\(HTML.escape(t.unsubscribeQuestion)) <strong>\(HTML.escape(label.isEmpty ? "*" : label))</strong></p>
            <input type="hidden" name="List-Unsubscribe" value="One-Click">
            <button type="submit">\(HTML.escape(t.unsubscribeButton))</button>
            </form>
            <p><a href="../p/\(HTML.escape(c.token))">\(HTML.escape(t.preferencesLink))</a></p>
            """)
    }

    /// RFC 8058: the POST carries `List-Unsubscribe=One-Click`; the opt-out is recorded and the answer is 200.
    func oneClick(_ request: Request, _ context: ServeContext) async throws -> Response {
        guard let c = claims(context) else { return limited(request, context, token: nil) ?? routes.notFound() }
        if let limited = limited(request, context, token: c.token) { return limited }
        let fields = try await form(request, context)
        guard fields.contains(where: { $0.0 == "List-Unsubscribe" && $0.1 == "One-Click" }) else {
            return HTML.page(.badRequest, lang: "en", title: "Bad request", body: "<p>The form must carry List-Unsubscribe=One-Click.</p>")
        }
        do {
            _ = try await routes.store.apply([consent(c.profileID, topic: c.group, optedIn: false, source: "one_click")])
        } catch {
            routes.logger.error("unsubscribe not recorded", metadata: ["error.message": "\(error)"])
            return HTML.page(.serviceUnavailable, lang: "en", title: "Try again", body: "<p>Please try again in a minute.</p>")
        }
        Counter(label: "fleet_serve_unsubscribes_total", dimensions: [("source", "one_click")]).increment()
        let t = text(try? await routes.store.view(id: c.profileID))
        return HTML.page(.ok, lang: t.lang, title: t.unsubscribeTitle, body: "<h1>\(HTML.escape(t.unsubscribeTitle))</h1><p role=\"status\">\(HTML.escape(t.unsubscribed))</p>")
    }

    // MARK: - Preference centre

    /// The groups the page lists: the templates' marketing groups, the token's, and any the person has a record of.
    func groups(for view: ProfileView, tokenGroup: String) -> [SubscriptionGroup] {
        var all = routes.groups
        var known = Set(all.map(\.id))
        for id in [tokenGroup] + view.consents.filter({ $0.channel == "email" }).map(\.topic) where !id.isEmpty && !known.contains(id) {
            all.append(SubscriptionGroup(id: id, label: id))
            known.insert(id)
        }
        return all
    }

    func isSubscribed(_ view: ProfileView, _ group: String) -> Bool {
        view.consent(channel: "email", topic: group) ?? routes.settings.optOutConsent
    }

    func show(_ request: Request, _ context: ServeContext) async throws -> Response {
        guard let c = claims(context) else { return routes.notFound() }
        guard let view = try await routes.store.view(id: c.profileID) else { return routes.notFound() }
        let t = text(view)
        let saved = request.uri.queryParameters.get("saved") == "1"
        var rows = ""
        for g in groups(for: view, tokenGroup: c.group) {
            let id = "g-" + HTML.escape(g.id)
            rows += "<label for=\"\(id)\"><input type=\"checkbox\" id=\"\(id)\" name=\"group\" value=\"\(HTML.escape(g.id))\""
                + (isSubscribed(view, g.id) ? " checked" : "") + "> \(HTML.escape(g.label))</label>\n"
        }
        return HTML.page(.ok, lang: t.lang, title: t.preferencesTitle, body: """
            <h1>\(HTML.escape(t.preferencesTitle))</h1>
            \(saved ? "<p role=\"status\">\(HTML.escape(t.saved))</p>" : "")
            <form method="post" action="">
            <fieldset><legend>\(HTML.escape(t.preferencesIntro))</legend>
            \(rows)</fieldset>
            <input type="hidden" name="csrf" value="\(HTML.escape(links.formToken(for: c.token)))">
            <button type="submit" name="action" value="save">\(HTML.escape(t.save))</button>
            <button type="submit" name="action" value="unsubscribe_all">\(HTML.escape(t.unsubscribeAll))</button>
            </form>
            """)
    }

    /// Saves the ticked groups (opt-in) and the unticked ones (opt-out), only those that change; "unsubscribe from
    /// all" opts out of every group and of the channel. Then 303 back to the page.
    func save(_ request: Request, _ context: ServeContext) async throws -> Response {
        guard let c = claims(context) else { return limited(request, context, token: nil) ?? routes.notFound() }
        if let limited = limited(request, context, token: c.token) { return limited }
        let fields = try await form(request, context)
        guard let csrf = fields.first(where: { $0.0 == "csrf" })?.1, links.verifyFormToken(csrf, for: c.token) else {
            return HTML.page(.forbidden, lang: "en", title: "Forbidden", body: "<p>The form is not valid. Open the link from your email again.</p>")
        }
        guard let view = try await routes.store.view(id: c.profileID) else { return routes.notFound() }
        let ticked = Set(fields.filter { $0.0 == "group" }.map(\.1))
        let all = fields.contains { $0.0 == "action" && $0.1 == "unsubscribe_all" }
        var ops: [ProfileOperation] = []
        for g in groups(for: view, tokenGroup: c.group) {
            let want = all ? false : ticked.contains(g.id)
            if want != isSubscribed(view, g.id) || (all && view.consent(channel: "email", topic: g.id) != false) {
                ops.append(consent(c.profileID, topic: g.id, optedIn: want, source: "preference_centre"))
            }
        }
        if all { ops.append(consent(c.profileID, topic: "", optedIn: false, source: "preference_centre")) }
        if !ops.isEmpty {
            do {
                _ = try await routes.store.apply(ops)
            } catch {
                routes.logger.error("preferences not saved", metadata: ["error.message": "\(error)"])
                return HTML.page(.serviceUnavailable, lang: "en", title: "Try again", body: "<p>Please try again in a minute.</p>")
            }
        }
        Counter(label: "fleet_serve_preference_saves_total", dimensions: [("action", all ? "unsubscribe_all" : "save")]).increment()
        var headers = HTTPFields()
        // Relative to the request's own URL, so that a path prefix of FLEET_PUBLIC_URL (behind a proxy) is kept.
        headers[.location] = "\(c.token)?saved=1"
        headers[.cacheControl] = "no-store"
        return Response(status: .seeOther, headers: headers)
    }
}
