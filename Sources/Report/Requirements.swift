import Core
import Foundation
import Spec

/// RFC 9293 Appendix B against a profile: for every requirement, the rules that implement it, the conformance
/// tests that exercise it (and, given a report, how they came out), or why it is not judged on the wire.
/// `tcpspec spec requirements` prints it; a requirement neither implemented nor explained is `unaccounted`
/// and fails the command.
public struct RequirementCoverage: Codable, Sendable {
    public enum Status: String, Codable, Sendable, CaseIterable {
        /// Rules (or `timing` lines) of this profile cite it.
        case implemented
        /// The catalog says why it is not judged (`unjudged`, `reason`).
        case unjudged
        /// Only another profile's rules cite it (e.g. an overlay this profile does not include).
        case otherProfile = "other-profile"
        /// Cited by a rule and also marked unjudged: one of the two is wrong.
        case conflict
        /// Neither cited nor explained.
        case unaccounted
    }

    public struct Row: Codable, Sendable {
        public var id: RequirementID
        public var level: RequirementLevel
        public var topic: String
        public var feature: String
        public var sections: [String]
        public var status: Status
        /// Rules of this profile citing it.
        public var rules: [String]
        /// Rules of other profiles citing it (`profile:rule`).
        public var elsewhere: [String]
        /// Conformance tests whose rule cites it.
        public var tests: Int
        /// Given a report: its tests' verdicts (conforms, diverges, unreachable, error), and the divergences
        /// that name this requirement by class.
        public var verdicts: [String: Int]?
        public var unjudged: RequirementCatalog.Unjudged?
        public var reason: String?
        public var note: String?
    }

    public var profile: String
    public var catalog: String
    public var rows: [Row]

    /// `tests`: each conformance test's rule id. `cited`: every rule of every profile in the spec directory that
    /// cites each requirement, as `profile:rule`.
    /// `choices`: the profile's choices, each with its other alternative's spec: a requirement that alternative's
    /// own rules cite is implemented through the choice (`choice NAME: rule`).
    public static func build(catalog: RequirementCatalog, spec: CompiledSpec, tests: [String], cited: [RequirementID: [String]],
                             report: ConformReport? = nil, choices: [(name: String, other: CompiledSpec)] = []) -> RequirementCoverage {
        var rows: [Row] = []
        for e in catalog.entries.sorted(by: { $0.id < $1.id }) {
            let citing = spec.rules.filter { $0.requirements.contains(e.id) }
            var rules = citing.map(\.id)
            // A `timing` line citing it (MUST-40's delayed-ack bound) implements it as a timer's window.
            rules += spec.timings.filter { $0.value.requirements.contains(e.id) }.map { "timing \($0.key.rawValue)" }.sorted()
            for c in choices {
                for r in c.other.rules where r.profile == c.other.profile && r.requirements.contains(e.id) { rules.append("choice \(c.name): \(r.id)") }
            }
            let ruleSet = Set(rules)
            var own = Set(citing.map { "\($0.profile):\($0.id)" })
            // (The compiled timing line is the lineage's last: any profile of the lineage may have written it.)
            for (name, t) in spec.timings where t.requirements.contains(e.id) { for p in spec.lineage { own.insert("\(p):timing \(name.rawValue)") } }
            for c in choices { for r in c.other.rules where r.requirements.contains(e.id) { own.insert("\(r.profile):\(r.id)") } }
            let elsewhere = (cited[e.id] ?? []).filter { !own.contains($0) }
            let status: Status
            if !rules.isEmpty {
                status = e.unjudged == nil ? .implemented : .conflict
            } else if e.unjudged != nil {
                status = elsewhere.isEmpty ? .unjudged : .conflict
            } else {
                status = elsewhere.isEmpty ? .unaccounted : .otherProfile
            }
            var verdicts: [String: Int]?
            if let report {
                var v: [String: Int] = [:]
                for r in report.results where ruleSet.contains(r.rule) { v[r.verdict.rawValue, default: 0] += 1 }
                for r in report.results where r.verdict == .diverges && (r.breaks ?? []).contains(e.id.description) {
                    v[r.verdictClass?.rawValue ?? VerdictClass.violates.rawValue, default: 0] += 1
                }
                verdicts = v
            }
            rows.append(Row(id: e.id, level: e.level, topic: e.topic, feature: e.feature, sections: e.sections, status: status, rules: rules,
                            elsewhere: elsewhere, tests: tests.filter { ruleSet.contains($0) }.count, verdicts: verdicts,
                            unjudged: e.unjudged, reason: e.reason, note: e.note))
        }
        return RequirementCoverage(profile: spec.profile, catalog: catalog.path, rows: rows)
    }

    /// Every rule of every spec file citing each requirement (its own IDs, else its group's), as `profile:rule`,
    /// and every `timing` line, as `profile:timing NAME`.
    public static func citations(in files: [SpecFileAST]) -> [RequirementID: [String]] {
        var out: [RequirementID: [String]] = [:]
        for f in files {
            let profile = f.profile?.name.value ?? f.file.path
            for t in f.timings {
                for id in t.citations.flatMap(\.requirements) {
                    let name = "\(profile):timing \(t.name.value)"
                    if !(out[id] ?? []).contains(name) { out[id, default: []].append(name) }
                }
            }
            for g in f.groups {
                for r in g.rules {
                    let own = r.citations.flatMap(\.requirements)
                    for id in own.isEmpty ? g.citations.flatMap(\.requirements) : own {
                        let name = "\(profile):\(r.id.value)"
                        if !(out[id] ?? []).contains(name) { out[id, default: []].append(name) }
                    }
                }
            }
        }
        return out
    }

    public func count(_ s: Status) -> Int { rows.filter { $0.status == s }.count }

    /// Requirement counts by level prefix, e.g. `69 MUST, 31 SHLD, 18 MAY, 1 REC`.
    func prefixCounts(_ rows: [Row]) -> String {
        RequirementID.Prefix.allCases.compactMap { p in
            let n = rows.filter { $0.id.prefix == p }.count
            return n == 0 ? nil : "\(n) \(p.rawValue)"
        }.joined(separator: ", ")
    }

    public var text: String {
        var out = "RFC 9293 Appendix B under profile \(profile): \(rows.count) requirements (\(prefixCounts(rows)))\n\n"
        for r in rows {
            var line = "\(r.id.description.padding(toLength: 8, withPad: " ", startingAt: 0)) \(r.level.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) "
            line += "\(r.feature) (\(r.sections.map { "§" + $0 }.joined(separator: ", ")))\n"
            switch r.status {
            case .implemented:
                line += "         implemented by \(r.rules.joined(separator: ", ")); \(r.tests) conformance test\(r.tests == 1 ? "" : "s")"
                if let v = r.verdicts { line += ": " + Self.verdictText(v) }
                if let n = r.note { line += "\n         not judged: \(n)" }
            case .unjudged:
                line += "         not judged (\(r.unjudged!.rawValue)): \(r.reason ?? "")"
            case .otherProfile:
                line += "         not in this profile; implemented by \(r.elsewhere.joined(separator: ", "))"
            case .conflict:
                line += "         CONFLICT: cited by \((r.rules + r.elsewhere).joined(separator: ", ")) and marked unjudged (\(r.unjudged?.rawValue ?? "")) in the catalog"
            case .unaccounted:
                line += "         UNACCOUNTED: no rule cites it and the catalog gives no reason"
            }
            out += line + "\n"
        }
        out += "\n" + totals + "\n"
        return out
    }

    static func verdictText(_ v: [String: Int]) -> String {
        let order = ConformVerdict.allCases.map(\.rawValue) + VerdictClass.allCases.map(\.rawValue)
        return order.compactMap { k in v[k].map { "\($0) \(k)" } }.joined(separator: ", ")
    }

    public var totals: String {
        var parts: [String] = []
        let impl = rows.filter { $0.status == .implemented }
        parts.append("implemented \(impl.count) (\(prefixCounts(impl)))")
        let unj = rows.filter { $0.status == .unjudged }
        let cats = RequirementCatalog.Unjudged.allCases.compactMap { c in
            let n = unj.filter { $0.unjudged == c }.count
            return n == 0 ? nil : "\(c.rawValue) \(n)"
        }
        parts.append("not judged \(unj.count)" + (cats.isEmpty ? "" : " (\(cats.joined(separator: ", ")))"))
        for s in [Status.otherProfile, .conflict, .unaccounted] { parts.append("\(s.rawValue) \(count(s))") }
        return "totals: " + parts.joined(separator: "; ")
    }
}
