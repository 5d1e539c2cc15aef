#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Templates loaded from a directory, compiled once and cached, reloaded when their file changes.
///
/// `name` resolves to `DIR/name.liquid`, else `DIR/_name.liquid` (Shopify's partial naming; for
/// `email/header` that is `DIR/email/_header.liquid`); subdirectories are allowed (`email/welcome/html`).
/// The library is the file system of `include` / `render` when rendering through it. A cached template's
/// file is checked (modification time and size) at most every ``checkInterval``.
///
/// Thread-safe (a mutex around the cache); templates are parsed outside the lock.
public final class LiquidTemplateLibrary: LiquidFileSystem {
    struct Entry {
        var template: LiquidTemplate
        var path: String
        var stamp: FileStamp
        var checked: ContinuousClock.Instant
    }

    struct FileStamp: Equatable {
        var seconds: Int
        var nanoseconds: Int
        var size: Int
    }

    /// The directory templates are read from.
    public let directory: String
    /// How templates are parsed.
    public let options: LiquidParseOptions
    /// How often, at most, a cached template's file is checked for changes.
    public let checkInterval: Duration
    private let cache = Mutex<[String: Entry]>([:])

    /// A library over `directory`.
    public init(directory: String, options: LiquidParseOptions = LiquidParseOptions(), checkInterval: Duration = .milliseconds(1000)) {
        self.directory = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        self.options = options
        self.checkInterval = checkInterval
    }

    /// The paths tried for `name`, relative to the directory: `name.liquid`, then `_name.liquid`.
    static func candidatePaths(for name: String) -> [String] {
        if name.hasSuffix(".liquid") { return [name] }
        var parts = name.split(separator: "/", omittingEmptySubsequences: false)
        let last = parts.removeLast()
        let dir = parts.isEmpty ? "" : parts.joined(separator: "/") + "/"
        return [name + ".liquid", dir + "_" + last + ".liquid"]
    }

    static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.hasSuffix("/") else { return false }
        for part in name.split(separator: "/", omittingEmptySubsequences: false) where part.isEmpty || part == "." || part == ".." {
            return false
        }
        return name.utf8.allSatisfy {
            TemplateLexer.isWord($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ".")
        }
    }

    /// The compiled template `name` (a message or a partial).
    public func template(named name: String) throws(LiquidError) -> LiquidTemplate {
        guard Self.isValidName(name) else { throw LiquidError(.templateNotFound, "Illegal template name '\(name)'") }
        let now = ContinuousClock.now
        let cached = cache.withLock { $0[name] }
        if let cached {
            if now - cached.checked < checkInterval { return cached.template }
            if let stamp = Self.stamp(cached.path), stamp == cached.stamp {
                cache.withLock { $0[name]?.checked = now }
                return cached.template
            }
        }
        for candidate in Self.candidatePaths(for: name) {
            let path = directory + "/" + candidate
            guard let (source, stamp) = try Self.read(path) else { continue }
            let template = try LiquidTemplate(source, name: name, options: options)
            cache.withLock { $0[name] = Entry(template: template, path: path, stamp: stamp, checked: now) }
            return template
        }
        cache.withLock { _ = $0.removeValue(forKey: name) }
        throw LiquidError(.templateNotFound, "Could not find template '\(name)'")
    }

    /// ``LiquidFileSystem``: partials are parsed with the library's options.
    public func template(named name: String, options: LiquidParseOptions) throws(LiquidError) -> LiquidTemplate {
        try template(named: name)
    }

    /// Renders template `name` with this library as the file system of `include` / `render`.
    public func render(
        _ name: String, _ environment: [String: LiquidValue] = [:], options: LiquidRenderOptions = LiquidRenderOptions()
    ) throws(LiquidError) -> String {
        var options = options
        options.fileSystem = self
        return try template(named: name).render(environment, options: options)
    }

    /// Drops every cached template.
    public func removeAll() { cache.withLock { $0.removeAll() } }

    static func stamp(_ path: String) -> FileStamp? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        #if canImport(Darwin)
        return FileStamp(seconds: Int(st.st_mtimespec.tv_sec), nanoseconds: Int(st.st_mtimespec.tv_nsec), size: Int(st.st_size))
        #else
        return FileStamp(seconds: Int(st.st_mtim.tv_sec), nanoseconds: Int(st.st_mtim.tv_nsec), size: Int(st.st_size))
        #endif
    }

    /// The file's text and stamp, or nil when there is no such regular file.
    static func read(_ path: String) throws(LiquidError) -> (String, FileStamp)? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw LiquidError(.fileSystem, "cannot open \(path) (errno \(errno))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LiquidError(.fileSystem, "cannot read \(path) (errno \(errno))")
            }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        #if canImport(Darwin)
        let stamp = FileStamp(seconds: Int(st.st_mtimespec.tv_sec), nanoseconds: Int(st.st_mtimespec.tv_nsec), size: Int(st.st_size))
        #else
        let stamp = FileStamp(seconds: Int(st.st_mtim.tv_sec), nanoseconds: Int(st.st_mtim.tv_nsec), size: Int(st.st_size))
        #endif
        return (String(decoding: bytes, as: UTF8.self), stamp)
    }
}
