#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What the effects journal holds for one effect of a job (see the runtime's `JobContext.effect`).
public struct EffectRecord: Sendable, Hashable {
    /// The effect's key within its job (`smtp:<recipient hash>`, `apns:<device>`).
    public var key: String
    /// The completion was recorded; otherwise only the intent was (the effect may or may not have happened).
    public var isDone: Bool
    /// What the effect's run returned (JSON), when done.
    public var result: [UInt8]?
    public var updatedAt: Date

    public init(key: String, isDone: Bool, result: [UInt8]?, updatedAt: Date) {
        self.key = key
        self.isDone = isDone
        self.result = result
        self.updatedAt = updatedAt
    }
}
