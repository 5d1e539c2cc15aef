import FleetCore
import Foundation

/// Reads records for `fleet profiles import` and `fleet catalog import`: NDJSON (one flat JSON object a
/// line) or CSV (a header line, then one record a line; RFC 4180 quoting within a line). The format is
/// chosen by the file's extension (`.csv`), else by content (a first non-blank byte of `{` means NDJSON).
///
/// CSV values become JSON: integers and decimals as numbers, `true`/`false` as booleans, empty cells are
/// left out, anything else a string.
struct RecordReader {
    enum Format { case ndjson, csv }

    /// A record, or why its line is bad.
    enum Record {
        case object(JSONObject, line: Int)
        case bad(String, line: Int)
    }

    let url: URL
    let format: Format

    init(path: String) throws {
        url = URL(fileURLWithPath: path)
        guard FileManager.default.isReadableFile(atPath: path) else { throw CLIError("cannot read \(path)", exitCode: CLIError.notFound) }
        if url.pathExtension.lowercased() == "csv" {
            format = .csv
        } else {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            let head = try handle.read(upToCount: 4096) ?? Data()
            let first = head.first { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
            format = first == UInt8(ascii: "{") || first == nil ? .ndjson : .csv
        }
    }

    /// The number of lines (for the progress bar).
    func lineCount() -> Int? {
        guard let data = try? Data(contentsOf: url, options: .alwaysMapped) else { return nil }
        return data.reduce(0) { $1 == 0x0A ? $0 + 1 : $0 }
    }

    /// Reads every record, calling `body` for each (on the caller's task; lines are read on their own thread).
    func forEach(_ body: (Record) async throws -> Void) async throws {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var lineNumber = 0
        var header: [String]?
        for try await raw in LineReader(handle: handle) {
            lineNumber += 1
            var line = raw
            if line.last == 0x0D { line.removeLast() }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            switch format {
            case .ndjson:
                do {
                    let value = try JSONValue(parsing: line)
                    guard case .object(let object) = value else {
                        try await body(.bad("not a JSON object (\(value.typeName))", line: lineNumber))
                        continue
                    }
                    try await body(.object(object, line: lineNumber))
                } catch let error as JSONParseError {
                    try await body(.bad("malformed JSON: \(error)", line: lineNumber))
                }
            case .csv:
                guard let cells = Self.splitCSV(String(decoding: line, as: UTF8.self)) else {
                    try await body(.bad("malformed CSV (unbalanced quotes)", line: lineNumber))
                    continue
                }
                guard let columns = header else {
                    header = cells.map { $0.trimmingCharacters(in: .whitespaces) }
                    continue
                }
                guard cells.count == columns.count else {
                    try await body(.bad("\(cells.count) cells, the header has \(columns.count)", line: lineNumber))
                    continue
                }
                var object = JSONObject()
                for (name, cell) in zip(columns, cells) where !cell.isEmpty && !name.isEmpty {
                    object[name] = Self.value(cell)
                }
                try await body(.object(object, line: lineNumber))
            }
        }
    }

    static func value(_ cell: String) -> JSONValue {
        if let i = Int64(cell) { return .int(i) }
        if cell.contains("."), let d = Double(cell), d.isFinite { return .double(d) }
        if cell == "true" { return .bool(true) }
        if cell == "false" { return .bool(false) }
        return .string(cell)
    }

    /// Splits one CSV line; nil if a quote is not closed.
    static func splitCSV(_ line: String) -> [String]? {
        var cells: [String] = []
        var cell = ""
        var quoted = false
        var chars = Array(line)
        chars.append(",")
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if quoted {
                if c == "\"" {
                    if i + 1 < chars.count && chars[i + 1] == "\"" {
                        cell.append("\"")
                        i += 1
                    } else {
                        quoted = false
                    }
                } else {
                    cell.append(c)
                }
            } else if c == "\"" && cell.isEmpty {
                quoted = true
            } else if c == "," {
                cells.append(cell)
                cell = ""
            } else {
                cell.append(c)
            }
            i += 1
        }
        return quoted ? nil : cells
    }
}
