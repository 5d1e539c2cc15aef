import FleetBackoff
import Foundation

/// CPU time of processes of this machine from /proc (Linux), for the benchmarks' CPU budget: the worker's, this
/// process's (the result consumer and the raw pipe), the broker's when it listens on this machine, and the Celery
/// peer's worker processes (``ProcessTreeCPU``).
enum ProcessCPU {
    /// What /proc/PID/stat says of a process's CPU time.
    struct Stat {
        /// Its parent (field 4).
        var parent: pid_t
        /// User + system CPU seconds of the process itself so far (fields 14 and 15).
        var seconds: Double
        /// User + system CPU seconds of its terminated children it has waited for, theirs included (fields 16 and 17).
        var reapedChildrenSeconds: Double
    }

    /// User + system CPU seconds of process `pid` so far (/proc/PID/stat fields 14 and 15), or nil.
    static func seconds(pid: pid_t) -> Double? { stat(pid: pid)?.seconds }

    /// Process `pid`'s /proc/PID/stat, or nil. A process that exited stays readable until its parent reaps it.
    static func stat(pid: pid_t) -> Stat? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields from the third (the state) on: the command name before ")" may hold spaces.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 14, let parent = pid_t(fields[1]), let user = Double(fields[11]), let system = Double(fields[12]),
              let childrenUser = Double(fields[13]), let childrenSystem = Double(fields[14]) else { return nil }
        let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
        return Stat(parent: parent, seconds: (user + system) / tick, reapedChildrenSeconds: (childrenUser + childrenSystem) / tick)
    }

    /// The processes below `root` (its children, theirs, and so on) by their parents in /proc/PID/stat, with their
    /// stat. Reads the stat of every process of this machine.
    static func descendants(of root: pid_t) -> [pid_t: Stat] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [:] }
        var all: [pid_t: Stat] = [:]
        for entry in entries {
            guard let pid = pid_t(entry), let stat = stat(pid: pid) else { continue }
            all[pid] = stat
        }
        var below: [pid_t: Stat] = [:]
        var parents: Set<pid_t> = [root]
        while true {
            let next = all.filter { parents.contains($0.value.parent) && below[$0.key] == nil }
            if next.isEmpty { return below }
            below.merge(next) { a, _ in a }
            parents = Set(next.keys)
        }
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
