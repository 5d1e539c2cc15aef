import AsyncHTTPClient
import FleetCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A client of an OpenAI-compatible chat-completions endpoint (`POST <base>/chat/completions`): llama.cpp's server,
/// llama-cpp-python, vLLM, Ollama and hosted APIs. async-http-client (HTTP/1.1 or HTTP/2 over TLS), connections
/// reused; the key as a bearer token, never logged.
public final class ChatClient: Sendable {
    /// One answer: the message's text, why it ended, and the token usage the server reported.
    public struct Completion: Sendable, Hashable {
        public var content: String
        public var finishReason: String?
        public var promptTokens: Int
        public var completionTokens: Int
        public var model: String?
    }

    public let baseURL: String
    let key: String?
    let timeout: Duration
    let client: HTTPClient
    let ownsClient: Bool

    /// `baseURL` ends before `/chat/completions` (e.g. `http://127.0.0.1:8080/v1`); `caFile` adds trusted CAs.
    public init(baseURL: String, key: String?, timeout: Duration, caFile: String? = nil) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.key = key
        self.timeout = timeout
        if let caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.additionalTrustRoots = [.file(caFile)]
            var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
            configuration.timeout = .init(connect: .seconds(10))
            client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            ownsClient = true
        } else {
            client = HTTPClient.shared
            ownsClient = false
        }
    }

    /// Shuts down the client it made for `caFile` (the shared client needs none).
    public func shutdown() async {
        if ownsClient { try? await client.shutdown() }
    }

    /// Sends `body` (a chat-completions request) and returns the first choice. Throws ``ContentError``:
    /// `llm_throttled` (429, with Retry-After), `llm_unavailable` (5xx, 408, no connection), `llm_timeout`,
    /// `llm_rejected` (any other 4xx: the request is wrong), `llm_malformed` (a 200 without a message).
    public func complete(_ body: JSONValue) async throws(ContentError) -> Completion {
        var request = HTTPClientRequest(url: baseURL + "/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        request.body = .bytes(ByteBuffer(bytes: body.serialized()))
        let status: Int, headers: HTTPHeaders, bytes: [UInt8]
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout / .milliseconds(1))))
            let data = try await response.body.collect(upTo: 16 * 1024 * 1024)
            (status, headers, bytes) = (Int(response.status.code), response.headers, Array(data.readableBytesView))
        } catch let error as HTTPClientError where error == .connectTimeout {
            throw ContentError("llm_unavailable", "the model server could not be reached (connect timeout)")
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw ContentError("llm_timeout", "the model server did not answer within \(timeout)", mayHaveRun: true)
        } catch is NIOConnectionError {
            throw ContentError("llm_unavailable", "the model server could not be reached (no connection)")
        } catch let error as IOError where error.errnoCode == ECONNREFUSED {
            throw ContentError("llm_unavailable", "the model server could not be reached (connection refused)")
        } catch {
            // Sent (or possibly sent), then the connection failed: the model may have run.
            throw ContentError("llm_unavailable", "the model server's answer was lost (\(type(of: error)))", mayHaveRun: true)
        }
        guard status == 200 else {
            let retryAfter = headers.first(name: "retry-after").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }.map { Duration.seconds(max(0, $0)) }
            let detail = (try? JSONValue(parsing: bytes))?.objectValue?["error"]?.objectValue
            let code = detail?["code"]?.stringValue ?? detail?["type"]?.stringValue ?? "-"
            switch status {
            case 429: throw ContentError("llm_throttled", "the model server answered 429 (\(code))", retryAfter: retryAfter)
            // 500 (a failure mid-generation) and a gateway's 502/504 may come after the model ran; 503 and 408 did not.
            case 500, 502, 504:
                throw ContentError("llm_unavailable", "the model server answered \(status) (\(code))", retryAfter: retryAfter, mayHaveRun: true)
            case 408, 500...599: throw ContentError("llm_unavailable", "the model server answered \(status) (\(code))", retryAfter: retryAfter)
            default: throw ContentError("llm_rejected", "the model server refused the request: \(status) (\(code))")
            }
        }
        guard let answer = try? JSONValue(parsing: bytes), let choice = answer.objectValue?["choices"]?.arrayValue?.first?.objectValue,
              let content = choice["message"]?.objectValue?["content"]?.stringValue else {
            throw ContentError("llm_malformed", "the model server's answer has no choices[0].message.content", mayHaveRun: true)
        }
        let usage = answer.objectValue?["usage"]?.objectValue
        return Completion(content: content, finishReason: choice["finish_reason"]?.stringValue,
                          promptTokens: Int(usage?["prompt_tokens"]?.intValue ?? 0), completionTokens: Int(usage?["completion_tokens"]?.intValue ?? 0),
                          model: answer.objectValue?["model"]?.stringValue)
    }
}
