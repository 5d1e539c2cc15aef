import FleetCore

extension ProfileStore {
    /// Stores a trained recommendation model; returns its version (one more than the newest).
    public func saveModel(_ bytes: [UInt8], summary: JSONValue) async throws -> Int64 {
        let now = Self.nowMillis()
        return try await onWriter { writer in
            try writer.database.transaction {
                let version = try writer.database.withStatement("SELECT coalesce(max(version), 0) + 1 FROM rec_models") { s in
                    try s.step() ? s.int64(at: 0) : 1
                }
                try writer.database.withStatement("INSERT INTO rec_models (version, created_at, summary, model) VALUES (?, ?, ?, ?)") { s in
                    try s.bind(version, at: 1)
                    try s.bind(now, at: 2)
                    try s.bind(String(decoding: summary.serialized(), as: UTF8.self), at: 3)
                    try s.bind(bytes, at: 4)
                    try s.run()
                }
                // Two models are kept: the newest and the one before (workers still loading it).
                try writer.database.withStatement("DELETE FROM rec_models WHERE version < ?") { s in
                    try s.bind(version - 1, at: 1)
                    try s.run()
                }
                return version
            }
        }
    }

    /// Stores (replaces) a person's content block of a slot.
    public func saveContentBlock(profileID: String, slot: String, block: JSONValue, modelVersion: Int64?, expiresAt: Int64) async throws {
        let now = Self.nowMillis()
        try await onWriter { writer in
            try writer.database.withStatement("""
                INSERT INTO content_blocks (profile_id, slot, block, model_version, generated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (profile_id, slot) DO UPDATE SET block = excluded.block, model_version = excluded.model_version,
                  generated_at = excluded.generated_at, expires_at = excluded.expires_at
                """) { s in
                try s.bind(profileID, at: 1)
                try s.bind(slot, at: 2)
                try s.bind(String(decoding: block.serialized(), as: UTF8.self), at: 3)
                if let modelVersion { try s.bind(modelVersion, at: 4) } else { try s.bindNull(at: 4) }
                try s.bind(now, at: 5)
                try s.bind(expiresAt, at: 6)
                try s.run()
            }
        }
    }

    /// Deletes the content blocks that expired before `now` (ms); returns the count.
    public func pruneContentBlocks(before now: Int64) async throws -> Int {
        try await deleteExpired("DELETE FROM content_blocks WHERE expires_at <= ?", before: now)
    }

    /// Caches a model answer by prompt hash until `expiresAt` (ms), as the answer for `profileID`'s prompt (erasing
    /// them deletes it).
    public func cacheAnswer(promptHash: String, profileID: String, answer: JSONValue, expiresAt: Int64) async throws {
        let now = Self.nowMillis()
        try await onWriter { writer in
            try writer.database.withStatement("""
                INSERT INTO llm_cache (prompt_hash, profile_id, answer, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (prompt_hash) DO UPDATE SET profile_id = excluded.profile_id, answer = excluded.answer,
                  created_at = excluded.created_at, expires_at = excluded.expires_at
                """) { s in
                try s.bind(promptHash, at: 1)
                try s.bind(profileID, at: 2)
                try s.bind(String(decoding: answer.serialized(), as: UTF8.self), at: 3)
                try s.bind(now, at: 4)
                try s.bind(expiresAt, at: 5)
                try s.run()
            }
        }
    }

    /// Deletes the cached model answers that expired before `now` (ms); returns the count.
    public func pruneCachedAnswers(before now: Int64) async throws -> Int {
        try await deleteExpired("DELETE FROM llm_cache WHERE expires_at <= ?", before: now)
    }

    private func deleteExpired(_ sql: String, before now: Int64) async throws -> Int {
        try await onWriter { writer in
            try writer.database.withStatement(sql) { s in
                try s.bind(now, at: 1)
                try s.run()
            }
            return writer.database.changes
        }
    }
}
