import Core
import Foundation

/// RFC 9293 Appendix B as data (`Spec/requirements.toml`): every requirement ID with its level and the text that
/// states it, and, for one no rule cites, why tcpspec does not judge it. `spec requirements` joins it with the
/// rules that cite each ID and the conformance tests that exercise them.
public struct RequirementCatalog: Sendable {
    public static let fileName = "requirements.toml"

    /// Why a requirement is not judged on the wire.
    public enum Unjudged: String, Sendable, CaseIterable, Codable {
        /// The user/application interface: not visible on the wire.
        case interface
        /// A requirement on applications, not on the TCP.
        case application
        /// Implementation internals with no wire signature.
        case `internal`
        /// IP, ICMP, path MTU.
        case ipLayer = "ip-layer"
        /// Not decidable from black-box traffic (ISN secrecy, a PRF).
        case security
        /// Congestion control, Nagle, SWS avoidance, delayed-ACK timing: the model does not judge them.
        case congestion
        /// Visible on the wire, not modelled yet (the reason names the issue that will).
        case unmodelled
    }

    public struct Entry: Sendable {
        public var id: RequirementID
        public var level: RequirementLevel
        public var topic: String
        public var feature: String
        public var sections: [String]
        public var text: String
        public var unjudged: Unjudged?
        public var reason: String?
        public var note: String?
        /// Where the entry is in the catalog file.
        public var location: SourceLocation
    }

    public var entries: [Entry]
    public var path: String

    public subscript(id: RequirementID) -> Entry? { entries.first { $0.id == id } }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Loads the catalog of a spec directory.
    public static func load(directory: String) throws(Failure) -> RequirementCatalog {
        let path = directory.hasSuffix("/") ? directory + fileName : directory + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw Failure(description: "\(path): error: cannot read the requirement catalog (RFC 9293 Appendix B)")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(Failure) -> RequirementCatalog {
        let tables: [TOMLReader.Table]
        do { tables = try TOMLReader.read(text, file: file) } catch { throw Failure(description: error.description) }
        func fail(_ at: TOMLReader.Position, _ m: String) -> Failure { Failure(description: "\(file):\(at.line):\(at.column): error: \(m)") }
        var entries: [Entry] = []
        for t in tables where !(t.name.isEmpty && t.entries.isEmpty) {
            guard t.name == "requirement", t.isArrayElement else { throw fail(t.at, "expected [[requirement]] tables only, found [\(t.name)]") }
            var fields: [String: TOMLReader.Entry] = [:]
            for e in t.entries {
                guard fields[e.key] == nil else { throw fail(e.keyAt, "duplicate key '\(e.key)'") }
                fields[e.key] = e
            }
            let known: Set = ["id", "level", "topic", "feature", "sections", "text", "unjudged", "reason", "note"]
            for e in t.entries where !known.contains(e.key) {
                throw fail(e.keyAt, "unknown key '\(e.key)'; a requirement has \(known.sorted().joined(separator: ", "))")
            }
            func string(_ key: String, required: Bool = true) throws(Failure) -> String? {
                guard let e = fields[key] else {
                    if required { throw fail(t.at, "requirement has no '\(key)'") }
                    return nil
                }
                guard case .string(let s) = e.value.value else { throw fail(e.value.at, "'\(key)' must be a string, found \(e.value.value.kind)") }
                return s
            }
            let idText = try string("id")!
            guard let id = RequirementID(idText) else { throw fail(fields["id"]!.value.at, "'\(idText)' is not a requirement ID (MUST-n, SHLD-n, MAY-n, REC-n)") }
            let levelText = try string("level")!
            guard let level = RequirementLevel(rawValue: levelText) else {
                throw fail(fields["level"]!.value.at, "unknown level '\(levelText)'; levels are \(RequirementLevel.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var sections: [String] = []
            if let e = fields["sections"] {
                guard case .array(let items) = e.value.value else { throw fail(e.value.at, "'sections' must be an array of strings") }
                for item in items {
                    guard case .string(let s) = item.value else { throw fail(item.at, "'sections' must be an array of strings") }
                    sections.append(s)
                }
            }
            var unjudged: Unjudged?
            if let u = try string("unjudged", required: false) {
                guard let v = Unjudged(rawValue: u) else {
                    throw fail(fields["unjudged"]!.value.at, "unknown category '\(u)'; categories are \(Unjudged.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                unjudged = v
            }
            let reason = try string("reason", required: false)
            if unjudged != nil, reason == nil { throw fail(fields["unjudged"]!.keyAt, "'unjudged' needs a 'reason' saying why") }
            if unjudged == nil, reason != nil { throw fail(fields["reason"]!.keyAt, "'reason' without 'unjudged': name the category") }
            if entries.contains(where: { $0.id == id }) { throw fail(fields["id"]!.value.at, "duplicate requirement \(id)") }
            entries.append(Entry(id: id, level: level, topic: try string("topic")!, feature: try string("feature")!, sections: sections,
                                 text: try string("text")!, unjudged: unjudged, reason: reason, note: try string("note", required: false),
                                 location: SourceLocation(file: file, line: t.at.line, column: t.at.column)))
        }
        return RequirementCatalog(entries: entries, path: file)
    }

    /// Requirement IDs cited in spec files that the catalog does not have: errors at the citation.
    public func unknownCitations(in files: [SpecFileAST]) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let known = Set(entries.map(\.id))
        for f in files {
            var citations: [Citation] = f.steps.flatMap(\.citations) + f.classifiers.flatMap(\.citations) + f.acknowledges.flatMap(\.citations)
                + f.options.flatMap(\.citations)
            for g in f.groups { citations += g.citations + g.rules.flatMap(\.citations) }
            for c in citations {
                for id in c.requirements where !known.contains(id) {
                    // The column of the ID on the cite's line, when the line can be found.
                    var loc = c.loc
                    let line = Array(f.file.lineText(c.loc.line).unicodeScalars), want = Array(id.description.unicodeScalars)
                    if let k = (0...max(0, line.count - want.count)).first(where: { line.count >= want.count && Array(line[$0..<$0 + want.count]) == want }) {
                        loc.column = k + 1
                    }
                    out.append(Diagnostic(.unknownName, "\(id) is not an RFC 9293 Appendix B requirement (\(path) lists \(entries.count))", at: loc))
                }
            }
        }
        return out
    }
}
