import Core
import Model
import Solver
import Spec

/// Coverage of the model's input classes and the plans that reach the least covered: a path to the class's
/// state found by searching the model, an input drawn from the class's partitions, then a few random steps.
public final class Planner {
    public let spec: CompiledSpec
    /// Events the fuzzer drives (timeouts cannot be caused on a real stack without waiting for them). SHUTDOWN is
    /// one (shutdown(SHUT_WR)): left out, its tests were reported as timers the tester cannot cause.
    /// The retransmission and TIME-WAIT timeouts are driven by waiting (`FuzzStep.wait`) past the window the
    /// profile gives them, the user timeout (R2) too where it is bounded above (`drives`).
    public static let events: [EventKind] = [.segment, .openPassive, .openActive, .send, .receive, .close, .shutdown, .abort,
                                             .retransmissionTimeout, .timeWaitTimeout, .userTimeout, .keepaliveTimeout]

    /// Whether the fuzzer drives `event` under `spec`: USER-TIMEOUT only where R2 has an upper bound (an
    /// application set it); the RFC's "at least 100 s" is no wait that is sure to see it, and a class the planner
    /// could never draw would draw every plan to itself. KEEPALIVE-TIMEOUT only when the application turned
    /// keep-alives on (MUST-25: off by default).
    public static func drives(_ event: EventKind, under spec: CompiledSpec) -> Bool {
        guard events.contains(event) else { return false }
        switch event {
        case .userTimeout: return spec.timings[.r2]?.upper != nil || spec.timings[.r2Syn]?.upper != nil
        case .keepaliveTimeout: return spec.timings[.keepaliveIdle] != nil
        default: return true
        }
    }
    /// The target's timer margin: a wait for a timer's expiry lasts past its window by this much.
    public var timerMargin = TimerMargin.exact
    /// The longest wait a plan may make (a real stack's 60 s TIME-WAIT costs a minute of a lane).
    public var maxWait = Double.infinity
    /// The longest wait a random step may take (nil: `maxWait`): conform keeps the waits that only fill a way
    /// short, and lets the tests' own timer inputs wait as long as allowed.
    public var randomMaxWait: Double?
    /// Offsets of each (state, event) table in the flat coverage arrays.
    var offset: [Int] = []
    var hits: [UInt32] = []
    var attempts: [UInt32] = []
    /// Cells of the driven events that the compiler found possible, with their (state, event, cell); with
    /// `proveUniverse`, less those the solver proves no TCB and no input give (`ClassSolver.Exclusions`).
    public private(set) var universe: [Int] = []
    /// Classes left out of the universe as proven unreachable (`proveUniverse`).
    public var provenUnreachable: Int { proven.count }
    /// The solver checks the proofs took, and the values and pairs they decided.
    public private(set) var proofChecks = 0, proofQuestions = 0
    /// The key (`key(state:event:cell:)`) of each class proven unreachable: one the model still reached would be
    /// a wrong proof (`reachedProven`).
    var proven: Set<Int> = []
    /// Proven-unreachable classes a connection reached anyway: a contradiction between the solver's encoding of the
    /// classifiers and the model's own evaluation, to be 0.
    public private(set) var reachedProven = 0
    var universeCells: [(state: Int, event: EventKind, cell: Int)] = []
    /// Whether the search found a way to the cell's state.
    var reachable: [Bool] = []
    /// Per universe cell, its (state, event, rule chain) as an index into `chainHits`: inputs judged per chain.
    var chainKey: [Int32] = []
    var chainHits: [UInt32] = []
    /// The (state, event, rule chain) triples of the universe: the distinct ways the spec answers there.
    public var chainsInUniverse: Int { chainHits.count }
    public var chainsCovered: Int { chainHits.reduce(0) { $0 + ($1 > 0 ? 1 : 0) } }
    /// The shortest way into each state the search reached.
    public private(set) var shortestWay: [TCPState: Way] = [:]
    /// Every distinct way the search found into a state (passive or active, socket held or not): conformance
    /// runs try them in turn when a class needs the other history.
    public private(set) var everyWay: [TCPState: [Way]] = [:]
    /// `everyWay`'s ways replayed (the connection each leaves), once at start: the survey and `waysAdmitting` read them.
    private var wayConnections: [TCPState: [Connection]] = [:]
    /// Ways into states after which the model drew an input of some class (the search's, then connections the
    /// fuzzer drove: their TCBs are ones the canonical ways do not make, their models have the target's ISS and
    /// windows bound), and per universe cell the first such way (-1: none yet). Most of a profile's classes
    /// need a TCB the canonical ways do not make: a plan for one of those would spend a case against the target
    /// on a class that cannot be drawn there.
    var drawingWays: [Way] = []
    var drawingWayOfCell: [Int32] = []
    /// The universe index of each (state, event, cell) key, -1 outside it.
    var universeIndex: [Int32] = []
    /// Per universe cell: how often it was the least covered while no way to draw it was known.
    var misses: [UInt8] = []
    var probeSampler: InputSampler
    var rng: SplitMix64
    /// Reachable cells by (hits, attempts), least first; entries go stale as scores grow and are re-queued
    /// when popped (scores only grow), so a plan costs O(log n) instead of a scan of every cell.
    var queue = MinHeap()
    /// Solves a class's conditions for the TCB at hand when drawing found no input of it.
    public let solver: ClassSolver
    /// The calls the target offers (`Connection.offered`).
    let offered: Set<String>?
    /// Per class key: the indices in `everyWay` of the ways whose TCB admits an input of it (`waysAdmitting`).
    private var admitting: [Int: [Int]] = [:]

    /// The socket call that makes an RFC user call on a real stack.
    public static func socketCallName(_ e: EventKind) -> String? {
        switch e {
        case .openPassive: "listen"
        case .openActive: "connect"
        case .send: "send"
        case .receive: "recv"
        case .close: "close"
        case .abort: "abort"
        case .shutdown: "shutdown"
        default: nil
        }
    }

    /// `proveUniverse`: leave out of the universe the classes the solver proves unreachable (pairs of values that
    /// contradict; a few seconds for a profile), so that coverage counts over what can be covered.
    public init(spec: CompiledSpec, seed: UInt64, offered: Set<String>? = nil, proveUniverse: Bool = false) {
        self.spec = spec
        self.offered = offered
        solver = ClassSolver(spec: spec)
        rng = SplitMix64(seed: seed ^ 0x7063_7370_6563)
        probeSampler = InputSampler(seed: seed ^ 0x7072_6f62_6573)
        var total = 0
        // A timer's expiry in a state where the timer never runs is no class to reach (proven, TimerReach): it
        // leaves the universe, so that coverage counts over what can be covered and no plan chases it.
        let timers = TimerReach(specs: [spec])
        for s in spec.states.indices {
            for e in EventKind.allCases {
                offset.append(total)
                let t = spec.table(state: s, event: e)
                if Planner.drives(e, under: spec), TimerName(expiring: e).map({ timers.mayRun($0, in: s) }) ?? true {
                    let excluded = proveUniverse && t.cellChains.contains { $0 >= 0 } ? solver.exclusions(state: s, event: e) : nil
                    proofChecks += excluded?.checks ?? 0
                    proofQuestions += excluded?.questions ?? 0
                    for (c, ch) in t.cellChains.enumerated() where ch >= 0 {
                        if let excluded, excluded.excludes(t.coordinates(of: c)) {
                            proven.insert(total + c)
                            continue
                        }
                        universe.append(total + c)
                        universeCells.append((s, e, c))
                    }
                }
                total += t.cellCount
            }
        }
        hits = Array(repeating: 0, count: total)
        attempts = Array(repeating: 0, count: total)
        (shortestWay, everyWay) = Planner.searchWays(spec, offered: offered)
        reachable = universeCells.map { shortestWay[spec.states[$0.state].state] != nil }
        misses = Array(repeating: 0, count: universe.count)
        var chainIndex: [Int: Int32] = [:]
        chainKey = universeCells.map { (s, e, c) in
            let k = (s * EventKind.count + Int(e.rawValue)) * spec.chains.count + spec.table(state: s, event: e).cellChains[c]
            if let i = chainIndex[k] { return i }
            chainIndex[k] = Int32(chainIndex.count)
            return Int32(chainIndex.count - 1)
        }
        chainHits = Array(repeating: 0, count: chainIndex.count)
        drawingWayOfCell = Array(repeating: -1, count: universe.count)
        universeIndex = Array(repeating: -1, count: total)
        for (u, k) in universe.enumerated() { universeIndex[k] = Int32(u) }
        for st in spec.states {
            let ways = everyWay[st.state] ?? []
            if wayConnections[st.state] == nil { wayConnections[st.state] = ways.map { Planner.replay($0, spec: spec, offered: offered) } }
            for (way, lane) in zip(ways, wayConnections[st.state]!) { survey(lane, way: way, draws: 1500) }
        }
        for (i, r) in reachable.enumerated() where r { queue.push(.init(score: 0, tie: rng.next(), index: i)) }
    }

    /// Least covered first. A cell whose input could not be drawn waits as if it had been covered 4^misses
    /// times: retried ever more rarely, so that draws that keep failing cost little, yet never given up (the
    /// random steps of other cases may reach a TCB where it can be drawn, and the target may differ).
    /// (Taking first a cell whose rule chain has not run yet found all ten seeded PyTCP faults within 20 s each,
    /// median 2.8 s, against 7 of 10; it also reached longer cases than the reference faults' bounds allow in
    /// `FuzzerTests.fault` — kept on branch chain-first until those are looked into.)
    func score(_ i: Int) -> UInt64 {
        let penalty: UInt64 = misses[i] == 0 ? 0 : 1 << min(2 * UInt64(misses[i]), 30)
        return (UInt64(hits[universe[i]]) + penalty) << 32 | UInt64(attempts[universe[i]])
    }

    public func key(state: Int, event: EventKind, cell: Int) -> Int { offset[state * EventKind.count + Int(event.rawValue)] + cell }


    /// An input of this class was judged in `state`.
    public func record(state: Int, event: EventKind?, cell: Int) {
        guard let ev = event, cell >= 0 else { return }
        let k = key(state: state, event: ev, cell: cell)
        if hits[k] == 0, !proven.isEmpty, proven.contains(k) { reachedProven += 1 }
        hits[k] &+= 1
        let u = Int(universeIndex[k])
        if u >= 0 { chainHits[Int(chainKey[u])] &+= 1 }
    }

    public var covered: Int { universe.reduce(0) { $0 + (hits[$1] > 0 ? 1 : 0) } }

    /// The next case: least covered first, cells the search cannot reach last; the way into the state is the
    /// first from which the model draws an input of the class (a few cells a plan, so a plan stays cheap).
    public func nextPlan() -> [PlanItem] {
        var picked: (index: Int, way: [FuzzStep])?
        var tried = 0
        while let top = queue.pop() {
            let now = score(top.index)
            if now != top.score {
                queue.push(.init(score: now, tie: rng.next(), index: top.index))
                continue
            }
            let i = top.index
            attempts[universe[i]] &+= 1
            let (s, _, _) = universeCells[i]
            if drawingWayOfCell[i] >= 0 {
                picked = (i, drawingWays[Int(drawingWayOfCell[i])])
            } else if tried < 8 {
                misses[i] = misses[i] &+ (misses[i] < 15 ? 1 : 0)
                queue.push(.init(score: score(i), tie: rng.next(), index: i))
                tried += 1
                continue
            } else {
                // No way known for any of the least covered: this one is tried along the shortest way anyway
                // (the connection's model there has the target's ISS and windows bound, which the survey's has not).
                picked = (i, shortestWay[spec.states[s].state]!)
            }
            queue.push(.init(score: score(i), tie: rng.next(), index: i))
            break
        }
        guard let (i, way) = picked else { return [.random, .random, .random] }
        let (s, e, c) = universeCells[i]
        var plan = way.map { PlanItem.step($0) }
        plan.append(.cell(state: s, event: e, cell: c))
        for _ in 0..<(1 + Int(rng.next() % 3)) { plan.append(.random) }
        return plan
    }

    /// The way along which the survey drew an input of this class (a timer's class: on which its timer times it).
    public func drawingWay(state: Int, event: EventKind, cell: Int) -> Way? {
        let u = Int(universeIndex[key(state: state, event: event, cell: cell)])
        return u >= 0 && drawingWayOfCell[u] >= 0 ? drawingWays[Int(drawingWayOfCell[u])] : nil
    }

    /// The search's ways into the class's state whose TCB, on the model alone, admits an input of the class, in the search's
    /// order: those where a drawn input falls in it; empty when none does (a class only a solve reaches is then
    /// tried along the ways in turn, each lane solving it on its own). A test tries these first: a
    /// class may need the other kind of open, a window or a flag only some ways set (`ClassSolver.blocking` names
    /// which), and trying ways in a fixed rotation beside the class's candidates can miss the one pair that works.
    /// Cached per class.
    public func waysAdmitting(state: Int, event: EventKind, cell: Int) -> [Way] {
        let ways = everyWay[spec.states[state].state] ?? []
        let k = key(state: state, event: event, cell: cell)
        if let known = admitting[k] { return known.map { ways[$0] } }
        var sampler = InputSampler(seed: UInt64(k) ^ 0x7761_7973)
        // Drawn only: solving every way of every class undecided by the warm-up took half of conform's CPU time (Z3,
        // mostly refuting ways) and decided no more tests (linux profile: 531 conform against 534 without); a lane
        // still solves its class on the way it takes (`input(solve:)` in the fuzzer's planned step).
        let lanes = wayConnections[spec.states[state].state] ?? []
        let found = lanes.indices.filter { input(for: lanes[$0], state: state, event: event, cell: cell, sampler: &sampler) != nil }
        admitting[k] = found
        return found.map { ways[$0] }
    }

    /// Draws inputs on a connection's model and records `way` for every class they fall in that had no way yet.
    func survey(_ lane: Connection, way: Way, draws: Int) {
        let st = lane.model.state
        var wayID: Int32?
        func mark(_ event: EventKind, _ cell: Int) {
            let u = Int(universeIndex[key(state: st, event: event, cell: cell)])
            guard u >= 0, drawingWayOfCell[u] < 0 else { return }
            if wayID == nil {
                drawingWays.append(way)
                wayID = Int32(drawingWays.count - 1)
            }
            drawingWayOfCell[u] = wayID!
            // Known to be drawable now: it goes back among the least covered.
            if misses[u] != 0 {
                misses[u] = 0
                queue.push(.init(score: score(u), tie: rng.next(), index: u))
            }
        }
        let t = spec.table(state: st, event: .segment)
        var bitDims: [ControlBits] = []
        for d in t.dimensions { if case .bit(let b) = d { bitDims.append(b) } }
        // Classified in place on one copy of the model (the connection is a value the caller keeps).
        var model = lane.model
        for _ in 0..<draws {
            let drawn = probeSampler.segment(for: lane.model)
            // The table's control bits in every combination.
            var bits = ControlBits()
            for b in bitDims where probeSampler.rng.next() & 1 == 1 { bits.insert(b) }
            mark(.segment, model.cell(of: .segment(Planner.candidate(drawn, bits: bits))))
        }
        let calls: [UserCall] = [.openPassive, .openActive, .close, .abort, .shutdown] + Planner.sendSizes.map { .send($0) } + Planner.receiveSizes.map { .receive($0) }
        for c in calls where lane.callAllowed(c) {
            mark(c.event, model.cell(of: .call(c)))
        }
        // A zero-window probe's class: no input drawn here gets to it (the tester closes the window, then text
        // waits), but `timerSetup` makes that way, so it is marked as drawable along this one.
        if spec.states[st].synchronized, lane.callAllowed(.send(10)), !lane.model.timers.isRunning(.retransmission), lane.model.tcb[.sndWnd] != 0 {
            var m = Planner.probing(lane.model).model
            if m.windowProbeDue, m.timers.isRunning(.retransmission) { mark(.retransmissionTimeout, m.cell(of: .timeout(Timeout(.retransmission)))) }
        }
        // Keep-alive's classes, its expiries in turn (each probe restarts it; `timerSetup` waits through them), along
        // a way on which it runs: the way decides some (linux: FIN-WAIT-2 after close() probes nothing, after
        // shutdown() it does).
        if model.timers.isRunning(.keepalive) {
            var m = model
            for _ in 0..<8 {
                mark(.keepaliveTimeout, m.cell(of: .timeout(.keepalive)))
                guard m.apply(.timeout(.keepalive)).timersStarted & (1 << TimerName.keepalive.rawValue) != 0, m.state == st else { break }
            }
        }
    }

    /// A zero-window probe's setup: the tester's ACK of SND.NXT that closes the window it offers, and the model
    /// after it and a SEND, whose text then waits.
    static func probing(_ model: TCPModel) -> (closing: Segment, model: TCPModel) {
        let closing = Segment(seq: model.tcb[.rcvNxt], ack: model.tcb[.sndNxt], ctl: .ack, window: 0)
        var m = model
        _ = m.apply(.segment(closing))
        _ = m.apply(.call(.send(10)))
        return (closing, m)
    }

    /// Connections surveyed per state: the first few, then one in 512 (so that later, other TCBs are seen too).
    var snapshotCount: [Int: Int] = [:]
    static let snapshotsPerState = 6

    /// Surveys a connection the fuzzer drove into its state, now and then (every step would cost too much).
    /// `diverged`: the target left the model on the way (the model no longer knows its TCB).
    public func observe(_ lane: Connection, diverged: Bool) {
        guard !diverged, lane.steps.count <= 24 else { return }
        let st = lane.model.state
        let have = snapshotCount[st] ?? 0
        guard have < Planner.snapshotsPerState || rng.next() % 512 == 0 else { return }
        snapshotCount[st] = have + 1
        survey(lane, way: lane.steps, draws: 300)
    }

    /// A connection as the fuzzer's would be after `way` (the model driven by it, the socket).
    static func replay(_ way: Way, spec: CompiledSpec, offered: Set<String>?) -> Connection {
        var c = Connection(spec: spec, testerISN: 0, offered: offered)
        for step in way { c.apply(step) }
        return c
    }

    // MARK: reaching states

    /// Inputs the search tries, relative to the model's variables: the application's calls and the segments a
    /// well-behaved peer would send.
    static func canonicalSteps(_ m: TCPModel) -> [FuzzStep] {
        let rcv = m[.rcvNxt], nxt = m[.sndNxt]
        // The ordinary step first: a way into a state is kept only for the first way of its kind found, and every
        // later state's ways extend it, so a passive handshake must end with the ACK, not with the SYN,ACK at IRS
        // that RFC 9293's SYN-RECEIVED also takes (a stack that refuses it would leave every way in at step 3).
        return [
            .call(.openPassive), .call(.openActive), .call(.send(10)), .call(.close), .call(.abort),
            .segment(Segment(seq: 0, ctl: .syn, window: 65535)),
            .segment(Segment(seq: rcv, ack: nxt, ctl: .ack, window: 65535)),
            .segment(Segment(seq: rcv, ack: nxt, ctl: [.fin, .ack], window: 65535)),
            .segment(Segment(seq: rcv, ack: m[.sndUna], ctl: [.fin, .ack], window: 65535)),
            .segment(Segment(seq: rcv, ack: nxt, ctl: [.psh, .ack], window: 65535, dataLength: 10)),
            .segment(Segment(seq: 0, ack: nxt, ctl: [.syn, .ack], window: 65535)),
        ]
    }

    /// How many ways into one state (and socket) are kept, each through other states: a stack that refuses a step
    /// of one (a FIN on the ACK that ends a passive handshake) leaves the others to try.
    public static let waysPerState = 3

    /// Ways from CLOSED to each state, breadth-first over the model: the shortest into each, and every one that
    /// leaves the socket differently (passive or active, held or not, taken from the listener or not), up to
    /// `waysPerState` for each through different states.
    static func searchWays(_ spec: CompiledSpec, offered: Set<String>? = nil) -> ([TCPState: Way], [TCPState: [Way]]) {
        let initial = spec.states[spec.initialState].state
        var shortest: [TCPState: Way] = [initial: []]
        var every: [TCPState: [Way]] = [initial: [[]]]
        let start = Connection(spec: spec, testerISN: 0, offered: offered)
        var frontier = [(start, [start.wayKey])]
        // For each way key, the paths (as way keys) of the ways kept into it.
        var kept: [String: [[String]]] = [start.wayKey: [[start.wayKey]]]
        for _ in 0..<8 {
            var next: [(Connection, [String])] = []
            for (n, path) in frontier {
                for step in canonicalSteps(n.model) {
                    if case .call(let c) = step, !n.callAllowed(c) { continue }
                    var c = n
                    c.apply(step)
                    // A passive connection is taken from the listener once synchronized, as the fuzzer does.
                    if c.passive, !c.accepted, spec.states[c.model.state].synchronized {
                        c.taken()
                        c.steps.append(.accept)
                    }
                    let state = spec.states[c.model.state].state
                    if shortest[state] == nil { shortest[state] = c.steps }
                    let key = c.wayKey
                    // A step that leaves the state and socket as they were is no new way; nor is a path seen before.
                    guard !path.contains(key) else { continue }
                    let p = path + [key]
                    var ways = kept[key] ?? []
                    guard ways.count < waysPerState, !ways.contains(p) else { continue }
                    ways.append(p)
                    kept[key] = ways
                    next.append((c, p))
                    every[state, default: []].append(c.steps)
                }
            }
            frontier = next
        }
        return (shortest, every)
    }

    // MARK: drawing inputs

    /// The sizes of the SEND and RECEIVE calls drawn (and surveyed).
    public static let sendSizes: [UInt32] = [1, 10, 1000]
    public static let receiveSizes: [UInt32] = [1, 100, 100_000]

    /// A drawn segment with a class's control bits (PSH and URG as drawn), cut to fit one frame.
    public static func candidate(_ drawn: Segment, bits: ControlBits) -> Segment {
        var s = drawn
        s.ctl = bits.union(s.ctl.intersection([.psh, .urg]))
        return Connection.fitLink(s)
    }

    /// An input in the given class for the model as it is now, or nil if none was found.
    /// `solve`: when drawing finds none, solve the class for the TCB (`ClassSolver`, a few milliseconds): what a
    /// conformance test needs decided, and more than a fuzz case's plan can spend.
    public func input(for lane: Connection, state: Int, event: EventKind, cell: Int, sampler: inout InputSampler, solve: Bool = false) -> FuzzStep? {
        guard lane.model.state == state else { return nil }
        var model = lane.model
        switch event {
        case .segment:
            let bits = controlBits(state: state, cell: cell)
            for _ in 0..<120 {
                var s = Planner.candidate(sampler.segment(for: lane.model), bits: bits)
                if model.falls(.segment(s), in: cell) { return lane.step(fromModel: s) }
                // Once Timestamps are agreed the same segment with the other TSval (old or current) is a second
                // candidate: a PAWS class (drawn one time in eight) then needs no rarer luck than its neighbours.
                if InputSampler.pawsApplies(lane.model) {
                    s.tsOld.toggle()
                    if model.falls(.segment(s), in: cell) { return lane.step(fromModel: s) }
                }
                // A profile that reads TSecr (SEG.ECRFUTURE) has classes only an echo from the future reaches: one a
                // non-SYN segment can carry once TS.OK (in SYN-SENT too, where the tester's SYN,ACK will agree).
                if lane.model[.tsOK] == 1, !s.ctl.contains(.syn) {
                    s.oddity = .futureEcho
                    if model.falls(.segment(s), in: cell) { return lane.step(fromModel: s) }
                }
            }
            // Drawing is cheap and spreads the values; what it misses (an exact boundary, a sum two fields must
            // meet) is solved for this TCB.
            return solve ? solvedSegment(for: lane.model, cell: cell).map { lane.step(fromModel: $0) } : nil
        case .openPassive: return lane.callAllowed(.openPassive) ? .call(.openPassive) : nil
        case .openActive: return lane.callAllowed(.openActive) ? .call(.openActive) : nil
        case .close: return lane.callAllowed(.close) ? .call(.close) : nil
        case .abort: return lane.callAllowed(.abort) ? .call(.abort) : nil
        case .shutdown: return lane.callAllowed(.shutdown) ? .call(.shutdown) : nil
        case .send, .receive:
            for _ in 0..<50 {
                let c: UserCall = event == .send ? .send(Planner.sendSizes[Int(sampler.rng.next() % 3)]) : .receive(Planner.receiveSizes[Int(sampler.rng.next() % 3)])
                guard lane.callAllowed(c) else { return nil }
                if model.falls(.call(c), in: cell) { return .call(c) }
            }
            return nil
        case .retransmissionTimeout, .timeWaitTimeout, .userTimeout, .keepaliveTimeout:
            guard let t = TimerName(expiring: event), let d = wait(for: t, on: lane), d <= maxWait else { return nil }
            return model.falls(.timeout(Timeout(t)), in: cell) ? .wait(d) : nil
        default: return nil
        }
    }

    /// The control bits a segment class of `state` sets.
    public func controlBits(state: Int, cell: Int) -> ControlBits {
        let t = spec.table(state: state, event: .segment)
        let coords = t.coordinates(of: cell)
        var bits = ControlBits()
        for (d, dim) in t.dimensions.enumerated() { if case .bit(let b) = dim, coords[d] == 1 { bits.insert(b) } }
        return bits
    }

    /// A segment that leaves ten octets held just beyond RCV.NXT, for a class no input drawn in the state reaches
    /// without held text (text that joins it, a held FIN, a RST at its end — the linux profile's `sackend`): nil
    /// unless the class can then be drawn and the segment keeps the state. Drawn on copies; the lane is unchanged.
    public func heldTextSetup(for lane: Connection, state: Int, cell: Int, sampler: inout InputSampler) -> FuzzStep? {
        let m0 = lane.model
        guard m0.state == state, spec.states[state].synchronized, m0.heldEnd == m0[.rcvNxt], m0[.rcvWnd] > 20 else { return nil }
        let hold = Segment(seq: m0[.rcvNxt] &+ 1, ack: m0[.sndNxt], ctl: .ack, window: 65535, dataLength: 10)
        var m = m0
        _ = m.apply(.segment(hold))
        guard m.state == state, m.heldEnd != m[.rcvNxt] else { return nil }
        let bits = controlBits(state: state, cell: cell)
        for _ in 0..<120 where m.falls(.segment(Planner.candidate(sampler.segment(for: m), bits: bits)), in: cell) {
            return lane.step(fromModel: hold)
        }
        return solvedSegment(for: m, cell: cell) != nil ? lane.step(fromModel: hold) : nil
    }

    /// A segment of `cell` for the model's TCB as it is, solved (`ClassSolver`), with what the tester can write: an
    /// old TSval once PAWS applies, an echo from the future on a non-SYN once Timestamps are on.
    func solvedSegment(for m: TCPModel, cell: Int) -> Segment? {
        solver.segment(in: cell, for: m, tsOld: InputSampler.pawsApplies(m), futureEcho: m[.tsOK] == 1)
    }

    /// Why `cell` has no segment for the model's TCB as it is (`ClassSolver.blocking`), with the same tester limits
    /// as `solvedSegment`: the registers this way set that rule it out, or what the tester does not send.
    public func blocking(for m: TCPModel, cell: Int) -> ClassSolver.Blocking? {
        solver.blocking(in: cell, for: m, tsOld: InputSampler.pawsApplies(m), futureEcho: m[.tsOK] == 1)
    }

    /// A wait that lets timer `t` expire at its latest, with the target's margin and a little more.
    public func wait(for t: TimerName, on lane: Connection) -> Double? {
        guard let w = lane.model.expiry(t), let u = w.upper else { return nil }
        return lane.waitPast(t, slack: timerMargin.late(after: u) + max(0.002, timerMargin.early * 2))
    }

    /// A wait that can still catch timer `t` expiring early when its expiry is not waited for in full (its latest
    /// is beyond the longest wait, or unbounded): as long as allowed, ending at least a second before its window
    /// opens (less the margin), so that a stack that expires it by then — leaves the state, or sends what the expiry
    /// sends — is judged early (`StepOracle.judgeWait`) and one that does not has shown only that. Nil when the
    /// expiry can be waited for, the class is not this timer's expiry, or its window opens too soon to check.
    /// With the wait, the window it checks.
    public func earlyCheckWait(for t: TimerName, on lane: Connection, cell: Int) -> (wait: Double, window: ExpiryWindow)? {
        guard maxWait >= 1, let w = lane.model.expiry(t), let l = w.lower else { return nil }
        if let d = wait(for: t, on: lane), d <= maxWait { return nil }
        var model = lane.model  // (`falls` classifies in place)
        guard model.falls(.timeout(Timeout(t)), in: cell) else { return nil }
        let left = l - lane.timerAges[Int(t.rawValue)] - timerMargin.early - 1
        return left >= 1 ? (min(maxWait, left), w) : nil
    }

    /// Whether `input` restarts a running timer whose expiry sends nothing (TIME-WAIT's, on a retransmitted FIN):
    /// a stack that ignores such a restart shows it only by the state it is in when the first start's window has
    /// passed, so a fuzz case checks it with `restartSetupWait` and `restartCheckWait`.
    public func silentRestart(by input: Input, on model: TCPModel) -> TimerName? {
        var m = model
        let started = m.apply(input).timersStarted
        for t in TimerName.allCases where started & (1 << t.rawValue) != 0 && model.timers.isRunning(t) {
            var e = m
            if e.apply(.timeout(Timeout(t))).outputs.isEmpty { return t }
        }
        return nil
    }

    /// Least room (seconds) between a timer's first window closing and its restarted window opening that a
    /// restart check waits into: less, and the margins decide rather than the restart.
    static let restartGap = 0.05

    /// A wait before an input that restarts timer `t` (`age`: seconds since its last start, `span`: since its first),
    /// long enough that after the restart the window of the first start closes before the restarted one opens
    /// (with the margins between), and short enough that nothing expires: half way between the two. Nil when the
    /// gap is there already, the window is too wide for one, or the wait is longer than allowed.
    public func restartSetupWait(for t: TimerName, on model: TCPModel, age: Double, span: Double) -> Double? {
        guard let w = model.expiry(t), let l = w.lower, let u = w.upper else { return nil }
        let lead = span - age
        // The age at the restart: above `least` the gap exists, below `most` the timer has not expired.
        let least = u + timerMargin.late(after: u) - l + timerMargin.early + Planner.restartGap - lead
        let most = l - timerMargin.early - Planner.restartGap
        guard age < least, least < most else { return nil }
        let d = (least + most) / 2 - age
        return d <= maxWait ? d : nil
    }

    /// A wait after a restart of timer `t` that ends after the window of its first start has closed and before
    /// the restarted window opens, half way: a stack that did not restart it has expired it by then (for
    /// TIME-WAIT: it is CLOSED, judged an early expiry), one that did has not. Nil without such a gap or when it
    /// is longer than allowed.
    public func restartCheckWait(for t: TimerName, on model: TCPModel, age: Double, span: Double) -> Double? {
        guard let w = model.expiry(t), let l = w.lower, let u = w.upper else { return nil }
        let firstClosed = u - span + timerMargin.late(after: u)
        let restartedOpens = l - age - timerMargin.early
        guard restartedOpens - firstClosed >= Planner.restartGap else { return nil }
        let d = (firstClosed + restartedOpens) / 2
        return d <= maxWait ? d : nil
    }

    /// Why a timeout class cannot be drawn on this connection now, and the step that would start its timer, if one
    /// can: SEND puts text in flight in a synchronized state where nothing is outstanding.
    public func timerSetup(for lane: Connection, event: EventKind, cell: Int? = nil) -> (why: String, step: FuzzStep?) {
        guard let t = TimerName(expiring: event) else { return ("\(event.spelling) is not a timer's expiry", nil) }
        let state = spec.states[lane.model.state].name
        // The waits this set-up made in a row. Each was for an expiry that moves the model toward the class; one the
        // model never saw (the stack sent nothing: its connection gone, judged with its timers unknown) leaves the
        // model where it was, and the same wait would be asked again for ever (a conform lane waited 173 times in
        // CLOSING for a retransmission that R2 had ended, every other lane done). Bounded: the probes the
        // application allows and one more for keep-alives, a few for the rest.
        let waits = lane.steps.reversed().prefix { if case .wait = $0 { true } else { false } }.count
        let allowedProbes = spec.timings[.keepaliveProbes].map { Int($0.lower ?? 0) }
        if waits >= (t == .keepalive ? (allowedProbes ?? 0) + 1 : 4) {
            return ("\(waits) waits in \(state) did not set the \(t.spelling) timer's class up on this way (the expiries they waited for did not reach the model)", nil)
        }
        if let w = lane.model.expiry(t) {
            guard let u = w.upper else { return ("the profile gives the \(t.spelling) timer no upper bound (\(w.text)): no wait is sure to see it expire", nil) }
            // With the margin the wait itself takes (`wait(for:on:)`): a timer due just inside the limit is not.
            let d = wait(for: t, on: lane) ?? u
            if d > maxWait {
                return ("a wait of \(Durations.text(d)) for the \(t.spelling) timer is longer than the longest allowed (\(Durations.text(maxWait)); --max-wait)", nil)
            }
            // Keep-alive probes go unanswered until the count the application allows is spent: wait through one,
            // as long as each wait so far brought its probe (a stack that sends none is judged at the first), and
            // no more than that count (a state whose expiry probes on past it never reaches a class of a count
            // spent: a conform lane waited there a probe interval at a time, for minutes, while nothing else ran).
            var m = lane.model
            if t == .keepalive, let allowed = allowedProbes, let cell, waits <= min(Int(lane.model.timers.keepaliveProbes), allowed),
               !m.falls(.timeout(Timeout(t)), in: cell), m.apply(.timeout(Timeout(t))).timersStarted & (1 << t.rawValue) != 0 {
                return ("", .wait(d))
            }
            return ("the \(t.spelling) timer runs in \(state) on this way, but times another input class than this one (what it times was decided before)", nil)
        }
        if t == .user, !lane.model.timers.isRunning(t), lane.model.timers.isRunning(.retransmission) {
            // R2 runs from the first retransmission: let the retransmission timer expire first, if that starts it.
            var m = lane.model
            guard m.apply(.timeout(Timeout(.retransmission))).timersStarted & (1 << TimerName.user.rawValue) != 0 else {
                return ("the user timer does not time what is retransmitted in \(state) on this way (no application's R2 reaches it)", nil)
            }
            if let d = wait(for: .retransmission, on: lane), d <= maxWait { return ("", .wait(d)) }
            return ("the user timer starts at the first retransmission, whose wait is longer than allowed (--max-wait)", nil)
        }
        if !lane.model.timers.isRunning(t) {
            if t == .retransmission || t == .user, spec.states[lane.model.state].synchronized, lane.callAllowed(.send(10)) {
                // A zero-window probe's class: the tester closes the window first (an ACK of SND.NXT offering 0),
                // so that the text sent next waits and the timer times a probe.
                if let cell, lane.model.tcb[.sndWnd] != 0 {
                    var (closing, m) = Planner.probing(lane.model)
                    if m.falls(.timeout(Timeout(t)), in: cell) { return ("", lane.step(fromModel: closing)) }
                }
                if lane.steps.last != .call(.send(10)) { return ("", .call(.send(10))) }
            }
            return ("the \(t.spelling) timer does not run in \(state) on this way (nothing in flight it could time)", nil)
        }
        return ("the profile gives the \(t.spelling) timer no time (no timing line)", nil)
    }

    /// A random step the application or the peer could take now.
    public func randomStep(for lane: Connection, sampler: inout InputSampler) -> FuzzStep {
        for _ in 0..<20 {
            switch sampler.next(for: lane.model) {
            case .segment(let s): return lane.step(fromModel: s)
            case .call(let c):
                // Sizes the stack sends in one flight (the model has no congestion window).
                if case .send(let n) = c, n > 10_000 { continue }
                if lane.callAllowed(c) { return .call(c) }
            case .timeout:
                // A wait: past a running timer's latest expiry, or half way to its earliest (nothing may expire).
                guard let (t, w) = lane.model.pendingExpiries().first else { continue }
                let cap = min(maxWait, randomMaxWait ?? maxWait)
                if sampler.rng.next() & 1 == 0, let d = wait(for: t, on: lane), d <= cap { return .wait(d) }
                if let l = w.lower, l > 0.01, cap > 0 { return .wait(min(l / 2, cap)) }
                continue
            }
        }
        return lane.step(fromModel: sampler.segment(for: lane.model))
    }
}

/// A binary min-heap of cells by score, ties broken by a seeded random key (so the same seed picks the same).
struct MinHeap {
    struct Entry {
        var score: UInt64
        var tie: UInt64
        var index: Int
        func less(_ o: Entry) -> Bool { score != o.score ? score < o.score : tie < o.tie }
    }
    private var a: [Entry] = []

    mutating func push(_ e: Entry) {
        a.append(e)
        var i = a.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard a[i].less(a[p]) else { break }
            a.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() -> Entry? {
        guard !a.isEmpty else { return nil }
        let top = a[0]
        let last = a.removeLast()
        if !a.isEmpty {
            a[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < a.count, a[l].less(a[m]) { m = l }
                if r < a.count, a[r].less(a[m]) { m = r }
                if m == i { break }
                a.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
