import Crypto
import Foundation

/// A rendered email as MIME (RFC 5322, 2045-2047): `multipart/alternative` with the text part first and the
/// html part second, both UTF-8 and quoted-printable, CRLF line ends, and the headers of a bulk sender:
/// `Date`, `Message-ID` (derived from the job id, so a re-sent job carries the same id), `List-Unsubscribe`
/// with `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), `List-ID`, and campaign headers.
public struct MIMEMessage: Sendable {
    public var from: String
    public var to: String
    public var replyTo: String?
    public var subject: String
    public var preheader: String?
    public var text: String
    public var html: String
    public var date: Date
    /// Without angle brackets.
    public var messageID: String
    public var listUnsubscribeURL: String?
    /// A `mailto:` for List-Unsubscribe (optional, listed after the URL).
    public var listUnsubscribeMailto: String?
    /// `List-ID` as `Name <id>`.
    public var listID: String?
    /// Extra headers (campaign id, variant, job id), ASCII names.
    public var extraHeaders: [(String, String)]

    public init(from: String, to: String, replyTo: String? = nil, subject: String, preheader: String? = nil, text: String,
                html: String, date: Date, messageID: String, listUnsubscribeURL: String? = nil,
                listUnsubscribeMailto: String? = nil, listID: String? = nil, extraHeaders: [(String, String)] = []) {
        self.from = from
        self.to = to
        self.replyTo = replyTo
        self.subject = subject
        self.preheader = preheader
        self.text = text
        self.html = html
        self.date = date
        self.messageID = messageID
        self.listUnsubscribeURL = listUnsubscribeURL
        self.listUnsubscribeMailto = listUnsubscribeMailto
        self.listID = listID
        self.extraHeaders = extraHeaders
    }

    /// The Message-ID of a job: `<hex of SHA-256(job id), 32 chars>@domain`; stable across re-sends.
    public static func messageID(jobID: String, domain: String) -> String {
        let digest = SHA256.hash(data: Array(jobID.utf8))
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(32)
        for b in digest.prefix(16) {
            hex.append(digits[Int(b >> 4)])
            hex.append(digits[Int(b & 15)])
        }
        return String(decoding: hex, as: UTF8.self) + "@" + domain
    }

    /// The bare address of a mailbox header value (`Name <a@b>` → `a@b`).
    public static func address(of mailbox: String) -> String {
        if let lt = mailbox.lastIndex(of: "<"), let gt = mailbox.lastIndex(of: ">"), lt < gt {
            return String(mailbox[mailbox.index(after: lt)..<gt])
        }
        return mailbox.trimmingCharacters(in: .whitespaces)
    }

    /// The domain of a mailbox's address.
    public static func domain(of mailbox: String) -> String {
        let a = address(of: mailbox)
        if let at = a.lastIndex(of: "@") { return String(a[a.index(after: at)...]) }
        return "localhost"
    }

    /// The RFC 5322 date (`Tue, 03 Jun 2025 10:00:00 +0000`).
    public static func rfc5322Date(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var tm = tm()
        gmtime_r(&t, &tm)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(tm.tm_wday)]), \(two(tm.tm_mday)) \(months[Int(tm.tm_mon)]) \(tm.tm_year + 1900) "
            + "\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) +0000"
    }

    /// The message as bytes (CRLF line ends), ready for SMTP DATA (no line starts with `.`).
    public func encoded() -> [UInt8] {
        let alphanumerics = messageID.utf8.prefix(24).filter {
            ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z"))
                || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
        }
        let boundary = "=_fleet_" + String(decoding: alphanumerics, as: UTF8.self)
        var h: [(String, String)] = []
        h.append(("Date", Self.rfc5322Date(date)))
        h.append(("From", EncodedWord.mailbox(from)))
        h.append(("To", EncodedWord.mailbox(to)))
        if let replyTo { h.append(("Reply-To", EncodedWord.mailbox(replyTo))) }
        h.append(("Subject", EncodedWord.encode(subject)))
        h.append(("Message-ID", "<\(messageID)>"))
        h.append(("MIME-Version", "1.0"))
        if let listUnsubscribeURL {
            var v = "<\(listUnsubscribeURL)>"
            if let listUnsubscribeMailto { v += ",\r\n <\(listUnsubscribeMailto)>" }
            h.append(("List-Unsubscribe", v))
            h.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        }
        if let listID { h.append(("List-ID", EncodedWord.mailbox(listID))) }
        for (k, v) in extraHeaders { h.append((k, EncodedWord.encode(v))) }
        h.append(("Content-Type", "multipart/alternative;\r\n boundary=\"\(boundary)\""))

        var out: [UInt8] = []
        out.reserveCapacity(html.utf8.count + text.utf8.count + 2048)
        for (k, v) in h {
            out.append(contentsOf: k.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: v.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        out.append(contentsOf: "\r\nThis is a multi-part message in MIME format.\r\n".utf8)
        for (type, body) in [("text/plain", text), ("text/html", html)] {
            out.append(contentsOf: "\r\n--\(boundary)\r\nContent-Type: \(type); charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n".utf8)
            out.append(contentsOf: QuotedPrintable.encode(body))
        }
        out.append(contentsOf: "\r\n--\(boundary)--\r\n".utf8)
        return out
    }
}
