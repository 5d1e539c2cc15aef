/// Normalizes addresses (emails, phones, push tokens, profile ids) and hashes them for suppressions.
///
/// Emails are trimmed and lower-cased; phones keep `+` and digits only; tokens and ids are trimmed.
/// The hash is SHA-256 of the normalized UTF-8 text: suppressions never hold the address itself.
public enum AddressHasher {
    /// The channel of a suppression (and the namespace of the address it hashes).
    public enum Channel: String, Sendable, CaseIterable {
        case email, sms, push
        /// A suppressed profile id (or CRM id, anonymous id): every channel.
        case profile
    }

    /// The normalized form of an email address.
    public static func normalizeEmail(_ email: String) -> String {
        email.trimmingWhitespace().lowercased()
    }

    /// The normalized form of a phone number: `+` and digits.
    public static func normalizePhone(_ phone: String) -> String {
        String(phone.unicodeScalars.filter { $0 == "+" || ("0"..."9").contains($0) }.map(Character.init))
    }

    /// The normalized form of `address` for `channel`.
    public static func normalize(_ address: String, channel: Channel) -> String {
        switch channel {
        case .email: normalizeEmail(address)
        case .sms: normalizePhone(address)
        case .push, .profile: address.trimmingWhitespace()
        }
    }

    /// The suppression hash of `address` on `channel` (normalized first).
    public static func hash(_ address: String, channel: Channel) -> [UInt8] {
        Digests.sha256(normalize(address, channel: channel))
    }
}

extension String {
    /// The string without leading and trailing white space (no Foundation needed).
    func trimmingWhitespace() -> String {
        // Most values (ids, op ids) start and end with a visible ASCII character: nothing to trim.
        if let first = utf8.first, let last = utf8.last, (0x21...0x7E).contains(first), (0x21...0x7E).contains(last) {
            return self
        }
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
