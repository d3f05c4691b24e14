import Core
import Spec

/// The unknowns of one input in one state, as Z3 terms: every TCB register, the input's fields and its control
/// bits. A register or field with a known value (the model's, the input kind's) is that constant instead.
struct Unknowns {
    var registers: [Register: Z3.Term] = [:]
    var fields: [InputField: Z3.Term] = [:]
    var bits: [UInt8: Z3.Term] = [:]  // one boolean per control bit, by raw value
    /// The data octets (SEG.LEN is them plus one for SYN and one for FIN).
    var data: Z3.Term

    /// Every value free (a proof over any TCB), or the registers given (`concrete`) and the rest free. For an
    /// event that is not a segment the segment's fields are 0 and no bit is set, as the model classifies a call or
    /// an expiry (`TCPModel.EvalContext`).
    init(_ z: Z3, event: EventKind, concrete: [Register: UInt32]? = nil, derived: [InputField: UInt32] = [:]) {
        for r in Register.allCases { registers[r] = concrete.map { z.num($0[r] ?? 0) } ?? z.bv(r.spelling) }
        let segment = event == .segment
        for b in ControlBits.names.map(\.1) { bits[b.rawValue] = segment ? z.bool("CTL.\(b)") : z.no }
        data = segment ? z.bv("SEG.DATA") : z.num(0)
        for f in InputField.allCases {
            if let v = derived[f] { fields[f] = z.num(v); continue }
            switch f {
            case .segData: fields[f] = data
            case .segLen:
                fields[f] = z.add(data, z.add(z.ite(bits[ControlBits.syn.rawValue]!, z.num(1), z.num(0)),
                                              z.ite(bits[ControlBits.fin.rawValue]!, z.num(1), z.num(0))))
            case .segSeq, .segAck, .segWnd, .segUp: fields[f] = segment ? z.bv(f.spelling) : z.num(0)
            case .segTSOld, .segECRFuture: fields[f] = segment ? z.ite(z.bool(f.spelling), z.num(1), z.num(0)) : z.num(0)
            case .callLen: fields[f] = event.isUserCall ? z.bv(f.spelling) : z.num(0)
            // Derived from the TCB and the segment by the model's own procedure (what text a segment releases,
            // the keep-alive count): free here, so that a contradiction never depends on them; a witness is
            // checked against the model itself.
            case .heldNext, .heldFin, .keepaliveLeft, .heldEnd: fields[f] = z.bv(f.spelling)
            }
        }
    }

    func bit(_ b: ControlBits, _ z: Z3) -> Z3.Term {
        z.or(ControlBits.names.map(\.1).filter { b.contains($0) }.map { bits[$0.rawValue]! })
    }
}

/// The classifiers of one state as terms over `Unknowns`: each classifier's value is the first of its cases that
/// holds there (`TCPModel.classifierValue`), written as a chain of if-then-else.
struct ClassEncoding {
    let spec: CompiledSpec
    let state: Int
    let z: Z3
    let u: Unknowns
    private var memo: [Int: Z3.Term] = [:]
    /// The registers and fields the programs encoded so far read: what a class of the state can depend on.
    private(set) var read: Set<Operand> = []

    init(spec: CompiledSpec, state: Int, z: Z3, unknowns: Unknowns) {
        self.spec = spec
        self.state = state
        self.z = z
        self.u = unknowns
    }

    /// Classifier `k`'s value, an 8-bit term.
    mutating func value(_ k: Int) -> Z3.Term {
        if let t = memo[k] { return t }
        var t = z.byte(0)  // no case held: the model's value is 0
        for c in spec.classifiers[k].cases.reversed() {
            if let st = c.states, !st.contains(state) { continue }
            guard let p = c.program else {
                t = z.byte(c.value)
                continue
            }
            t = z.ite(truth(p), z.byte(c.value), t)
        }
        memo[k] = t
        return t
    }

    /// A dimension at one of its values: a control bit set or not, a classifier at that value.
    mutating func holds(_ d: Dimension, _ v: Int) -> Z3.Term {
        switch d {
        case .bit(let b): v == 1 ? u.bit(b, z) : z.not(u.bit(b, z))
        case .classifier(let k): z.eq(value(k), z.byte(v))
        }
    }

    /// A program's value as a boolean (non-zero).
    mutating func truth(_ p: Program) -> Z3.Term { asBool(run(p)) }

    enum Val {
        case num(Z3.Term)
        case bool(Z3.Term)
    }

    func asBool(_ v: Val) -> Z3.Term {
        switch v {
        case .bool(let b): b
        case .num(let n): z.not(z.eq(n, z.num(0)))
        }
    }

    func asNum(_ v: Val) -> Z3.Term {
        switch v {
        case .num(let n): n
        case .bool(let b): z.ite(b, z.num(1), z.num(0))
        }
    }

    mutating func operand(_ o: Operand) -> Z3.Term {
        read.insert(o)
        return switch o {
        case .const(let v): z.num(v)
        case .reg(let r): u.registers[r]!
        case .field(let f): u.fields[f]!
        }
    }

    /// Modulo-2^32 comparison, exactly as the model's `relation`: the sign of a - b as a 32-bit two's complement
    /// number. (Not "b < a" for "a > b": the two differ where a - b is 2^31, half way round, and a proof must not.)
    func compare(_ op: CompareOp, _ a: Z3.Term, _ b: Z3.Term) -> Z3.Term {
        let d = z.sub(a, b), zero = z.num(0)
        return switch op {
        case .lt: z.slt(d, zero)
        case .le: z.sle(d, zero)
        case .gt: z.slt(zero, d)
        case .ge: z.sle(zero, d)
        case .eq: z.eq(a, b)
        case .ne: z.not(z.eq(a, b))
        }
    }

    /// The postfix program as a term. Short-circuit skips are ignored: evaluating without jumping gives the same
    /// value (`Op.skipIfZero`).
    mutating func run(_ p: Program) -> Val {
        var st: [Val] = []
        func pop() -> Val { st.removeLast() }
        for op in p.ops {
            switch op {
            case .const(let v): st.append(.num(z.num(v)))
            case .reg(let r): st.append(.num(operand(.reg(r))))
            case .field(let f): st.append(.num(operand(.field(f))))
            case .flag(let b): st.append(.bool(u.bit(b, z)))
            case .classIn(let k, let mask):
                let v = value(k)
                let values = spec.classifiers[k].values.indices.filter { mask & (1 << UInt64($0)) != 0 }
                st.append(.bool(z.or(values.map { z.eq(v, z.byte($0)) })))
            case .not: st.append(.bool(z.not(asBool(pop()))))
            case .and, .or:
                let b = asBool(pop()), a = asBool(pop())
                if case .and = op { st.append(.bool(z.and([a, b]))) } else { st.append(.bool(z.or([a, b]))) }
            case .add, .sub, .min, .max, .lshift, .cmp:
                let b = asNum(pop()), a = asNum(pop())
                switch op {
                case .add: st.append(.num(z.add(a, b)))
                case .sub: st.append(.num(z.sub(a, b)))
                case .min: st.append(.num(z.ite(z.seqLess(b, a), b, a)))
                case .max: st.append(.num(z.ite(z.seqLess(a, b), b, a)))
                case .lshift: st.append(.num(z.ite(z.ult(z.num(31), b), z.num(0), z.shl(a, b))))
                case .cmp(let c): st.append(.bool(compare(c, a, b)))
                default: break
                }
            case .choose:
                let c = asBool(pop()), b = asNum(pop()), a = asNum(pop())
                st.append(.num(z.ite(c, a, b)))
            case .cmp2(let c, let x, let y): st.append(.bool(compare(c, operand(x), operand(y))))
            case .add2(let x, let y): st.append(.num(z.add(operand(x), operand(y))))
            case .sub2(let x, let y): st.append(.num(z.sub(operand(x), operand(y))))
            case .cmpWith(let c, let x): st.append(.bool(compare(c, asNum(pop()), operand(x))))
            case .addWith(let x): st.append(.num(z.add(asNum(pop()), operand(x))))
            case .subWith(let x): st.append(.num(z.sub(asNum(pop()), operand(x))))
            case .skipIfZero, .skipIfNonZero: break
            }
        }
        return st.last ?? .num(z.num(0))
    }
}
