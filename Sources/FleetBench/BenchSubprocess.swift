import Foundation

/// Runs a peer program (`ruby`, `python3`) to completion for a benchmark and captures its output.
enum BenchSubprocess {
    /// What a finished run printed (stdout and stderr, merged) and its exit status.
    struct Outcome {
        var status: Int32
        var output: String
        /// User plus system CPU seconds the program used (start-up included), the processes it started included.
        var cpuSeconds: Double
        /// User plus system CPU seconds of the processes the program started (``ProcessTreeCPU``), when asked for
        /// and it started any.
        var descendantsCPUSeconds: Double?

        /// The last line of the output (peers print their figure last), trimmed.
        var lastLine: String {
            output.split(separator: "\n").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        }

        /// The `N renders/s` figure in the output, if any.
        var rendersPerSecond: Double? {
            guard let range = output.range(of: #"[0-9][0-9.]* renders/s"#, options: .regularExpression) else { return nil }
            return Double(output[range].split(separator: " ")[0])
        }
    }

    /// Runs `program` (a path, or a name looked up on PATH) with `arguments`, and this process's environment plus
    /// `environment`; nil when it cannot be started. With `descendantsCPU`, also reads the CPU time of the
    /// processes it starts.
    static func run(_ program: String, _ arguments: [String], environment: [String: String] = [:],
                    descendantsCPU: Bool = false) -> Outcome? {
        guard let executable = resolve(program) else { return nil }
        var fds: [Int32] = [-1, -1]
        // A socket pair made close-on-exec at once, so neither end leaks into another child (pipe2 is not
        // visible from Swift here); the program gets one end as its stdout and stderr.
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else { return nil }
        let reader = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true)
        // Peers run one at a time, so the growth of the reaped children's CPU time is this program's.
        let cpuBefore = childrenCPUSeconds()
        let pid = ChildSpawn.spawn([executable] + arguments,
                                   environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
                                   output: .pipe(writeEnd: fds[1]))
        close(fds[1])
        guard let pid else { return nil }
        let tree = descendantsCPU ? ProcessTreeCPU(root: pid) : nil
        let data = reader.readDataToEndOfFile()
        var descendants: Double?
        if let tree {
            // Exited but not reaped yet: its reaped children's CPU is still readable (if this fails, the
            // samples taken while it ran are the figure).
            _ = ChildSpawn.waitUntilExited(pid)
            descendants = tree.finish()
        }
        let status = ChildSpawn.wait(pid)
        return Outcome(status: status, output: String(decoding: data, as: UTF8.self), cpuSeconds: childrenCPUSeconds() - cpuBefore,
                       descendantsCPUSeconds: descendants)
    }

    /// User plus system CPU seconds of all terminated, waited-for children of this process.
    static func childrenCPUSeconds() -> Double { ProcessCPU.usage(children: true) }

    /// `program` itself when it holds a slash, else the first executable of that name on PATH.
    static func resolve(_ program: String) -> String? {
        if program.contains("/") { return FileManager.default.isExecutableFile(atPath: program) ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = dir + "/" + program
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
