import FleetCore
import Foundation

/// Where a benchmark writes: its human report (tables, notes) on stdout, or with `--json` on stderr, and then with
/// `--json` one JSON object of its figures on stdout, alone there.
public struct BenchOutput: Sendable {
    /// Whether the figures go to stdout as one JSON object (the report then goes to stderr).
    public let json: Bool

    public init(json: Bool) { self.json = json }

    /// One line of the human report.
    func line(_ text: String = "") {
        if json {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        } else {
            Swift.print(text)
        }
    }

    /// The figures as one JSON object on stdout, with `--json` (nothing otherwise).
    func figures(_ object: JSONObject) {
        guard json else { return }
        Swift.print(JSONValue.object(object).jsonString)
    }
}

/// Numbers of the figures object: a measurement rounded to `places` decimals, or null when it was not measured
/// (or is not finite).
extension JSONValue {
    static func number(_ value: Double?, places: Int) -> JSONValue {
        guard let value, value.isFinite else { return .null }
        let scale = pow(10, Double(places))
        return .double((value * scale).rounded() / scale)
    }

    static func count(_ value: Int?) -> JSONValue { value.map { .int(Int64($0)) } ?? .null }
}
