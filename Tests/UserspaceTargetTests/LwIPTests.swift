import Core
import Cases
import Checker
import Foundation
@testable import Fuzzer
import Spec
import TestSupport
import Testing
import Targets

/// The real lwIP 2.1.3 (Debian liblwip-dev, its agent built by Targets/lwip/install.sh on first use) on a TAP
/// device in a namespace the target makes.
@Suite("lwIP through the agent interface", .serialized)
struct LwIPTests {
    static var description: TargetDescription { get throws { try TargetDescription.load(Repository.url("Targets/lwip.toml").path) } }

    /// The text lengths of a case file's injected segments (`< . 1:1461(1460)` gives 1460).
    static func injectedLengths(_ text: String) -> [Int] {
        text.split(separator: "\n").filter { $0.hasPrefix("< ") }.compactMap { line -> Int? in
            guard let open = line.firstIndex(of: "("), let close = line.firstIndex(of: ")") else { return nil }
            return Int(line[line.index(after: open)..<close])
        }
    }

    @Test("the generic examples pass, but for finding 1 (its resets carry ACK) exactly where the RFC's form has none")
    func examples() throws {
        let files = try CaseFolder.names("Corpus/examples")
        #expect(files.count >= 7)
        for f in files {
            let r = try CaseFolder.run("Corpus/examples", f, on: try Self.description) { t in
                #expect(t.capabilities.reportsState && t.capabilities.calls.isSuperset(of: ["listen", "accept", "connect", "send", "recv", "shutdown", "close", "abort"]))
            }
            let text = CaseReport.text(r, color: false)
            if f == "rst-closed-port.case" {
                // `> R 4242:4242(0)` answered with R.: the one mismatch, a flag, nothing else.
                let bad = r.steps.filter { if case .mismatch = $0.verdict { true } else { false } }
                #expect(bad.count == 1 && bad.first?.expected.hasPrefix("> R 4242:4242(0)") == true && bad.first?.observed.hasPrefix("> R. 4242:4242(0)") == true, "\(text)")
            } else {
                #expect(r.passed, "\(f): \(text)")
            }
        }
    }

    @Test("each kept finding of Corpus/lwip still diverges on replay, at its last step")
    func findings() throws {
        let files = try CaseFolder.names("Corpus/lwip/findings")
        #expect(files.count >= 20)
        // A sample across the findings (each replay starts a stack): a reset's form, no simultaneous open,
        // TIME-WAIT's RST to a SYN.
        for f in files where ["000-", "004-", "036-"].contains(where: { f.hasPrefix($0) }) {
            let r = try CaseFolder.run("Corpus/lwip/findings", f, on: try Self.description)
            #expect(!r.passed, "\(f) no longer diverges: \(CaseReport.text(r, color: false))")
            #expect(!r.steps.contains { if case .error = $0.verdict { true } else { false } }, "\(f): \(CaseReport.text(r, color: false))")
        }
    }

    /// A link that carries no frame for a while after the hello (a TAP reports itself running before frames pass):
    /// the agent's test knob drops its first frames, and the case still passes, because tcpspec repeats the barrier
    /// probe until one is answered before the first step.
    @Test("an agent whose first frames are lost: the link is proven before the first step, and the case passes")
    func earlyFramesLost() throws {
        var d = try Self.description
        d.settings.append(("test.drop_first_frames", "3"))
        var log = ""
        let r = try CaseFolder.run("Corpus/examples", "handshake-passive.case", on: d) { t in log = t.logTail() }
        #expect(log.contains("test.drop_first_frames: dropped"), "\(log)")
        #expect(r.passed, "\(CaseReport.text(r, color: false))")
    }

    /// A stack that crashes on a long segment: the fuzzer keeps a case that crashes it when replayed alone, with the
    /// long segment in it, and the crash reported by signal name.
    @Test("an agent that crashes on a long segment: the kept case has the segment and crashes again on replay")
    func crashOnLongSegment() throws {
        var d = try Self.description
        d.settings.append(("test.crash_on_frame_longer_than", "700"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-lwip-crash-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try AgentFuzz.run(d, name: "lwip", seed: 5, seconds: 40, cases: 150, lanes: 4, corpus: dir)
        #expect(s.restarts > 0, "no crash in \(s.cases) cases")
        let crash = try #require(s.divergences.first { if case .failure = $0.signature { true } else { false } })
        #expect(crash.reproduced > 0, "the kept case did not crash the stack again: \(crash.casePath ?? "")")
        let text = try String(contentsOfFile: try #require(crash.casePath), encoding: .utf8)
        #expect(text.contains("SIGABRT"), "\(text)")
        // The trigger is in the case: an injected segment whose text makes the frame longer than 700 octets.
        let lengths = Self.injectedLengths(text)
        #expect(lengths.contains { $0 > 700 - 54 }, "\(text)")
    }

    /// Conform against a stack that crashes on every long frame: a crash is laid on the test whose own input
    /// makes it (the round's other tests run again alone on the restarted stack), a crash on the way into a state
    /// retries the test another way, and the rest of the suite is still judged.
    @Test("conform against an agent that crashes on long frames: each error is its own test's, the rest is judged")
    func conformAroundCrashes() throws {
        var d = try Self.description
        d.settings.append(("test.crash_on_frame_longer_than", "700"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-lwip-conform-crash-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try AgentTarget(d)
        defer { t.close() }
        var config = Fuzzer.Configuration()
        config.corpus = dir
        config.targetName = "lwip"
        let f = Fuzzer(spec: try Repository.spec("rfc9293"), target: t, configuration: config)
        let report = try f.conform(warmupCases: 3000)
        let errors = report.results.filter { $0.verdict == .error }
        let own = errors.filter { !($0.why ?? "").contains("on the way") }
        #expect(!own.isEmpty, "no test's input crashed the stack")
        // The knob crashes on injected frames only: a test whose input is a call can fail only on the way to it.
        for e in own { #expect(e.event == "SEGMENT", "\(e.name): \(e.why ?? "")") }
        for e in errors { #expect((e.why ?? "").contains("target-crash"), "\(e.name): \(e.why ?? "")") }
        // Tests no long frame reaches are judged as without the knob: calls in CLOSED. (Not a segment test: its
        // input may be drawn with up to 1428 octets of text — a RST to CLOSED with 1428 octets crashed the knob and
        // was rightly laid on its test.)
        for name in ["CLOSED / OPEN-ACTIVE / open.active.r2", "CLOSED / OPEN-PASSIVE / open.passive"] {
            #expect(report.results.first { $0.name == name }?.verdict == .conforms, "\(name)")
        }
        let judged = report.results.filter { $0.verdict == .conforms || $0.verdict == .diverges }.count
        #expect(judged > errors.count, "\(judged) judged, \(errors.count) in error")
        // The crash is kept once, as a case that crashes the stack again when replayed alone.
        let crash = try #require(f.summary.divergences.first { if case .failure(let text) = $0.signature { !text.contains("insane offset") } else { false } })
        // A crash in a round of many tests may first be kept with a neighbour's case (another test's long frame
        // made it), which does not crash the stack alone; the test that does, run alone after the round,
        // replaces it (`recover`). Only one failure case is kept, and it is the culprit's.
        #expect(crash.reproduced > 0, "\(crash.casePath ?? "")")
        // lwIP's own assertion (Corpus/lwip finding 16, a segment half way round the sequence space) is a crash of
        // its own, named by its assertion: the knob's crash is the one kept for the long frames.
        let knob = f.summary.divergences.filter { if case .failure(let text) = $0.signature { !text.contains("insane offset") } else { false } }
        #expect(knob.count == 1, "\(f.summary.divergences.map(\.signature.description))")
        #expect(FileManager.default.fileExists(atPath: try #require(crash.casePath)))
    }

    /// A stack that stops answering on a long segment: the barrier probe goes unanswered, the stack is restarted
    /// and the kept case names the frame it hung on and hangs it again on replay.
    @Test("an agent that hangs on a long segment: reported as a hang, the case names the frame and hangs it again")
    func hangOnLongSegment() throws {
        var d = try Self.description
        d.settings.append(("test.hang_on_frame_longer_than", "700"))
        d.callTimeout = 1
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-lwip-hang-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try AgentFuzz.run(d, name: "lwip", seed: 5, seconds: 60, cases: 40, lanes: 4, corpus: dir)
        #expect(s.restarts > 0, "no hang in \(s.cases) cases")
        let hang = try #require(s.divergences.first { if case .failure(let what) = $0.signature { what.contains("target-hang") } else { false } })
        #expect(hang.reproduced > 0, "the kept case did not hang the stack again: \(hang.casePath ?? "")")
        let text = try String(contentsOfFile: try #require(hang.casePath), encoding: .utf8)
        #expect(text.contains("target-hang") && text.contains("the frame"), "\(text)")
        let lengths = Self.injectedLengths(text)
        #expect(lengths.contains { $0 > 700 - 54 }, "\(text)")
    }
}
