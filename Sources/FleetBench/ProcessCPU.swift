import Foundation

/// CPU time of processes of this machine from /proc (Linux), for the benchmarks' CPU budget: the worker's, this
/// process's (the result consumer and the raw pipe), and the broker's when it listens on this machine.
enum ProcessCPU {
    /// User + system CPU seconds of process `pid` so far (/proc/PID/stat fields 14 and 15), or nil.
    static func seconds(pid: pid_t) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// User + system CPU seconds (getrusage: finer than /proc's clock ticks) of this process so far, or with
    /// `children` of all its terminated, waited-for children.
    static func usage(children: Bool = false) -> Double {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage((children ? RUSAGE_CHILDREN : RUSAGE_SELF).rawValue, &usage)
        #else
        getrusage(children ? RUSAGE_CHILDREN : RUSAGE_SELF, &usage)
        #endif
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// The process that listens on TCP `port` of this machine (IPv4 or IPv6), or nil: the listening socket's
    /// inode from /proc/net/tcp{,6}, then the process holding a descriptor on it. Nil as well when that process
    /// is another user's and its descriptors cannot be read.
    static func listener(port: Int) -> pid_t? {
        let hexPort = String(format: ":%04X", port)
        var inodes = Set<String>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: " ", omittingEmptySubsequences: true)
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                guard f.count > 9, f[1].hasSuffix(hexPort), f[3] == "0A" else { continue }
                inodes.insert("socket:[\(f[9])]")
            }
        }
        guard !inodes.isEmpty, let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for entry in entries {
            guard let pid = pid_t(entry), let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
            for fd in fds {
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                   inodes.contains(target) {
                    return pid
                }
            }
        }
        return nil
    }

    /// Whether `host` names this machine's loopback.
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }
}
