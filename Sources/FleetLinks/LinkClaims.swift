import FleetJSON

/// What a signed link says. Only opaque ids travel in links: a profile id, never an address or a trait.
public enum LinkClaims: Sendable, Hashable {
    /// An unsubscribe (`/u/`) or preference-centre (`/p/`) link: the person, the mail's subscription group and
    /// its campaign.
    case subscription(profileID: String, group: String, campaignID: String)
    /// The open pixel (`/o/<token>.gif`) of one message (`message`: the job id).
    case open(Message)
    /// A tracked link (`/c/`): the message, the link's index in the html (0 first) and its target URL, which is
    /// signed with the rest (no open redirect).
    case click(Message, link: Int, url: String)

    /// Who and what a tracked message was.
    public struct Message: Sendable, Hashable {
        public var messageID: String
        public var profileID: String
        public var campaignID: String
        public var variant: String

        public init(messageID: String, profileID: String, campaignID: String, variant: String) {
            self.messageID = messageID
            self.profileID = profileID
            self.campaignID = campaignID
            self.variant = variant
        }
    }

    /// The claims as a JSON object, with the issue time (Unix seconds).
    func json(issuedAt: Int64) -> JSONValue {
        var o = JSONObject()
        switch self {
        case .subscription(let p, let g, let c):
            o["t"] = "s"; o["p"] = .string(p); o["g"] = .string(g); o["c"] = .string(c)
        case .open(let m):
            o["t"] = "o"; Self.put(m, into: &o)
        case .click(let m, let link, let url):
            o["t"] = "c"; Self.put(m, into: &o); o["l"] = .int(Int64(link)); o["u"] = .string(url)
        }
        o["i"] = .int(issuedAt)
        return .object(o)
    }

    private static func put(_ m: Message, into o: inout JSONObject) {
        o["m"] = .string(m.messageID); o["p"] = .string(m.profileID); o["c"] = .string(m.campaignID); o["v"] = .string(m.variant)
    }

    /// The claims and issue time of a JSON object written by ``json(issuedAt:)``, or nil.
    static func parse(_ value: JSONValue) -> (LinkClaims, Int64)? {
        guard let issued = value["i"]?.intValue, let type = value["t"]?.stringValue,
              let p = value["p"]?.stringValue, let c = value["c"]?.stringValue else { return nil }
        switch type {
        case "s":
            guard let g = value["g"]?.stringValue else { return nil }
            return (.subscription(profileID: p, group: g, campaignID: c), issued)
        case "o", "c":
            guard let m = value["m"]?.stringValue, let v = value["v"]?.stringValue else { return nil }
            let message = Message(messageID: m, profileID: p, campaignID: c, variant: v)
            if type == "o" { return (.open(message), issued) }
            guard let l = value["l"]?.intValue, let u = value["u"]?.stringValue, l >= 0 else { return nil }
            return (.click(message, link: Int(l), url: u), issued)
        default:
            return nil
        }
    }
}
