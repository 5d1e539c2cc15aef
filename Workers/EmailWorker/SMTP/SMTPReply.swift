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

    /// Whether this reply to EHLO offers the service extension `keyword` (RFC 5321 §4.1.1.1: the lines after the
    /// first start with the keyword, then its parameters; case does not matter).
    public func offers(_ keyword: String) -> Bool {
        lines.dropFirst().contains { line in
            line.split(separator: " ", maxSplits: 1).first.map { $0.uppercased() == keyword.uppercased() } ?? false
        }
    }

    /// The text, with anything that looks like an address removed (replies often echo the recipient).
    public var redactedText: String {
        lines.joined(separator: " ").split(separator: " ").map { $0.contains("@") ? "<redacted>" : String($0) }
            .joined(separator: " ")
    }
}
