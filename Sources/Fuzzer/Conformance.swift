import Foundation
import Link
import Model
import Report
import Spec
import Targets

/// One test of the conformance suite: a rule of the compiled spec, one partition of its guard (the values of the
/// control bits and classifiers the guard reads), in one state, and the input class chosen to exercise it.
public struct ConformCase: Sendable {
    public var id: String
    public var name: String
    public var state: Int
    public var event: EventKind
    /// Every input class where the rule decides with this partition of its guard: tried in order when one
    /// cannot be set up (the first may need a history the others do not).
    public var cells: [Int]
    public var rule: Int
    public var input: String
    /// The state the rule's chain leaves the connection in, when it changes.
    public var to: Int?
}

/// The deterministic suite `tcpspec conform` runs, generated from the spec alone.
public enum ConformSuite {
    /// One test per (state, rule, partition of the rule's guard): the first input class, in table order, where
    /// that rule decides with those guard values. Rules of events a real stack cannot be driven to (timeouts)
    /// get a test each too; they are reported unreachable.
    public static func build(_ spec: CompiledSpec) -> [ConformCase] {
        var out: [ConformCase] = []
        var seen: Set<String> = []
        var index: [String: Int] = [:]
        for s in spec.states.indices {
            for e in EventKind.allCases {
                let t = spec.table(state: s, event: e)
                for (c, ch) in t.cellChains.enumerated() where ch >= 0 {
                    let chain = spec.chains[ch]
                    let coords = t.coordinates(of: c)
                    for r in chain.rules {
                        var part: [String] = []
                        for dim in spec.rules[r].reads {
                            if let d = t.dimensions.firstIndex(of: dim) { part.append(describe(spec, dim, coords[d])) }
                        }
                        let partition = part.joined(separator: " ")
                        let id = "\(spec.states[s].name)|\(e.spelling)|\(spec.rules[r].id)|\(partition)"
                        guard seen.insert(id).inserted else {
                            if let k = index[id], out[k].cells.count < 64 { out[k].cells.append(c) }
                            continue
                        }
                        index[id] = out.count
                        let input = describeCell(spec, t, event: e, coords: coords)
                        let to = chain.finalState.flatMap { $0 == s ? nil : $0 }
                        out.append(ConformCase(id: id, name: "\(spec.states[s].name) / \(input) / \(spec.rules[r].id)", state: s, event: e,
                                               cells: [c], rule: r, input: input, to: to))
                    }
                }
            }
        }
        return out
    }

    static func describe(_ spec: CompiledSpec, _ dim: Spec.Dimension, _ v: Int) -> String {
        switch dim {
        case .bit(let b): (v == 1 ? "" : "no ") + b.description
        case .classifier(let k): "\(spec.classifiers[k].name)=\(spec.classifiers[k].values[v])"
        }
    }

    static func describeCell(_ spec: CompiledSpec, _ t: EventTable, event: EventKind, coords: [Int]) -> String {
        var bits = ControlBits()
        var classes: [String] = []
        for (d, dim) in t.dimensions.enumerated() {
            switch dim {
            case .bit(let b): if coords[d] == 1 { bits.insert(b) }
            case .classifier(let k): classes.append("\(spec.classifiers[k].name)=\(spec.classifiers[k].values[coords[d]])")
            }
        }
        let head = event == .segment ? "SEGMENT " + (bits.isEmpty ? "-" : bits.description) : event.spelling
        return ([head] + classes).joined(separator: " ")
    }
}

extension Fuzzer {
    /// Runs the conformance suite (or one shard of it: tests whose index is `shard.index - 1` modulo
    /// `shard.count`) and judges each test by the step that exercised its input class.
    /// `warmup` seconds of fuzzing first, or exactly `warmupCases` cases (reproducible: the same seed reaches the
    /// same classes whatever the machine's speed).
    public func conform(shard: (index: Int, count: Int) = (1, 1), warmup: Double = 0, warmupCases: Int? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> ConformReport {
        let start = target.clock.now
        // Warm-up: fuzz for a while, keeping the first way into each input class, so that tests whose classes
        // need a history the model search does not set up can replay one. Its own findings are not kept.
        if warmup > 0 || warmupCases != nil {
            let saved = config
            config.duration = warmupCases == nil ? warmup : 86_400
            config.maxCases = warmupCases
            config.corpus = nil
            config.minimize = false
            witnesses = [:]
            _ = try run()
            config = saved
            summary = FuzzSummary()
            signatures = config.corpus.map { CorpusWriter.existingSignatures($0) } ?? []
        }
        let all = ConformSuite.build(spec)
        let tests = all.enumerated().filter { $0.offset % shard.count == shard.index - 1 }.map(\.element)
        // Each test is its own run; tests that share their first input class share it.
        var cellOf: [String: Int] = [:]
        var cells: [(state: Int, event: EventKind, candidates: [Int])] = []
        var testsOf: [[Int]] = []
        for (i, t) in tests.enumerated() {
            let k = "\(t.state)|\(t.event.rawValue)|\(t.cells)"
            if let c = cellOf[k] {
                testsOf[c].append(i)
            } else {
                cellOf[k] = cells.count
                cells.append((t.state, t.event, t.cells))
                testsOf.append([i])
            }
        }
        var outcome: [(verdict: ConformVerdict, why: String?, log: StepLog?, signature: String?)] = Array(repeating: (.error, "not run", nil, nil), count: cells.count)
        var pending: [Int] = []
        for (c, cell) in cells.enumerated() {
            let name = spec.states[cell.state].name
            if let call = Planner.socketCallName(cell.event), !target.capabilities.calls.contains(call) {
                outcome[c] = (.unreachable, "the target does not offer the \(call) call (its capability list: \(target.capabilities.calls.sorted().joined(separator: ", ")))", nil, nil)
            } else if !Planner.events.contains(cell.event) {
                let why = cell.event == .status
                    ? "STATUS is not a call of the sockets API the targets offer"
                    : "\(cell.event.spelling) is not generated against a real stack (a timer the tester cannot cause without waiting)"
                outcome[c] = (.unreachable, why, nil, nil)
            } else if planner.recipes[name] == nil {
                outcome[c] = (.unreachable, "no way to \(name) found by searching the model from CLOSED", nil, nil)
            } else {
                pending.append(c)
            }
        }
        var lanes: [Lane] = []
        var next = 0
        // A class the shortest path does not set up (text queued, a FIN pending, ...) is tried again after
        // random steps at the state: up to `Fuzzer.conformAttempts` times, with the run's seed.
        var attempts = Array(repeating: 0, count: cells.count)
        func newConformLane(_ id: Int) -> Lane? {
            guard next < pending.count else { return nil }
            let c = pending[next]
            next += 1
            let lane = Lane(id: id, tuple: freshTuple(), spec: spec, testerISN: testerISN(), offered: target.capabilities.calls)
            lane.model.recordsInputClass = true
            let cell = cells[c]
            // Attempt k tries candidate class k mod n, along way k mod v into the state, after (k div n) mod 4
            // random steps that keep the state.
            let n = cell.candidates.count
            let ways = planner.variants[spec.states[cell.state].name] ?? [planner.recipes[spec.states[cell.state].name]!]
            let stays = (attempts[c] / n) % 4
            let detour = Array(repeating: PlanItem.stay, count: stays)
            let target = cell.candidates[attempts[c] % n]
            lane.plan = ways[attempts[c] % ways.count].map { PlanItem.step($0) } + detour + [.cell(state: cell.state, event: cell.event, cell: target)]
            // First, if the warm-up reached one of the test's classes, the way it did.
            if attempts[c] == 0, let w = witness(cell.state, cell.event, cell.candidates) {
                lane.plan = w.steps.dropLast().filter { if case .accept = $0 { false } else { true } }.map { PlanItem.step($0) }
                    + [.cell(state: cell.state, event: cell.event, cell: w.cell)]
            }
            lane.conformCell = c
            lane.caseIndex = summary.cases
            return lane
        }
        for i in 0..<config.lanes { if let l = newConformLane(i) { lanes.append(l) } }
        var done = 0
        let session = Session(spec: spec, target: target, keepFrames: false)
        var known: [String: Divergence] = [:]
        while !lanes.isEmpty {
            var work: [(Lane, FuzzStep)] = []
            var finished: [Int] = []
            for (i, lane) in lanes.enumerated() {
                if let step = nextStep(lane) {
                    work.append((lane, step))
                } else {
                    finished.append(i)
                }
            }
            for i in finished.reversed() {
                let lane = lanes[i]
                let before = summary.divergences.count
                try finish(lane)
                for d in summary.divergences[before...] { known[d.signature] = d }
                let c = lane.conformCell!
                let v = verdict(lane)
                if v.0 == .unreachable, lane.cellStep == nil, attempts[c] + 1 < max(Fuzzer.conformAttempts, min(cells[c].candidates.count * 2, 48)) {
                    attempts[c] += 1
                    pending.append(c)
                } else {
                    outcome[c] = v
                    done += 1
                    progress?(done, cells.count)
                }
                if let l = newConformLane(lane.id) {
                    lanes[i] = l
                    if let step = nextStep(l) { work.append((l, step)) }
                } else {
                    lanes.remove(at: i)
                }
            }
            if work.isEmpty { continue }
            session.reportsWindowShrink = !signatures.contains(Fuzzer.windowShrinkSignature)
            let before = work.map { $0.0.model.state }
            do {
                try session.round(work, releasing: releases)
                releases.removeAll()
            } catch let f as TargetFailure {
                releases.removeAll()
                // The stack failed as a program: the test whose case makes it fail alone is an error (its case
                // kept as a finding); the others of the round run again on the restarted stack.
                let found = summary.divergences.count
                let culprit = try recover(from: f, work.map(\.0))
                for d in summary.divergences[found...] { known[d.signature] = d }
                for (lane, _) in work {
                    let c = lane.conformCell!
                    if lane === culprit || attempts[c] + 1 >= Fuzzer.conformAttempts {
                        outcome[c] = (.error, "the stack failed: \(Session.failureReason(f))", nil, lane.log.last.map(signature))
                        done += 1
                        progress?(done, cells.count)
                    } else {
                        attempts[c] += 1
                        pending.append(c)
                    }
                    if let i = lanes.firstIndex(where: { $0 === lane }) {
                        if let l = newConformLane(lane.id) { lanes[i] = l } else { lanes.remove(at: i) }
                    }
                }
                continue
            }
            summary.steps += work.count
            for (k, (lane, _)) in work.enumerated() {
                planner.record(lane.log.last!, stateBefore: before[k])
                if lane.diverged { lane.plan.removeAll() }
            }
        }
        try releaseFinished()
        summary.seconds = target.clock.now - start
        var results: [ConformResult] = []
        for (c, ts) in testsOf.enumerated() {
            let o = outcome[c]
            for i in ts {
                let t = tests[i]
                let rule = spec.rules[t.rule]
                var r = ConformResult(id: t.id, name: t.name, state: spec.states[t.state].name, event: t.event.spelling, input: t.input,
                                      rule: rule.id, citation: rule.citationText, verdict: o.verdict, to: t.to.map { spec.states[$0].name })
                r.why = o.why
                if let l = o.log {
                    r.expected = describeOutcome(l.expected, l.expectedState)
                    r.observed = describeOutcome(l.observed, l.observedState)
                }
                if let s = o.signature {
                    r.signature = s
                    r.casePath = known[s]?.casePath
                    r.pcapPath = known[s]?.pcapPath
                }
                results.append(r)
            }
        }
        var settings: [String: String] = [:]
        for (k, v) in target.settings { settings[k] = v }
        return ConformReport(target: config.targetName, profile: spec.profile, shards: ["\(shard.index)/\(shard.count)"],
                             seconds: summary.seconds, settings: settings, results: results)
    }

    static let conformAttempts = 12

    func witness(_ state: Int, _ event: EventKind, _ candidates: [Int]) -> (steps: [FuzzStep], cell: Int)? {
        guard let ws = witnesses else { return nil }
        for c in candidates {
            if let w = ws[planner.key(state: state, event: event, cell: c)] { return (w, c) }
        }
        return nil
    }

    /// A finished conformance lane's verdict: the step that carried the test's input decides.
    func verdict(_ lane: Lane) -> (ConformVerdict, String?, StepLog?, String?) {
        let firstBad = lane.log.firstIndex(where: \.diverged)
        guard let i = lane.cellStep, i < lane.log.count else {
            if let b = firstBad {
                return (.unreachable, "the target left the model on the way, at step \(b + 1): \(signature(lane.log[b]))", nil, nil)
            }
            return (.unreachable, lane.cellMissed ?? "the input class was not reached", nil, nil)
        }
        if let b = firstBad, b < i {
            return (.unreachable, "the target left the model on the way, at step \(b + 1): \(signature(lane.log[b]))", nil, nil)
        }
        let l = lane.log[i]
        return l.diverged ? (.diverges, nil, l, signature(l)) : (.conforms, nil, l, nil)
    }
}
