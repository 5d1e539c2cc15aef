import HTTPTypes
import Hummingbird

/// `/metrics` (Prometheus text exposition), `/healthz` (200 `ok` while the process runs) and `/readyz` (200 `ready`
/// when `ready()` answers true, else 503 `not ready`), on GET and HEAD: the workers' metrics port and `fleet serve`.
public enum HealthRoutes {
    public static func register<Context: RequestContext>(on router: Router<Context>, metrics: (@Sendable () -> [UInt8])?,
                                                         ready: @escaping @Sendable () async -> Bool) {
        for method in [HTTPRequest.Method.get, .head] {
            router.on("/healthz", method: method) { _, _ in text(.ok, "ok\n") }
            router.on("/readyz", method: method) { _, _ in await ready() ? text(.ok, "ready\n") : text(.serviceUnavailable, "not ready\n") }
            if let metrics = metrics {
                router.on("/metrics", method: method) { _, _ in
                    var headers = HTTPFields()
                    headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
                    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: metrics())))
                }
            }
        }
    }

    @Sendable static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
