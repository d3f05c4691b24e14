import Core
import Cases
import Foundation
import Link
import Model
import Oracle
import Spec
import Targets
import Wire

/// One step's verdict: what the case says beside what the target did.
public struct StepResult: Sendable {
    public enum Verdict: Sendable, Equatable {
        case ok
        case sent
        case mismatch([String])
        case error(String)
    }
    public var line: Int
    public var expected: String
    public var observed: String
    public var verdict: Verdict

    public var failed: Bool {
        switch verdict {
        case .mismatch, .error: true
        default: false
        }
    }
}

public struct CaseResult: Sendable {
    public var path: String
    public var steps: [StepResult]
    public var settings: [(String, String)]
    public var pcapPath: String?
    public var failures: Int { steps.filter(\.failed).count }
    public var passed: Bool { failures == 0 }
}

/// Runs a case file against a target: injects its segments, makes its calls, and compares every expected
/// segment, result and state with what the target did. It never stops at the first divergence.
public final class CaseRunner {
    public struct Options: Sendable {
        /// How long to wait for an expected segment, a state, or a call's result to settle. Half a second: a
        /// target answers within a millisecond, and a wait of a whole second would end just when Linux's first
        /// retransmission timer fires (its initial RTO is 1 s), so whether a case that waits in vain also sees
        /// that retransmission (or an orphan's reset) was a race — measured as 2 in 20 replays of a corpus case.
        public var timeout: Double = 0.5
        /// How long nothing must arrive for `> none`, and at the end of the case.
        public var settle: Double = 0.15
        public init() {}
    }

    let target: Target
    let file: CaseFile
    var options: Options
    var tuple = Tuple(targetPort: 8080, testerPort: 40000)
    var testerISN: UInt32
    var targetISN: UInt32?
    var lastTSval: UInt32?
    /// `option tester-options`: the offer and what the target agreed, which give each injected segment written
    /// without options its options (as the fuzzer's session did when the case was found). Nil: options as written.
    var agreement: OptionAgreement?
    /// The last `state` line named a state past SYN-RECEIVED (`OptionAgreement.observe`).
    var handshakeDone = true
    /// What `agreement` found wrong in the options of each segment the target sent (RFC 7323, RFC 2018, MSS): the
    /// step that takes the segment reports it, so a case replays an option finding whether or not its lines spell
    /// the options out (as the fuzzer's oracle judged it when the case was found).
    var optionFaults: [Segment: [String]] = [:]
    /// `option judge window-shrink`: the case keeps a finding of a shrinking window (RFC 9293 §3.8.6.2.2 SHLD-14), so
    /// the right edge of the target's advertisements is followed and a retreat reported at the segment that makes it
    /// — by at least one unit of its agreed scale (less is rounding, RFC 7323 §2.4). Other cases leave it to the
    /// fuzzer's oracle, which judges a shrink only when it is the finding replayed.
    let judgesWindowShrink: Bool
    var rightEdge: UInt32?
    var queue: [Packet] = []
    /// The lines being run follow a `wait`: retransmissions are expected or not, as written.
    var afterWait = false
    /// A round has begun: the next action charges its cost (`Target.roundCost`).
    var roundsBegun = false
    /// What the target has been seen to send: the same again later is a retransmission of it.
    var sent = SentSegments()
    public private(set) var frames: [Frame] = []

    public init(target: Target, file: CaseFile, options: Options = .init()) {
        self.target = target
        self.file = file
        self.options = options
        if let t = file.options["timeout"].flatMap(Durations.seconds) { self.options.timeout = t }
        if let s = file.options["settle"].flatMap(Durations.seconds) { self.options.settle = s }
        testerISN = file.options["tester-isn"].flatMap(UInt32.init) ?? 1_000_000
        if let p = file.options["target-port"].flatMap(UInt16.init) { tuple.targetPort = p }
        if let p = file.options["tester-port"].flatMap(UInt16.init) { tuple.testerPort = p }
        judgesWindowShrink = file.options["judge"] == "window-shrink"
        if let o = file.options["tester-options"].flatMap({ try? TesterOptions(parsing: $0) }) {
            agreement = OptionAgreement(offer: o, ipv6: target.targetIP.isV6)
        }
    }

    public func run() -> CaseResult {
        var steps: [StepResult] = []
        for line in file.lines {
            // The `>` lines right after a wait say all the timers sent by its end: anything more is a mismatch.
            var expectation = false
            if case .expectSegment = line.step { expectation = true }
            if case .expectNone = line.step { expectation = true }
            if afterWait, !expectation {
                if let extra = timersSentMore(at: line.line) { steps.append(extra) }
                afterWait = false
            }
            // Each action (a call, a segment, a wait's end) is a round of the run that wrote the case: the round
            // before it is charged first, as the run's clock charged it (a virtual clock's 1 ms), so a timer the
            // case's waits bring due in the run comes due here too.
            if line.step.isAction {
                if roundsBegun, target.roundCost > 0 { target.clock.sleep(target.roundCost) }
                roundsBegun = true
            }
            steps.append(step(line))
            if case .wait = line.step { afterWait = true }
        }
        if afterWait, let extra = timersSentMore(at: file.lines.last?.line ?? 0) { steps.append(extra) }
        // Whatever arrives after the last step and was not expected is a divergence too.
        drain(wait: options.settle)
        for p in queue where !isRetransmission(p) {
            steps.append(StepResult(line: file.lines.last?.line ?? 0, expected: "(end of case)", observed: "> " + show(p), verdict: .mismatch(["unexpected segment after the last step"])))
        }
        queue.removeAll()
        // A stack that died on the last step (after its call was answered, say) fails the case as a crash.
        if let f = target.failure(), !steps.contains(where: { if case .error = $0.verdict { true } else { false } }) {
            steps.append(StepResult(line: file.lines.last?.line ?? 0, expected: "(end of case)", observed: "", verdict: .error("\(f)")))
        }
        return CaseResult(path: file.path, steps: steps, settings: target.settings, pcapPath: nil)
    }

    /// What the target sent during a wait beyond the `>` lines after it (a timer that expired early, or again).
    func timersSentMore(at line: Int) -> StepResult? {
        drain(wait: 0)
        guard !queue.isEmpty else { return nil }
        defer { queue.removeAll() }
        return StepResult(line: line, expected: "(nothing more by the end of the wait)", observed: queue.map { "> " + show($0) }.joined(separator: "; "),
                          verdict: .mismatch(["the target's timers sent more than the lines after the wait expect"]))
    }

    // MARK: steps

    func step(_ l: CaseLine) -> StepResult {
        switch l.step {
        case .call(let c, let expect):
            return call(l, c, expect)
        case .inject(let seg):
            do {
                let p = try build(seg)
                let bytes = p.encode()
                try target.inject([bytes])
                frames.append(Frame(time: target.frameNow, bytes: bytes, direction: .injected))  // beside the capture's times
                return StepResult(line: l.line, expected: l.text, observed: "< " + Notation.format(p.tcp, seqBase: testerISN, ackBase: targetISN), verdict: .sent)
            } catch {
                return StepResult(line: l.line, expected: l.text, observed: "", verdict: .error("\(error)"))
            }
        case .expectSegment(let spec):
            guard let p = nextSegment(timeout: options.timeout, for: spec) else {
                if let f = target.failure() { return StepResult(line: l.line, expected: l.text, observed: "", verdict: .error("\(f)")) }
                return StepResult(line: l.line, expected: l.text, observed: "(nothing within \(ms(options.timeout)))", verdict: .mismatch(["no segment arrived"]))
            }
            if targetISN == nil, p.tcp.flags.contains(.syn), case .value(let rel) = spec.seq { targetISN = p.tcp.seq &- rel }
            let reasons = compare(spec, p) + (optionFaults.removeValue(forKey: p.tcp.segment) ?? [])
            sent.note(p.tcp.segment)
            return StepResult(line: l.line, expected: l.text, observed: "> " + show(p), verdict: reasons.isEmpty ? .ok : .mismatch(reasons))
        case .expectNone:
            drain(wait: 0)
            // After a wait a retransmission is what a timer sent, and the case says whether one was due.
            let extra = queue.filter { afterWait || !isRetransmission($0) }
            queue.removeAll()
            // Silence from a stack that died is not the silence the case expects.
            if extra.isEmpty, let f = target.failure() { return StepResult(line: l.line, expected: l.text, observed: "", verdict: .error("\(f)")) }
            if extra.isEmpty { return StepResult(line: l.line, expected: l.text, observed: "(nothing)", verdict: .ok) }
            return StepResult(line: l.line, expected: l.text, observed: extra.map { "> " + show($0) }.joined(separator: "; "), verdict: .mismatch(["expected no segment"]))
        case .state(let want):
            // The target's state as the case says it: while in SYN-RECEIVED only SYNs move the tester's TS.Recent.
            handshakeDone = want != .synReceived
            var seen: TCPState?
            let deadline = target.clock.now + options.timeout
            repeat {
                do {
                    guard let s = try target.state(of: tuple) else {
                        return StepResult(line: l.line, expected: l.text, observed: "(target reports no state)", verdict: .ok)
                    }
                    seen = s
                } catch {
                    return StepResult(line: l.line, expected: l.text, observed: "", verdict: .error("state: \(error)"))
                }
                if seen == want { return StepResult(line: l.line, expected: l.text, observed: "state \(want)", verdict: .ok) }
                target.clock.sleep(0.005)
            } while target.clock.now < deadline
            return StepResult(line: l.line, expected: l.text, observed: "state \(seen?.rawValue ?? "?")", verdict: .mismatch(["state: expected \(want), observed \(seen?.rawValue ?? "?")"]))
        case .wait(let s):
            drain(wait: s)
            return StepResult(line: l.line, expected: l.text, observed: "", verdict: .ok)
        }
    }

    func call(_ l: CaseLine, _ sc: SocketCall, _ expect: ResultSpec?) -> StepResult {
        do {
            var r = try target.call(sc, on: tuple)
            // The kernel takes injected frames asynchronously: a call that would block is retried until the
            // case's expectation can be met or the timeout passes.
            let retryable = sc == .accept || { if case .recv = sc { true } else { false } }()
            let deadline = target.clock.now + options.timeout
            while retryable, r.errno == EAGAIN, expect?.errno != .code(EAGAIN), target.clock.now < deadline {
                target.clock.sleep(0.005)
                r = try target.call(sc, on: tuple)
            }
            var reasons: [String] = []
            if let e = expect {
                if e.value != r.value && !(e.value < 0 && r.value < 0) { reasons.append("result: expected \(e.value), observed \(r.value)") }
                if case .code(let en) = e.errno, r.errno != en { reasons.append("errno: expected \(Errno.name(en)), observed \(r.errno == 0 ? "none" : Errno.name(r.errno))") }
                if e.errno == nil, r.errno != 0 { reasons.append("errno: expected success, observed \(Errno.name(r.errno))") }
            }
            return StepResult(line: l.line, expected: l.text, observed: "= \(r)", verdict: reasons.isEmpty ? .ok : .mismatch(reasons))
        } catch {
            return StepResult(line: l.line, expected: l.text, observed: "", verdict: .error("\(error)"))
        }
    }

    // MARK: segments

    func build(_ s: SegmentSpec) throws -> Packet {
        guard case .value(let rel) = s.seq, case .value(let len) = s.length else { throw RunError("an injected segment needs numbers, not *") }
        var ack: UInt32 = 0
        if let a = s.ack, case .value(let v) = a {
            // Relative to the target's ISN once a SYN from it has shown it; absolute before (no connection yet).
            ack = (targetISN ?? 0) &+ v
        }
        var window: UInt16 = 65535
        if let w = s.window, case .value(let v) = w { window = UInt16(clamping: v) }
        var tcp = TCPHeader(sourcePort: tuple.testerPort, destinationPort: tuple.targetPort, seq: testerISN &+ rel, ack: ack, flags: s.flags, window: window)
        if let u = s.urgent, case .value(let v) = u { tcp.urgentPointer = UInt16(clamping: v) }
        tcp.payload = [UInt8](repeating: 0x78, count: Int(len))
        for o in s.options ?? [] {
            switch o {
            case .mss(let v): if case .value(let x) = v { tcp.options.append(.maxSegmentSize(x)) }
            case .wscale(let v): if case .value(let x) = v { tcp.options.append(.windowScale(x)) }
            case .sackOK: tcp.options.append(.sackPermitted)
            case .nop: tcp.options.append(.noOperation)
            case .eol: tcp.options.append(.endOfList)
            case .raw(let b): tcp.options.append(.raw(b))
            case .sack(let b):
                let base = targetISN ?? 0
                tcp.options.append(.sack(stride(from: 0, to: b.count - 1, by: 2).map { TCPOption.SACKBlock(left: base &+ b[$0], right: base &+ b[$0 + 1]) }))
            case .timestamps(let val, let ecr):
                let v: UInt32 = if case .value(let x) = val { x } else { 0 }
                let e: UInt32 = if case .value(let x) = ecr { x } else { lastTSval ?? 0 }
                tcp.options.append(.timestamps(value: v, echo: e))
            }
        }
        if s.options == nil, agreement != nil {
            var seg = tcp.segment
            seg.oddity = s.oddity
            tcp.options = agreement!.prepare(seg)
        } else if s.oddity != .none {
            // Options as written (or none), with the oddity put in as the fuzzer's agreement would.
            let a = agreement ?? OptionAgreement(offer: TesterOptions(mss: nil), ipv6: target.targetIP.isV6)
            tcp.options = a.withOddity(s.oddity, tcp.options, syn: s.flags.contains(.syn), echo: lastTSval ?? 0)
        }
        tcp.dataOffsetOverride = s.dataOffset
        if let r = s.reserved { tcp.reserved = r }
        var p = target.frame(tcp)
        if s.badChecksum {
            // Any value but the right one.
            let right = try Packet.decode(p.encode(), link: .ethernet).tcp.decodedChecksum ?? 0
            p.tcp.checksumOverride = right ^ 0x5A5A
        }
        return p
    }

    /// Moves the target's frames for this connection into the queue: everything it sent in answer to what was
    /// injected and called so far (through the target's barrier, without sleeping), then whatever timers send
    /// within `wait` seconds.
    func drain(wait: Double) {
        var got: [Frame] = (try? target.barrier()) ?? []
        if wait > 0, target.clock is VirtualClock {
            // A stack on a virtual clock (the reference stack): the wait moves its time, then a barrier collects
            // what its timers sent.
            target.clock.sleep(wait)
            got += (try? target.barrier()) ?? []
        } else {
            let deadline = target.clock.now + wait
            while wait > 0, let f = target.link.next(timeout: max(0, deadline - target.clock.now)) { got.append(f) }
        }
        for f in got {
            frames.append(f)
            if let p = try? Packet.decode(f.bytes, link: target.link.linkType), p.tcp.sourcePort == tuple.targetPort, p.tcp.destinationPort == tuple.testerPort {
                queue.append(p)
                for case .timestamps(let v, _) in p.tcp.options { lastTSval = v }
                var t = TimedSegment(time: f.time, segment: p.tcp.segment, options: TCPOptionScan.scan(p.tcp), whole: p.tcp.checksumValid == true)
                if agreement != nil {
                    let faults = agreement!.observe(&t, handshakeDone: handshakeDone)
                    if !faults.isEmpty { optionFaults[p.tcp.segment, default: []] += faults.map { $0.description } }
                }
                if judgesWindowShrink, let m = followWindow(t.segment) { optionFaults[p.tcp.segment, default: []].append(m.description) }
            }
        }
    }

    /// `segment` (its window scaled as agreed) against the furthest right edge the target advertised: the shrink, if
    /// it retreats by a unit of the target's scale or more.
    func followWindow(_ segment: Segment) -> Mismatch? {
        guard segment.ctl.contains(.ack), !segment.ctl.contains(.rst) else { return nil }
        let edge = segment.ack &+ segment.window
        if segment.ctl.contains(.syn) { rightEdge = nil }
        guard let old = rightEdge, TCPModel.seqLess(edge, old) else { rightEdge = edge; return nil }
        let unit = UInt32(1) << (agreement?.targetShift ?? 0)
        guard old &- edge >= unit else { return nil }
        return .windowShrink(by: old &- edge, window: segment.window, ack: segment.ack &- testerISN, inferredShift: nil)
    }

    /// The next segment for an expectation: a retransmission is skipped unless it is what the step expects
    /// (a case may expect a timer's retransmission; otherwise a timer firing during the wait would take the
    /// place of the segment the step is waiting for, or not, by a few milliseconds).
    func nextSegment(timeout: Double, for spec: SegmentSpec? = nil) -> Packet? {
        let deadline = target.clock.now + timeout
        drain(wait: 0)
        while true {
            while let p = queue.first {
                queue.removeFirst()
                if !isRetransmission(p) || spec.map({ compare($0, p).isEmpty }) == true { return p }
            }
            let left = deadline - target.clock.now
            if left <= 0 { return nil }
            // Nothing yet: only a timer can still send it.
            drain(wait: min(left, 0.05))
        }
    }

    /// The same segment again (a timer fired) — of any segment seen so far, not only the last: a SYN,ACK
    /// still unacknowledged is retransmitted after later segments (Linux in FIN-WAIT-1 after a simultaneous
    /// open, at 1 s). Noted, not matched against the next expectation, not an unexpected segment.
    func isRetransmission(_ p: Packet) -> Bool { sent.contains(p.tcp.segment) }

    func show(_ p: Packet) -> String {
        // Before the target has shown its ISN (a RST from a closed port), its numbers are absolute.
        Notation.format(p.tcp, seqBase: targetISN, ackBase: testerISN)
    }

    func compare(_ e: SegmentSpec, _ p: Packet) -> [String] {
        var r: [String] = []
        let t = p.tcp
        // PSH is the sender's choice, and so is ECN (ECE/CWR on a SYN ask for it, RFC 3168 §6.1.1): each is
        // checked only when the expectation writes it.
        var observedFlags = e.flags.contains(.psh) ? t.flags : t.flags.subtracting(.psh)
        if !e.flags.contains(.ece) && !e.flags.contains(.cwr) { observedFlags.subtract([.ece, .cwr]) }
        if e.flags != observedFlags { r.append("flags: expected \(e.flags.notation), observed \(t.flags.notation)") }
        let seq = t.seq &- (targetISN ?? 0)
        if !e.seq.matches(seq) { r.append("seq: expected \(show(e.seq)), observed \(seq)") }
        if !e.length.matches(UInt32(t.payload.count)) { r.append("length: expected \(show(e.length)), observed \(t.payload.count)") }
        if let a = e.ack {
            if !t.flags.contains(.ack) { r.append("ack: expected \(show(a)), observed no ACK") } else if !a.matches(t.ack &- testerISN) {
                r.append("ack: expected \(show(a)), observed \(t.ack &- testerISN)")
            }
        }
        if let w = e.window, !w.matches(UInt32(t.window)) { r.append("win: expected \(show(w)), observed \(t.window)") }
        if let u = e.urgent, !u.matches(UInt32(t.urgentPointer)) { r.append("urg: expected \(show(u)), observed \(t.urgentPointer)") }
        if let opts = e.options, !optionsMatch(opts, more: e.moreOptions, t.options) {
            r.append("options: expected <\(opts.map(describe).joined(separator: ","))\(e.moreOptions ? ",..." : "")>, observed <\(t.options.map(\.notation).joined(separator: ","))>")
        }
        if t.checksumValid == false { r.append("checksum: the target's segment has a bad checksum") }
        return r
    }

    func optionsMatch(_ want: [OptionSpec], more: Bool, _ got: [TCPOption]) -> Bool {
        let got = got.filter { $0 != .endOfList }
        guard more ? got.count >= want.count : got.count == want.count else { return false }
        for (w, g) in zip(want, got) {
            switch (w, g) {
            case (.mss(let e), .maxSegmentSize(let v)): if !e.matches(v) { return false }
            case (.wscale(let e), .windowScale(let v)): if !e.matches(v) { return false }
            case (.sackOK, .sackPermitted), (.nop, .noOperation): break
            case (.timestamps(let ev, let ee), .timestamps(let v, let e)): if !ev.matches(v) || !ee.matches(e) { return false }
            case (.sack(let b), .sack(let blocks)):
                if b != blocks.flatMap({ [$0.left &- testerISN, $0.right &- testerISN] }) { return false }
            default: return false
            }
        }
        return true
    }

    func describe(_ o: OptionSpec) -> String { CaseWriter.option(o) }

    func show<T>(_ e: Expect<T>) -> String { CaseWriter.show(e) }

    func ms(_ s: Double) -> String { "\(Int((s * 1000).rounded())) ms" }
}

struct RunError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
