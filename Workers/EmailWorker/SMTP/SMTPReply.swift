/// A reply of an SMTP server: a three-digit code and its text lines (RFC 5321 §4.2).
public struct SMTPReply: Sendable, Hashable {
    public var code: Int
    public var lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    /// 2xx and 3xx.
    public var isPositive: Bool { code < 400 }
    /// 4xx: try again later.
    public var isTransient: Bool { (400..<500).contains(code) }
    /// 5xx: refused for good.
    public var isPermanent: Bool { code >= 500 }

    /// The text, with anything that looks like an address removed (replies often echo the recipient).
    public var redactedText: String {
        lines.joined(separator: " ").split(separator: " ").map { $0.contains("@") ? "<redacted>" : String($0) }
            .joined(separator: " ")
    }
}
