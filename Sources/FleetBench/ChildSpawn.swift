import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starts a benchmark's child program with posix_spawn, with no signal blocked and SIGTERM, SIGINT and SIGPIPE
/// at their default actions.
///
/// A child of this process would otherwise inherit the signal mask of the spawning thread, on which SIGTERM is
/// blocked (the CLI handles it itself). Python keeps that mask, and hands it to its own children: the Celery
/// peer's `run.py` then cannot stop its worker with SIGTERM, and waits on it forever. Foundation's `Process`
/// has no way to reset the mask.
enum ChildSpawn {
    /// What the child's stdout and stderr are (stdin is `/dev/null`): `/dev/null`, or one end of a pipe or
    /// socket pair (opened close-on-exec) for both.
    enum Output {
        case discard
        case pipe(writeEnd: Int32)
    }

    /// Spawns `arguments[0]` (a path) with `arguments`, `environment` (nil: this process's), stdin from
    /// `/dev/null` and stdout plus stderr as `output` says. Returns the pid, or nil when it cannot be started.
    static func spawn(_ arguments: [String], environment: [String: String]? = nil, output: Output) -> pid_t? {
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var envp: [UnsafeMutablePointer<CChar>?] = (environment ?? ProcessInfo.processInfo.environment)
            .map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in envp { free(p) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        switch output {
        case .discard:
            for fd in [STDOUT_FILENO, STDERR_FILENO] { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0) }
        case .pipe(let writeEnd):
            posix_spawn_file_actions_adddup2(&actions, writeEnd, STDOUT_FILENO)
            posix_spawn_file_actions_adddup2(&actions, writeEnd, STDERR_FILENO)  // the original end is close-on-exec
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var pid: pid_t = 0
        guard posix_spawn(&pid, arguments[0], &actions, &attributes, &argv, &envp) == 0 else { return nil }
        return pid
    }

    /// Waits until `pid` has exited, without reaping it: its /proc entry stays readable (``ProcessTreeCPU``) until
    /// ``wait(_:)``. False when it cannot be waited for.
    static func waitUntilExited(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 {
            if errno != EINTR { return false }
        }
        return true
    }

    /// Waits for `pid` to exit; its exit status (128 + the signal when it was killed by one), or -1 when it
    /// cannot be waited for.
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        if status & 0x7F == 0 { return (status >> 8) & 0xFF }
        return 128 + (status & 0x7F)
    }
}
