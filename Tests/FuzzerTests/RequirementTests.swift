import Core
import Foundation
@testable import Fuzzer
import Model
import Oracle
import Report
import Spec
import Targets
import TestSupport
import Testing

/// RFC 9293 Appendix B traced through the spec: the catalog holds every ID the RFC's table lists, rules cite only
/// IDs that exist, every requirement is implemented or explained, and every divergence is classed by the
/// requirements of the rules it is attributed to.
@Suite("Requirements and verdict classes")
struct RequirementTests {
    static let catalog = Result { try RequirementCatalog.load(directory: Repository.specDirectory) }

    /// The IDs Appendix B of the reference RFC text lists (the table, IDs split over lines joined).
    static func appendixB() throws -> Set<String>? {
        let path = Repository.root.deletingLastPathComponent().appendingPathComponent("shared/reference/rfc9293.txt").path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), let start = text.range(of: "Appendix B.  TCP Requirement Summary\n", options: .backwards)
        else { return nil }
        let table = text[start.upperBound...]
        return Set(table.matches(of: /\| ((?:MUST|SHLD|MAY|REC)-[0-9]+) +\|/).map { String($0.output.1) })
    }

    @Test("the catalog is Appendix B: 69 MUST, 31 SHLD, 18 MAY and REC-1, each with its level and text")
    func catalogIsAppendixB() throws {
        let c = try Self.catalog.get()
        let ids = c.entries.map(\.id)
        #expect(Set(ids).count == ids.count)
        #expect(ids.filter { $0.prefix == .must }.count == 69)
        #expect(ids.filter { $0.prefix == .should }.count == 31)
        #expect(ids.filter { $0.prefix == .may }.count == 18)
        #expect(ids.filter { $0.prefix == .recommended }.count == 1)
        // Levels agree with the ID's prefix (a MUST-n is MUST or MUST NOT, a SHLD-n SHOULD or SHOULD NOT), as the
        // body text states them; where Appendix B's table marks another column (SHLD-25 under MUST; MAY-5, MAY-10
        // and MAY-11 under SHOULD), the entry's note says so.
        for e in c.entries {
            let agrees: Bool
            switch e.id.prefix {
            case .must: agrees = e.level == .must || e.level == .mustNot
            case .should, .recommended: agrees = e.level == .should || e.level == .shouldNot
            case .may: agrees = e.level == .may
            }
            #expect(agrees, "\(e.id) \(e.level)")
            #expect(e.text.contains(e.id.description) || e.id == RequirementID(.must, 22), "\(e.id): its text does not state it")
        }
        if let table = try Self.appendixB() {
            #expect(Set(ids.map(\.description)) == table, "catalog vs RFC: \(Set(ids.map(\.description)).symmetricDifference(table).sorted())")
        }
    }

    @Test("every requirement is implemented by a rule or explained, under each profile's lineage", arguments: ["rfc9293", "linux"])
    func everyRequirementAccounted(profile: String) throws {
        let spec = try Repository.spec(profile)
        let (asts, _) = SpecLoader.loadDirectory(Repository.specDirectory)
        let set = try ChoiceSet.load(for: spec, directory: Repository.specDirectory)
        try set.validate()
        let cov = RequirementCoverage.build(catalog: try Self.catalog.get(), spec: spec, tests: ConformSuite.build(spec).map { spec.rules[$0.rule].id },
                                            cited: RequirementCoverage.citations(in: asts), choices: set.choices.compactMap { c in c.other.map { (c.choice.name, $0) } })
        let bad = cov.rows.filter { $0.status == .unaccounted || $0.status == .conflict }
        #expect(bad.map { "\($0.id) \($0.status.rawValue)" } == [])
        #expect(cov.rows.count == 119)
        // Implemented requirements are exercised by conformance tests (a rule has at least one test).
        // (A `timing` line is judged wherever its timer runs or an ACK is held, not by tests of its own.)
        for r in cov.rows where r.status == .implemented && r.rules.contains(where: { !$0.hasPrefix("choice ") && !$0.hasPrefix("timing ") }) {
            #expect(r.tests > 0, "\(r.id): no conformance test")
        }
        #expect(cov.count(.implemented) >= 6, "\(cov.totals)")
    }

    @Test("a requirement ID is RFC 9293's: cited elsewhere, or unknown, it is an error at its file:line:col")
    func citedIDsAreChecked() throws {
        let text = """
            profile x "x"
            state CLOSED initial
            steps in CLOSED: closed
              cite RFC 9293 §3.10.7.1 MUST-999 "no such ID"
            """
        let (ast, diags) = SpecLoader.parse(path: "x.tcpspec", text: text)
        #expect(diags.isEmpty, "\(diags)")
        let unknown = try Self.catalog.get().unknownCitations(in: [ast])
        #expect(unknown.count == 1)
        #expect(unknown.first?.kind == .unknownName)
        #expect(unknown.first?.location?.line == 4)
        #expect(unknown.first?.location?.column == 27, "\(String(describing: unknown.first?.location))")
        let (_, d2) = SpecLoader.parse(path: "y.tcpspec", text: "profile y \"y\"\nstate CLOSED initial\nsteps in CLOSED: closed\n  cite RFC 793 §3.9 p.65 MUST-1\n")
        #expect(d2.contains { $0.kind == .citation && $0.message.contains("RFC 9293's") }, "\(d2)")
        // The catalog file itself: a bad level is reported where it is.
        #expect(throws: RequirementCatalog.Failure.self) {
            try RequirementCatalog.parse("[[requirement]]\nid = \"MUST-1\"\nlevel = \"MUSTN'T\"\ntopic = \"t\"\nfeature = \"f\"\ntext = \"x\"\n", file: "r.toml")
        }
        do {
            _ = try RequirementCatalog.parse("[[requirement]]\nid = \"MUST-1\"\nlevel = \"MUSTN'T\"\n", file: "r.toml")
        } catch {
            #expect(error.description.hasPrefix("r.toml:3:9: error: unknown level"), "\(error.description)")
        }
    }

    @Test("a rule's class follows the strongest requirement it cites; without one, RFC text permits no alternative")
    func ruleClasses() throws {
        let spec = try Repository.spec("linux")
        for r in spec.rules {
            let c = Judgement.ruleClass(r)
            let byID: [VerdictClass] = r.requirements.map { $0.prefix == .must ? .violates : $0.prefix == .may ? .choice : .deviates }
            if let want = (byID + r.levels.map(\.divergenceClass)).min() {
                #expect(c == want, "\(r.id): \(c) for \(r.requirements) \(r.levels)")
            } else {
                #expect(c == (r.isUnspecified ? .unspecified : .violates), "\(r.id)")
            }
        }
        // A level word without an ID counts: RFC 9293 §3.10.7.3's SHOULD makes skipping RFC 5961's check in SYN-SENT a deviation.
        #expect(try Repository.spec("rfc9293").rules.first { $0.id == "synsent.rst.inexact" }.map(Judgement.ruleClass) == .deviates)
        // Rules citing only a stack's behaviour exist in the linux profile and are unspecified by the RFC.
        #expect(spec.rules.contains { $0.isUnspecified }, "no linux-only rule")
    }

    /// ESTABLISHED from a passive open: the peer's ISN 1000, ours 5000.
    static func established(_ spec: CompiledSpec) -> TCPModel {
        var m = TCPModel(spec: spec)
        _ = m.call(.openPassive)
        _ = m.receive(Segment(seq: 1000, ctl: .syn, window: 65535), iss: 5000)
        _ = m.receive(Segment(seq: 1001, ack: 5001, ctl: .ack, window: 65535))
        return m
    }

    @Test("a divergence is attributed to the rule whose effect differs, and takes its class and requirements")
    func attribution() throws {
        let spec = try Repository.spec("rfc9293")
        // In ESTABLISHED, an in-window RST that is not exact: the chain ends with rst.challenge, which sends the ACK.
        var m = Self.established(spec)
        #expect(m.tcpState == .established)
        let tr = m.receive(Segment(seq: 1101, ctl: .rst, window: 0))
        let rules = spec.chains[tr.chain].rules
        #expect(rules.map { spec.rules[$0].id }.last == "rst.challenge")
        let ack = SegmentKey(tr.outputs[0].segment)
        let j = Judgement(spec: spec, chain: tr.chain, chainRules: rules, outputRules: tr.outputs.map(\.rule),
                          mismatches: [.segments(expected: [ack], observed: []), .state(expected: .established, observed: .closed)])
        #expect(j.rules == ["rst.challenge"])
        #expect(j.verdictClass == Judgement.ruleClass(spec.rules[rules.last!]))
        // A stack that failed as a program violates, whatever the rules.
        let f = Judgement(spec: spec, chain: tr.chain, chainRules: rules, outputRules: [], mismatches: [.failure(.exited, detail: "x")])
        #expect(f.verdictClass == .violates)
        // A shrinking window alone is SHLD-14, a deviation.
        let w = Judgement(spec: spec, chain: tr.chain, chainRules: rules, outputRules: [], mismatches: [.windowShrink(by: 10, window: 0, ack: 1, inferredShift: nil)])
        #expect(w.verdictClass == .deviates && w.requirements == [RequirementID(.should, 14)])
    }

    /// Numbers exactly 2^31 apart have no order (RFC 1982 §3.2): a segment there is classed by the spec one way, by a
    /// stack perhaps the other, and neither is wrong — its divergence of segments or state is unspecified; a stack
    /// failure there keeps its class (lwIP's assertion half way round is a bug whatever the order).
    @Test("an input exactly 2^31 from RCV.NXT, the window's edge or SND.UNA diverges unspecified; a crash there still violates")
    func halfWayRound() throws {
        let spec = try Repository.spec("rfc9293")
        var m = Self.established(spec)
        let nxt = m[.rcvNxt], una = m[.sndUna]
        #expect(m.halfWayApart(Segment(seq: nxt &+ 0x8000_0000, ctl: .rst, window: 0)))
        #expect(m.halfWayApart(Segment(seq: nxt &+ m[.rcvWnd] &+ 0x8000_0000, ctl: .ack, window: 0)))
        #expect(m.halfWayApart(Segment(seq: nxt, ack: una &+ 0x8000_0000, ctl: .ack, window: 0)))
        #expect(!m.halfWayApart(Segment(seq: nxt, ack: una &+ 0x8000_0000, ctl: .rst, window: 0)), "SEG.ACK is not read without ACK")
        #expect(!m.halfWayApart(Segment(seq: nxt &+ 0x7fff_ffff, ctl: .rst, window: 0)))
        let tr = m.receive(Segment(seq: nxt &+ 0x8000_0000, ctl: .rst, window: 0))
        let rules = spec.chains[tr.chain].rules
        let div: [Mismatch] = [.segments(expected: [], observed: [SegmentKey(Segment(seq: una, ack: nxt, ctl: .ack, window: 0))])]
        let j = Judgement(spec: spec, chain: tr.chain, chainRules: rules, outputRules: tr.outputs.map(\.rule), mismatches: div)
        #expect(j.verdictClass == .violates)
        let h = j.halfWay(div)
        #expect(h.verdictClass == .unspecified && h.clauses == [Judgement.halfWayClause] && h.rules == j.rules)
        // A keep-alive probe with text queued behind a closed window (MUST-26 forbids it only with sent data
        // outstanding): unspecified too, an option fault beside it kept in the step; an option fault alone keeps its class.
        let ts = Mismatch.option(OptionMismatch(rule: .timestampsEverySegment, expected: "TS", observed: "none"))
        #expect(j.unspecified(because: Judgement.keepaliveQueuedClause, div + [ts]).verdictClass == .unspecified)
        #expect(j.unspecified(because: Judgement.keepaliveQueuedClause, [ts]).verdictClass == .violates)
        let crash: [Mismatch] = [.failure(.exited, detail: "assertion")]
        #expect(Judgement(spec: spec, chain: tr.chain, chainRules: rules, outputRules: [], mismatches: crash).halfWay(crash).verdictClass == .violates)
    }

    /// SHLD-31 shows when a gap fills: a stack that did not hold the text beyond it acknowledges only the filler,
    /// one that did not hold the FIN stays ESTABLISHED. Either deviates from SHLD-31; neither is a violation of the
    /// seventh or eighth step, which the stack did follow for what it kept.
    @Test("a stack that did not hold out-of-order text or a FIN deviates from SHLD-31 when the gap fills")
    func heldSegmentsDeviate() throws {
        let spec = try Repository.spec("rfc9293")
        var m = Self.established(spec)
        _ = m.receive(Segment(seq: 1011, ack: 5001, ctl: .ack, window: 65535, dataLength: 10))
        var text = m, fin = m
        // Text only: the filler joins the held range.
        let t = text.receive(Segment(seq: 1001, ack: 5001, ctl: .ack, window: 65535, dataLength: 10))
        let tRules = spec.chains[t.chain].rules
        #expect(tRules.map { spec.rules[$0].id }.contains("text.accept.held"))
        let forgot = SegmentKey(Segment(seq: 5001, ack: 1011, ctl: .ack, window: 65535))
        let jt = Judgement(spec: spec, chain: t.chain, chainRules: tRules, outputRules: t.outputs.map(\.rule),
                           mismatches: [.segments(expected: t.outputs.map { SegmentKey($0.segment) }, observed: [forgot])])
        #expect(jt.verdictClass == .deviates && jt.requirements == [RequirementID(.should, 31)], "\(jt)")
        // A FIN held after the text: the filler releases both; a stack that kept the text but not the FIN.
        _ = fin.receive(Segment(seq: 1021, ack: 5001, ctl: [.fin, .ack], window: 65535))
        let f = fin.receive(Segment(seq: 1001, ack: 5001, ctl: .ack, window: 65535, dataLength: 10))
        #expect(fin.tcpState == .closeWait)
        let fRules = spec.chains[f.chain].rules
        let noFin = SegmentKey(Segment(seq: 5001, ack: 1021, ctl: .ack, window: 65535))
        let jf = Judgement(spec: spec, chain: f.chain, chainRules: fRules, outputRules: f.outputs.map(\.rule),
                           mismatches: [.segments(expected: f.outputs.map { SegmentKey($0.segment) }, observed: [noFin]),
                                        .state(expected: .closeWait, observed: .established)])
        #expect(jf.rules == ["fin.held.established"] && jf.verdictClass == .deviates, "\(jf)")
    }

    @Test("reports: classes counted, only failing classes fail JUnit and the baseline, deviations only under --strict")
    func renderingByClass() throws {
        func result(_ id: String, _ cls: VerdictClass?, _ v: ConformVerdict = .diverges) -> ConformResult {
            var r = ConformResult(id: id, name: id, state: "ESTABLISHED", event: "SEGMENT", input: "SEGMENT ACK", rule: "r.\(id)", citation: "RFC 9293 §3.10.7.4",
                                  verdict: v, to: nil)
            r.verdictClass = cls
            r.breaks = cls == .deviates ? ["SHLD-31"] : cls == .violates ? ["MUST-66"] : cls == .choice ? ["MAY-13"] : []
            r.requirements = r.breaks
            r.signature = "sig \(id)"
            return r
        }
        var report = ConformReport(target: "t", profile: "rfc9293", shards: ["1/1"], seconds: 1, settings: [:],
                                   results: [result("a", .violates), result("b", .deviates), result("c", .choice), result("d", .unspecified), result("e", nil, .conforms)])
        #expect(report.classCounts == "violates 1, deviates 1, choice 1, unspecified 1, timing-dependent 0")
        #expect(ConformRender.junit(report).components(separatedBy: "<failure ").count - 1 == 1)
        report.strict = true
        #expect(ConformRender.junit(report).components(separatedBy: "<failure ").count - 1 == 2)
        #expect(report.byRequirementText.contains("MUST-66: 1 test, 1 violates"), "\(report.byRequirementText)")
        #expect(report.byRequirementText.contains("MAY-13: 1 test, 1 choice"))
        // A baseline holds failing divergences only: a choice is never new, nor can it be accepted.
        Baseline.apply(try Baseline.parse("[[accepted]]\nsignature = \"sig a\"\nreason = \"known\"\n", file: "b.toml"), file: "b.toml", to: &report)
        #expect(report.baseline?.new == ["sig b"])
        #expect(report.baseline?.accepted == 1)
        let md = ConformRender.markdown(report)
        #expect(md.contains("| violates | MUST-66 |") && md.contains("By requirement"))
    }
}
