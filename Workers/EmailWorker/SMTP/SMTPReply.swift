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

    /// The SASL mechanisms this reply to EHLO lists on its `AUTH` line (also the old `AUTH=` form), uppercased;
    /// empty when it lists none.
    public var authMechanisms: Set<String> {
        var found = Set<String>()
        for line in lines.dropFirst() {
            let words = line.split(separator: " ")
            guard let first = words.first?.uppercased() else { continue }
            if first == "AUTH" {
                for w in words.dropFirst() { found.insert(w.uppercased()) }
            } else if first.hasPrefix("AUTH=") {
                found.insert(String(first.dropFirst(5)))
                for w in words.dropFirst() { found.insert(w.uppercased()) }
            }
        }
        return found
    }

    /// The text, with anything that looks like an address removed (replies often echo the recipient).
    public var redactedText: String {
        lines.joined(separator: " ").split(separator: " ").map { $0.contains("@") ? "<redacted>" : String($0) }
            .joined(separator: " ")
    }
}
