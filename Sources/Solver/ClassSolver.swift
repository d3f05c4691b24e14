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

    /// A segment of input class `cell` for `model` as it is now (its state's SEGMENT table), or nil when the
    /// model's TCB admits none (or the solver did not decide). `tsOld`, `futureEcho`: whether the tester can send an
    /// old TSval, an echo from the future. The segment fits one frame and is checked against the model itself.
    public func segment(in cell: Int, for model: TCPModel, tsOld: Bool, futureEcho: Bool) -> Segment? {
        lock.lock()
        defer { lock.unlock() }
        let tab = table(model.state, .segment)
        let u = tab.u
        let t = spec.table(state: model.state, event: .segment)
        // This TCB, and what the model derives from it alone.
        var facts = Register.allCases.map { z.eq(u.registers[$0]!, z.num(model[$0])) }
        facts.append(z.eq(u.fields[.heldEnd]!, z.num(model.heldEnd)))
        facts.append(z.eq(u.fields[.keepaliveLeft]!, z.num(model.keepaliveLeft)))
        let old = z.bool(InputField.segTSOld.spelling), echo = z.bool(InputField.segECRFuture.spelling)
        if !tsOld { facts.append(z.not(old)) }
        if !futureEcho { facts.append(z.not(echo)) }
        // The tester's own limits: one frame of text (`Connection.fitLink`), 16-bit window and urgent fields, an
        // echo from the future never on a SYN (the planner's rule too).
        let syn = u.bit(.syn, z)
        facts.append(z.ule(u.data, z.ite(syn, z.num(1420), z.num(1428))))
        facts.append(z.ule(u.fields[.segWnd]!, z.num(65535)))
        facts.append(z.ule(u.fields[.segUp]!, z.num(65535)))
        facts.append(z.or([z.not(echo), z.not(syn)]))
        // Nothing exactly half way round from what its classes order it against (`TCPModel.halfWayApart`): no order
        // exists there, so such a segment's verdict would be unspecified whatever the stack did — a class reached
        // only that way is not reached.
        let half = z.num(0x8000_0000), reg = { (r: Register) in u.registers[r]! }
        let seq = u.fields[.segSeq]!, end = z.add(seq, u.fields[.segLen]!), ack = u.fields[.segAck]!
        for x in [seq, end] {
            for r in [reg(.rcvNxt), z.add(reg(.rcvNxt), reg(.rcvWnd))] { facts.append(z.not(z.eq(z.sub(x, r), half))) }
        }
        for r in [reg(.sndUna), reg(.sndNxt), reg(.iss), z.sub(reg(.sndUna), reg(.maxSndWnd))] {
            facts.append(z.or([z.not(u.bit(.ack, z)), z.not(z.eq(z.sub(ack, r), half))]))
        }
        let coords = t.coordinates(of: cell)
        let marks = coords.enumerated().map { tab.literals[$0.offset][$0.element] }
        let bits = ControlBits.names.map(\.1)
        let read: [Z3.Term] = [u.fields[.segSeq]!, u.fields[.segAck]!, u.data, u.fields[.segWnd]!, u.fields[.segUp]!, old, echo]
            + bits.map { u.bits[$0.rawValue]! }
        return tab.solver.scope(facts) {
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
}
