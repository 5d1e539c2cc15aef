import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Reads queue placement from RabbitMQ's management HTTP API (`GET /api/queues/<vhost>`), which AMQP does not
/// carry: each queue's type, its leader (quorum) or node (classic), and its members (quorum) with those online.
/// Uses Foundation's URLSession (no HTTP client of our own).
struct ManagementAPI {
    /// Where a queue lives.
    struct Placement: Sendable, Hashable {
        var type: String
        /// The quorum queue's leader, or the classic queue's node.
        var leader: String?
        var members: [String]
        var online: [String]
    }

    let base: URL
    let user: String
    let password: String

    /// `http(s)://user:password@host:port` (the management listener, 15672 by default).
    init(url text: String) throws {
        guard var components = URLComponents(string: text), let scheme = components.scheme, ["http", "https"].contains(scheme),
              components.host != nil else {
            throw CLIError.usage("the management URL must be http(s)://user:password@host:port, not '\(text)'")
        }
        user = components.user ?? "guest"
        password = components.password ?? "guest"
        components.user = nil
        components.password = nil
        components.path = ""
        guard let url = components.url else { throw CLIError.usage("bad management URL") }
        base = url
    }

    /// The placement of every queue of `vhost`, by name.
    func queues(vhost: String) async throws -> [String: Placement] {
        let encoded = vhost.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? vhost
        guard let url = URL(string: base.absoluteString + "/api/queues/\(encoded)?columns=name,type,node,leader,members,online") else {
            throw CLIError("bad management URL")
        }
        var request = URLRequest(url: url, timeoutInterval: 10)
        request.setValue("Basic " + Data("\(user):\(password)".utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw CLIError("cannot reach the management API at \(base.absoluteString): \(error.localizedDescription)", exitCode: 69)
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else { throw CLIError("the management API at \(base.absoluteString) answered \(status)", exitCode: 69) }
        guard let list = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw CLIError("the management API's queue list is not a JSON array", exitCode: 69)
        }
        var out: [String: Placement] = [:]
        for q in list {
            guard let name = q["name"] as? String else { continue }
            out[name] = Placement(type: q["type"] as? String ?? "classic", leader: (q["leader"] as? String) ?? (q["node"] as? String),
                                  members: q["members"] as? [String] ?? [], online: q["online"] as? [String] ?? [])
        }
        return out
    }
}
