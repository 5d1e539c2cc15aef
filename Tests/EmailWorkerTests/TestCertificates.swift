import FleetTestSupport
import Foundation

/// A throwaway CA and a server certificate it signed, made with the `openssl` CLI for one test: the server
/// certificate names `localhost` (DNS) and `127.0.0.1` (IP) unless told otherwise; the CA's key is deleted
/// once it signed.
struct TestCertificates: Sendable {
    /// The CA certificate (PEM), to trust with `FLEET_EMAIL_SMTP_CA`.
    let ca: String
    /// The server's certificate (PEM) and key (PEM), for the sink.
    let certificate: String
    let key: String

    /// Makes the files in `directory/tls`, the server certificate naming `altNames` (an openssl
    /// subjectAltName value). Throws `TestEnvironment.SetupError` when openssl is missing or fails.
    static func make(in directory: URL, altNames: String = "DNS:localhost, IP:127.0.0.1") throws -> TestCertificates {
        let dir = directory.appendingPathComponent("tls")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        try """
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature, keyEncipherment
            extendedKeyUsage = serverAuth
            subjectAltName = \(altNames)

            """.write(toFile: path("server.ext"), atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=fleet throwaway SMTP test CA", "-keyout", path("ca.key"), "-out", path("ca.pem")],
            ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", "/CN=localhost", "-keyout", path("server.key"), "-out", path("server.csr")],
            ["openssl", "x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
             "-CAcreateserial", "-CAserial", path("ca.srl"), "-days", "2", "-extfile", path("server.ext"),
             "-out", path("server.pem")],
        ]
        for step in steps {
            let (status, output) = try TestEnvironment.run(step)
            guard status == 0 else {
                throw TestEnvironment.SetupError(description: "\(step.prefix(2).joined(separator: " ")) failed (is openssl installed?): \(output)")
            }
        }
        for leftover in ["ca.key", "ca.srl", "server.csr", "server.ext"] { try? FileManager.default.removeItem(atPath: path(leftover)) }
        return TestCertificates(ca: path("ca.pem"), certificate: path("server.pem"), key: path("server.key"))
    }

    /// The sink options that offer STARTTLS with this certificate (`smtp-sink.sh start`).
    func sinkOptions(requireStartTLS: Bool = false) -> [String: String] {
        var options = ["FLEET_SMTP_SINK_TLS_CERT": certificate, "FLEET_SMTP_SINK_TLS_KEY": key]
        if requireStartTLS { options["FLEET_SMTP_SINK_REQUIRE_STARTTLS"] = "1" }
        return options
    }
}
