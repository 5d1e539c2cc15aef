@testable import EmailWorker
import FleetTestSupport
import Foundation
import Testing

/// The pure parts of STARTTLS: the `FLEET_EMAIL_SMTP_*` TLS settings, EHLO keywords, the TLS name, and how
/// BoringSSL errors are shortened.
@Suite("SMTP TLS settings")
struct SMTPTLSSettingsTests {
    static let base = ["FLEET_EMAIL_SECRET": "s", "FLEET_EMAIL_DELIVERY": "smtp"]

    static func smtp(_ extra: [String: String]) throws -> SMTPSettings {
        guard case .smtp(let smtp) = try EmailSettings.fromEnvironment(base.merging(extra) { $1 }).delivery else {
            throw TestEnvironment.SetupError(description: "not smtp delivery")
        }
        return smtp
    }

    /// The message of the configuration error `extra` causes (nil: none).
    static func configurationError(_ extra: [String: String]) -> String? {
        do {
            _ = try EmailSettings.fromEnvironment(base.merging(extra) { $1 })
            return nil
        } catch let error as EmailError {
            #expect(error.code == "email_configuration")
            #expect(!error.retryable)
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test("pool, pipelining, chunking and rate settings: defaults, values, and one clear error for a bad one")
    func deliverySettings() throws {
        let d = try Self.smtp([:])
        #expect(d.poolSize == 64 && d.idleTimeoutSeconds == 30 && d.maxMessagesPerSession == 100 && d.backoffSeconds == 30)
        #expect(d.pipelining && d.chunking && d.rate == nil)
        let s = try Self.smtp(["FLEET_EMAIL_SMTP_POOL": "3", "FLEET_EMAIL_SMTP_IDLE": "5", "FLEET_EMAIL_SMTP_MAX_MESSAGES": "0",
                               "FLEET_EMAIL_SMTP_BACKOFF": "0", "FLEET_EMAIL_SMTP_PIPELINING": "off", "FLEET_EMAIL_SMTP_CHUNKING": "OFF",
                               "FLEET_EMAIL_SMTP_RATE": "3000/m"])
        #expect(s.poolSize == 3 && s.idleTimeoutSeconds == 5 && s.maxMessagesPerSession == 0 && s.backoffSeconds == 0)
        #expect(!s.pipelining && !s.chunking && s.rate?.perSecond == 50)
        #expect(Self.configurationError(["FLEET_EMAIL_SMTP_RATE": "50"])?.contains("FLEET_EMAIL_SMTP_RATE must be N/s, N/m or N/h") == true)
        #expect(Self.configurationError(["FLEET_EMAIL_SMTP_PIPELINING": "yes"])?.contains("FLEET_EMAIL_SMTP_PIPELINING must be on or off") == true)
        #expect(Self.configurationError(["FLEET_EMAIL_SMTP_MAX_MESSAGES": "-1"])?.contains("FLEET_EMAIL_SMTP_MAX_MESSAGES") == true)
    }

    @Test("STARTTLS defaults to opportunistic with peer verification against the system store")
    func defaults() throws {
        let s = try Self.smtp([:])
        #expect(s.startTLS == .opportunistic)
        #expect(s.verification == .peer)
        #expect(s.caFile == nil && s.tlsName == nil)
        #expect(SMTPSettings(host: "h").startTLS == .opportunistic)
    }

    @Test("FLEET_EMAIL_SMTP_STARTTLS and _VERIFY take their values in any case and refuse others, naming the choices")
    func values() throws {
        #expect(try Self.smtp(["FLEET_EMAIL_SMTP_STARTTLS": "off"]).startTLS == .off)
        #expect(try Self.smtp(["FLEET_EMAIL_SMTP_STARTTLS": "Require"]).startTLS == .require)
        #expect(try Self.smtp(["FLEET_EMAIL_SMTP_STARTTLS": "opportunistic"]).startTLS == .opportunistic)
        #expect(try Self.smtp(["FLEET_EMAIL_SMTP_VERIFY": "none"]).verification == .none)
        #expect(try Self.smtp(["FLEET_EMAIL_SMTP_VERIFY": "PEER"]).verification == .peer)
        let bad = Self.configurationError(["FLEET_EMAIL_SMTP_STARTTLS": "yes"])
        #expect(bad == "FLEET_EMAIL_SMTP_STARTTLS must be off, opportunistic, require, not 'yes'")
        let badVerify = Self.configurationError(["FLEET_EMAIL_SMTP_VERIFY": "strict"])
        #expect(badVerify?.contains("FLEET_EMAIL_SMTP_VERIFY must be peer, none") == true)
        // Checked even with STARTTLS off: a typo is a typo.
        #expect(Self.configurationError(["FLEET_EMAIL_SMTP_STARTTLS": "off", "FLEET_EMAIL_SMTP_VERIFY": "no"]) != nil)
    }

    @Test("the CA file is read at start: missing, not PEM, or paired with VERIFY=none is a configuration error")
    func caFile() throws {
        let dir = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("nope.pem").path
        #expect(Self.configurationError(["FLEET_EMAIL_SMTP_CA": missing])?.contains("FLEET_EMAIL_SMTP_CA: the CA file \(missing) cannot be read") == true)
        let garbage = dir.appendingPathComponent("garbage.pem")
        try "not a certificate\n".write(to: garbage, atomically: true, encoding: .utf8)
        let message = Self.configurationError(["FLEET_EMAIL_SMTP_CA": garbage.path])
        #expect(message?.hasPrefix("FLEET_EMAIL_SMTP_CA: the CA file \(garbage.path)") == true, "\(message ?? "")")
        // Ignored when STARTTLS is off.
        #expect(try Self.smtp(["FLEET_EMAIL_SMTP_STARTTLS": "off", "FLEET_EMAIL_SMTP_CA": missing]).startTLS == .off)

        let certificates = try TestCertificates.make(in: dir)
        let s = try Self.smtp(["FLEET_EMAIL_SMTP_CA": certificates.ca, "FLEET_EMAIL_SMTP_STARTTLS": "require"])
        #expect(s.caFile == certificates.ca && s.startTLS == .require)
        #expect(Self.configurationError(["FLEET_EMAIL_SMTP_CA": certificates.ca, "FLEET_EMAIL_SMTP_VERIFY": "none"])?
            .contains("no use with FLEET_EMAIL_SMTP_VERIFY=none") == true)
    }

    @Test("the TLS name is TLS_NAME, else the host; an IP address goes unnamed (matched against the certificate's IPs)")
    func tlsName() throws {
        #expect(SMTPSettings(host: "smtp.example.com").tlsServerHostname == "smtp.example.com")
        #expect(SMTPSettings(host: "127.0.0.1").tlsServerHostname == nil)
        #expect(SMTPSettings(host: "::1").tlsServerHostname == nil)
        #expect(SMTPSettings(host: "[::1]").tlsServerHostname == nil)
        #expect(SMTPSettings(host: "10.0.0.5", tlsName: "relay.example.com").tlsServerHostname == "relay.example.com")
        #expect(try Self.smtp(["FLEET_EMAIL_SMTP_TLS_NAME": "relay.example.com"]).tlsName == "relay.example.com")
        #expect(Self.configurationError(["FLEET_EMAIL_SMTP_TLS_NAME": "10.1.2.3"])?.contains("must be a DNS name") == true)
    }

    @Test("EHLO keywords are matched on the lines after the first, case-insensitively, keyword only")
    func ehloKeywords() {
        let ehlo = SMTPReply(code: 250, lines: ["relay.example.com greets STARTTLS", "SIZE 10485760", "starttls", "AUTH LOGIN PLAIN"])
        #expect(ehlo.offers("STARTTLS"))
        #expect(ehlo.offers("AUTH"))
        #expect(!ehlo.offers("PLAIN"))
        #expect(!SMTPReply(code: 250, lines: ["relay.example.com STARTTLS", "SIZE 1"]).offers("STARTTLS"))
        #expect(!SMTPReply(code: 250, lines: ["relay.example.com"]).offers("STARTTLS"))
    }

    struct HandshakeFailure: Error, CustomStringConvertible {
        var description: String
    }

    @Test("a failed handshake is a transient smtp_tls_failed that names the trust store used")
    func handshakeErrors() {
        let verify = HandshakeFailure(description: "handshakeFailed(sslError([Error: 1 error:1:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at x.cc:1]))")
        let system = SMTPTLS.handshakeError(verify, settings: SMTPSettings(host: "127.0.0.1"))
        #expect(system.code == "smtp_tls_failed" && system.stage == "starttls" && system.isTransient)
        #expect(system.message.hasPrefix("the relay's certificate did not verify against the system trust store"))
        let file = SMTPTLS.handshakeError(verify, settings: SMTPSettings(host: "h", caFile: "/etc/relay-ca.pem"))
        #expect(file.message.hasPrefix("the relay's certificate did not verify against the CA file /etc/relay-ca.pem"))
        let other = SMTPTLS.handshakeError(HandshakeFailure(description: "uncleanShutdown"), settings: SMTPSettings(host: "h"))
        #expect(other.message == "TLS handshake with the relay failed: uncleanShutdown")
    }

    @Test("BoringSSL error stacks shorten to their reason codes; other texts stay as they are")
    func reasons() {
        let text = "handshakeFailed(NIOSSL.BoringSSLError.sslError([Error: 268435581 error:1000007d:SSL routines:"
            + "OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at /x/handshake.cc:393, Error: 1 error:1:SSL routines:"
            + "OPENSSL_internal:WRONG_VERSION_NUMBER at /x/tls_record.cc:231]))"
        #expect(SMTPTLS.reason(of: text) == "CERTIFICATE_VERIFY_FAILED, WRONG_VERSION_NUMBER")
        #expect(SMTPTLS.reason(of: "uncleanShutdown") == "uncleanShutdown")
    }

    @Test("AUTH mechanisms are read from the EHLO reply (AUTH and AUTH= lines); PLAIN is preferred, LOGIN next, a forced one kept")
    func authMechanisms() throws {
        let ehlo = SMTPReply(code: 250, lines: ["relay.example.com", "AUTH login Plain CRAM-MD5", "AUTH=LOGIN", "SIZE 1"])
        #expect(ehlo.authMechanisms == ["LOGIN", "PLAIN", "CRAM-MD5"])
        #expect(SMTPReply(code: 250, lines: ["relay.example.com", "AUTH PLAIN"]).authMechanisms == ["PLAIN"])
        #expect(SMTPReply(code: 250, lines: ["relay.example.com AUTH PLAIN", "SIZE 1"]).authMechanisms.isEmpty)
        #expect(try SMTPConnection.mechanism(configured: nil, offered: ["LOGIN", "PLAIN"]) == .plain)
        #expect(try SMTPConnection.mechanism(configured: nil, offered: ["LOGIN", "CRAM-MD5"]) == .login)
        #expect(try SMTPConnection.mechanism(configured: nil, offered: []) == .plain)
        #expect(try SMTPConnection.mechanism(configured: .login, offered: ["PLAIN"]) == .login)
        #expect(throws: SMTPError.self) { try SMTPConnection.mechanism(configured: nil, offered: ["CRAM-MD5", "XOAUTH2"]) }
    }
}
