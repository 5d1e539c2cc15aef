import FleetCore
import Liquid

/// Converts the fleet's JSON values into Liquid values, without a round trip through text.
public enum LiquidBridge {
    /// `value` as a Liquid value (objects keep their key order).
    public static func liquid(_ value: JSONValue) -> LiquidValue {
        switch value {
        case .null: return .nil
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(Int(i))
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .array(let a): return .array(a.map(liquid))
        case .object(let o): return .object(object(o))
        }
    }

    /// `object` as a Liquid object.
    public static func object(_ object: JSONObject) -> LiquidObject {
        var out = LiquidObject()
        for (k, v) in object { out[k] = liquid(v) }
        return out
    }
}
