import AMQPClient
import FleetBench

extension CLIError {
    /// A benchmark's error as the CLI's one line, with the exit status its code names.
    init(_ error: BenchError) {
        self.init(error.message, exitCode: error.code.exitStatus)
    }

    /// Runs `body` (a benchmark): a ``BenchError`` it throws becomes the CLI's error; others pass through as they are.
    static func fromBench<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as BenchError {
            throw CLIError(error)
        }
    }

    /// Runs `body` (a benchmark): a ``BenchError`` it throws becomes the CLI's error; others pass through as they are.
    static func fromBench<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as BenchError {
            throw CLIError(error)
        }
    }

    /// Runs a benchmark on `connection` (see ``fromBench(_:)``), then closes the connection, whatever happened.
    static func fromBench(on connection: AMQPConnection, _ body: (AMQPConnection) async throws -> Void) async throws {
        do {
            try await fromBench { try await body(connection) }
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
    }
}
