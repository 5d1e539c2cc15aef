import AMQPClient
import Testing

@Suite("AMQPConfiguration(url:)")
struct AMQPConfigurationTests {
    private func parse(_ url: String) throws -> AMQPConfiguration { try AMQPConfiguration(url: url) }

    /// The AMQPError thrown for a URL, or nil when it parsed.
    private func error(_ url: String) -> AMQPError? {
        do {
            _ = try AMQPConfiguration(url: url)
            return nil
        } catch let error as AMQPError {
            return error
        } catch {
            Issue.record("\(url): not an AMQPError: \(error)")
            return nil
        }
    }

    @Test("defaults: guest/guest, port 5672, vhost /, no TLS, 30 s heartbeat")
    func defaults() throws {
        let c = try parse("amqp://broker.example")
        #expect(c.host == "broker.example")
        #expect(c.port == 5672)
        #expect(c.virtualHost == "/")
        #expect(c.user == "guest")
        #expect(c.password == "guest")
        #expect(c.tls == nil)
        #expect(c.heartbeatSeconds == 30)
        #expect(c.connectTimeout == .seconds(10))
    }

    @Test("several nodes: a host list in one URL, or whole URLs separated by commas; the redacted URL names them all")
    func addressLists() throws {
        let list = try parse("amqp://u:p@n1:5672,n2:5673,[::1]:5674/v?heartbeat=5")
        #expect(list.addresses == [.init(host: "n1", port: 5672), .init(host: "n2", port: 5673), .init(host: "::1", port: 5674)])
        #expect(list.user == "u" && list.password == "p" && list.virtualHost == "v" && list.heartbeatSeconds == 5)
        #expect(list.host == "n1" && list.port == 5672)
        #expect(list.redactedURL == "amqp://u@n1:5672,n2:5673,[::1]:5674/v")
        let urls = try parse("amqp://u:p@n1/v, amqp://u:p@n2:5999/v")
        #expect(urls.addresses == [.init(host: "n1", port: 5672), .init(host: "n2", port: 5999)])
        let tls = try parse("amqps://u:p@n1,n2/v")
        #expect(tls.addresses.map(\.port) == [5671, 5671] && tls.tls != nil)
        #expect(try parse("amqp://n1").addresses.count == 1)
        #expect(error("amqp://u:p@n1/v,amqp://u:x@n2/v")?.code == .invalidURL)
        #expect(error("amqp://u:p@n1/v,amqps://u:p@n2/v")?.code == .invalidURL)
        #expect(error("amqp://u:p@n1,,n2/v")?.code == .invalidURL)
        // Repeated --amqp-url values are joined with commas: a host list and a URL may be mixed.
        let mixed = try parse("amqp://u:p@n1,n2/v,amqp://u:p@n3:5680/v")
        #expect(mixed.addresses.map(\.description) == ["n1:5672", "n2:5672", "n3:5680"])
        #expect(error("amqp://u:p@n1/v,,amqp://u:p@n2/v")?.code == .invalidURL)
        #expect(error("amqp://u:p@n1/v?heartbeat=5,amqp://u:p@n2/v")?.code == .invalidURL)
        #expect(error("amqp://u:p@n1,n2:99999/v")?.code == .invalidURL)
    }

    @Test("no host means localhost")
    func noHost() throws {
        #expect(try parse("amqp://").host == "localhost")
        #expect(try parse("amqp:///").host == "localhost")
        #expect(try parse("amqp://:5673/").port == 5673)
    }

    @Test("amqps: port 5671 and TLS verifying peer and host name")
    func amqps() throws {
        let c = try parse("amqps://broker.example/")
        #expect(c.port == 5671)
        let tls = try #require(c.tls)
        #expect(tls.verifyPeer)
        #expect(tls.verifyHostname)
        #expect(tls.caCertificatePath == nil)
        #expect(try parse("AMQPS://broker.example:6000").port == 6000)
        #expect(try parse("AMQPS://broker.example:6000").tls != nil)
    }

    @Test("explicit port", arguments: [("amqp://h:1", 1), ("amqp://h:5673/", 5673), ("amqp://h:65535/x", 65535)])
    func port(url: String, port: Int) throws {
        #expect(try parse(url).port == port)
    }

    @Test("the vhost is the percent-decoded path without its leading slash", arguments: [
        ("amqp://h/%2F", "/"),
        ("amqp://h/%2f", "/"),
        ("amqp://h/myvhost", "myvhost"),
        ("amqp://h:5672/myvhost", "myvhost"),
        ("amqp://h", "/"),
        ("amqp://h/", "/"),
        ("amqp://h/a%2Fb", "a/b"),
        ("amqp://h/%2Fprod", "/prod"),
        ("amqp://h/v%20host", "v host"),
        ("amqp://h/caf%C3%A9", "café"),
        ("amqp://h/myvhost?heartbeat=5", "myvhost"),
    ])
    func vhost(url: String, vhost: String) throws {
        #expect(try parse(url).virtualHost == vhost)
    }

    @Test("user and password are percent-decoded once", arguments: [
        ("amqp://alice:secret@h/", "alice", "secret"),
        ("amqp://us%40er:p%40ss%3Aword@h/", "us@er", "p@ss:word"),
        ("amqp://a%2Fb:c%2Fd%3F@h/", "a/b", "c/d?"),
        ("amqp://bob:@h/", "bob", ""),
        ("amqp://caf%C3%A9:%E2%82%AC@h/", "café", "€"),
        // A literal '%' is sent as %25: "100%25" is the password "100%", "pa%2541ss" is "pa%41ss".
        ("amqp://u:100%25@h/", "u", "100%"),
        ("amqp://u:pa%2541ss@h/", "u", "pa%41ss"),
        ("amqp://u%2541:p@h/", "u%41", "p"),
    ])
    func credentials(url: String, user: String, password: String) throws {
        let c = try parse(url)
        #expect(c.user == user)
        #expect(c.password == password)
    }

    @Test("a user without a password keeps the default password")
    func userOnly() throws {
        let c = try parse("amqp://carol@h/")
        #expect(c.user == "carol")
        #expect(c.password == "guest")
    }

    @Test("an IPv6 literal host loses its brackets (rabbitmq-c resolves the bare address)")
    func ipv6() throws {
        let c = try parse("amqp://[::1]:5673/")
        #expect(c.host == "::1")
        #expect(c.port == 5673)
    }

    @Test("heartbeat and connection_timeout")
    func queryParameters() throws {
        let c = try parse("amqp://h/?heartbeat=10&connection_timeout=2500")
        #expect(c.heartbeatSeconds == 10)
        #expect(c.connectTimeout == .milliseconds(2500))
        #expect(try parse("amqp://h/?heartbeat=0").heartbeatSeconds == 0)
        #expect(try parse("amqp://h/?unknown=1&heartbeat=7").heartbeatSeconds == 7)
    }

    @Test("TLS parameters of amqps URLs")
    func tlsParameters() throws {
        let none = try #require(try parse("amqps://h/?verify=verify_none").tls)
        #expect(!none.verifyPeer)
        #expect(!none.verifyHostname)
        let peer = try #require(try parse("amqps://h/?verify=verify_peer").tls)
        #expect(peer.verifyPeer)
        #expect(peer.verifyHostname)
        let files = try #require(try parse("amqps://h/?cacertfile=/etc/ca.pem&certfile=/etc/c.pem&keyfile=/etc/k.pem").tls)
        #expect(files.caCertificatePath == "/etc/ca.pem")
        #expect(files.clientCertificatePath == "/etc/c.pem")
        #expect(files.clientKeyPath == "/etc/k.pem")
        // Without amqps there is no TLS, whatever the parameters say.
        #expect(try parse("amqp://h/?verify=verify_none&cacertfile=/x").tls == nil)
    }

    @Test("invalid URLs throw .invalidURL", arguments: [
        "http://h/",
        "https://guest:guest@h:5672/%2F",
        "rabbitmq://h/",
        "h:5672",
        "",
        "not a url",
        "amqp://h:abc/",
        "amqp://h:0/",
        "amqp://h:70000/",
        "amqp://h:-1/",
        "amqp://h/a/b",
        "amqp://h/vhost/",
        "amqp://h//",
        "amqp://h/?heartbeat=abc",
        "amqp://h/?heartbeat=-5",
        "amqp://h/?connection_timeout=0",
        "amqp://h/?connection_timeout=soon",
        "amqps://h/?verify=maybe",
        "amqp://h/?verify=maybe",
    ])
    func invalid(url: String) throws {
        let e = try #require(error(url), "\(url) was accepted")
        #expect(e.code == .invalidURL, "\(url): \(e)")
    }

    @Test("redactedURL hides the password", arguments: [
        ("amqp://alice:s3cr3t-pw@broker:5672/%2F", "amqp://alice@broker:5672/%2F"),
        ("amqps://alice:s3cr3t-pw@broker/prod", "amqps://alice@broker:5671/prod"),
        ("amqp://broker", "amqp://guest@broker:5672/%2F"),
    ])
    func redacted(url: String, expected: String) throws {
        let c = try parse(url)
        #expect(!c.redactedURL.contains("s3cr3t"))
        #expect(c.redactedURL == expected)
    }

    @Test("redactedURL hides a password set in code too")
    func redactedFromInit() {
        let c = AMQPConfiguration(host: "10.0.0.1", port: 5673, virtualHost: "v", user: "u", password: "topsecret")
        #expect(!c.redactedURL.contains("topsecret"))
        #expect(c.redactedURL.contains("u@10.0.0.1:5673"))
    }
}
