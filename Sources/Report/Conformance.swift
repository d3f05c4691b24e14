import Core
import Foundation
import Spec

/// One option rule's verdict over a run: the target's segments it judged and those that broke it.
public struct OptionRuleRecord: Codable, Sendable, Equatable {
    public var rule: String
    /// The Appendix B ID, where RFC 9293 gives one (`MUST-16`).
    public var requirement: String?
    public var clause: String
    public var judged: Int
    public var broken: Int
    public init(rule: String, requirement: String?, clause: String, judged: Int, broken: Int) {
        self.rule = rule
        self.requirement = requirement
        self.clause = clause
        self.judged = judged
        self.broken = broken
    }
}

/// The verdict of one conformance test.
public enum ConformVerdict: String, Codable, Sendable, CaseIterable {
    case conforms, diverges, unreachable, error
}

/// One test of `tcpspec conform`: a rule, one partition of its guard, the input class that exercises it, and
/// what the target did there.
public struct ConformResult: Codable, Sendable {
    /// Stable across runs of the same spec: `STATE|EVENT|rule|partition`.
    public var id: String
    /// `STATE / input / rule`, as JUnit shows it.
    public var name: String
    public var state: String
    public var event: String
    public var input: String
    public var rule: String
    public var citation: String
    public var verdict: ConformVerdict
    /// Why a test is unreachable or in error.
    public var why: String?
    /// The test is unreachable by a proof from the spec (no input class of any way reaches it), not merely not
    /// reached on the ways tried.
    public var proven: Bool?
    public var expected: String?
    public var observed: String?
    /// The timers the test's step saw expire, each with when and its window (`retransmission after 1.003 s
    /// (window 1 s ± 0.155 s)`).
    public var timers: [String]?
    /// The divergence's signature (the key baselines use) and its minimized case.
    public var signature: String?
    public var casePath: String?
    public var pcapPath: String?
    /// The transition the rule's chain makes, for the state diagram (`to` nil: stays).
    public var to: String?
    /// The RFC 9293 requirements the test's rule implements (what the test exercises).
    public var requirements: [String]?
    /// For a divergence: its class, the requirements it breaks, and the rules held responsible.
    public var verdictClass: VerdictClass?
    public var breaks: [String]?
    public var responsible: [String]?
    /// The RFC clauses the responsible rules cite (`RFC 9293 §3.10.7.4`): what a divergence no ID names breaks.
    public var clauses: [String]?
    /// The choice the test's step told apart and the alternative the stack took (`rfc5961-rst=other`): a test
    /// that conforms under the other alternative says so.
    public var choice: String?
    /// The divergence was seen once but its case, replayed alone, never showed it: not a finding.
    public var timingDependent: Bool?
    /// The test conformed, but its segments differed from the spec's where the peer does not look (the ACK bit
    /// and field of a reset a synchronized peer receives, RFC 9293 §3.10.7.4): counted, not a divergence.
    public var equivalent: String?

    /// Whether the test fails a run: a violation, or a deviation under `strict`; errors always.
    public func fails(strict: Bool) -> Bool {
        switch verdict {
        case .error: true
        case .diverges: timingDependent != true && (verdictClass ?? .violates).fails(strict: strict)
        case .conforms, .unreachable: false
        }
    }

    public init(id: String, name: String, state: String, event: String, input: String, rule: String, citation: String,
                verdict: ConformVerdict, to: String?) {
        self.id = id
        self.name = name
        self.state = state
        self.event = event
        self.input = input
        self.rule = rule
        self.citation = citation
        self.verdict = verdict
        self.to = to
    }
}

/// A whole run (or the merge of shards): what `conform` writes as JSON and renders as JUnit, Markdown and HTML.
/// What the class solver decided before a conformance run, and what it cost.
public struct SolverRecord: Codable, Sendable {
    /// Tests proven unreachable: their classes' conditions contradict whatever the TCB.
    public var proven: Int
    /// Groups of tests sharing their classes it was asked about (those no input drawn had reached), and its time.
    public var asked: Int
    public var seconds: Double
    /// Queries left undecided within the solver's bound (never a proof).
    public var undecided: Int
    public init(proven: Int, asked: Int, seconds: Double, undecided: Int) {
        self.proven = proven
        self.asked = asked
        self.seconds = seconds
        self.undecided = undecided
    }
    public var line: String {
        String(format: "solver: %d tests proven unreachable (their classifiers' conditions contradict whatever the TCB); %d groups of tests no drawn input had reached asked, in %.1f s; %d queries undecided", proven, asked, seconds, undecided)
    }
}

public struct ConformReport: Codable, Sendable {
    /// A reason without its per-test details (values in brackets, `ruled out by RCV.WND [65535 on this way; 0
    /// admits it]`): what the summary groups unreachable tests by.
    public static func reasonGroup(_ why: String) -> String {
        var out = "", depth = 0
        for ch in why {
            switch ch {
            case "[":
                if depth == 0, out.hasSuffix(" ") { out.removeLast() }
                depth += 1
            case "]" where depth > 0:
                depth -= 1
            default:
                if depth == 0 { out.append(ch) }
            }
        }
        return out
    }

    public var target: String
    public var profile: String
    public var shards: [String]
    public var seconds: Double
    public var settings: [String: String]
    public var results: [ConformResult]
    /// Filled when a baseline was given.
    public var baseline: BaselineOutcome?
    /// Deviations (SHOULDs) fail the run, as violations do (`--strict`).
    public var strict: Bool?
    /// What the stack chose where the RFC lets it (the profile's choices, bound from the first step that told
    /// their alternatives apart).
    public var choices: [ChoiceRecord]?
    /// The option rules' verdicts over every segment the target sent (RFC 9293 §3.1–§3.2, §3.7.1, RFC 7323, RFC 2018),
    /// and what the tester offered and the target agreed.
    public var options: [OptionRuleRecord]?
    public var optionAgreement: String?
    /// The class solver's part (issue 21): tests it proved unreachable before the run, and its time.
    public var solver: SolverRecord?

    /// The option rules in one line, as conform and fuzz print them (the full table is in the reports):
    /// `options: 12 option rules judged 39637 rule×segment checks; broken: none`, or the rules some segment broke.
    public static func optionLine(_ rules: [OptionRuleRecord]) -> String {
        let broken = rules.filter { $0.broken > 0 }
        return "options: \(rules.count) option rules judged \(rules.reduce(0) { $0 + $1.judged }) rule×segment checks; broken: "
            + (broken.isEmpty ? "none" : broken.map { "\($0.rule) (\($0.requirement.map { "\($0), " } ?? "")\($0.clause)) \($0.broken) of \($0.judged)" }.joined(separator: "; "))
    }

    /// One line per choice, as every output says them.
    public var choiceLines: [String] { (choices ?? []).map { "choice \($0.name): \($0.description)" } }

    /// Said in every report when the target cannot report socket states.
    public var stateNote: String? {
        guard let v = settings["state reports"], v.hasPrefix("no") else { return nil }
        return "\(target) reports no socket states: every test is judged on the segments alone."
    }

    public init(target: String, profile: String, shards: [String], seconds: Double, settings: [String: String], results: [ConformResult]) {
        self.target = target
        self.profile = profile
        self.shards = shards
        self.seconds = seconds
        self.settings = settings
        self.results = results
    }

    public func count(_ v: ConformVerdict) -> Int { results.reduce(0) { $0 + ($1.verdict == v ? 1 : 0) } }

    /// Divergences of one class (a divergence without a class, from an older report, violates).
    public func count(_ c: VerdictClass) -> Int {
        results.reduce(0) { $0 + ($1.verdict == .diverges && $1.timingDependent != true && ($1.verdictClass ?? .violates) == c ? 1 : 0) }
    }

    /// Unreachable tests proven so from the spec.
    public var provenCount: Int { results.filter { $0.proven == true }.count }

    /// Divergences whose case never showed them again alone: not findings.
    public var timingDependentCount: Int { results.filter { $0.verdict == .diverges && $0.timingDependent == true }.count }

    /// Tests that conformed with a difference no receiver looks at.
    public var equivalentCount: Int { results.filter { $0.equivalent != nil }.count }

    /// `violates 3, deviates 1, choice 2, unspecified 0, timing-dependent 1`.
    public var classCounts: String {
        (VerdictClass.allCases.map { "\($0.rawValue) \(count($0))" } + ["timing-dependent \(timingDependentCount)"]).joined(separator: ", ")
    }

    /// Whether a result fails this run.
    public func fails(_ t: ConformResult) -> Bool { t.fails(strict: strict ?? false) }

    /// Whether the divergence of a signature fails a run (`strict`: deviations too): its class, and never when it
    /// is timing-dependent. The one test baselines and exit codes apply.
    public func signatureFails(_ signature: String, strict: Bool) -> Bool {
        guard let t = results.first(where: { $0.signature == signature }) else { return true }
        return t.timingDependent != true && (t.verdictClass ?? .violates).fails(strict: strict)
    }

    /// Tests grouped by the requirement they exercise or break: `MUST-66: 4 tests, 3 conforms, 1 violates`,
    /// strongest level first; tests of rules that cite none are grouped under their class alone.
    public var byRequirement: [(requirement: String, tests: Int, counts: [(String, Int)])] {
        var tests: [String: Set<String>] = [:]
        var counts: [String: [String: Int]] = [:]
        for t in results {
            var ids = Set(t.requirements ?? [])
            if t.verdict == .diverges { ids.formUnion(t.breaks ?? []) }
            for id in ids where tests[id, default: []].insert(t.id).inserted {
                let key = t.verdict == .diverges && (t.breaks ?? []).contains(id) ? (t.verdictClass ?? .violates).rawValue
                    : t.verdict == .diverges ? "diverges (another requirement)" : t.verdict.rawValue
                counts[id, default: [:]][key, default: 0] += 1
            }
        }
        let order = [ConformVerdict.conforms.rawValue] + VerdictClass.allCases.map(\.rawValue)
            + ["diverges (another requirement)", ConformVerdict.unreachable.rawValue, ConformVerdict.error.rawValue]
        return tests.keys.sorted { (RequirementID($0) ?? RequirementID(.recommended, 999)) < (RequirementID($1) ?? RequirementID(.recommended, 999)) }.map { id in
            (id, tests[id]!.count, order.compactMap { k in counts[id]![k].map { (k, $0) } })
        }
    }

    public var byRequirementText: String {
        byRequirement.map { g in "\(g.requirement): \(g.tests) test\(g.tests == 1 ? "" : "s"), " + g.counts.map { "\($0.1) \($0.0)" }.joined(separator: ", ") }
            .joined(separator: "\n")
    }

    /// Divergences by signature: one finding may fail several tests.
    public var divergenceSignatures: [String] {
        var seen: Set<String> = []
        return results.compactMap { r in
            guard r.verdict == .diverges, let s = r.signature, seen.insert(s).inserted else { return nil }
            return s
        }
    }

    /// Shards merged into one report; a test present in several (it should not be) keeps its first result.
    public static func merge(_ reports: [ConformReport]) -> ConformReport? {
        guard let first = reports.first else { return nil }
        var seen: Set<String> = []
        var results: [ConformResult] = []
        var settings: [String: String] = [:]
        for r in reports {
            for t in r.results where seen.insert(t.id).inserted { results.append(t) }
            settings.merge(r.settings) { a, _ in a }
        }
        results.sort { $0.id < $1.id }
        var out = ConformReport(target: first.target, profile: first.profile, shards: reports.flatMap(\.shards).sorted(),
                                seconds: reports.map(\.seconds).max() ?? 0, settings: settings, results: results)
        out.baseline = nil
        // Each shard bound its own choices: keep, per choice, the first shard's binding and add up the steps.
        var merged: [ChoiceRecord] = []
        for r in reports {
            for c in r.choices ?? [] {
                if let i = merged.firstIndex(where: { $0.name == c.name }) {
                    // Steps before the binding, in states that do not bind it, add up whichever shard bound it.
                    let before = (merged[i].beforeBinding ?? 0) + (c.beforeBinding ?? 0)
                    if merged[i].bound == nil {
                        merged[i] = c
                    } else {
                        if c.bound == merged[i].bound { merged[i].consistent += c.consistent } else if c.bound != nil {
                            merged[i].inconsistent += c.consistent
                            if merged[i].inconsistentAt.count < 3, let f = c.firstSeen { merged[i].inconsistentAt.append(f) }
                        }
                        merged[i].inconsistent += c.inconsistent
                    }
                    merged[i].beforeBinding = before > 0 ? before : nil
                } else {
                    merged.append(c)
                }
            }
        }
        out.choices = merged.isEmpty ? nil : merged
        // Every shard judged its own segments: the counts add up.
        var rules: [OptionRuleRecord] = []
        for r in reports {
            for o in r.options ?? [] {
                if let i = rules.firstIndex(where: { $0.rule == o.rule }) {
                    rules[i].judged += o.judged
                    rules[i].broken += o.broken
                } else {
                    rules.append(o)
                }
            }
        }
        out.options = rules.isEmpty ? nil : rules
        out.optionAgreement = reports.count == 1 ? first.optionAgreement : nil
        return out
    }
}

// MARK: baselines

/// One reviewed divergence a target/profile is allowed to show.
public struct BaselineEntry: Codable, Sendable {
    public var signature: String
    public var reason: String
    /// Where it is written, for messages.
    public var line: Int
}

/// What a run found against its baseline.
public struct BaselineOutcome: Codable, Sendable {
    public var file: String
    /// Divergences the baseline does not list: they fail the run.
    public var new: [String]
    /// Baseline entries this run did not see (fixed, or not reached).
    public var stale: [String]
    public var accepted: Int
}

/// `Spec/baselines/NAME.toml`: reviewed divergences, each `[[accepted]]` with a `signature` and a `reason`.
/// The reader takes this subset of TOML (tables of arrays, `key = "string"`, comments) and reports anything else
/// at its line and column.
public enum Baseline {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func parse(_ text: String, file: String) throws -> [BaselineEntry] {
        func fail(_ at: TOMLReader.Position, _ m: String) -> Failure { Failure(description: "\(file):\(at.line):\(at.column): error: \(m)") }
        let tables: [TOMLReader.Table]
        do { tables = try TOMLReader.read(text, file: file) } catch { throw Failure(description: error.description) }
        var entries: [BaselineEntry] = []
        for t in tables {
            guard t.name == "accepted", t.isArrayElement else {
                if let e = t.entries.first, t.name.isEmpty { throw fail(e.keyAt, "'\(e.key)' outside an [[accepted]] table") }
                if t.name.isEmpty { continue }
                throw fail(t.at, "unknown table '\(t.name)'; a baseline is [[accepted]] tables")
            }
            var signature: String?, reason: String?
            for e in t.entries {
                guard case .string(let v) = e.value.value else { throw fail(e.value.at, "expected a \"string\", found \(e.value.value.kind)") }
                switch e.key {
                case "signature": signature = v
                case "reason": reason = v
                default: throw fail(e.keyAt, "unknown key '\(e.key)'; an [[accepted]] entry has signature and reason")
                }
            }
            guard let sig = signature else { throw fail(t.at, "[[accepted]] needs a signature = \"...\"") }
            guard let why = reason, !why.isEmpty else { throw fail(t.at, "[[accepted]] needs a reason = \"...\" (why this divergence is accepted)") }
            entries.append(BaselineEntry(signature: sig, reason: why, line: t.at.line))
        }
        return entries
    }

    /// Only divergences a run fails on belong in a baseline: violations, and deviations (a `--strict` run fails
    /// on those). A choice or an unspecified behaviour is never a failure, so never `new`.
    public static func apply(_ entries: [BaselineEntry], file: String, to report: inout ConformReport) {
        let failing = report.divergenceSignatures.filter { report.signatureFails($0, strict: true) }
        let found = Set(failing)
        let listed = Set(entries.map(\.signature))
        report.baseline = BaselineOutcome(file: file, new: failing.filter { !listed.contains($0) },
                                          stale: entries.map(\.signature).filter { !found.contains($0) },
                                          accepted: found.intersection(listed).count)
    }
}

// MARK: renderers

public enum ConformRender {
    static func xml(_ s: String) -> String {
        var o = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&apos;"
            default:
                // XML 1.0 has no place for most control characters.
                if ch.value < 0x20, ch != "\n", ch != "\t" { o += " " } else { o.unicodeScalars.append(ch) }
            }
        }
        return o
    }

    /// JUnit XML: one testsuite per state, one testcase per test; a divergence is a failure carrying expected,
    /// observed and the case path; an unreachable test is skipped with its reason.
    public static func junit(_ r: ConformReport) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<testsuites name=\"tcpspec conform \(xml(r.target))/\(xml(r.profile))\" tests=\"\(r.results.count)\" failures=\"\(r.results.filter { $0.verdict == .diverges && r.fails($0) }.count)\" errors=\"\(r.count(.error))\" skipped=\"\(r.count(.unreachable))\" time=\"\(String(format: "%.3f", r.seconds))\">\n"
        let byState = Dictionary(grouping: r.results, by: \.state)
        for state in byState.keys.sorted() {
            let rs = byState[state]!
            let f = rs.filter { $0.verdict == .diverges && r.fails($0) }.count, e = rs.filter { $0.verdict == .error }.count
            let sk = rs.filter { $0.verdict == .unreachable }.count
            out += "  <testsuite name=\"\(xml(state))\" tests=\"\(rs.count)\" failures=\"\(f)\" errors=\"\(e)\" skipped=\"\(sk)\">\n"
            for t in rs {
                out += "    <testcase classname=\"\(xml(r.profile)).\(xml(state))\" name=\"\(xml(t.name))\" time=\"0\">\n"
                switch t.verdict {
                case .conforms: break
                case .diverges:
                    let cls = t.verdictClass ?? .violates
                    let what = (t.breaks ?? []).isEmpty ? "" : " " + (t.breaks ?? []).joined(separator: ", ")
                    let msg = "\(cls.rawValue)\(what): expected \(t.expected ?? "?"), observed \(t.observed ?? "?")"
                    var body = "\(cls.rawValue)\(what) (rules \((t.responsible ?? [t.rule]).joined(separator: ", ")))\nrule \(t.rule): \(t.citation)\nexpected: \(t.expected ?? "?")\nobserved: \(t.observed ?? "?")"
                    if let c = t.casePath { body += "\ncase: \(c)" }
                    if let p = t.pcapPath { body += "\npcap: \(p)" }
                    if let s = t.signature { body += "\nsignature: \(s)" }
                    // Only what fails the run is a JUnit failure: a deviation (unless --strict), a permitted choice
                    // or an unspecified behaviour passes, with the finding in its output.
                    if r.fails(t) {
                        out += "      <failure type=\"\(cls.rawValue)\" message=\"\(xml(msg))\">\(xml(body))</failure>\n"
                    } else {
                        out += "      <system-out>\(xml(body))</system-out>\n"
                    }
                case .unreachable:
                    out += "      <skipped message=\"\(xml(t.why ?? "unreachable"))\"/>\n"
                case .error:
                    out += "      <error type=\"error\" message=\"\(xml(t.why ?? "error"))\"/>\n"
                }
                let reqs = (t.requirements ?? []).isEmpty ? "" : "<property name=\"requirements\" value=\"\(xml((t.requirements ?? []).joined(separator: ",")))\"/>"
                out += "      <properties>\(reqs)<property name=\"rule\" value=\"\(xml(t.rule))\"/><property name=\"citation\" value=\"\(xml(t.citation))\"/><property name=\"input\" value=\"\(xml(t.input))\"/></properties>\n"
                out += "    </testcase>\n"
            }
            out += "  </testsuite>\n"
        }
        return out + "</testsuites>\n"
    }

    /// A short Markdown summary, fit for a CI job summary.
    public static func markdown(_ r: ConformReport) -> String {
        var out = "## tcpspec conform: \(r.target) against profile \(r.profile)\n\n"
        out += "| conforms | diverges | violates | deviates | choice | unspecified | timing-dependent | unreachable | error | tests | time |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        out += "| \(r.count(.conforms)) | \(r.count(.diverges)) | \(r.count(VerdictClass.violates)) | \(r.count(VerdictClass.deviates)) | \(r.count(VerdictClass.choice)) | \(r.count(VerdictClass.unspecified)) | \(r.timingDependentCount) | \(r.count(.unreachable)) | \(r.count(.error)) | \(r.results.count) | \(String(format: "%.1f", r.seconds)) s |\n\n"
        out += "A divergence **violates** a MUST or a clause with no permitted alternative (fails the run), **deviates** from a SHOULD (fails only under `--strict`), is a **choice** the RFC permits, or is **unspecified** by any clause (neither fails). A **timing-dependent** one was seen once but its case, replayed alone, never showed it again: not a finding.\n\n"
        if !r.shards.isEmpty, r.shards != ["1/1"] { out += "Shards: \(r.shards.joined(separator: ", ")).\n\n" }
        if let note = r.stateNote { out += "**\(note)**\n\n" }
        if let b = r.baseline {
            out += "Baseline `\(b.file)`: \(b.accepted) accepted, \(b.new.count) new, \(b.stale.count) no longer seen.\n\n"
            for s in b.new { out += "- **new**: `\(s)`\n" }
            for s in b.stale { out += "- no longer seen: `\(s)`\n" }
            if !b.new.isEmpty || !b.stale.isEmpty { out += "\n" }
        }
        let div = r.results.filter { $0.verdict == .diverges && $0.timingDependent != true }
        let timing = r.results.filter { $0.verdict == .diverges && $0.timingDependent == true }
        if !div.isEmpty {
            out += "### Divergences\n\n| class | breaks | state | input | rule | expected | observed | case |\n|---|---|---|---|---|---|---|---|\n"
            for t in div.sorted(by: { ($0.verdictClass ?? .violates, $0.id) < ($1.verdictClass ?? .violates, $1.id) }).prefix(100) {
                let breaks = !(t.breaks ?? []).isEmpty ? (t.breaks ?? []).joined(separator: ", ") : (t.clauses ?? []).isEmpty ? "—" : (t.clauses ?? []).joined(separator: "; ")
                out += "| \((t.verdictClass ?? .violates).rawValue) | \(breaks) | \(t.state) | `\(t.input)` | `\((t.responsible ?? [t.rule]).joined(separator: ", "))` | \(t.expected ?? "") | \(t.observed ?? "") | \(t.casePath.map { "`\($0)`" } ?? "") |\n"
            }
            if div.count > 100 { out += "\n(\(div.count - 100) more in the JUnit and JSON reports)\n" }
            out += "\n"
        }
        let timed = r.results.filter { $0.timers != nil }
        if !timed.isEmpty {
            // What each timer test measured: a stack author sees how close to its window each timer fired.
            out += "### Timers\n\n| verdict | state | timeout | measured (window ± margin) |\n|---|---|---|---|\n"
            for t in timed { out += "| \(t.verdict.rawValue) | \(t.state) | \(t.event) | \((t.timers ?? []).joined(separator: "; ")) |\n" }
            out += "\n"
        }
        if !timing.isEmpty {
            out += "### Timing-dependent (seen once, not shown again by the case alone; not findings)\n\n"
            for t in timing { out += "- \(t.state) on `\(t.input)`: expected \(t.expected ?? ""), observed \(t.observed ?? "")\(t.casePath.map { " — `\($0)`" } ?? "")\n" }
            out += "\n"
        }
        if r.equivalentCount > 0 {
            out += "\(r.equivalentCount) test\(r.equivalentCount == 1 ? "" : "s") conformed with segments that differ from the spec's only in the ACK bit or field of a reset sent to a synchronized peer, which validates a RST by its SEQ alone (RFC 9293 §3.10.7.4): counted, not divergences.\n\n"
        }
        if !r.choiceLines.isEmpty {
            out += "### Choices the RFC leaves open\n\n"
            for l in r.choiceLines { out += "- \(l)\n" }
            out += "\n"
        }
        if let rules = r.options, !rules.isEmpty {
            out += "### Options (every segment the target sent)\n\n"
            if let a = r.optionAgreement { out += a + "\n\n" }
            out += "| rule | requirement | clause | segments judged | broken |\n|---|---|---|---:|---:|\n"
            for o in rules { out += "| `\(o.rule)` | \(o.requirement ?? "—") | \(o.clause) | \(o.judged) | \(o.broken) |\n" }
            out += "\n"
        }
        let groups = r.byRequirement
        if !groups.isEmpty {
            out += "### By requirement (RFC 9293 Appendix B)\n\n| requirement | tests | outcome |\n|---|---:|---|\n"
            for g in groups { out += "| \(g.requirement) | \(g.tests) | \(g.counts.map { "\($0.1) \($0.0)" }.joined(separator: ", ")) |\n" }
            out += "\n"
        }
        let why = Dictionary(grouping: r.results.filter { $0.verdict == .unreachable }, by: { ConformReport.reasonGroup($0.why ?? "") })
        if !why.isEmpty {
            out += "### Unreachable, by reason\n\n"
            if let sv = r.solver { out += sv.line + "\n\n" }
            for (w, ts) in why.sorted(by: { $0.value.count > $1.value.count }) { out += "- \(ts.count) × \(w)\n" }
            out += "\n"
        }
        return out
    }

    /// Colour of the edge from → to: red if a test of a rule making it diverged, green if all conform, grey if
    /// none ran.
    public static func edgeColors(_ r: ConformReport) -> [String: String] {
        var worst: [String: ConformVerdict] = [:]
        for t in r.results {
            guard let to = t.to else { continue }
            let k = "\(t.state)|\(to)"
            let rank: [ConformVerdict: Int] = [.unreachable: 0, .conforms: 1, .error: 2, .diverges: 3]
            if let w = worst[k], rank[w]! >= rank[t.verdict]! { continue }
            worst[k] = t.verdict
        }
        return worst.mapValues { v in
            switch v {
            case .diverges: "#c62828"
            case .error: "#ef6c00"
            case .conforms: "#2e7d32"
            case .unreachable: "#9e9e9e"
            }
        }
    }

    /// A self-contained HTML report: counts, the state diagram (SVG, edges coloured by verdict), the state ×
    /// input matrix and every test.
    public static func html(_ r: ConformReport, svg: String?) -> String {
        let states = Array(Set(r.results.map(\.state))).sorted()
        // Columns: each call and timer, and arriving segments by their control bits (SYN, SYN,ACK, ACK, ...).
        func column(_ t: ConformResult) -> String {
            guard t.event == "SEGMENT" else { return t.event }
            let words = t.input.split(separator: " ")
            return words.count > 1 ? "rcv " + words[1] : "rcv"
        }
        let events = Array(Set(r.results.map(column))).sorted { a, b in
            (a.hasPrefix("rcv") ? 1 : 0, a) < (b.hasPrefix("rcv") ? 1 : 0, b)
        }
        var out = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>tcpspec conform: \(xml(r.target)) / \(xml(r.profile))</title>
        <style>
        body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222}
        table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
        .conforms{background:#e8f5e9}.diverges{background:#ffebee}.unreachable{background:#f5f5f5;color:#777}.error{background:#fff3e0}
        .n{text-align:right}svg{max-width:100%;height:auto}
        </style></head><body>
        <h1>tcpspec conform: \(xml(r.target)) against profile \(xml(r.profile))</h1>
        <p id="summary">\(r.count(.conforms)) conform, \(r.count(.diverges)) diverge (\(r.classCounts)), \(r.count(.unreachable)) unreachable, \(r.count(.error)) in error — \(r.results.count) tests in \(String(format: "%.1f", r.seconds)) s.</p>

        """
        if let note = r.stateNote { out += "<p id=\"state-note\"><strong>\(xml(note))</strong></p>\n" }
        if !r.choiceLines.isEmpty {
            out += "<h2>Choices the RFC leaves open</h2>\n<ul id=\"choices\">" + r.choiceLines.map { "<li>\(xml($0))</li>" }.joined() + "</ul>\n"
        }
        if let rules = r.options, !rules.isEmpty {
            out += "<h2>Options (every segment the target sent)</h2>\n" + (r.optionAgreement.map { "<p>\(xml($0))</p>\n" } ?? "")
            out += "<table id=\"options\"><tr><th>rule</th><th>requirement</th><th>clause</th><th>segments judged</th><th>broken</th></tr>"
            for o in rules { out += "<tr><td><code>\(xml(o.rule))</code></td><td>\(xml(o.requirement ?? "—"))</td><td>\(xml(o.clause))</td><td class=\"n\">\(o.judged)</td><td class=\"n\">\(o.broken)</td></tr>" }
            out += "</table>\n"
        }
        if let b = r.baseline {
            out += "<p>Baseline <code>\(xml(b.file))</code>: \(b.accepted) accepted, \(b.new.count) new, \(b.stale.count) no longer seen.</p>\n"
        }
        out += "<h2>State diagram</h2>\n<p>Edges: <span style=\"color:#2e7d32\">conforms</span>, <span style=\"color:#c62828\">diverges</span>, <span style=\"color:#9e9e9e\">not reached</span>.</p>\n"
        if let svg {
            // The SVG from Graphviz starts with an XML prolog and DOCTYPE, which have no place inside HTML.
            let start = svg.range(of: "<svg")?.lowerBound ?? svg.startIndex
            out += "<div id=\"diagram\">" + String(svg[start...]) + "</div>\n"
        } else {
            out += "<p>(Graphviz was not available: no diagram.)</p>\n"
        }
        out += "<h2>State × input</h2>\n<table id=\"matrix\"><tr><th>state</th>"
        for e in events { out += "<th>\(xml(e))</th>" }
        out += "</tr>\n"
        for s in states {
            out += "<tr><th>\(xml(s))</th>"
            for e in events {
                let ts = r.results.filter { $0.state == s && column($0) == e }
                if ts.isEmpty {
                    out += "<td></td>"
                    continue
                }
                let d = ts.filter { $0.verdict == .diverges }.count, c = ts.filter { $0.verdict == .conforms }.count
                let u = ts.filter { $0.verdict == .unreachable }.count, er = ts.filter { $0.verdict == .error }.count
                let cls = d > 0 ? "diverges" : er > 0 ? "error" : c > 0 ? "conforms" : "unreachable"
                out += "<td class=\"\(cls) n\" title=\"\(c) conform, \(d) diverge, \(u) unreachable, \(er) error\">\(c)/\(ts.count)\(d > 0 ? " · \(d)✗" : "")</td>"
            }
            out += "</tr>\n"
        }
        out += "</table>\n<p>Each cell: tests that conform / tests; ✗ marks divergences (hover for the breakdown).</p>\n<h2>Tests</h2>\n<table id=\"tests\"><tr><th>verdict</th><th>state</th><th>input</th><th>rule</th><th>expected / observed / why</th><th>citation</th></tr>\n"
        for t in r.results.sorted(by: { ($0.verdict == .diverges ? 0 : 1, $0.id) < ($1.verdict == .diverges ? 0 : 1, $1.id) }) {
            var detail = ""
            if t.verdict == .diverges {
                let breaks = (t.breaks ?? []).isEmpty ? "" : " " + (t.breaks ?? []).joined(separator: ", ")
                detail = "<strong>\((t.verdictClass ?? .violates).rawValue)\(xml(breaks))</strong>: expected \(xml(t.expected ?? "")); observed \(xml(t.observed ?? ""))"
                if let c = t.casePath { detail += "<br><code>\(xml(c))</code>" }
            } else if let w = t.why {
                detail = xml(w)
            }
            out += "<tr class=\"\(t.verdict.rawValue)\"><td>\(t.verdict.rawValue)</td><td>\(xml(t.state))</td><td><code>\(xml(t.input))</code></td><td><code>\(xml(t.rule))</code></td><td>\(detail)</td><td>\(xml(t.citation))</td></tr>\n"
        }
        return out + "</table>\n</body></html>\n"
    }
}
