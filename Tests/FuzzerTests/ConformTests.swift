import Core
import Foundation
@testable import Fuzzer
import Report
import Spec
@testable import Targets
import TestSupport
import Testing

/// The conformance suite against the reference stack: generated from the spec, every reachable test conforms
/// when the stack follows it, a seeded fault fails exactly the tests of its rule, and baselines, shards and the
/// renderers behave.
@Suite("Conformance suite")
struct ConformTests {
    static func conform(_ target: Target, shard: (Int, Int) = (1, 1), corpus: String? = nil, maxWait: Double? = nil) throws -> ConformReport {
        var c = Fuzzer.Configuration()
        c.lanes = 32
        c.corpus = corpus
        c.maxWait = maxWait
        c.targetName = "reference"
        return try Fuzzer(spec: compiled9293, target: target, configuration: c).conform(shard: shard)
    }

    @Test("one test per rule and guard partition: every rule has one, ids are unique and the suite is fixed")
    func suite() {
        let a = ConformSuite.build(compiled9293), b = ConformSuite.build(compiled9293)
        #expect(a.map(\.id) == b.map(\.id))
        #expect(Set(a.map(\.id)).count == a.count)
        let ruled = Set(a.map(\.rule))
        let missing = compiled9293.rules.indices.filter { !ruled.contains($0) }.map { compiled9293.rules[$0].id }
        #expect(missing.isEmpty, "rules without a test: \(missing)")
        // A rule whose guard reads `seq` gets a test per value of `seq` it decides, in each state.
        let seqAcceptable = a.filter { compiled9293.rules[$0.rule].id == "seq.acceptable" && compiled9293.states[$0.state].name == "ESTABLISHED" }
        #expect(seqAcceptable.count >= 3, "\(seqAcceptable.map(\.id))")
    }

    @Test("the reference stack conforms to every test it reaches; a seeded fault fails its rule's tests")
    func referenceAndFault() throws {
        let clean = try Self.conform(try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory))
        #expect(clean.count(.diverges) == 0, "\(clean.results.filter { $0.verdict == .diverges }.map(\.name).prefix(5))")
        #expect(clean.count(.error) == 0)
        #expect(clean.count(.conforms) > clean.results.count / 2, "\(clean.count(.conforms)) of \(clean.results.count)")
        // Every unreachable test says why.
        #expect(clean.results.allSatisfy { $0.verdict != .unreachable || !($0.why ?? "").isEmpty })
        // Timer cells where the timer never runs are proven unreachable, and so are classes whose classifiers'
        // conditions contradict (the solver's proofs); only unreachable tests are proven (the reference stack on its
        // virtual clock reaches the rest: TIME-WAIT's expiry in TIME-WAIT conforms).
        let proven = clean.results.filter { $0.proven == true }
        #expect(proven.allSatisfy { $0.verdict == .unreachable && ($0.why ?? "").hasPrefix("proven: ") })
        let solved = proven.filter { !$0.event.hasSuffix("-TIMEOUT") }
        #expect(solved.allSatisfy { ($0.why ?? "").contains("contradict, whatever the TCB") }, "\(solved.map(\.why))")
        #expect(!solved.isEmpty && clean.solver?.proven == solved.count, "\(solved.count) proven by the solver, record \(String(describing: clean.solver))")
        #expect(proven.contains { $0.state == "ESTABLISHED" && $0.event == "TIME-WAIT-TIMEOUT" } && proven.contains { $0.state == "LISTEN" })
        #expect(clean.results.contains { $0.state == "TIME-WAIT" && $0.event == "TIME-WAIT-TIMEOUT" && $0.verdict == .conforms })
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-conform-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let faulty = try Self.conform(try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory,
                                                          fault: ReferenceFault.named("synrcvd-ignores-rst")), corpus: dir)
        let failed = faulty.results.filter { $0.verdict == .diverges }
        #expect(!failed.isEmpty)
        #expect(failed.allSatisfy { $0.state == "SYN-RECEIVED" }, "\(failed.map(\.name))")
        #expect(failed.contains { $0.rule.contains("rst") }, "\(failed.map(\.rule))")
        #expect(failed.allSatisfy { $0.casePath.map { FileManager.default.fileExists(atPath: $0) } ?? false })
        // The JUnit report carries one testcase per test and a failure per divergence.
        let junit = ConformRender.junit(faulty)
        #expect(junit.components(separatedBy: "<testcase ").count - 1 == faulty.results.count)
        #expect(junit.components(separatedBy: "<failure ").count - 1 == failed.count)
        // Shards split the suite without overlap and merge back to the whole.
        let s1 = try Self.conform(try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory), shard: (1, 2))
        let s2 = try Self.conform(try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory), shard: (2, 2))
        #expect(Set(s1.results.map(\.id)).isDisjoint(with: s2.results.map(\.id)))
        let merged = ConformReport.merge([s1, s2])!
        #expect(merged.results.map(\.id) == clean.results.map(\.id).sorted())
        #expect(merged.shards == ["1/2", "2/2"])
    }

    /// The reference stack's virtual clock would wait out 2 MSL; with a longest wait (as against a real stack) the
    /// TIME-WAIT expiry test can only catch an early expiry: a stack that keeps TIME-WAIT is "only checked early",
    /// one whose TIME-WAIT is 30 s is caught with a wait of 40 s, naming MUST-13.
    @Test("a timer whose expiry lies beyond --max-wait is still checked for an early expiry")
    func earlyExpiryWithinTheLongestWait() throws {
        func timeWaitTest(_ r: ConformReport) -> ConformResult? { r.results.first { $0.state == "TIME-WAIT" && $0.event == "TIME-WAIT-TIMEOUT" } }
        let clean = try Self.conform(try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory), maxWait: 40)
        let c = timeWaitTest(clean)
        #expect(c?.verdict == .unreachable && (c?.why ?? "").hasPrefix("only checked early"), "\(String(describing: c))")
        #expect(clean.count(.diverges) == 0)
        let short = try Self.conform(try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory, fault: ReferenceFault.named("timewait-short")),
                                     maxWait: 40)
        let f = timeWaitTest(short)
        #expect(f?.verdict == .diverges && (f?.breaks ?? []).contains("MUST-13"), "\(String(describing: f))")
        #expect((f?.observed ?? "").contains("CLOSED"), "\(String(describing: f?.observed))")
    }

    /// Keep-alive (RFC 9293 §3.8.4) on the reference stack's virtual clock: with the application's setting the
    /// KEEPALIVE-TIMEOUT tests are reached and conform (a probe at SND.NXT-1 after the idle time, the connection
    /// given up after the probes allowed); without it they are unreachable for MUST-25's default.
    @Test("keep-alive: probes and the give-up judged when the application turns it on; off by default")
    func keepalive() throws {
        let setting = KeepaliveSetting(idle: 60, interval: 10, probes: 3)
        let on = try Self.conform(try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory, keepalive: setting))
        let tests = on.results.filter { $0.event == "KEEPALIVE-TIMEOUT" }
        #expect(on.count(.diverges) == 0, "\(on.results.filter { $0.verdict == .diverges }.map(\.name).prefix(5))")
        for state in ["ESTABLISHED", "CLOSE-WAIT", "FIN-WAIT-2"] {
            for rule in [state == "ESTABLISHED" ? "keepalive.probe" : "keepalive.probe.closing", "keepalive.giveup"] {
                let t = tests.first { $0.state == state && $0.rule == rule }
                #expect(t?.verdict == .conforms, "\(state) \(rule): \(String(describing: t))")
            }
        }
        #expect(tests.contains { $0.state == "SYN-SENT" && $0.proven == true })
        let off = try Self.conform(try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory))
        let offTests = off.results.filter { $0.event == "KEEPALIVE-TIMEOUT" && $0.proven != true }
        #expect(!offTests.isEmpty && offTests.allSatisfy { $0.verdict == .unreachable && ($0.why ?? "").contains("MUST-25") })
        // A stack that gives up after one unanswered probe: in ESTABLISHED it breaks MUST-29; in CLOSE-WAIT or
        // FIN-WAIT-2, where §3.8.4 owes no probe at all, the missing probe is unspecified, not a failure.
        let faulty = try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory, fault: ReferenceFault.named("keepalive-one-probe"))
        var c = Fuzzer.Configuration()
        c.lanes = 32
        c.maxCases = 3000
        c.targetName = "reference"
        let found = try Fuzzer(spec: compiled9293, target: faulty, configuration: c).run().findings
        let established = found.filter { $0.signature.description.hasPrefix("ESTABLISHED | KEEPALIVE-TIMEOUT") }
        #expect(!established.isEmpty && established.allSatisfy { $0.signature.description.contains("violates") && $0.signature.description.contains("MUST-29") },
                "\(found.map(\.signature.description))")
        let closing = found.filter { $0.signature.description.contains("keepalive.probe.closing") }
        #expect(closing.allSatisfy { $0.signature.description.contains("| unspecified") }, "\(closing.map(\.signature.description))")
    }

    @Test("no keep-alive probe in FIN-WAIT-2 from a stack that closes with a FIN whatever is unread: unspecified, never an inconsistent choice")
    func keepaliveClosingChoice() throws {
        // RFC 9293 §3.8.4 names no states: a stack may probe in ESTABLISHED only (PyTCP). Such a stack takes the
        // primary alternative of half-duplex-close (a FIN on close()), and its silence in FIN-WAIT-2, which only
        // the other alternative explains, must not be read as that alternative (it was: "violates, inconsistent").
        let quiet = ReferenceFault(name: "no-fw2-probe", summary: "probes only in ESTABLISHED", body: """
        on KEEPALIVE-TIMEOUT in FIN-WAIT-2, CLOSE-WAIT
          cite RFC 9293 §3.8.4 "a stack's own"
          rule fault.keepalive.quiet when probes is left replaces keepalive.probe.closing
            return
        """, keepalive: KeepaliveSetting(idle: 60, interval: 10, probes: 3))
        var c = Fuzzer.Configuration()
        c.lanes = 32
        c.targetName = "reference"
        c.choices = try ChoiceSet.load(for: compiled9293, directory: Repository.specDirectory)
        let report = try Fuzzer(spec: compiled9293, target: try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory, fault: quiet),
                                configuration: c).conform()
        let diverging = report.results.filter { $0.verdict == .diverges }
        #expect(diverging.allSatisfy { $0.verdictClass == .unspecified }, "\(diverging.map { "\($0.name): \($0.signature ?? "")" })")
        let fw2 = report.results.first { $0.state == "FIN-WAIT-2" && $0.rule == "keepalive.probe.closing" }
        #expect(fw2?.verdict == .diverges && fw2?.verdictClass == .unspecified, "\(String(describing: fw2))")
        let choice = report.choices?.first { $0.name == "half-duplex-close" }
        #expect(choice?.inconsistent == 0 && choice?.bound != .other, "\(String(describing: choice))")
    }

    @Test("merged shards keep the first binding of a choice and add up its steps, those before any binding too")
    func mergeChoices() throws {
        func report(_ shard: String, bound: ChoiceAlternative?, consistent: Int, before: Int?) -> ConformReport {
            var c = ChoiceRecord(name: "rfc5961-ack", title: "RFC 5961 §5", source: "s", requirement: "MAY-12", taken: "yes", other: "no")
            c.bound = bound
            c.consistent = consistent
            c.beforeBinding = before
            var r = ConformReport(target: "t", profile: "rfc9293", shards: [shard], seconds: 1, settings: [:], results: [])
            r.choices = [c]
            return r
        }
        // The first shard saw it only in states that do not bind it; the second bound it.
        let m = try #require(ConformReport.merge([report("1/3", bound: nil, consistent: 0, before: 4), report("2/3", bound: .taken, consistent: 5, before: 2),
                                                 report("3/3", bound: .other, consistent: 3, before: nil)]))
        let c = try #require(m.choices?.first)
        #expect(c.bound == .taken && c.consistent == 5 && c.inconsistent == 3 && c.beforeBinding == 6, "\(c)")
    }

    @Test("with a case-bounded warm-up the same seed gives the same verdicts, test by test, and reaches more")
    func warmupDeterminism() throws {
        func run() throws -> ConformReport {
            var c = Fuzzer.Configuration()
            c.lanes = 32
            c.seed = 7
            c.targetName = "reference"
            return try Fuzzer(spec: compiled9293, target: try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory), configuration: c)
                .conform(warmupCases: 2000)
        }
        let a = try run(), b = try run()
        #expect(a.results.map { "\($0.id) \($0.verdict)" } == b.results.map { "\($0.id) \($0.verdict)" })
        let cold = try Self.conform(try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory))
        #expect(a.count(.conforms) >= cold.count(.conforms), "\(a.count(.conforms)) with the warm-up, \(cold.count(.conforms)) without")
        #expect(a.count(.diverges) == 0)
    }

    @Test("a baseline accepts listed divergences, names new ones and ones no longer seen; bad files get file:line:col")
    func baseline() throws {
        var r = ConformReport(target: "t", profile: "p", shards: ["1/1"], seconds: 1, settings: [:], results: [])
        var a = ConformResult(id: "A", name: "a", state: "ESTABLISHED", event: "SEGMENT", input: "x", rule: "r", citation: "c", verdict: .diverges, to: nil)
        a.signature = "sig-a"
        var b = a
        b.id = "B"
        b.signature = "sig-b"
        r.results = [a, b]
        let text = """
        # reviewed divergences
        [[accepted]]
        signature = "sig-a"
        reason = "Linux answers with a challenge ACK (RFC 5961 §3.2)"

        [[accepted]]
        signature = "sig-gone"
        reason = "fixed upstream"
        """
        let entries = try Baseline.parse(text, file: "b.toml")
        #expect(entries.map(\.signature) == ["sig-a", "sig-gone"])
        Baseline.apply(entries, file: "b.toml", to: &r)
        #expect(r.baseline?.new == ["sig-b"])
        #expect(r.baseline?.stale == ["sig-gone"])
        #expect(r.baseline?.accepted == 1)
        #expect(ConformRender.markdown(r).contains("**new**: `sig-b`"))
        func failure(_ t: String) -> String {
            do { _ = try Baseline.parse(t, file: "b.toml"); return "" } catch { return "\(error)" }
        }
        #expect(failure("[[accepted]]\nsignature = \"x\"\n") == "b.toml:1:1: error: [[accepted]] needs a reason = \"...\" (why this divergence is accepted)")
        #expect(failure("[[accepted]]\nsignature = x\nreason = \"r\"\n").hasPrefix("b.toml:2:13: error: expected a value"))
        #expect(failure("[[accepted]]\nsignature = 3\nreason = \"r\"\n") == "b.toml:2:13: error: expected a \"string\", found an integer")
        #expect(failure("[[accepted]]\nsignature = \"x\"\nreason = \"r\"\n[other]\n") == "b.toml:4:1: error: unknown table 'other'; a baseline is [[accepted]] tables")
        #expect(failure("[[accepted]]\nsignature = \"x\"\nsignature = \"y\"\n").hasPrefix("b.toml:3:1: error: key 'signature' is set twice"))
        #expect(failure("[[accepted]]\ncolour = \"red\"\n").hasPrefix("b.toml:2:1: error: unknown key 'colour'"))
        #expect(failure("signature = \"x\"\n").hasPrefix("b.toml:1:1: error: 'signature' outside an [[accepted]] table"))
    }
}
