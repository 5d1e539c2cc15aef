import Foundation
import NIOCore
import NIOSSL

/// STARTTLS support of the SMTP client: the TLS context of a set of ``SMTPSettings`` (TLS 1.2 or later, the
/// CA file or the system store, verification on or off) and clear errors for handshakes that fail.
enum SMTPTLS {
    /// The client context of `settings`, built once per pool (it holds the parsed trust roots).
    /// Throws ``SMTPError`` `smtp_tls_failed` when the CA file cannot be read or holds no certificate.
    static func makeContext(_ settings: SMTPSettings) throws(SMTPError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        switch settings.verification {
        case .peer: configuration.certificateVerification = .fullVerification
        case .none: configuration.certificateVerification = .none
        }
        if let path = settings.caFile {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw SMTPError(code: "smtp_tls_failed", message: "the CA file \(path) cannot be read", stage: "starttls")
            }
            let certificates: [NIOSSLCertificate]
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(path)
            } catch {
                throw SMTPError(code: "smtp_tls_failed", message: "the CA file \(path) is not PEM: \(reason(of: "\(error)"))",
                                stage: "starttls")
            }
            guard !certificates.isEmpty else {
                throw SMTPError(code: "smtp_tls_failed", message: "the CA file \(path) holds no certificate", stage: "starttls")
            }
            configuration.trustRoots = .certificates(certificates)
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw SMTPError(code: "smtp_tls_failed", message: "cannot set up TLS: \(reason(of: "\(error)"))", stage: "starttls")
        }
    }

    /// The ``SMTPError`` (`smtp_tls_failed`, stage `starttls`) for an error raised while the handshake ran.
    static func handshakeError(_ error: any Error, settings: SMTPSettings) -> SMTPError {
        let text = "\(error)"
        let trusted = settings.caFile.map { "the CA file \($0)" } ?? "the system trust store"
        let name = settings.tlsServerHostname.map { "'\($0)'" } ?? "the address \(settings.host)"
        let message: String
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            message = "the relay's certificate does not name \(name) (FLEET_EMAIL_SMTP_TLS_NAME sets the name to expect)"
        } else if text.contains("CERTIFICATE_VERIFY_FAILED") {
            message = "the relay's certificate did not verify against \(trusted) (untrusted issuer, expired or otherwise "
                + "invalid; FLEET_EMAIL_SMTP_CA names the CA to trust)"
        } else {
            message = "TLS handshake with the relay failed: \(reason(of: text))"
        }
        return SMTPError(code: "smtp_tls_failed", message: message, stage: "starttls")
    }

    /// The useful part of an error's description: BoringSSL's reason codes (`...:OPENSSL_internal:REASON at
    /// file:line`) become `REASON`, joined by `, `; anything else comes back as it is.
    static func reason(of text: String) -> String {
        let marker = "OPENSSL_internal:"
        var reasons: [String] = []
        var rest = Substring(text)
        while let m = rest.range(of: marker) {
            let tail = rest[m.upperBound...]
            let end = tail.firstIndex { $0 == " " || $0 == "]" || $0 == "," || $0 == ")" } ?? tail.endIndex
            let reason = String(tail[..<end])
            if !reason.isEmpty && !reasons.contains(reason) { reasons.append(reason) }
            rest = tail[end...]
        }
        return reasons.isEmpty ? text : reasons.joined(separator: ", ")
    }
}
