import Core
import Foundation
@testable import Fuzzer
import Generator
import Model
import Oracle
import Spec
import Targets
import TestSupport
import Testing

/// What is a finding and what is not: a divergence its case does not show again is timing-dependent; segments
/// that differ only where the peer does not look are no divergence.
@Suite("Findings that reproduce, differences no receiver sees")
struct FindingTests {
    /// A timer that closes without a word can expire just before the next input (they cross): the stack then
    /// answers from CLOSED. Here the model's timers are no longer the stack's (an ACK 100 ms after the FIN is a
    /// round-trip sample the model does not take), so the wait does not judge the orphaned FIN-WAIT-2's end, and
    /// the next ACK meets a reset: judged as the expiry and then the ACK, not as a divergence.
    @Test("an input that crosses a silent expiry (Linux's orphaned FIN-WAIT-2) is judged after it, and logged as that expiry")
    func silentExpiryCrossesInput() throws {
        var c = Fuzzer.Configuration()
        c.lanes = 1
        c.targetName = "reference"
        let spec = try Repository.spec("linux")
        let f = Fuzzer(spec: spec, target: ReferenceTarget(spec: spec), configuration: c)
        let ack = Segment(seq: 1, ack: 2, ctl: .ack, window: 65535)
        let steps: [FuzzStep] = [.call(.openActive), .segment(Segment(seq: 0, ack: 1, ctl: [.syn, .ack], window: 65535)), .call(.close),
                                 .wait(0.1), .segment(ack), .wait(61), .segment(ack)]
        let r = try #require(try f.replay(steps, untilDivergence: false))
        #expect(r.log.count == steps.count)
        #expect(r.log.allSatisfy { !$0.diverged }, "\(r.log.filter(\.diverged).map(\.mismatches))")
        let last = try #require(r.log.last)
        #expect(last.expiries.map(\.timer) == [.timeWait] && last.observed.first?.ctl == .rst && last.expectedState == .closed, "\(last)")
    }

    @Test("a divergence its case does not show again alone is timing-dependent: kept apart with its evidence, never a finding")
    func timingDependent() throws {
        let spec = try Repository.spec("rfc9293")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-timing-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var c = Fuzzer.Configuration()
        c.lanes = 1
        c.corpus = dir
        c.targetName = "reference"
        let f = Fuzzer(spec: spec, target: try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory), configuration: c)
        let steps: [FuzzStep] = [.call(.openPassive), .segment(Segment(seq: 0, ctl: .syn, window: 65535))]
        let r = try #require(try f.replay(steps, untilDivergence: false))
        #expect(r.log.count == 2 && r.log.allSatisfy { !$0.diverged })
        // As if the stack had answered the SYN a step late, once: the SYN,ACK not seen in its step.
        let lane = f.lane(0, purpose: .fuzz(index: 0))
        lane.connection.steps = r.steps
        var log = r.log
        let synack = try #require(log[1].expected.first)
        log[1].observed = []
        log[1].mismatches = [.segments(expected: [SegmentKey(synack)], observed: [])]
        lane.log = log
        try f.record(lane)
        let d = try #require(f.summary.divergences.first)
        #expect(d.timingDependent && d.replays == Fuzzer.confirmations && d.reproduced == 0)
        #expect(f.summary.findings.isEmpty)
        let path = try #require(d.casePath)
        #expect(path.contains("/timing-dependent/"), "\(path)")
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains("# timing-dependent: shown in none of 3 replays"))
        #expect(FileManager.default.fileExists(atPath: try #require(d.pcapPath)))

        // The same case with a stack that really does it: reproduced in every replay, a finding.
        let g = Fuzzer(spec: spec, target: try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory,
                                                                fault: ReferenceFault.named("listen-ack-no-rst")), configuration: c)
        let steps2: [FuzzStep] = [.call(.openPassive), .segment(Segment(seq: 0, ack: 77, ctl: .ack, window: 65535))]
        let r2 = try #require(try g.replay(steps2))
        let lane2 = g.lane(0, purpose: .fuzz(index: 0))
        lane2.connection.steps = r2.steps
        lane2.log = r2.log
        #expect(r2.log.last?.diverged == true)
        try g.record(lane2)
        let d2 = try #require(g.summary.divergences.first)
        #expect(!d2.timingDependent && d2.reproduced == Fuzzer.confirmations)
        #expect(g.summary.findings.count == 1)
    }

    @Test("a reset whose ACK bit or field alone differs is no divergence for a synchronized peer, and is one for a peer in SYN-SENT")
    func resetAcks() {
        let rst = SegmentKey(Segment(seq: 5, ctl: .rst))
        let rstAck = SegmentKey(Segment(seq: 5, ack: 9, ctl: [.rst, .ack]))
        #expect(SegmentKey.differOnlyInResetAcks([rst], [rstAck]))
        #expect(!SegmentKey.differOnlyInResetAcks([rst], [SegmentKey(Segment(seq: 6, ack: 9, ctl: [.rst, .ack]))]))
        #expect(!SegmentKey.differOnlyInResetAcks([SegmentKey(Segment(seq: 5, ack: 1, ctl: .ack))], [SegmentKey(Segment(seq: 5, ack: 2, ctl: .ack))]))
        #expect(!SegmentKey.differOnlyInResetAcks([rst], [rst]))

        // ABORT in ESTABLISHED: the spec's <SEQ=SND.NXT><CTL=RST>; a stack sending RST,ACK.
        var m = TCPModel(spec: compiled9293, configuration: .init(receiveWindow: 65535))
        let isn: UInt32 = 1000
        _ = m.apply(.call(.openPassive))
        var o = StepOracle(testerISN: isn)
        let iss: UInt32 = 5000
        var tr = m.apply(.segment(Segment(seq: isn, ctl: .syn, window: 65535)))
        _ = o.judge(&m, tr, raw: [Segment(seq: iss, ack: isn &+ 1, ctl: [.syn, .ack], window: 65535)], observedState: nil, reportsWindowShrink: true)
        // The model numbers the target's side from the ISN the oracle bound: its SYN is 0.
        tr = m.apply(.segment(Segment(seq: isn &+ 1, ack: 1, ctl: .ack, window: 65535)))
        _ = o.judge(&m, tr, raw: [], observedState: nil, reportsWindowShrink: true)
        #expect(m.tcpState == .established)
        let before = (m, o)
        tr = m.apply(.call(.abort))
        let raw = [Segment(seq: iss &+ 1, ack: isn &+ 1, ctl: [.rst, .ack], window: 0)]
        let v = o.judge(&m, tr, raw: raw, observedState: .closed, reportsWindowShrink: true, peerSynchronized: true)
        #expect(v.mismatches.isEmpty && v.equivalentDifference, "\(v.mismatches)")
        var (m2, o2) = before
        let tr2 = m2.apply(.call(.abort))
        let v2 = o2.judge(&m2, tr2, raw: raw, observedState: .closed, reportsWindowShrink: true, peerSynchronized: false)
        #expect(!v2.mismatches.isEmpty && !v2.equivalentDifference)
    }
}
