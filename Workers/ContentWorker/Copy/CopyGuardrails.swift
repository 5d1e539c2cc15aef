import FleetCore
import Foundation

/// The checks a `copy` prompt and answer pass: no personal data of anyone but the person in the prompt, and an
/// answer within the template's length, free of its banned words and of contact data, and (`output: json`) valid
/// against its schema. Problems are named by rule and field, never by the text.
public enum CopyGuardrails {
    /// Whether `text` holds an email address or a phone number that is not one of `own` (the person's own).
    public static func foreignContactData(in text: String, own: [String]) -> String? {
        let mine = Set(own.map { $0.lowercased() })
        for word in text.split(whereSeparator: { $0.isWhitespace || "<>()[]{}\"',;:".contains($0) }) {
            let w = word.trimmingCharacters(in: CharacterSet(charactersIn: ".!?"))
            if let at = w.firstIndex(of: "@"), at != w.startIndex, w[w.index(after: at)...].contains("."), !mine.contains(w.lowercased()) {
                return "an email address"
            }
        }
        // A phone number: 9 or more digits, optionally split by spaces, dashes, dots, slashes or parentheses.
        let ownDigits = own.map { $0.filter(\.isNumber) }.filter { $0.count >= 6 }
        var digits = "", raw = ""
        func isForeignPhone() -> Bool {
            defer { digits = ""; raw = "" }
            // An ISO date (2026-12-06, also before a time) is not a phone number.
            if raw.contains(/\d{4}-\d{2}-\d{2}/) { return false }
            return digits.count >= 9 && !ownDigits.contains { $0.hasSuffix(digits) || digits.hasSuffix($0) }
        }
        for c in text {
            if c.isASCII, c.isNumber { digits.append(c); raw.append(c) }
            else if c == " " || c == "-" || c == "." || c == "/" || c == "(" || c == ")" || (c == "+" && digits.isEmpty) { raw.append(c) }
            else if isForeignPhone() { return "a phone number" }
        }
        if isForeignPhone() { return "a phone number" }
        return nil
    }

    /// The checked answer: the text (`output: text`) or the JSON object (`json`), or the problems found.
    public static func check(_ content: String, metadata: CopyTemplateMetadata) -> Result<JSONValue, Problems> {
        switch metadata.output {
        case .text:
            let text = content.trimmingCharacters(in: .whitespacesAndNewlines)
            var problems = textProblems(text, field: "text", maxLength: metadata.maxLength, banned: metadata.bannedWords)
            if text.isEmpty { problems.append("'text' is empty") }
            return problems.isEmpty ? .success(.string(text)) : .failure(Problems(list: problems))
        case .json:
            guard let schema = metadata.schema, let value = try? JSONValue(parsing: Array(unfenced(content).utf8)) else {
                return .failure(Problems(list: ["the answer is not JSON"]))
            }
            var problems = schema.problems(value)
            for (name, property) in schema.properties where property.type == .string {
                guard let s = value.objectValue?[name]?.stringValue else { continue }
                // The schema's maxLength, when tighter, was checked by the schema already.
                let limit = (property.maxLength ?? .max) <= metadata.maxLength ? Int.max : metadata.maxLength
                problems += textProblems(s, field: name, maxLength: limit, banned: metadata.bannedWords)
            }
            return problems.isEmpty ? .success(value) : .failure(Problems(list: problems))
        }
    }

    /// Why an answer was refused.
    public struct Problems: Error, Sendable, Hashable {
        public var list: [String]
    }

    static func textProblems(_ s: String, field: String, maxLength: Int, banned: [String]) -> [String] {
        var out: [String] = []
        if s.count > maxLength { out.append("'\(field)' is \(s.count) characters, at most \(maxLength)") }
        if !banned.isEmpty {
            let words = Set(s.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "'" || $0 == "-") }).map(String.init))
            let lower = s.lowercased()
            for b in banned where b.contains(" ") ? lower.contains(b) : words.contains(b) {
                out.append("'\(field)' uses a banned word")
                break
            }
        }
        if foreignContactData(in: s, own: []) != nil { out.append("'\(field)' holds contact data") }
        return out
    }

    /// The answer without a Markdown code fence around it (models often add one).
    static func unfenced(_ content: String) -> String {
        var t = content.trimmingCharacters(in: .whitespacesAndNewlines)
        guard t.hasPrefix("```") else { return t }
        t = String(t.drop(while: { $0 != "\n" }))
        if t.hasSuffix("```") { t = String(t.dropLast(3)) }
        return t.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
