import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// The HTTP/2 client of the push services: async-http-client over TLS (ALPN h2), the system trust store plus
/// `FLEET_PUSH_CA_FILE` (emulators, private gateways), connections reused and streams multiplexed.
final class PushHTTP: Sendable {
    let client: HTTPClient

    init(caFile: String?) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile {
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw PushError("push_configuration", "FLEET_PUSH_CA_FILE is not a readable file")
            }
            tls.additionalTrustRoots = [.file(caFile)]
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.httpVersion = .automatic
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(30))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// One request; the status, headers and body (at most 64 KiB). Transport failures are `push_unavailable`.
    func post(_ url: String, headers: [(String, String)], body: [UInt8]) async throws -> (status: Int, headers: HTTPHeaders, body: [UInt8]) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .seconds(30))
            let data = try await response.body.collect(upTo: 64 * 1024)
            return (Int(response.status.code), response.headers, Array(data.readableBytesView))
        } catch let error as PushError {
            throw error
        } catch {
            throw PushError("push_unavailable", "\(type(of: error))")
        }
    }

    func shutdown() async {
        try? await client.shutdown()
    }
}
