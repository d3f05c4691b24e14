import Core
import Foundation
import Model
import Spec

/// Decides input classes by solving their classifiers' conditions (issue 21): whether any TCB and any input give a
/// class its values at all — when not, which of its values contradict, a proof that the class is unreachable in
/// every run of every stack — and, for the TCB a connection has now, a segment of the class.
///
/// The conditions are the compiled spec's own programs, read as terms over 32-bit vectors: sequence comparisons
/// modulo 2^32 exactly as the model makes them (`TCPModel.relation`), every register and field an unknown. Z3
/// (Debian's libz3-dev, C API) decides them: bit-vector arithmetic is its own theory, and a class reads up to a
/// dozen sums and comparisons over a dozen unknowns, where enumerating the boundary values by hand would have to be
/// proven complete for every new classifier a profile writes. A query takes a few milliseconds (measured by
/// `tcpspec-bench solver`: 2.7 ms a class solved for a TCB, a proof's median 4 ms).
public final class ClassSolver: @unchecked Sendable {
    public let spec: CompiledSpec
    private let z = Z3()
    private let rlimit: UInt32
    private let timeoutMs: UInt32
    private let lock = NSLock()
    /// One incremental solver per (state, event) table, its classifiers asserted once: a query is then a check
    /// under the literals of the values it fixes (measured: ~100× faster than building each query afresh).
    private var tables: [Int: Table] = [:]
    /// Queries Z3 did not decide within its bounds (each left undecided, never a proof).
    public private(set) var undecided = 0

    /// `rlimit`: what Z3 has not decided within that many of its resource units stays undecided (never a proof);
    /// deterministic, unlike `timeoutMs`, the bound of last resort.
    public init(spec: CompiledSpec, rlimit: UInt32 = 20_000_000, timeoutMs: UInt32 = 20_000) {
        self.spec = spec
        self.rlimit = rlimit
        self.timeoutMs = timeoutMs
    }

    public enum Decision: Sendable, Equatable {
        /// Some TCB and some input give these values.
        case possible
        /// None does: the dimensions (indices into the table's) whose values contradict, none of them superfluous.
        case contradiction([Int])
        /// The solver did not decide in time.
        case undecided
    }

    /// A table's solver: every register and field free, and per dimension and value a literal that holds exactly
    /// when the input has that value there.
    final class Table {
        let solver: Z3.Solver
        let u: Unknowns
        let literals: [[Z3.Term]]
        /// What the state's classifiers read (registers, fields): all a class of it can depend on.
        let read: Set<Operand>

        init(_ z: Z3, spec: CompiledSpec, state: Int, event: EventKind, rlimit: UInt32, timeoutMs: UInt32) {
            let solver = Z3.Solver(z, rlimit: rlimit, timeoutMs: timeoutMs)
            self.solver = solver
            u = Unknowns(z, event: event)
            var enc = ClassEncoding(spec: spec, state: state, z: z, unknowns: u)
            let t = spec.table(state: state, event: event)
            var lits: [[Z3.Term]] = []
            for (d, dim) in t.dimensions.enumerated() {
                lits.append((0..<t.radices[d]).map { v in
                    let l = z.bool("dim\(d)=\(v)")
                    solver.assert([z.eq(l, enc.holds(dim, v))])
                    return l
                })
            }
            literals = lits
            read = enc.read
            // What every input of the kind is, whoever sends it: a segment's text fits one IP datagram.
            if event == .segment { solver.assert([z.ule(u.data, z.num(65535))]) }
        }
    }

    private func table(_ state: Int, _ event: EventKind) -> Table {
        let k = state * EventKind.count + Int(event.rawValue)
        if let t = tables[k] { return t }
        let t = Table(z, spec: spec, state: state, event: event, rlimit: rlimit, timeoutMs: timeoutMs)
        tables[k] = t
        return t
    }

    /// Whether some TCB and some input of `event` in `state` give the table's dimensions the values `fixing`
    /// (dimension index → value). The TCB is free: a contradiction holds whatever the way in.
    public func decide(state: Int, event: EventKind, fixing: [Int: Int]) -> Decision {
        lock.lock()
        defer { lock.unlock() }
        let tab = table(state, event)
        let dims = fixing.keys.sorted()
        let marks = dims.map { tab.literals[$0][fixing[$0]!] }
        switch tab.solver.check(assuming: marks) {
        case .sat: return .possible
        case .unknown:
            undecided += 1
            return .undecided
        case .unsat(let core):
            // Smallest by deletion: a value whose removal keeps the contradiction is not part of the reason.
            var keep = dims.indices.filter { i in core.contains { $0 == marks[i] } }
            if keep.count > 1 {
                for i in keep {
                    let rest = keep.filter { $0 != i }
                    if case .unsat = tab.solver.check(assuming: rest.map { marks[$0] }) { keep = rest }
                }
            }
            return .contradiction(keep.map { dims[$0] })
        }
    }

    /// Whether some TCB and some input fall in any of `cells` of the (state, event) table: one query for a whole
    /// set (a test's classes), `.contradiction` naming nothing when none can.
    public func decide(state: Int, event: EventKind, anyOf cells: [Int]) -> Decision {
        lock.lock()
        defer { lock.unlock() }
        let tab = table(state, event)
        let t = spec.table(state: state, event: event)
        let some = z.or(cells.map { c in z.and(t.coordinates(of: c).enumerated().map { tab.literals[$0.offset][$0.element] }) })
        return tab.solver.scope([some]) {
            switch tab.solver.check() {
            case .sat: return .possible
            case .unsat: return .contradiction([])
            case .unknown:
                undecided += 1
                return .undecided
            }
        }
    }

    /// Values of a (state, event) table that no TCB and no input give, alone or two together (`proven`): a class
    /// holding one is unreachable in every run of every stack — a proof, as `decide`'s. Not every unreachable class
    /// holds one (three values may contradict where no two do); a query the solver left undecided proves nothing.
    public struct Exclusions: Sendable {
        /// The flat index of value v of dimension d: `base[d] + v`.
        let base: [Int]
        let values: Int
        let single: [Bool]
        let pair: Set<Int>
        /// The solver checks it took (`exclusions`), and the values and pairs it had to decide (one check each
        /// without the assignments' shortcut).
        public let checks: Int
        public let questions: Int

        /// Whether the class at `coords` holds an excluded value or pair.
        public func excludes(_ coords: [Int]) -> Bool {
            let ids = coords.enumerated().map { base[$0.offset] + $0.element }
            for i in ids.indices {
                if single[ids[i]] { return true }
                for j in ids.indices where j > i && pair.contains(ids[i] * values + ids[j]) { return true }
            }
            return false
        }

        public var count: (single: Int, pair: Int) { (single.filter { $0 }.count, pair.count) }
    }

    /// The values and pairs of values of the (state, event) table that contradict (`Exclusions`): one check per
    /// value and per pair of values of two dimensions, each under the table's incremental solver — but a pair that
    /// some earlier satisfying assignment already gave together needs none (each assignment gives one value of every
    /// dimension, so it settles a pair for every two of them: most pairs are settled so; `tcpspec-bench solver`
    /// prints the checks beside the questions).
    public func exclusions(state: Int, event: EventKind) -> Exclusions {
        lock.lock()
        defer { lock.unlock() }
        let t = spec.table(state: state, event: event)
        var base: [Int] = []
        var n = 0
        for r in t.radices {
            base.append(n)
            n += r
        }
        var single = [Bool](repeating: false, count: n)
        var pair = Set<Int>()
        guard t.dimensions.count > 0 else { return Exclusions(base: base, values: n, single: single, pair: pair, checks: 0, questions: 0) }
        let tab = table(state, event)
        var checks = 0, questions = n
        let lits = t.dimensions.indices.flatMap { tab.literals[$0] }
        var seen = [Bool](repeating: false, count: n)
        var together = Set<Int>()
        func check(_ ids: [Int]) -> Z3.Outcome {
            checks += 1
            let r = tab.solver.check(assuming: ids.map { lits[$0] })
            if case .sat = r {
                let on = tab.solver.values(lits).enumerated().filter { $0.element == 1 }.map(\.offset)
                for (k, i) in on.enumerated() {
                    seen[i] = true
                    for j in on[(k + 1)...] { together.insert(min(i, j) * n + max(i, j)) }
                }
            }
            return r
        }
        for i in 0..<n where !seen[i] {
            if case .unsat = check([i]) { single[i] = true }
        }
        for d in t.dimensions.indices {
            for e in t.dimensions.indices where e > d {
                for v in 0..<t.radices[d] where !single[base[d] + v] {
                    for w in 0..<t.radices[e] where !single[base[e] + w] {
                        let key = (base[d] + v) * n + base[e] + w
                        questions += 1
                        guard !together.contains(key) else { continue }
                        if case .unsat = check([base[d] + v, base[e] + w]) { pair.insert(key) }
                    }
                }
            }
        }
        return Exclusions(base: base, values: n, single: single, pair: pair, checks: checks, questions: questions)
    }

    /// What rules a class out for one TCB: a register's value (the way in made it), or a limit of what the tester
    /// writes.
    public enum Constraint: Hashable, Sendable, CustomStringConvertible {
        case register(Register)
        /// A value the model derives from the TCB (HELD.END, KEEPALIVE.LEFT).
        case derived(InputField)
        case limit(TesterLimit)

        public var description: String {
            switch self {
            case .register(let r): r.spelling
            case .derived(let f): f.spelling
            case .limit(let l): l.rawValue
            }
        }
    }

    /// What the tester does not send (`segment`'s limits): a class that needs one of these is out of its reach.
    public enum TesterLimit: String, Hashable, Sendable, CaseIterable {
        case oneFrame = "text that fits one frame (1428 octets, 1420 on a SYN)"
        case window = "a window that fits 16 bits"
        case urgent = "an urgent pointer that fits 16 bits"
        case noOldTSval = "no old TSval before PAWS applies (Timestamps agreed, the connection synchronized)"
        case noFutureEcho = "no echo from the future before Timestamps are agreed"
        case noEchoOnSYN = "no echo from the future on a SYN"
        case notHalfWay = "nothing half way round from what the class orders it against (no order exists there)"
    }

    /// The facts `segment` solves under for `model`'s TCB, each labelled by what it states.
    private func facts(_ tab: Table, for model: TCPModel, tsOld: Bool, futureEcho: Bool) -> [(Constraint, Z3.Term)] {
        let u = tab.u
        // This TCB, and what the model derives from it alone.
        var facts: [(Constraint, Z3.Term)] = Register.allCases.map { (.register($0), z.eq(u.registers[$0]!, z.num(model[$0]))) }
        facts.append((.derived(.heldEnd), z.eq(u.fields[.heldEnd]!, z.num(model.heldEnd))))
        facts.append((.derived(.keepaliveLeft), z.eq(u.fields[.keepaliveLeft]!, z.num(model.keepaliveLeft))))
        let old = z.bool(InputField.segTSOld.spelling), echo = z.bool(InputField.segECRFuture.spelling)
        if !tsOld { facts.append((.limit(.noOldTSval), z.not(old))) }
        if !futureEcho { facts.append((.limit(.noFutureEcho), z.not(echo))) }
        // The tester's own limits: one frame of text (`Connection.fitLink`), 16-bit window and urgent fields, an
        // echo from the future never on a SYN (the planner's rule too).
        let syn = u.bit(.syn, z)
        facts.append((.limit(.oneFrame), z.ule(u.data, z.ite(syn, z.num(1420), z.num(1428)))))
        facts.append((.limit(.window), z.ule(u.fields[.segWnd]!, z.num(65535))))
        facts.append((.limit(.urgent), z.ule(u.fields[.segUp]!, z.num(65535))))
        facts.append((.limit(.noEchoOnSYN), z.or([z.not(echo), z.not(syn)])))
        // Nothing exactly half way round from what its classes order it against (`TCPModel.halfWayApart`): no order
        // exists there, so such a segment's verdict would be unspecified whatever the stack did — a class reached
        // only that way is not reached.
        let half = z.num(0x8000_0000), reg = { (r: Register) in u.registers[r]! }
        let seq = u.fields[.segSeq]!, end = z.add(seq, u.fields[.segLen]!), ack = u.fields[.segAck]!
        var apart: [Z3.Term] = []
        for x in [seq, end] {
            for r in [reg(.rcvNxt), z.add(reg(.rcvNxt), reg(.rcvWnd))] { apart.append(z.not(z.eq(z.sub(x, r), half))) }
        }
        for r in [reg(.sndUna), reg(.sndNxt), reg(.iss), z.sub(reg(.sndUna), reg(.maxSndWnd))] {
            apart.append(z.or([z.not(u.bit(.ack, z)), z.not(z.eq(z.sub(ack, r), half))]))
        }
        facts.append((.limit(.notHalfWay), z.and(apart)))
        return facts
    }

    /// A segment of input class `cell` for `model` as it is now (its state's SEGMENT table), or nil when the
    /// model's TCB admits none (or the solver did not decide). `tsOld`, `futureEcho`: whether the tester can send an
    /// old TSval, an echo from the future. The segment fits one frame and is checked against the model itself.
    public func segment(in cell: Int, for model: TCPModel, tsOld: Bool, futureEcho: Bool) -> Segment? {
        lock.lock()
        defer { lock.unlock() }
        let tab = table(model.state, .segment)
        let u = tab.u
        let t = spec.table(state: model.state, event: .segment)
        let coords = t.coordinates(of: cell)
        let marks = coords.enumerated().map { tab.literals[$0.offset][$0.element] }
        let old = z.bool(InputField.segTSOld.spelling), echo = z.bool(InputField.segECRFuture.spelling)
        let bits = ControlBits.names.map(\.1)
        let read: [Z3.Term] = [u.fields[.segSeq]!, u.fields[.segAck]!, u.data, u.fields[.segWnd]!, u.fields[.segUp]!, old, echo]
            + bits.map { u.bits[$0.rawValue]! }
        return tab.solver.scope(facts(tab, for: model, tsOld: tsOld, futureEcho: futureEcho).map(\.1)) {
            // What the model derives from the segment too (the text it releases) is free above: a witness the
            // model refutes is excluded and another sought.
            for _ in 0..<4 {
                guard case .sat = tab.solver.check(assuming: marks) else { return nil }
                let v = tab.solver.values(read)
                var ctl = ControlBits()
                for (i, b) in bits.enumerated() where v[7 + i] == 1 { ctl.insert(b) }
                var s = Segment(seq: v[0], ack: v[1], ctl: ctl, window: v[3], urgentPointer: v[4], dataLength: v[2], tsOld: v[5] == 1)
                if v[6] == 1 { s.oddity = .futureEcho }
                var m = model
                if m.falls(.segment(s), in: cell), !m.halfWayApart(s) { return s }
                tab.solver.assert([z.not(z.and([z.eq(read[0], z.num(v[0])), z.eq(read[2], z.num(v[2]))]))])
            }
            return nil
        }
    }

    /// Why no segment of `cell` exists for `model`'s TCB (when `segment` finds none): the registers whose values
    /// rule it out, each with a value that admits it, and the tester's limits the class needs broken.
    public struct Blocking: Sendable, Equatable, CustomStringConvertible {
        public struct Need: Sendable, Equatable {
            public var what: Constraint
            /// Its value on this way (a register's).
            public var now: UInt32?
            /// A value with which (and the other needs') the class has a segment.
            public var admits: UInt32?
        }
        public var needs: [Need]

        /// `ruled out by RCV.WND [65535 on this way; 0 admits it]`: each need alone stands in the way (another value
        /// of it alone admits the class). The values in brackets, so that reports can group tests by what stands in
        /// the way (`ConformReport.reasonGroup`).
        public var description: String {
            let regs = needs.filter { if case .limit = $0.what { false } else { true } }
            let limits = needs.compactMap { if case .limit(let l) = $0.what { l } else { nil } }
            var parts: [String] = []
            if !regs.isEmpty {
                parts.append("ruled out by this way's " + regs.map { "\($0.what) [\($0.now ?? 0) here; \($0.admits ?? 0) admits it]" }.joined(separator: " or "))
            }
            if !limits.isEmpty { parts.append("it needs what the tester does not send (" + limits.map(\.rawValue).joined(separator: "; or ") + ")") }
            return parts.joined(separator: "; or ")
        }
    }

    /// The constraints of `segment` that rule `cell` out for `model`, each alone: a value of this TCB the class's
    /// classifiers read, or a limit of the tester, without which the class has a segment (one check each, with all
    /// else fixed: a few milliseconds). Nil when the class has a segment already, when no one constraint alone
    /// stands in the way (several together, or the class contradicts whatever the TCB: `decide`'s business), or
    /// when the solver did not decide.
    public func blocking(in cell: Int, for model: TCPModel, tsOld: Bool, futureEcho: Bool) -> Blocking? {
        guard let (found, readsHeld) = candidateNeeds(in: cell, for: model, tsOld: tsOld, futureEcho: futureEcho) else { return nil }
        // What the model derives from the segment (the held text it joins) is free to the solver: a value named is
        // kept only if the model itself, with it set, has a segment of the class; a limit only where the class
        // reads no such derived value.
        let needs = found.filter { n in
            switch n.what {
            case .register(let r):
                return segment(in: cell, for: model.with(r, n.admits ?? 0), tsOld: tsOld, futureEcho: futureEcho) != nil
            case .derived: return false  // never a candidate
            case .limit: return !readsHeld
            }
        }
        return needs.isEmpty ? nil : Blocking(needs: needs)
    }

    private func candidateNeeds(in cell: Int, for model: TCPModel, tsOld: Bool, futureEcho: Bool) -> (needs: [Blocking.Need], readsHeld: Bool)? {
        lock.lock()
        defer { lock.unlock() }
        let tab = table(model.state, .segment)
        let t = spec.table(state: model.state, event: .segment)
        let marks = t.coordinates(of: cell).enumerated().map { tab.literals[$0.offset][$0.element] }
        let fs = facts(tab, for: model, tsOld: tsOld, futureEcho: futureEcho)
        let lits = fs.indices.map { z.bool("why\($0)") }
        let guarded = zip(lits, fs).map { z.or([z.not($0.0), $0.1.1]) }
        // Only what the classifiers read can stand in the way, and of the registers only those a way sets by what it
        // does (windows, queues, flags, the kind of open): a sequence number (ISS, RCV.NXT, …) is the stacks' draw
        // or the way's length, nothing a plan chooses, and freeing one makes the hardest checks.
        let sequence: Set<Register> = [.sndUna, .sndNxt, .sndWl1, .sndWl2, .iss, .rcvNxt, .irs, .sndUp, .rcvUp, .holdFinSeq,
                                        .holdSeq1, .holdSeq2, .holdSeq3, .holdSeq4, .holdSeq5]
        let candidates = fs.indices.filter { i in
            switch fs[i].0 {
            case .register(let r): tab.read.contains(.reg(r)) && !sequence.contains(r)
            case .derived: false
            case .limit: true
            }
        }
        let readsHeld = tab.read.contains(.field(.heldNext)) || tab.read.contains(.field(.heldFin))
        return tab.solver.scope(guarded) { () -> (needs: [Blocking.Need], readsHeld: Bool)? in
            // Cheap checks (all but one value fixed), bounded deterministically all the same.
            tab.solver.limit(rlimit: rlimit / 40, timeoutMs: timeoutMs)
            defer { tab.solver.limit(rlimit: rlimit, timeoutMs: timeoutMs) }
            guard case .unsat = tab.solver.check(assuming: marks + lits) else { return nil }
            var needs: [Blocking.Need] = []
            let u = tab.u
            for i in candidates {
                guard case .sat = tab.solver.check(assuming: marks + lits.indices.filter { $0 != i }.map { lits[$0] }) else { continue }
                var n = Blocking.Need(what: fs[i].0)
                switch fs[i].0 {
                case .register(let r):
                    n.now = model[r]
                    n.admits = tab.solver.values([u.registers[r]!])[0]
                case .derived, .limit: break  // (derived values are never candidates)
                }
                needs.append(n)
            }
            return needs.isEmpty ? nil : (needs, readsHeld)
        }
    }
}
