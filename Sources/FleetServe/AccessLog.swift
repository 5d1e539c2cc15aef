import HTTPTypes
import Hummingbird
import Logging
import Metrics

/// Logs each request (at `info`: method, route, status, duration) and counts it in `fleet_serve_requests_total`
/// by route and status. The route is the path's first segment (`/c/`, `/o/`, ...): never a token, nor an address.
public struct AccessLog<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    let requests = CounterCache(label: "fleet_serve_requests_total", dimensions: ["route", "status"])

    public init(logger: Logger) {
        self.logger = logger
    }

    static func route(_ path: String) -> String {
        for prefix in ["/o/", "/c/", "/u/", "/p/", "/campaigns/"] where path.hasPrefix(prefix) { return prefix }
        return ["/healthz", "/readyz", "/metrics"].contains(path) ? path : "other"
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let route = Self.route(request.uri.path)
        var status = 500
        defer {
            let elapsed = ContinuousClock.now - start
            let micros = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
            requests.increment([route, String(status)])
            if logger.logLevel <= .info {
                logger.info("request", metadata: ["http.method": "\(request.method.rawValue)", "http.route": "\(route)",
                                                  "http.status": "\(status)", "http.duration_us": "\(micros)"])
            }
        }
        do {
            let response = try await next(request, context)
            status = response.status.code
            return response
        } catch let error as any HTTPResponseError {
            status = error.status.code
            throw error
        }
    }
}
