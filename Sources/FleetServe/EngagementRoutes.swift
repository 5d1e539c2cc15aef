import FleetCampaign
import FleetCore
import FleetLinks
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import ProfileStore

/// The routes of `fleet serve` that people's mail clients and mailbox providers reach:
///
/// - `GET /o/<token>.gif`: the open pixel. Records `email_opened` once per message (human and machine opens apart),
///   answers a 1x1 GIF.
/// - `GET /c/<token>`: a tracked link. Records `email_clicked` once per message and link, answers 302 to the URL
///   signed in the token (no open redirect), with `Referrer-Policy: no-referrer`.
/// - `GET /u/<token>`: a page asking to confirm; `POST /u/<token>` with `List-Unsubscribe=One-Click` (RFC 8058):
///   records the opt-out of the token's subscription group, 200, no redirect.
/// - `GET /p/<token>`, `POST /p/<token>`: the preference centre (``PreferenceCentre``).
/// - `GET /campaigns/<id>`: the campaign report page (``ReportPage``), for loopback clients or with the admin password.
///
/// A token that is malformed, forged, signed by an unknown key or expired gets the same 404.
public struct EngagementRoutes: Sendable {
    public let settings: ServeSettings
    public let store: ProfileStore
    let groups: [SubscriptionGroup]
    let limiter: PostRateLimiter
    let logger: Logger
    let events = CounterCache(label: "fleet_engagement_events_total", dimensions: ["event", "status"])

    public init(settings: ServeSettings, store: ProfileStore, logger: Logger) {
        self.settings = settings
        self.store = store
        self.logger = logger
        groups = SubscriptionGroup.load(templatesDirectory: settings.templatesDirectory)
        limiter = PostRateLimiter(perMinute: settings.postsPerMinute, clock: settings.limitClock)
    }

    /// A transparent 1x1 GIF.
    static let gif: [UInt8] = [
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF,
        0x21, 0xF9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
        0x02, 0x44, 0x01, 0x00, 0x3B,
    ]

    public func register(on router: Router<ServeContext>) {
        router.get("/o/:file") { request, context in try await open(request, context) }
        router.get("/c/:token") { request, context in try await click(request, context) }
        let centre = PreferenceCentre(routes: self)
        router.get("/u/:token") { request, context in try await centre.confirmUnsubscribe(request, context) }
        router.post("/u/:token") { request, context in try await centre.oneClick(request, context) }
        router.get("/p/:token") { request, context in try await centre.show(request, context) }
        router.post("/p/:token") { request, context in try await centre.save(request, context) }
        let reports = ReportPage(routes: self)
        router.get("/campaigns/:id") { request, context in try await reports.show(request, context) }
    }

    // MARK: - Opens and clicks

    func open(_ request: Request, _ context: ServeContext) async throws -> Response {
        let file = context.parameters.get("file") ?? ""
        guard file.hasSuffix(".gif"), let (claims, issued) = settings.links.verify(file.dropLast(4)),
              case .open(let message) = claims else { return notFound() }
        let address = clientAddress(request, context)
        let age = Date().timeIntervalSince(issued)
        let machine = settings.machineRanges.contains { $0.contains(address) }
            && (settings.machineOpenSeconds == 0 || age <= Double(settings.machineOpenSeconds))
        var props = Self.properties(message)
        props["machine"] = .bool(machine)
        await record(TrackedEvent(eventID: "open:\(message.messageID):\(machine ? "m" : "h")", name: "email_opened",
                                  properties: props, occurredAt: ProfileStore.nowMillis()), profileID: message.profileID)
        var headers = HTTPFields()
        headers[.contentType] = "image/gif"
        headers[.cacheControl] = "no-store, no-cache, must-revalidate, private"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: Self.gif)))
    }

    func click(_ request: Request, _ context: ServeContext) async throws -> Response {
        guard let token = context.parameters.get("token"), let (claims, _) = settings.links.verify(Substring(token)),
              case .click(let message, let link, let url) = claims,
              url.lowercased().hasPrefix("https://") || url.lowercased().hasPrefix("http://") else { return notFound() }
        var props = Self.properties(message)
        props["link"] = .int(Int64(link))
        await record(TrackedEvent(eventID: "click:\(message.messageID):\(link)", name: "email_clicked", properties: props,
                                  occurredAt: ProfileStore.nowMillis()), profileID: message.profileID)
        var headers = HTTPFields()
        headers[.location] = url
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        return Response(status: .found, headers: headers)
    }

    static func properties(_ m: LinkClaims.Message) -> JSONObject {
        ["campaign": .string(m.campaignID), "variant": .string(m.variant), "message": .string(m.messageID)]
    }

    /// Records an engagement event as a `track` op (op id = event id: a second open or click of the same message
    /// and link is a duplicate). A store failure is logged and counted; the person still gets the pixel or the
    /// redirect.
    func record(_ event: TrackedEvent, profileID: String) async {
        do {
            let result = try await store.apply([ProfileOperation(opID: event.eventID, timestampMillis: event.occurredAt,
                                                                 body: .track(profileID: profileID, event: event))])
            events.increment([event.name, result.first?.status.rawValue ?? "none"])
        } catch {
            events.increment([event.name, "error"])
            logger.error("engagement event not recorded", metadata: ["event.name": "\(event.name)", "error.message": "\(error)"])
        }
    }

    // MARK: - Helpers

    /// The client's address: the socket peer, or the last `X-Forwarded-For` hop when trusted.
    func clientAddress(_ request: Request, _ context: ServeContext) -> String {
        if settings.trustForwardedFor, let forwarded = request.headers[HTTPField.Name("X-Forwarded-For")!],
           let last = forwarded.split(separator: ",").last {
            return String(last).trimmingCharacters(in: .whitespaces)
        }
        return context.remoteAddress?.ipAddress ?? "unknown"
    }

    func notFound(_ text: PageText = .en) -> Response {
        HTML.page(.notFound, lang: text.lang, title: text.invalid, body: "<h1>\(HTML.escape(text.invalid))</h1>")
    }
}
