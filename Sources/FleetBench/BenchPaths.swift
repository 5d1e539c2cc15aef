import Foundation

/// Where the benchmarks find the shared directory (peers, workload generator, conformance suite) and the
/// repository (templates, scripts).
enum BenchPaths {
    /// `option`, else FLEET_SHARED, else the first `shared/` (with `peers/`) beside an ancestor of the current
    /// directory or of the executable.
    static func shared(_ option: String?) throws -> String {
        if let dir = option ?? ProcessInfo.processInfo.environment["FLEET_SHARED"].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard FileManager.default.fileExists(atPath: dir + "/peers/liquid/newsletter.liquid") else {
                throw BenchError.usage("\(dir) has no peers/liquid/newsletter.liquid (is it the shared directory?)")
            }
            return dir
        }
        for dir in ancestors() where FileManager.default.fileExists(atPath: dir + "/shared/peers/liquid/newsletter.liquid") {
            return dir + "/shared"
        }
        throw BenchError.usage("cannot find the shared directory (<repo>/../shared); pass --shared DIR or set FLEET_SHARED")
    }

    /// The first ancestor (of the current directory, then of the executable) that holds `marker`, a path
    /// relative to the repository root.
    static func repository(holding marker: String) -> String? {
        ancestors().first { FileManager.default.fileExists(atPath: $0 + "/" + marker) }
    }

    /// The current directory and its ancestors, then the executable's directory and its ancestors.
    static func ancestors() -> [String] {
        var result: [String] = []
        let starts = [FileManager.default.currentDirectoryPath, URL(fileURLWithPath: executable).deletingLastPathComponent().path]
        for start in starts {
            var url = URL(fileURLWithPath: start).standardizedFileURL
            while true {
                if !result.contains(url.path) { result.append(url.path) }
                let parent = url.deletingLastPathComponent().standardizedFileURL
                if parent.path == url.path { break }
                url = parent
            }
        }
        return result
    }

    /// This program's executable (benchmarks start workers from it).
    static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Runs `peers/make_data.py OUT_DIR N_JOBS` (the deterministic shared workload) with the system Python.
    static func makeData(shared: String, into dir: String, jobs: Int) throws {
        let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
        guard let outcome = BenchSubprocess.run(python, [shared + "/peers/make_data.py", dir, String(jobs)]), outcome.status == 0 else {
            throw BenchError("cannot run \(shared)/peers/make_data.py with \(python)", code: .unavailable)
        }
    }
}
