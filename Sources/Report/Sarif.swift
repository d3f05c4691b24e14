import Core
import Foundation
import Spec

/// `conform`'s findings as SARIF 2.1.0 (`report.sarif`), so that GitHub code scanning and other SARIF viewers list
/// them by requirement: the SARIF rule id is the RFC 9293 requirement ID a divergence breaks (or, where no
/// Appendix B ID names the clause, `RFC9293-§3.10.7.4`-style ids for the clause), the level follows the verdict
/// class (violates → error, deviates → warning, choice and unspecified → note), and each result points at its
/// minimized case file (and the spec rule held responsible). One result per divergence signature: the tests it
/// failed are listed in its properties.
public enum Sarif {
    public struct Log: Encodable {
        var version = "2.1.0"
        // The OASIS schema's own id; viewers use it to recognize the format.
        var schema = "https://json.schemastore.org/sarif-2.1.0.json"
        var runs: [Run]
        enum CodingKeys: String, CodingKey {
            case version, runs
            case schema = "$schema"
        }
    }

    struct Run: Encodable {
        var tool: Tool
        var results: [Result]
        var originalUriBaseIds: [String: ArtifactLocation]?
        var properties: [String: String]
    }

    struct Tool: Encodable { var driver: Driver }

    struct Driver: Encodable {
        var name = "tcpspec"
        var informationUri = "https://www.rfc-editor.org/rfc/rfc9293"
        var rules: [ReportingDescriptor]
    }

    struct Text: Encodable { var text: String }

    struct ReportingDescriptor: Encodable {
        var id: String
        var name: String?
        var shortDescription: Text
        var fullDescription: Text?
        var helpUri: String?
        var defaultConfiguration: Configuration
        var properties: [String: String]
    }

    struct Configuration: Encodable { var level: String }

    struct Result: Encodable {
        var ruleId: String
        var ruleIndex: Int
        var level: String
        var message: Text
        var locations: [Location]
        var partialFingerprints: [String: String]
        var properties: ResultProperties
    }

    struct ResultProperties: Encodable {
        var verdictClass: String
        var requirements: [String]
        var state: String
        var input: String
        var expected: String
        var observed: String
        var rules: [String]
        var tests: [String]
        var pcap: String?
    }

    struct Location: Encodable {
        var physicalLocation: PhysicalLocation
    }

    struct PhysicalLocation: Encodable {
        var artifactLocation: ArtifactLocation
        var region: Region?
    }

    struct ArtifactLocation: Encodable {
        var uri: String
        var uriBaseId: String?
    }

    struct Region: Encodable { var startLine: Int }

    static func level(_ c: VerdictClass) -> String {
        switch c {
        case .violates: "error"
        case .deviates: "warning"
        case .choice, .unspecified: "note"
        }
    }

    /// `directory`: where the log is written; case paths are made relative to it (uriBaseId `REPORTDIR`).
    public static func log(_ r: ConformReport, spec: CompiledSpec?, catalog: RequirementCatalog?, directory: String) -> Log {
        var descriptors: [ReportingDescriptor] = []
        var indexOf: [String: Int] = [:]
        func ruleIndex(_ id: String, cls: VerdictClass, clause: String?) -> Int {
            if let k = indexOf[id] { return k }
            let entry = RequirementID(id).flatMap { catalog?[$0] }
            var d = ReportingDescriptor(id: id, name: nil, shortDescription: Text(text: entry.map { "\($0.level.rawValue): \($0.feature)" } ?? "\(clause ?? id): event processing the RFC states without an alternative"),
                                        fullDescription: entry.map { Text(text: $0.text) }, helpUri: nil,
                                        defaultConfiguration: Configuration(level: level(cls)), properties: [:])
            if let e = entry {
                d.helpUri = e.sections.first.map { "https://www.rfc-editor.org/rfc/rfc9293#section-\($0)" }
                d.properties["level"] = e.level.rawValue
                d.properties["topic"] = e.topic
            }
            indexOf[id] = descriptors.count
            descriptors.append(d)
            return descriptors.count - 1
        }
        var results: [Result] = []
        var seen: [String: Int] = [:]
        let base = URL(fileURLWithPath: directory).standardizedFileURL.path
        func relative(_ p: String) -> String {
            let full = URL(fileURLWithPath: p).standardizedFileURL.path
            return full.hasPrefix(base + "/") ? String(full.dropFirst(base.count + 1)) : full
        }
        for t in r.results where t.verdict == .diverges {
            let key = t.signature ?? t.id
            if let k = seen[key] {
                results[k].properties.tests.append(t.id)
                continue
            }
            let cls = t.verdictClass ?? .violates
            let reqs = t.breaks ?? []
            // The clause a divergence with no Appendix B ID breaks: the first RFC 9293 section its rules cite (else
            // the first RFC clause), as a rule id of its own: `RFC9293/3.10.7.4`.
            let cited = t.clauses ?? []
            let clause = cited.first(where: { $0.hasPrefix("RFC 9293") }) ?? cited.first
            let id = reqs.first ?? (clause.map { $0.replacingOccurrences(of: " §", with: "/").replacingOccurrences(of: " p.", with: "/p").replacingOccurrences(of: " ", with: "") } ?? "RFC9293/3.10")
            let idx = ruleIndex(id, cls: cls, clause: clause)
            var locations: [Location] = []
            if let c = t.casePath {
                locations.append(Location(physicalLocation: PhysicalLocation(artifactLocation: ArtifactLocation(uri: relative(c), uriBaseId: "REPORTDIR"), region: nil)))
            }
            if let spec, let rule = spec.rules.first(where: { $0.id == (t.responsible?.first ?? t.rule) }) {
                locations.append(Location(physicalLocation: PhysicalLocation(artifactLocation: ArtifactLocation(uri: rule.loc.file, uriBaseId: nil),
                                                                             region: Region(startLine: max(1, rule.loc.line)))))
            }
            let what = reqs.isEmpty ? (clause ?? "RFC 9293 §3.10") : reqs.joined(separator: ", ")
            let msg = "\(cls.rawValue) \(what): in \(t.state), on \(t.input), expected \(t.expected ?? "?"), observed \(t.observed ?? "?") (rule \((t.responsible ?? [t.rule]).joined(separator: ", ")))"
            results.append(Result(ruleId: id, ruleIndex: idx, level: level(cls), message: Text(text: msg), locations: locations,
                                  partialFingerprints: ["tcpspecSignature/v1": key],
                                  properties: ResultProperties(verdictClass: cls.rawValue, requirements: reqs, state: t.state, input: t.input,
                                                               expected: t.expected ?? "", observed: t.observed ?? "", rules: t.responsible ?? [t.rule],
                                                               tests: [t.id], pcap: t.pcapPath.map(relative))))
            seen[key] = results.count - 1
        }
        let dirURI = URL(fileURLWithPath: directory, isDirectory: true).standardizedFileURL.absoluteString
        return Log(runs: [Run(tool: Tool(driver: Driver(rules: descriptors)), results: results,
                              originalUriBaseIds: ["REPORTDIR": ArtifactLocation(uri: dirURI, uriBaseId: nil)],
                              properties: ["target": r.target, "profile": r.profile, "tests": "\(r.results.count)",
                                           "classes": r.classCounts])])
    }
}
