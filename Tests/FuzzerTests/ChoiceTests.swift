import Core
import Foundation
@testable import Fuzzer
import Oracle
import Report
import Spec
import Targets
import TestSupport
import Testing

/// Where RFC 9293 leaves the implementer a choice: the oracle accepts either alternative, binds it from the first
/// step that tells them apart, reports it, and holds the stack to it. The stacks here are the model itself running
/// the other alternative's profile (or a seeded fault that takes it in some states only).
@Suite("Named choices")
struct ChoiceTests {
    static func conform(stackProfile: String, fault: String? = nil, userTimeout: Double? = nil) throws -> ConformReport {
        let spec = try Repository.spec("rfc9293")
        var c = Fuzzer.Configuration()
        c.lanes = 32
        c.targetName = "reference"
        c.choices = try ChoiceSet.load(for: spec, directory: Repository.specDirectory)
        let target = try ReferenceTarget(profile: stackProfile, specDirectory: Repository.specDirectory, fault: fault.flatMap(ReferenceFault.named),
                                         userTimeout: userTimeout)
        return try Fuzzer(spec: spec, target: target, configuration: c).conform(warmupCases: 500)
    }

    @Test("the rfc9293 profile states its choices, each alternative compiles and replaces only the choice's rules")
    func catalog() throws {
        let set = try ChoiceSet.load(for: try Repository.spec("rfc9293"), directory: Repository.specDirectory)
        try set.validate()
        #expect(set.choices.allSatisfy { $0.other != nil })
        #expect(set.choices.map(\.choice.name).sorted() == ["half-duplex-close", "loss-window", "r2-reset", "rfc1337-timewait-rst", "rfc5961-ack", "rfc5961-rst", "rfc5961-syn", "shutdown-unsynchronized", "timewait-syn", "zero-window-probe"])
        // A profile that fixes its choices (linux) has none of the RFC's; its one entry is the oracle's blindness to
        // Linux's socket memory, judged per step and never bound.
        let linux = try ChoiceSet.load(for: try Repository.spec("linux"), directory: Repository.specDirectory)
        try linux.validate()
        #expect(linux.choices.map(\.choice.name) == ["linux-header-prediction"])
        #expect(linux.choices.allSatisfy { $0.choice.perStep && !$0.binds(in: .established) && $0.other != nil })
        #expect(set.choices.allSatisfy { !$0.choice.perStep })
    }

    @Test("a stack taking the other alternative conforms, and the report says which it took",
          arguments: [("rfc9293.no-rfc5961-rst", "rfc5961-rst"), ("rfc9293.no-rfc5961-syn", "rfc5961-syn"), ("rfc9293.rfc1337", "rfc1337-timewait-rst"),
                      ("rfc9293.timewait-reopen", "timewait-syn"), ("rfc9293.half-duplex-close", "half-duplex-close"),
                      ("rfc9293.no-rfc5961-ack", "rfc5961-ack"), ("rfc9293.shutdown-refused", "shutdown-unsynchronized"),
                      ("rfc9293.probe-ack", "zero-window-probe"), ("rfc9293.r2-reset", "r2-reset")])
    func otherAlternativeConforms(profile: String, choice: String) throws {
        // R2 has no upper bound in the profile: the application sets one (3 s) so that it is reached.
        let r = try Self.conform(stackProfile: profile, userTimeout: choice == "r2-reset" ? 3 : nil)
        #expect(r.count(.diverges) == 0, "\(r.results.filter { $0.verdict == .diverges }.map(\.name).prefix(5))")
        let rec = r.choices?.first { $0.name == choice }
        #expect(rec?.bound == .other, "\(String(describing: rec))")
        #expect(rec?.inconsistent == 0)
        // The tests whose step told the alternatives apart conform under the other alternative, and say so.
        // (A reopening SYN is no conformance test's own input class: the warm-up's fuzzing is what shows it.)
        if choice != "timewait-syn" {
            #expect(r.results.contains { $0.verdict == .conforms && $0.choice == "\(choice)=other" })
        }
    }

    /// No conformance test's input follows a timeout's retransmission with something new to send: the fuzzer's
    /// waits (on the reference stack's virtual clock) are what show the loss window.
    @Test("a stack counting the loss window in segments (Linux's way) conforms, and fuzzing binds the choice to it")
    func lossWindowBinds() throws {
        var c = Fuzzer.Configuration()
        c.maxCases = 4000
        c.duration = 600
        c.lanes = 32
        c.targetName = "reference"
        let spec = try Repository.spec("rfc9293")
        c.choices = try ChoiceSet.load(for: spec, directory: Repository.specDirectory)
        let target = try ReferenceTarget(profile: "rfc9293.loss-window", specDirectory: Repository.specDirectory)
        let fuzzer = try Fuzzer(spec: spec, target: target, configuration: c)
        let s = try fuzzer.run()
        #expect(s.findings.isEmpty, "\(s.findings.map(\.signature))")
        let rec = fuzzer.choiceRecords.first { $0.name == "loss-window" }
        #expect(rec?.bound == .other, "\(String(describing: rec))")
        #expect(rec?.inconsistent == 0)
    }

    @Test("the stack that follows the profile takes the first alternative of every choice it shows")
    func ownAlternative() throws {
        let own = try Self.conform(stackProfile: "rfc9293", userTimeout: 3)
        #expect(own.count(.diverges) == 0)
        for name in ["rfc5961-rst", "rfc5961-syn", "rfc5961-ack", "rfc1337-timewait-rst", "timewait-syn", "shutdown-unsynchronized", "zero-window-probe", "r2-reset"] {
            #expect(own.choices?.first { $0.name == name }?.bound == .taken, "\(name)")
        }
    }

    /// ESTABLISHED binds the choice (its tests run first); every step showing the other is the finding, classed by
    /// the rule it skipped:
    /// a reset where RFC 5961 §3's challenge is a MUST violates, in SYN-SENT (a SHOULD there) it deviates.
    @Test("a stack that challenges an in-window RST in some states and resets on one in others is inconsistent")
    func inconsistentStack() throws {
        let r = try Self.conform(stackProfile: "rfc9293", fault: "rst-no-challenge")
        let d = r.results.filter { $0.verdict == .diverges }
        #expect(!d.isEmpty)
        #expect(d.allSatisfy { ($0.clauses ?? []).contains("inconsistent choice rfc5961-rst") }, "\(d.map { $0.clauses ?? [] })")
        #expect(d.allSatisfy { $0.verdictClass == .violates || ($0.verdictClass == .deviates && $0.state == "SYN-SENT") },
                "\(d.map { ($0.state, $0.verdictClass, $0.rule) })")
        #expect(d.contains { $0.verdictClass == .violates })
        let rec = r.choices?.first { $0.name == "rfc5961-rst" }
        #expect((rec?.inconsistent ?? 0) > 0 && rec?.bound != nil)
        #expect(r.choiceLines.contains { $0.contains("INCONSISTENT") })
    }

    @Test("a per-step choice is judged under either alternative at every step and never bound; 'per-step' with 'binds-in' is refused")
    func perStep() throws {
        var b = ChoiceBook()
        b.declare(name: "p", title: "t", source: "s", requirement: nil, taken: "yes", other: "no", perStep: true)
        // What Session asks of a step in a state that does not bind it (a per-step choice binds in none).
        #expect(b.observe("p", .other, at: "first", binding: false) == nil)
        #expect(b.observe("p", .taken, at: "second", binding: false) == nil)
        #expect(b.binding("p")?.bound == nil && b.binding("p")?.beforeBinding == 2)
        #expect(b.binding("p")?.description.contains("judged per step, never bound (2 steps") == true)
        let bad = """
        [[choice]]
        name = "x"
        title = "x"
        source = "s"
        profile = "linux"
        rules = ["a"]
        taken = "a"
        other = "b"
        other-profile = "linux.x"
        binds-in = ["ESTABLISHED"]
        per-step = true
        """
        #expect(throws: ChoiceCatalog.Failure.self) { try ChoiceCatalog.parse(bad, file: "c.toml") }
        do { _ = try ChoiceCatalog.parse(bad, file: "c.toml") } catch { #expect(error.description.hasPrefix("c.toml:11:1: error: a per-step choice")) }
    }

    @Test("the book binds on the first observation, counts agreement, returns the binding a later step contradicts")
    func book() {
        var b = ChoiceBook()
        b.declare(name: "c", title: "t", source: "s", requirement: nil, taken: "yes", other: "no")
        #expect(b.observe("c", .other, at: "first") == nil)
        #expect(b.observe("c", .other, at: "second") == nil)
        #expect(b.observe("c", .taken, at: "replay", recording: false)?.bound == .other)
        #expect(b.binding("c")?.consistent == 2 && b.binding("c")?.inconsistent == 0)
        let contra = b.observe("c", .taken, at: "third")
        #expect(contra?.bound == .other && contra?.firstSeen == "first")
        #expect(b.binding("c")?.inconsistent == 1 && b.binding("c")?.inconsistentAt == ["third"])
        // Undeclared choices are not tracked.
        #expect(b.observe("nope", .taken, at: "x") == nil)
    }

    @Test("a choice naming a rule the profile lacks, or an alternative replacing another rule, is refused where it is written")
    func badChoices() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-choices-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: Repository.specDirectory) where f.hasSuffix(".tcpspec") || f == "requirements.toml" {
            try FileManager.default.copyItem(atPath: Repository.specDirectory + "/" + f, toPath: dir.appendingPathComponent(f).path)
        }
        let spec = try Repository.spec("rfc9293")
        let bad = """
            [[choice]]
            name = "x"
            title = "x"
            source = "RFC 9293 §3.10.7.4"
            profile = "rfc9293"
            rules = ["no.such.rule"]
            taken = "a"
            other = "b"
            other-profile = "rfc9293.rfc1337"
            """
        try bad.write(to: dir.appendingPathComponent("choices.toml"), atomically: true, encoding: .utf8)
        #expect { try ChoiceSet.load(for: spec, directory: dir.path) } throws: { ($0 as? ChoiceCatalog.Failure)?.description.contains("choices.toml:1:1: error: choice 'x' names rule 'no.such.rule'") ?? false }
        // The RFC 1337 alternative replaces rst.close.exact: a choice that lists another rule does not cover it.
        try bad.replacingOccurrences(of: "no.such.rule", with: "rst.challenge").write(to: dir.appendingPathComponent("choices.toml"), atomically: true, encoding: .utf8)
        #expect { try ChoiceSet.load(for: spec, directory: dir.path).validate() } throws: { ($0 as? ChoiceCatalog.Failure)?.description.contains("replaces rst.close.exact, which is not one of the choice's rules") ?? false }
        try "[[choice]]\nname = \"x\"\ncolour = \"red\"\n".write(to: dir.appendingPathComponent("choices.toml"), atomically: true, encoding: .utf8)
        #expect { try ChoiceSet.load(for: spec, directory: dir.path) } throws: { ($0 as? ChoiceCatalog.Failure)?.description.contains("choices.toml:3:1: error: unknown key 'colour'") ?? false }
        try (bad.replacingOccurrences(of: "no.such.rule", with: "rst.close.exact") + "\nbinds-in = [\"ESTABLISHED\", \"ESTABLISHD\"]\n")
            .write(to: dir.appendingPathComponent("choices.toml"), atomically: true, encoding: .utf8)
        #expect { try ChoiceSet.load(for: spec, directory: dir.path) } throws: { ($0 as? ChoiceCatalog.Failure)?.description.contains("choices.toml:10:28: error: 'binds-in' must be an array of state names") ?? false }
    }

    @Test("a step in a state that does not bind the choice passes under either alternative and binds nothing; after the binding it is held to it")
    func bookBindsIn() {
        var b = ChoiceBook()
        b.declare(name: "c", title: "t", source: "s", requirement: nil, taken: "yes", other: "no")
        #expect(b.observe("c", .other, at: "SYN-SENT", binding: false) == nil)
        #expect(b.observe("c", .taken, at: "FIN-WAIT-2", binding: false) == nil)
        #expect(b.binding("c")?.bound == nil && b.binding("c")?.beforeBinding == 2)
        #expect(b.binding("c")?.description.contains("not bound (2 steps told the alternatives apart") == true)
        #expect(b.observe("c", .taken, at: "ESTABLISHED") == nil)
        #expect(b.binding("c")?.bound == .taken && b.binding("c")?.firstSeen == "ESTABLISHED")
        let contra = b.observe("c", .other, at: "SYN-SENT again", binding: false)
        #expect(contra?.bound == .taken && b.binding("c")?.inconsistentAt == ["SYN-SENT again"])
    }

    @Test("a non-binding rule's step: either alternative before the binding, the other only when bound to it, never an inconsistency; 'non-binding' is parsed and checked")
    func nonBinding() throws {
        var b = ChoiceBook()
        b.declare(name: "c", title: "t", source: "s", requirement: nil, taken: "closes", other: "ignores")
        let before = b.explainsOther("c")
        #expect(before && b.binding("c")?.bound == nil && b.binding("c")?.beforeBinding == 1)
        let binds = b.observe("c", .taken, at: "a RST at RCV.NXT")
        #expect(binds == nil)
        // Bound to the profile's alternative: the other no longer explains such a step (the profile judges it),
        // and nothing is counted as inconsistent.
        let after = b.explainsOther("c")
        #expect(!after && b.binding("c")?.inconsistent == 0 && b.binding("c")?.consistent == 1)
        var o = ChoiceBook()
        o.declare(name: "c", title: "t", source: "s", requirement: nil, taken: "closes", other: "ignores")
        let bindsOther = o.observe("c", .other, at: "a RST at RCV.NXT")
        #expect(bindsOther == nil)
        let replayed = o.explainsOther("c", recording: false)
        #expect(replayed && o.binding("c")?.consistent == 1)
        let counted = o.explainsOther("c")
        #expect(counted && o.binding("c")?.consistent == 2)

        let set = try ChoiceSet.load(for: try Repository.spec("rfc9293"), directory: Repository.specDirectory)
        let spec = try Repository.spec("rfc9293")
        let c = try #require(set.choices.first { $0.choice.name == "rfc1337-timewait-rst" })
        let exact = try #require(spec.rules.firstIndex { $0.id == "rst.close.exact" }), paws = try #require(spec.rules.firstIndex { $0.id == "rst.close.paws" })
        #expect(c.choice.nonBinding == ["rst.close.paws"] && c.rules.contains(paws) && c.nonBinding == [paws])
        #expect(c.binds(chain: [exact]) && !c.binds(chain: [paws]))
        let bad = """
        [[choice]]
        name = "x"
        title = "x"
        source = "s"
        profile = "rfc9293"
        rules = ["rst.close.exact"]
        non-binding = ["rst.close.exact"]
        taken = "a"
        other = "b"
        other-profile = "rfc9293.rfc1337"
        """
        do {
            _ = try ChoiceCatalog.parse(bad, file: "c.toml")
            Issue.record("a rule both binding and non-binding was accepted")
        } catch { #expect(error.description.hasPrefix("c.toml:7:16: error: rule 'rst.close.exact' is in 'rules' already"), "\(error)") }
    }

    /// The RFC 5961 choices bind in ESTABLISHED (`binds-in`): a stack's reset in SYN-SENT or in a state it handles
    /// apart must not decide them, as the first step of a random order once did (conform against Linux bound
    /// rfc5961-rst from SYN-SENT and reported 308 steps in six states INCONSISTENT).
    @Test("conform binds the RFC 5961 choices from ESTABLISHED whatever the order: the binding tests run first, in every shard")
    func bindsInEstablished() throws {
        let set = try ChoiceSet.load(for: try Repository.spec("rfc9293"), directory: Repository.specDirectory)
        for name in ["rfc5961-rst", "rfc5961-syn", "rfc5961-ack"] {
            let c = try #require(set.choices.first { $0.choice.name == name })
            #expect(c.binds(in: .established) && !c.binds(in: .synSent) && !c.binds(in: .finWait2), "\(name)")
        }
        // rst-no-challenge resets in ESTABLISHED and challenges in SYN-RECEIVED, CLOSING, LAST-ACK and TIME-WAIT.
        let spec = try Repository.spec("rfc9293")
        var c = Fuzzer.Configuration()
        c.lanes = 32
        c.targetName = "reference"
        c.choices = set
        for shard in [(1, 1), (3, 4)] {
            let target = try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory, fault: ReferenceFault.named("rst-no-challenge"))
            let r = try Fuzzer(spec: spec, target: target, configuration: c).conform(shard: shard, warmupCases: 500)
            let rec = try #require(r.choices?.first { $0.name == "rfc5961-rst" })
            #expect(rec.bound == .other && rec.firstSeen?.contains("ESTABLISHED on") == true, "shard \(shard): \(rec)")
            // Every divergence is in a state that challenges; none in ESTABLISHED, FIN-WAIT-1/2 or CLOSE-WAIT.
            let states = Set(r.results.filter { $0.verdict == .diverges }.map(\.state))
            #expect(states.isSubset(of: ["SYN-SENT", "SYN-RECEIVED", "CLOSING", "LAST-ACK", "TIME-WAIT"]), "shard \(shard): \(states.sorted())")
            if shard == (1, 1) { #expect(states.contains("SYN-RECEIVED") && states.contains("LAST-ACK"), "\(states.sorted())") }
        }
    }
}
