import Core
import Foundation
import Generator
import Link
import Model
import Oracle
import Spec
import Targets
import Wire

/// What a run does with a divergence or a failed stack: replay a case alone, minimize it, identify it by its
/// signature, keep it in the corpus with its pcap; restart a stack that failed and find the case that made it.
extension Fuzzer {
    /// Restarts a target that failed, or ends the run with both failures when it cannot start again.
    func restartAfter(_ f: TargetFailure) throws {
        summary.restarts += 1
        do {
            try target.restart()
        } catch {
            throw TargetFailure(kind: .startFailed, detail: "the stack failed (\(f.kind.rawValue): \(f.detail)) and did not start again: \(error)", log: f.log)
        }
    }

    /// After the stack failed during a round: restart it, replay each connection of the round alone to find
    /// the one that makes it fail, and keep that case (minimized) as a finding. Returns the culprit, if found.
    func recover(from f: TargetFailure, _ failed: [Lane]) throws -> Lane? {
        try restartAfter(f)
        guard let first = failed.first, let sig = first.log.last.map({ signature($0) }) else { return nil }
        // A failure kept from a case that never made the stack fail again alone (the first connection of a round
        // in which a neighbour's input did it) is replaced by the first case that does: a later round's, or a
        // test run alone after the round. Until then every such failure looks for it (a run alone for certain;
        // a round a few times, since each costs its suspects' replays).
        let unconfirmed = summary.divergences.lastIndex { $0.signature == sig && $0.timingDependent }
        let looking = unconfirmed != nil && (failed.count == 1 || failureSearches[sig, default: 0] < 3)
        guard !signatures.contains(sig) || looking else { return nil }
        if unconfirmed != nil { failureSearches[sig, default: 0] += 1 }
        for lane in failed.prefix(Fuzzer.failureSuspects) {
            guard let r = try replay(lane.steps, isn: lane.testerISN, options: lane.agreement.offer), let last = r.log.last, last.diverged, shows(last, sig) else { continue }
            lane.connection.steps = r.steps
            lane.log = r.log
            if let i = unconfirmed {
                let old = summary.divergences.remove(at: i)
                for p in [old.casePath, old.pcapPath].compactMap({ $0 }) { try? FileManager.default.removeItem(atPath: p) }
                signatures.remove(sig)
            }
            try record(lane)
            return lane
        }
        if unconfirmed != nil { return nil }
        // No connection makes it fail alone: keep the first as found, and say so in the case.
        first.log[first.log.count - 1].mismatches.append(.notReproducedAlone(others: failed.count - 1))
        try record(first, minimize: false)
        return nil
    }

    /// How often a kept case is replayed to confirm it shows its divergence again.
    public static let confirmations = 3

    /// How many connections of a failed round are replayed alone to find the one that makes the stack fail.
    static let failureSuspects = 16

    /// Keeps a finished case's first divergence, if its signature is new: minimized, written to the corpus.
    func record(_ lane: Lane, minimize: Bool = true, seen: Double? = nil) throws {
        guard let bad = lane.log.firstIndex(where: \.diverged) else { return }
        let seen = seen ?? runClock.now - started
        var sig = signature(lane.log[bad])
        // A deferred one is already known (its signature was taken when it was set aside).
        guard recordingDeferred || !signatures.contains(sig) else { return }
        signatures.insert(sig)
        // A case that waits on a real clock takes its waits again in every replay, and replays stop the run: it
        // is kept once the run's lanes are done (`recordDeferred`), minimized only by shortening its waits.
        let waits = lane.steps.prefix(bad + 1).contains { if case .wait = $0 { true } else { false } }
        if waits, !(target.clock is VirtualClock), !recordingDeferred {
            deferred.append((lane, minimize, seen))
            return
        }
        var steps = Array(lane.steps.prefix(bad + 1))
        var log = Array(lane.log.prefix(bad + 1))
        var frames: [Frame] = []
        // The minimizer keeps a candidate only when a replay of it alone shows the divergence: its result, if any
        // was kept, is one confirmation already.
        var minimizerReproduced = false
        if keeping.minimize && minimize {
            let isn = lane.testerISN, offer = lane.agreement.offer, shrink = sig == .windowShrink, wanted = sig
            var m = Minimizer<([StepLog], [Frame])>(reproduces: { candidate in
                guard let r = try self.replay(candidate, isn: isn, options: offer, windowShrink: shrink), let last = r.log.last, last.diverged,
                      self.shows(last, wanted) else { return nil }
                minimizerReproduced = true
                return (r.steps, (r.log, r.frames))
            }, asFound: { candidate in
                // The case as found, whole: a replay that did not show the divergence may have stopped at another
                // one earlier (its steps cut short), so only its frames are kept, as the pcap of a replay.
                let r = try self.replay(candidate, isn: isn, options: offer, windowShrink: shrink)
                return (candidate, (log, r?.frames ?? []))
            })
            // A stack that failed as a program (crashed, hung) did so whatever the waits: its case is minimized by
            // dropping steps as any other, at the cost of the waits it replays.
            let failed = lane.log[bad].mismatches.contains { if case .failure = $0 { true } else { false } }
            m.onlyWaits = waits && !failed && !(target.clock is VirtualClock)
            // Only an early expiry can show in a shorter wait; a late or missing one needs the whole window.
            m.shortensWaits = lane.log[bad].mismatches.contains { if case .timer(let t) = $0 { t.kind == .early } else { false } }
            let r = try m.minimize(steps)
            steps = r.steps
            (log, frames) = r.evidence
        } else if let r = try replay(steps, isn: lane.testerISN, options: lane.agreement.offer, windowShrink: sig == .windowShrink) {
            // Its steps and log only if it showed the divergence (else it may have stopped short at another one).
            if let l = r.log.last, l.diverged, shows(l, sig) {
                steps = r.steps
                log = r.log
            }
            frames = r.frames
        }
        // Odd option lists (`OptionOddity`) take the blame only if the case without them conforms at its last step.
        var oddityNote: String?, blamed: OptionOddity?
        if let b = try blameOddities(steps, log: log, sig: sig, lane: lane) {
            (sig, steps, log, oddityNote, blamed) = (b.sig, b.steps, b.log, b.note, b.blamed)
            if let f = b.frames { frames = f }
        } else {
            return
        }
        // Kept as a finding only if the case shows it again: replayed alone a few times. One that never does is
        // timing-dependent (a stack's transmit tick landing in the next step, say): kept apart with the pcap of a
        // replay that did not show it, never a finding.
        var reproduced = minimizerReproduced ? 1 : 0, replays = reproduced
        if sig != .windowShrink {
            for _ in replays..<Fuzzer.confirmations {
                replays += 1
                guard let r = try replay(steps, isn: lane.testerISN, options: lane.agreement.offer, windowShrink: sig == .windowShrink) else { continue }
                if let l = r.log.last, l.diverged, shows(l, sig) || blamed.map({ signature(l, blaming: $0) == sig }) == true {
                    reproduced += 1
                } else if reproduced == 0 {
                    frames = r.frames
                }
            }
        }
        var d = divergence(sig, log: log, steps: steps.count, testerISN: lane.testerISN)
        d.testerOptions = lane.agreement.offer
        d.oddityNote = oddityNote
        d.reproduced = reproduced
        d.replays = replays
        d.foundAfter = seen
        if let corpus = keeping.corpus {
            let dir = d.timingDependent ? (corpus as NSString).appendingPathComponent("timing-dependent") : corpus
            let w = CorpusWriter(directory: dir, spec: spec, settings: target.settings, targetName: config.targetName, sockets: target.socketSettings, delayedAcks: target.delaysAcknowledgments)
            // Kept meanwhile by another run sharing the corpus: known, not new.
            guard let paths = try w.write(d, frames: frames, linkType: target.link.linkType) else { return }
            (d.casePath, d.pcapPath) = paths
        }
        summary.divergences.append(d)
    }

    /// Keeps the findings whose cases wait on a real clock, set aside while the run's lanes ran; returns them.
    /// `budget`: wall seconds for their replays (nil: no limit). Each replay takes the case's waits again, and a
    /// run against a real stack can set aside hundreds (measured: 173 in a 60 s run; their replays ran past 300 s):
    /// the shortest waits go first, and those left when the budget is spent are kept as found, unexamined.
    @discardableResult
    func recordDeferred(budget: Double? = nil) throws -> [Divergence] {
        let before = summary.divergences.count
        recordingDeferred = true
        defer { recordingDeferred = false }
        func waited(_ l: Lane) -> Double { l.steps.reduce(0) { t, s in if case .wait(let d) = s { t + d } else { t } } }
        let queued = budget == nil ? deferred : deferred.sorted { waited($0.lane) < waited($1.lane) }
        deferred.removeAll()
        let deadline = budget.map { runClock.now + $0 }
        for (lane, minimize, seen) in queued {
            if let deadline, runClock.now >= deadline {
                try keepUnexamined(lane, seen: seen)
                continue
            }
            try record(lane, minimize: minimize, seen: seen)
        }
        return Array(summary.divergences[before...])
    }

    /// How long a fuzz run of `duration` may spend replaying the cases it set aside: half the run, at least 30 s.
    static func deferredBudget(duration: Double) -> Double { max(30, duration / 2) }

    /// A divergence as kept: its last step described, with the rules that decided it.
    private func divergence(_ sig: Signature, log: [StepLog], steps: Int, testerISN: UInt32) -> Divergence {
        let last = log.last!
        let rules = last.rules.map { spec.rules[$0] }
        return Divergence(signature: sig, stateBefore: last.stateBefore, input: describeInput(last), expected: describeOutcome(last.expected, last.expectedState),
                          observed: describeOutcome(last.observed, last.observedState, resent: last.resent), rules: rules.map(\.id), citations: rules.map(\.citationText),
                          steps: steps, testerISN: testerISN, casePath: nil, pcapPath: nil, log: log)
    }

    /// Keeps a set-aside case as found, without replaying it: under CORPUS/unexamined/, with no pcap of its own.
    private func keepUnexamined(_ lane: Lane, seen: Double) throws {
        guard let bad = lane.log.firstIndex(where: \.diverged) else { return }
        var d = divergence(signature(lane.log[bad]), log: Array(lane.log.prefix(bad + 1)), steps: bad + 1, testerISN: lane.testerISN)
        d.foundAfter = seen
        d.testerOptions = lane.agreement.offer
        d.examined = false
        if let corpus = keeping.corpus {
            let w = CorpusWriter(directory: (corpus as NSString).appendingPathComponent("unexamined"), spec: spec, settings: target.settings, targetName: config.targetName, sockets: target.socketSettings, delayedAcks: target.delaysAcknowledgments)
            guard let paths = try w.write(d, frames: [], linkType: target.link.linkType) else { return }
            (d.casePath, d.pcapPath) = paths
        }
        summary.divergences.append(d)
    }

    /// Whether a replayed step shows the finding `sig`: the same signature; for a stack that failed as a program,
    /// a failure of the same kind (a crash is the crash whichever request it was noticed on: a heap one frame
    /// corrupted may bring the stack down on a later one). The predicate the minimizer keeps a candidate by, and
    /// the replays that confirm a kept case.
    func shows(_ l: StepLog, _ sig: Signature) -> Bool {
        let s = signature(l)
        if let a = sig.failureKind, let b = s.failureKind { return a == b }
        // A finding whose odd options were not shown to be its cause is judged without them (`blameOddities`).
        return s == sig || l.oddity != .none && signature(l, blaming: OptionOddity.none) == sig
    }

    /// Who is to blame for a kept case whose segments carry odd option lists (`OptionOddity`): the case is replayed
    /// without them. Diverging the same at its last step, the plain case is the finding (nil when that finding is
    /// known already); conforming there, the oddities are the cause (the signature keeps them); diverging earlier or
    /// not replayed, nothing is shown either way, and the step is judged without them (the case keeps them, as found).
    func blameOddities(_ steps: [FuzzStep], log: [StepLog], sig: Signature, lane: Lane) throws
        -> (sig: Signature, steps: [FuzzStep], log: [StepLog], frames: [Frame]?, note: String?, blamed: OptionOddity?)? {
        let oddSteps = steps.enumerated().compactMap { i, s in if case .segment(let x) = s, x.oddity != .none { (i, x.oddity) } else { nil } }
        let odd = oddSteps.map { "step \($0.0 + 1): \($0.1)" }
        guard !odd.isEmpty, sig.failureKind == nil, sig != .windowShrink, let last = log.last else { return (sig, steps, log, nil, nil, nil) }
        let plain = steps.map { s in if case .segment(var x) = s { x.oddity = .none; return FuzzStep.segment(x) } else { return s } }
        let r = try replay(plain, isn: lane.testerISN, options: lane.agreement.offer)
        let list = odd.joined(separator: ", ")
        if let r, r.log.count == plain.count, let p = r.log.last {
            guard p.diverged else {
                let note = "replayed without its odd options (\(list)), the case conforms at its last step: they are the cause"
                // A step after the odd one diverged (the odd segment dropped, say): put down to the odd list that
                // alone (the others left out) shows it again, else the first.
                guard last.oddity == .none, var cause = oddSteps.first else { return (sig, steps, log, nil, note, nil) }
                if oddSteps.count > 1 {
                    for (i, o) in oddSteps {
                        let only = steps.enumerated().map { j, st in if case .segment(var x) = st, j != i { x.oddity = .none; return FuzzStep.segment(x) } else { return st } }
                        if let r1 = try replay(only, isn: lane.testerISN, options: lane.agreement.offer), r1.log.count == only.count, r1.log.last?.diverged == true {
                            cause = (i, o)
                            break
                        }
                    }
                }
                // An illegal option length (MUST-7) a stack may answer by dropping the segment: its silence at the
                // step was the model's prediction too, so the model went on as if it had processed it. When the case
                // without that segment conforms at its last step, the later divergence is that permitted drop, not a
                // finding. (A stack that processed the segment wrongly, with the same later effect, goes unreported:
                // a missed finding, never a false one.)
                if cause.1.illegalLength {
                    let dropped = steps.enumerated().filter { $0.offset != cause.0 }.map(\.element)
                    if let r2 = try replay(dropped, isn: lane.testerISN, options: lane.agreement.offer), r2.log.count == dropped.count, r2.log.last?.diverged == false {
                        signatures.insert(sig)  // not examined again
                        return nil
                    }
                }
                let blamedSig = signature(last, blaming: cause.1)
                if blamedSig != sig {
                    guard recordingDeferred || !signatures.contains(blamedSig) else { return nil }
                    signatures.insert(blamedSig)
                }
                return (blamedSig, steps, log, nil, note, cause.1)
            }
            let plainSig = signature(p)
            if plainSig != sig {
                guard recordingDeferred || !signatures.contains(plainSig) else { return nil }
                signatures.insert(plainSig)
            }
            return (plainSig, r.steps, r.log, r.frames, nil, nil)
        }
        let why = r.map { "diverged at step \($0.log.count) of \(plain.count)" } ?? "could not be replayed"
        var judged = sig
        if last.oddity != .none {
            judged = signature(last, blaming: OptionOddity.none)
            if judged != sig {
                guard recordingDeferred || !signatures.contains(judged) else { return nil }
                signatures.insert(judged)
            }
        }
        return (judged, steps, log, nil, "not shown to be the cause: replayed without its odd options (\(list)), the case \(why); judged without them", nil)
    }

    /// What identifies a divergence (`Signature`): the state, the rules that decided the input, and how
    /// expected and observed differ. One faulty rule is one divergence, whichever flags or numbers of its inputs
    /// first showed it.
    /// `blaming`: the odd option list the divergence is put down to (`Judgement.odd`): nil for the step's own,
    /// `.none` for none, another for a step after an odd one (`blameOddities`).
    func signature(_ l: StepLog, blaming oddity: OptionOddity? = nil) -> Signature {
        // A delayed ACK past its bound is a finding of the step that took what it acknowledges, whichever later
        // step (a wait, another input) showed it.
        if let o = l.owedBy.first {
            let late = l.mismatches.filter { if case .timer(let t) = $0 { t.timed == .delayedAck } else { false } }
            if !late.isEmpty {
                var x = o
                x.mismatches = late
                return signature(x, blaming: oddity)
            }
        }
        let rules = l.rules.isEmpty ? describeInput(l) : l.rules.map { spec.rules[$0].id }.joined(separator: " › ")
        let j = judgement(l, blaming: oddity)
        return Signature(state: l.stateBefore, input: inputClass(l, j, blaming: oddity), decidedBy: rules, expected: l.expected, expectedState: l.expectedState,
                         observed: l.observed, observedState: l.observedState, mismatches: l.mismatches, judgement: j)
    }

    /// What the divergence of a step is, as RFC 9293 decides it.
    func judgement(_ l: StepLog, blaming oddity: OptionOddity? = nil) -> Judgement {
        let j = Judgement(spec: spec, chain: l.chain, chainRules: l.rules, outputRules: l.outputRules, mismatches: l.mismatches)
        if l.keepaliveQueued { return j.unspecified(because: Judgement.keepaliveQueuedClause, l.mismatches) }
        let odd = oddity ?? l.oddity
        if odd != .none { return j.odd(odd, l.mismatches) }
        return l.halfWay ? j.halfWay(l.mismatches) : j
    }

    /// The input class as the responsible rules see it: the segment's control bits (or the call) and the values
    /// of the classifiers they read.
    func inputClass(_ l: StepLog, _ j: Judgement, blaming oddity: OptionOddity? = nil) -> String {
        if let c = j.inconsistentChoice { return "choice \(c)" }
        guard let event = l.event, l.cell >= 0, let s = spec.stateIndex(named: l.stateBefore.rawValue) else { return "" }
        let t = spec.table(state: s, event: event)
        let coords = t.coordinates(of: l.cell)
        var head = event.spelling
        if case .segment(let seg) = l.step {
            // Only the bits input classes read; none of them (PSH or URG alone count as none) is `<none>`, one spelling.
            let bits = seg.ctl.intersection(ControlBits(ControlBits.classBits))
            head = bits.isEmpty ? "<none>" : bits.description
        }
        var parts = [head]
        let odd = oddity ?? l.oddity
        if odd != .none { parts.append((odd == l.oddity ? "" : "after-") + "odd-options=\(odd)") }
        for r in j.ruleIndices {
            for dim in spec.rules[r].reads {
                guard case .classifier(let c) = dim, let d = t.dimensions.firstIndex(of: dim) else { continue }
                let v = "\(spec.classifiers[c].name)=\(spec.classifiers[c].values[coords[d]])"
                if !parts.contains(v) { parts.append(v) }
            }
        }
        return parts.joined(separator: " ")
    }

    func describeInput(_ l: StepLog) -> String { Session.describe(l.step) }

    func describeOutcome(_ segs: [Segment], _ state: TCPState?, resent: [Segment] = []) -> String {
        let k = SegmentKey.normalize(segs)
        var out = (k.isEmpty ? "nothing" : k.map(\.description).joined(separator: ", "))
        // What it sent again is said, never hidden behind "nothing" (a stack may answer an input by resending).
        if !resent.isEmpty { out += " (and again, as sent before: " + SegmentKey.normalize(resent).map(\.description).joined(separator: ", ") + ")" }
        return out + " → \(state?.rawValue ?? "?")"
    }

    /// Runs `steps` once on `target` as a case alone, judged by `spec`, to the end (whatever diverges).
    /// `options`: what the tester offers on its SYNs (an MSS of 1460 alone unless given).
    public static func replay(_ steps: [FuzzStep], spec: CompiledSpec, on target: Target, options: TesterOptions = .mssOnly) throws -> (steps: [FuzzStep], log: [StepLog], frames: [Frame])? {
        var c = Configuration()
        c.lanes = 1
        c.testerOptions = options
        return try Fuzzer(spec: spec, target: target, configuration: c).replay(steps, untilDivergence: false)
    }

    /// Runs a case alone on a fresh connection: the steps that could run, their log up to the first
    /// divergence, and the frames both ways.
    /// `windowShrink`: whether a shrinking window counts as a divergence (only when that is the finding replayed).
    /// `untilDivergence`: stop at the first step the model does not predict (off for differential runs).
    func replay(_ steps: [FuzzStep], isn: UInt32? = nil, options: TesterOptions? = nil, windowShrink: Bool = true, untilDivergence: Bool = true) throws -> (steps: [FuzzStep], log: [StepLog], frames: [Frame])? {
        let session = self.session(keepFrames: true)
        session.reportsWindowShrink = windowShrink
        let lane = Lane(id: -1, tuple: freshTuple(), spec: spec, testerISN: isn ?? testerISN(), offered: target.capabilities.calls, purpose: .replay,
                        options: options ?? testerOptions(), ipv6: target.targetIP.isV6)
        for step in steps {
            if case .call(let c) = step, !lane.connection.callAllowed(c) { continue }
            if case .accept = step, lane.connection.accepted || !lane.connection.passive || !lane.connection.socketOpen { continue }
            if case .wait(let d) = step {
                // Alone, nothing else runs meanwhile: the wait is a sleep on the stack's clock.
                session.park(lane, step, seconds: d)
                target.clock.sleep(d)
            }
            do {
                try session.round([(lane, step)])
            } catch let f as TargetFailure {
                // The log ends with the failure; the next replay needs the stack running again.
                try restartAfter(f)
                return (lane.steps, lane.log, session.frames)
            }
            if lane.diverged && untilDivergence { break }
        }
        // An acknowledgment still held at the end is waited for, as the run that found the case did.
        if !(lane.diverged && untilDivergence), case .wait(let d)? = heldAckWait(lane) {
            session.park(lane, .wait(d), seconds: d)
            target.clock.sleep(d)
            do {
                try session.round([(lane, .wait(d))])
            } catch let f as TargetFailure {
                try restartAfter(f)
                return (lane.steps, lane.log, session.frames)
            }
        }
        do {
            _ = try target.call(.release, on: lane.tuple)
        } catch let f as TargetFailure {
            try restartAfter(f)
        }
        return (lane.steps, lane.log, session.frames)
    }
}
