import Core
import Foundation
import Link
import Generator
import Model
import Oracle
import Report
import Solver
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

/// Tests that share their input classes (and so their run).
struct ConformGroupKey: Hashable {
    var state: Int, event: EventKind, cells: [Int]
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
                            // Every class of the partition, for the warm-up's witnesses to be looked up in: a cap here
                            // (there was one, 64) hides the reachable classes once dimensions multiply the table.
                            if let k = index[id] { out[k].cells.append(c) }
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

    /// Why no input reaches tests that share their classes, when the solver proves it: one test's partition whose
    /// values contradict whatever the TCB (every class of the tests has them), or, for a few classes, each class's
    /// own. Nil when some class may be reached (or the solver did not decide).
    public static func contradiction(_ tests: [ConformCase], spec: CompiledSpec, solver: ClassSolver) -> String? {
        guard let first = tests.first else { return nil }
        let t = spec.table(state: first.state, event: first.event)
        let name = spec.states[first.state].name
        func text(_ dims: [Int], _ coords: [Int]) -> String {
            "proven: no \(first.event.spelling) in \(name) has " + dims.map { describe(spec, t.dimensions[$0], coords[$0]) }.joined(separator: ", ")
                + " at once (their conditions contradict, whatever the TCB)"
        }
        func partition(_ test: ConformCase) -> [Int: Int] {
            let coords = t.coordinates(of: test.cells[0])
            var fixing: [Int: Int] = [:]
            for dim in spec.rules[test.rule].reads { if let d = t.dimensions.firstIndex(of: dim) { fixing[d] = coords[d] } }
            return fixing
        }
        // Each test's partition first (few values, a quick query, and its contradiction is the reason); then every
        // class of the tests at once, when they are few enough for one query.
        for test in tests {
            if case .contradiction(let dims) = solver.decide(state: test.state, event: test.event, fixing: partition(test)) {
                return text(dims, t.coordinates(of: test.cells[0]))
            }
        }
        guard first.cells.count <= 512, case .contradiction = solver.decide(state: first.state, event: first.event, anyOf: first.cells) else { return nil }
        let coords = t.coordinates(of: first.cells[0])
        var fixing: [Int: Int] = [:]
        for d in t.dimensions.indices { fixing[d] = coords[d] }
        guard case .contradiction(let dims) = solver.decide(state: first.state, event: first.event, fixing: fixing) else { return nil }
        return first.cells.count == 1 ? text(dims, coords)
            : "proven: each of its \(first.cells.count) input classes is contradictory; the first: " + text(dims, coords).dropFirst("proven: ".count)
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
        let start = runClock.now
        // Waits that only fill a way (the warm-up's, a way's random steps) stay as short as a fuzz run's default;
        // a test's own timer input waits as long as allowed (`--max-wait`: Linux's 60 s TIME-WAIT). A virtual
        // clock's waits cost nothing.
        if !(target.clock is VirtualClock) { planner.randomMaxWait = Fuzzer.defaultMaxWait }
        defer { planner.randomMaxWait = nil }
        // A test is its input class, plain: no odd option lists, no wrapping clock (the fuzzer's, not the suite's).
        let oddities = drawsOddities
        drawsOddities = false
        defer { drawsOddities = oddities }
        // Warm-up: fuzz for a while, keeping the first way into each input class, so that tests whose classes
        // need a history the model search does not set up can replay one. Its own findings are not kept.
        if warmup > 0 || warmupCases != nil {
            witnesses = [:]
            _ = try run(limits: Limits(duration: warmupCases == nil ? warmup : 86_400, maxCases: warmupCases), keeping: Keeping(corpus: nil, minimize: false))
            // The suite's own findings start afresh.
            summary = FuzzSummary()
            signatures = config.corpus.map { KnownSignatures(corpus: $0) } ?? KnownSignatures()
            keeping = Keeping(corpus: config.corpus, minimize: config.minimize)
            // The warm-up's random order must not bind the suite's choices.
            choices.reset()
        }
        let all = ConformSuite.build(spec)
        // A test of a choice's rule in a state that binds it (`binds-in`), or of a rule that binds a choice some
        // of whose rules do not (`non-binding`), runs first, in every shard (reported by its own): the choice is
        // then bound the same way whatever the order and the sharding, and the other tests are held to it.
        func bindsChoice(_ t: ConformCase) -> Bool {
            choices.set.choices.contains {
                (!$0.choice.bindsIn.isEmpty || !$0.nonBinding.isEmpty) && $0.binds(chain: [t.rule]) && $0.binds(in: spec.states[t.state].state)
            }
        }
        // This shard's tests first (the report's), then the other shards' tests that bind a choice.
        let mine = all.indices.map { $0 % shard.count == shard.index - 1 }
        let ownCount = mine.filter { $0 }.count
        let tests = all.indices.filter { mine[$0] }.map { all[$0] } + all.indices.filter { !mine[$0] && bindsChoice(all[$0]) }.map { all[$0] }
        // Each test is its own run; tests that share their first input class share it.
        typealias Key = ConformGroupKey
        var cellOf: [Key: Int] = [:]
        var cells: [(state: Int, event: EventKind, candidates: [Int])] = []
        var testsOf: [[Int]] = []
        for (i, t) in tests.enumerated() {
            let k = Key(state: t.state, event: t.event, cells: t.cells)
            if let c = cellOf[k] {
                testsOf[c].append(i)
            } else {
                cellOf[k] = cells.count
                cells.append((t.state, t.event, t.cells))
                testsOf.append([i])
            }
        }
        var outcome: [(verdict: ConformVerdict, why: String?, log: StepLog?, signature: Signature?)] = Array(repeating: (.error, "not run", nil, nil), count: cells.count)
        var pending: [Int] = []
        // Where each timer can run at all, under the profile or any alternative of its choices.
        let reach = TimerReach(specs: [spec] + config.choices.choices.compactMap { $0.other })
        var proven: Set<Int> = []
        // The solver is asked about the groups of tests no input drawn so far reached (a class some way draws, or
        // the warm-up reached, is possible): the rest of the suite needs no proof.
        var solverProven = 0, solverAsked = 0
        let solverStart = runClock.now
        func contradiction(_ c: Int) -> String? {
            let cell = cells[c]
            if witness(cell.state, cell.event, cell.candidates) != nil
                || cell.candidates.contains(where: { planner.drawingWay(state: cell.state, event: cell.event, cell: $0) != nil }) {
                return nil
            }
            solverAsked += 1
            return ConformSuite.contradiction(testsOf[c].map { tests[$0] }, spec: spec, solver: planner.solver)
        }
        for (c, cell) in cells.enumerated() {
            let name = spec.states[cell.state].name
            if let call = Planner.socketCallName(cell.event), !target.capabilities.calls.contains(call) {
                outcome[c] = (.unreachable, "the target does not offer the \(call) call (its capability list: \(target.capabilities.calls.sorted().joined(separator: ", ")))", nil, nil)
            } else if cell.event.isTimeout, let why = target.timersNotJudged {
                outcome[c] = (.unreachable, why, nil, nil)
            } else if let t = TimerName(expiring: cell.event), !reach.mayRun(t, in: cell.state) {
                proven.insert(c)
                let why = spec.states[cell.state].clears
                    ? "proven: \(name) holds no TCB, so no timer runs there (RFC 9293 §3.10.8)"
                    : t == .keepalive ? "proven: keep-alives probe only where a KEEPALIVE-TIMEOUT rule of \(spec.profile) restarts the timer, not in \(name) (RFC 9293 §3.8.4: an idle connection, nothing outstanding)"
                    : "proven: the \(t.spelling) timer never runs in \(name) (no rule of \(spec.profile) or of its choices' alternatives starts it on a way into \(name) or carries it there running)"
                outcome[c] = (.unreachable, why, nil, nil)
            } else if !Planner.drives(cell.event, under: spec) {
                let why = cell.event == .status
                    ? "STATUS is not a call of the sockets API the targets offer"
                    : cell.event == .keepaliveTimeout ? "keep-alives are off on the target, as RFC 9293 §3.8.4 MUST-25 has them by default; an application setting turns them on (Linux: --keepalive)"
                    : cell.event == .userTimeout ? "R2 has no upper bound here (\(spec.timings[.r2].map(\.text) ?? "none") for data, \(spec.timings[.r2Syn].map(\.text) ?? "none") for a SYN): no wait is sure to see the user timer expire; an application setting (Linux: --user-timeout) bounds it"
                    : "\(cell.event.spelling) is not an event the fuzzer drives"
                outcome[c] = (.unreachable, why, nil, nil)
            } else if planner.shortestWay[spec.states[cell.state].state] == nil {
                outcome[c] = (.unreachable, "no way to \(name) found by searching the model from CLOSED", nil, nil)
            } else if !cell.event.isTimeout, let why = contradiction(c) {
                proven.insert(c)
                solverProven += testsOf[c].count { $0 < ownCount }
                outcome[c] = (.unreachable, why, nil, nil)
            } else {
                pending.append(c)
            }
        }
        let solverSeconds = runClock.now - solverStart
        let binding = Set(testsOf.indices.filter { c in testsOf[c].contains { bindsChoice(tests[$0]) } })
        let run = ConformRun(fuzzer: self, cells: cells, pending: pending.filter(binding.contains), outcome: outcome, progress: progress)
        let scheduler = LaneScheduler(session: session(keepFrames: false)) { [unowned self] in !signatures.contains(.windowShrink) }
        try scheduler.run(slots: config.lanes, run)
        // TIME-WAIT's expiry tests (the longest waits) first: their waits then overlap the other tests instead of
        // trailing them. (Each part in its order: the same seed gives the same order.)
        let rest = pending.filter { !binding.contains($0) }
        run.then(rest.filter { cells[$0].event == .timeWaitTimeout } + rest.filter { cells[$0].event != .timeWaitTimeout })
        try scheduler.run(slots: config.lanes, run)
        // The tests that shared a round with a failure run again one at a time on the restarted stack, so that a
        // failure is laid on the test whose own case causes it, never on its neighbours.
        if run.isolate() { try scheduler.run(slots: 1, run) }
        for d in try recordDeferred() { run.known[d.signature] = d }
        summary.steps += scheduler.steps
        summary.seconds = runClock.now - start
        let known = run.known
        outcome = run.outcome
        var results: [ConformResult] = []
        for (c, ts) in testsOf.enumerated() {
            let o = outcome[c]
            for i in ts where i < ownCount {
                let t = tests[i]
                let rule = spec.rules[t.rule]
                var r = ConformResult(id: t.id, name: t.name, state: spec.states[t.state].name, event: t.event.spelling, input: t.input,
                                      rule: rule.id, citation: rule.citationText, verdict: o.verdict, to: t.to.map { spec.states[$0].name })
                r.why = o.why
                if proven.contains(c) { r.proven = true }
                if !rule.requirements.isEmpty { r.requirements = rule.requirements.map(\.description) }
                if o.verdict == .diverges || o.verdict == .error, let j = o.signature?.judgement {
                    r.verdictClass = j.verdictClass
                    r.breaks = j.requirements.map(\.description)
                    r.responsible = j.rules
                    r.clauses = j.clauses
                }
                if let l = o.log {
                    if let c = l.choice { r.choice = "\(c.name)=\(c.alternative.rawValue)" }
                    if l.equivalentDifference {
                        r.equivalent = "reset ACK bit/field only: expected \(describeOutcome(l.expected, l.expectedState)), observed \(describeOutcome(l.observed, l.observedState))"
                    }
                    let timers = l.expiries.map(\.description) + l.mismatches.compactMap { if case .timer(let t) = $0 { t.description } else { nil } }
                    if !timers.isEmpty { r.timers = timers }
                    r.expected = describeOutcome(l.expected, l.expectedState)
                    r.observed = describeOutcome(l.observed, l.observedState)
                }
                if let s = o.signature {
                    r.signature = s.description
                    r.casePath = known[s]?.casePath
                    if known[s]?.timingDependent == true { r.timingDependent = true }
                    r.pcapPath = known[s]?.pcapPath
                }
                results.append(r)
            }
        }
        var settings: [String: String] = [:]
        for (k, v) in target.settings { settings[k] = v }
        var report = ConformReport(target: config.targetName, profile: spec.profile, shards: ["\(shard.index)/\(shard.count)"],
                                   seconds: summary.seconds, settings: settings, results: results)
        report.choices = choiceRecords.isEmpty ? nil : choiceRecords
        report.options = summary.options.rules.records
        report.optionAgreement = summary.options.description
        report.solver = SolverRecord(proven: solverProven, asked: solverAsked, seconds: solverSeconds, undecided: planner.solver.undecided)
        return report
    }

    func witness(_ state: Int, _ event: EventKind, _ candidates: [Int]) -> (steps: [FuzzStep], cell: Int)? {
        guard let ws = witnesses else { return nil }
        for c in candidates {
            if let w = ws[planner.key(state: state, event: event, cell: c)] { return (w, c) }
        }
        return nil
    }

    /// A finished conformance lane's verdict: the step that carried the test's input decides.
    func verdict(_ lane: Lane) -> (ConformVerdict, String?, StepLog?, Signature?) {
        let firstBad = lane.log.firstIndex(where: \.diverged)
        guard case .conform(_, let carried, _) = lane.purpose, let i = carried, i < lane.log.count else {
            if let b = firstBad {
                return (.unreachable, "the target left the model on the way, at step \(b + 1): \(signature(lane.log[b]))", nil, nil)
            }
            var why: String?
            if case .conform(_, _, let missed) = lane.purpose { why = missed }
            return (.unreachable, why ?? "the input class was not reached", nil, nil)
        }
        if let b = firstBad, b < i {
            return (.unreachable, "the target left the model on the way, at step \(b + 1): \(signature(lane.log[b]))", nil, nil)
        }
        var l = lane.log[i]
        if l.heldAck, let s = lane.log[(i + 1)...].first(where: { $0.settlesAcksOf.contains(i) }) {
            // The test step's ACK came later (a stack that delays ACKs): its timing is the step's too.
            l.expiries += s.expiries.filter { $0.timed == .delayedAck }
            l.mismatches += s.mismatches.filter { if case .timer(let t) = $0 { t.timed == .delayedAck } else { false } }
        }
        if !l.diverged, let e = lane.earlyCheck { return (.unreachable, e, nil, nil) }
        if !l.diverged, l.untimedSilence {
            // Nothing was judged: no expiry came, and with the timers unknown neither silence nor the state says anything.
            let at = lane.timersUnknownAt.map { " after step \($0)" } ?? ""
            return (.unreachable, "the wait decided nothing: the model's timers were no longer the stack's\(at) (a resend outside a wait, a probe, or a segment whose effect on a timer RFC 9293 leaves open), and no expiry came", nil, nil)
        }
        return l.diverged ? (.diverges, nil, l, signature(l)) : (.conforms, nil, l, nil)
    }
}


/// The conformance suite as a scheduler's driver: each slot takes the next test's input class, along a way into its
/// state (the warm-up's witness first, then the search's ways with random steps that keep the state), and the
/// step that carried the class's input decides the test; a class not set up is tried again, up to a bound.
final class ConformRun: LaneDriver {
    typealias Outcome = (verdict: ConformVerdict, why: String?, log: StepLog?, signature: Signature?)
    unowned let fuzzer: Fuzzer
    let cells: [(state: Int, event: EventKind, candidates: [Int])]
    var pending: [Int]
    var next = 0
    var outcome: [Outcome]
    /// Attempts per class so far.
    var attempts: [Int]
    var done = 0
    let progress: ((Int, Int) -> Void)?
    /// The divergences kept, by signature (their case files).
    var known: [Signature: Divergence] = [:]
    /// Tests that were in a round when the stack failed and were not its cause: they run again alone.
    var alone: [Int] = []
    /// One lane at a time: a failure now is its test's own.
    var isolating = false
    /// Steps from the start of a way up to a step where the target left the model: later attempts take a way that
    /// does not begin so, while there is one (a stack that refuses one step of a way is not thereby unable to
    /// reach the state).
    var diverging: [[FuzzStep]] = []

    /// How often a class that was not set up is tried (at least; more where it has many candidate classes).
    static let attemptsPerClass = 12

    init(fuzzer: Fuzzer, cells: [(state: Int, event: EventKind, candidates: [Int])], pending: [Int], outcome: [Outcome], progress: ((Int, Int) -> Void)?) {
        self.fuzzer = fuzzer
        self.cells = cells
        self.pending = pending
        self.outcome = outcome
        self.progress = progress
        attempts = Array(repeating: 0, count: cells.count)
    }

    var refill: LaneScheduler.Refill { .afterCollecting }
    var exhausted: Bool { false }

    func nextStep(_ lane: Lane) -> FuzzStep? { fuzzer.nextStep(lane) }
    func roundDone() {}

    func judged(_ lane: Lane, stateBefore: Int) {
        let l = lane.log.last!
        fuzzer.planner.record(state: stateBefore, event: l.event, cell: l.cell)
    }

    /// The first attempt takes the warm-up's way to one of the test's classes, if any. Attempt k tries candidate
    /// class k mod n; with r = k div n, along the r-th (mod their number) of the ways into the state — those whose
    /// TCB admits the class on the model first (`Planner.waysAdmitting`), then the rest — after r mod 4 random
    /// steps that keep the state. A way that began with a step the target left the model on is passed over while
    /// another remains.
    func newLane(_ id: Int) -> Lane? {
        guard next < pending.count else { return nil }
        let c = pending[next]
        next += 1
        let spec = fuzzer.spec
        let lane = fuzzer.lane(id, purpose: .conform(test: c, carriedAt: nil, missed: nil))
        let cell = cells[c]
        let n = cell.candidates.count
        let state = spec.states[cell.state].state
        if attempts[c] == 0, let w = fuzzer.witness(cell.state, cell.event, cell.candidates) {
            lane.plan = w.steps.dropLast().filter { if case .accept = $0 { false } else { true } }.map { PlanItem.step($0) }
                + [.cell(state: cell.state, event: cell.event, cell: w.cell)]
            return lane
        }
        let target = cell.candidates[attempts[c] % n]
        // The survey's way to the class first, where the way decides it (keep-alive in FIN-WAIT-2 after shutdown()),
        // then those whose TCB admits the class on the model (asked only for tests the warm-up did not decide), each once.
        var preferred = fuzzer.planner.drawingWay(state: cell.state, event: cell.event, cell: target).map { [$0] } ?? []
        let all = fuzzer.planner.everyWay[state] ?? [fuzzer.planner.shortestWay[state]!]
        for w in fuzzer.planner.waysAdmitting(state: cell.state, event: cell.event, cell: target) where !preferred.contains(w) { preferred.append(w) }
        let ways = preferred + all.filter { !preferred.contains($0) }
        let round = attempts[c] / n
        let detour = Array(repeating: PlanItem.stay, count: round % 4)
        let first = round % ways.count
        let way = (0..<ways.count).lazy.map { ways[(first + $0) % ways.count] }
            .first { w in !self.diverging.contains { w.starts(with: $0) } } ?? ways[first]
        lane.plan = way.map { PlanItem.step($0) } + detour + [.cell(state: cell.state, event: cell.event, cell: target)]
        return lane
    }

    /// The next phase's tests (after those that bind the choices).
    func then(_ more: [Int]) {
        (pending, next) = (more, 0)
    }

    /// Turns to the tests set aside by failures, to run them one at a time: false when there are none.
    func isolate() -> Bool {
        guard !alone.isEmpty else { return false }
        isolating = true
        (pending, next, alone) = (alone, 0, [])
        return true
    }

    /// Whether test `c` has another attempt: more for a test with many candidate classes.
    func mayRetry(_ c: Int) -> Bool {
        attempts[c] + 1 < max(Self.attemptsPerClass, min(cells[c].candidates.count * 2, 48))
    }

    func test(of lane: Lane) -> Int {
        guard case .conform(let c, _, _) = lane.purpose else { preconditionFailure("a conformance lane without its test") }
        return c
    }

    func decided(_ c: Int, _ o: Outcome) {
        outcome[c] = o
        done += 1
        progress?(done, cells.count)
    }

    func finish(_ lane: Lane) throws {
        let before = fuzzer.summary.divergences.count
        try fuzzer.finish(lane)
        for d in fuzzer.summary.divergences[before...] { known[d.signature] = d }
        let c = test(of: lane)
        let v = fuzzer.verdict(lane)
        if v.0 == .unreachable, lane.carriedAt == nil, let b = lane.log.firstIndex(where: \.diverged), b < lane.steps.count {
            let prefix = Array(lane.steps.prefix(b + 1))
            if !diverging.contains(prefix) { diverging.append(prefix) }
        }
        // A wait that decided nothing is retried too (another way may keep the timers known).
        let undecided = lane.carriedAt.map { $0 < lane.log.count && lane.log[$0].untimedSilence && !lane.log[$0].diverged } ?? false
        if v.0 == .unreachable, lane.carriedAt == nil || undecided, mayRetry(c) {
            attempts[c] += 1
            pending.append(c)
        } else {
            decided(c, v)
        }
    }

    /// The stack failed as a program. The test whose case makes it fail alone is an error (its case kept as a
    /// finding, replayed to show the failure again); the others of the round run again later, each alone on the
    /// restarted stack (`alone`). A failure while tests run alone is the running test's own.
    func failed(_ f: TargetFailure, round: [Lane], all: [Lane]) throws -> [Lane] {
        let culprit = try fuzzer.recover(from: f, round)
        // All of them: a failure kept from a neighbour's case may have been replaced by its culprit's.
        for d in fuzzer.summary.divergences { known[d.signature] = d }
        for lane in round {
            let c = test(of: lane)
            guard lane === culprit || isolating else { alone.append(c); continue }
            let failure = Mismatch.failure(f.kind, detail: f.detail)
            if lane.carriedAt != nil {
                decided(c, (.error, "the stack failed: \(failure)", nil, lane.log.last.map { fuzzer.signature($0) }))
            } else if mayRetry(c) {
                // It failed on the way into the state (a random step that keeps it, say): not the test's input.
                attempts[c] += 1
                if isolating { pending.append(c) } else { alone.append(c) }
            } else {
                decided(c, (.error, "the stack failed on the way to the test's input, on every way tried (the last: \(failure))", nil, lane.log.last.map { fuzzer.signature($0) }))
            }
        }
        return round
    }
}
