import Core
/// Type-checks expressions and lowers them to postfix programs.
struct ExprCompiler {
    enum Ty { case number, boolean }

    var classifierIndex: [String: Int]
    var classifierValues: [[String]]
    var diags: [Diagnostic] = []

    mutating func err(_ kind: Diagnostic.Kind, _ msg: String, _ loc: SourceLocation) {
        diags.append(Diagnostic(kind, msg, at: loc))
    }

    /// The model evaluates programs on a fixed stack of this many slots.
    static let maxStack = 32

    static func stackDepth(_ ops: [Op]) -> Int {
        var sp = 0, deepest = 0
        for op in ops {
            switch op {
            case .const, .reg, .field, .flag, .classIn, .cmp2, .add2, .sub2: sp += 1
            case .not, .cmpWith, .addWith, .subWith, .skipIfZero, .skipIfNonZero: break
            case .add, .sub, .min, .max, .cmp, .and, .or, .lshift: sp -= 1
            case .choose: sp -= 2
            }
            deepest = max(deepest, sp)
        }
        return deepest
    }

    /// Lowers a whole expression (guard, condition, assignment, template field, classifier case).
    mutating func top(_ e: Expr, want: Ty) -> [Op]? {
        guard let ops = lower(e, want: want) else { return nil }
        if Self.stackDepth(ops) > Self.maxStack {
            err(.type, "expression is nested too deeply to evaluate (more than \(Self.maxStack) pending values); split it with a classifier", e.loc)
            return nil
        }
        return ops
    }

    /// Lowers `e` expecting type `want`; nil after reporting an error.
    mutating func lower(_ e: Expr, want: Ty) -> [Op]? {
        guard let (ops, ty) = lower(e) else { return nil }
        if ty != want {
            err(.type, want == .boolean ? "expected a condition (true/false), found a number" : "expected a number, found a condition", e.loc)
            return nil
        }
        return ops
    }

    mutating func lower(_ e: Expr) -> ([Op], Ty)? {
        switch e {
        case .number(let n, _):
            return ([.const(n)], .number)
        case .name(let n, let l):
            if let r = Register.bySpelling[n] { return ([.reg(r)], .number) }
            if let f = InputField.bySpelling[n] { return ([.field(f)], .number) }
            if let b = ControlBits.named(n) { return ([.flag(b)], .boolean) }
            if n == "true" { return ([.const(1)], .boolean) }
            if n == "false" { return ([.const(0)], .boolean) }
            err(.unknownName, "unknown name '\(n)'; variables are the RFC's (SND.NXT, RCV.WND, SEG.SEQ, ...), see docs/spec-language.md", l)
            return nil
        case .not(let a, _):
            guard let x = lower(a, want: .boolean) else { return nil }
            return (x + [.not], .boolean)
        case .and(let a, let b, _), .or(let a, let b, _):
            let isAnd: Bool = if case .and = e { true } else { false }
            let x = lower(a, want: .boolean)
            let y = lower(b, want: .boolean)
            guard let x, let y else { return nil }
            return (x + [isAnd ? .skipIfZero(y.count + 1) : .skipIfNonZero(y.count + 1)] + y + [isAnd ? .and : .or], .boolean)
        case .add(let a, let b, _), .sub(let a, let b, _):
            let isAdd: Bool = if case .add = e { true } else { false }
            let x = lower(a, want: .number)
            let y = lower(b, want: .number)
            guard let x, let y else { return nil }
            return (ExprCompiler.binary(x, y, isAdd ? .add : .sub), .number)
        case .compare(let operands, let ops, _):
            var lowered: [[Op]] = []
            for o in operands {
                guard let x = lower(o, want: .number) else { return nil }
                lowered.append(x)
            }
            // `a =< b < c` is `(a =< b) and (b < c)`, as in the RFC's tables.
            var out: [Op] = []
            for (k, op) in ops.enumerated() {
                out += ExprCompiler.binary(lowered[k], lowered[k + 1], .cmp(op))
                if k > 0 { out.append(.and) }
            }
            return (out, .boolean)
        case .call(let name, let args, let l):
            if name == "choose" {
                // A value by a condition (Linux's tcp_acceptable_seq: SND.NXT unless the window ends a unit before it).
                guard args.count == 3 else {
                    err(.type, "choose takes three arguments (a condition, its value when true, when false), got \(args.count)", l)
                    return nil
                }
                let c = lower(args[0], want: .boolean)
                let a = lower(args[1], want: .number)
                let b = lower(args[2], want: .number)
                guard let c, let a, let b else { return nil }
                return (a + b + c + [.choose], .number)
            }
            guard name == "min" || name == "max" || name == "lshift" else {
                err(.unknownName, "unknown function '\(name)'; the language has min(a, b), max(a, b), lshift(a, k) and choose(condition, a, b)", l)
                return nil
            }
            guard args.count == 2 else {
                err(.type, "\(name) takes two arguments, got \(args.count)", l)
                return nil
            }
            let x = lower(args[0], want: .number)
            let y = lower(args[1], want: .number)
            guard let x, let y else { return nil }
            return (x + y + [name == "min" ? .min : name == "max" ? .max : .lshift], .number)
        case .classIs(let name, let values, let negated, let l):
            guard let c = classifierIndex[name] else {
                err(.unknownName, "unknown classifier '\(name)'", l)
                return nil
            }
            var mask: UInt64 = 0
            var ok = true
            for v in values {
                if let k = classifierValues[c].firstIndex(of: v.value) {
                    mask |= 1 << UInt64(k)
                } else {
                    err(.unknownName, "classifier '\(name)' has no value '\(v.value)'; its values are \(classifierValues[c].joined(separator: ", "))", v.loc)
                    ok = false
                }
            }
            guard ok else { return nil }
            return (negated ? [.classIn(classifier: c, mask: mask), .not] : [.classIn(classifier: c, mask: mask)], .boolean)
        }
    }

    /// `x y op` in its fused form when the operands are plain values (one dispatch instead of three).
    static func binary(_ x: [Op], _ y: [Op], _ op: Op) -> [Op] {
        let two: ((Operand, Operand) -> Op, (Operand) -> Op)? = switch op {
        case .cmp(let c): ({ .cmp2(c, $0, $1) }, { .cmpWith(c, $0) })
        case .add: ({ .add2($0, $1) }, { .addWith($0) })
        case .sub: ({ .sub2($0, $1) }, { .subWith($0) })
        default: nil
        }
        guard let (both, with) = two, y.count == 1, let b = Operand(y[0]) else { return x + y + [op] }
        if x.count == 1, let a = Operand(x[0]) { return [both(a, b)] }
        return x + [with(b)]
    }

    /// Guards may read only what the input class fixes: the SYN/ACK/FIN/RST bits and classifier values.
    mutating func checkGuard(_ e: Expr) -> Bool {
        switch e {
        case .name(let n, let l):
            if n == "true" || n == "false" { return true }
            if let b = ControlBits.named(n) {
                if ControlBits.classBits.contains(b) { return true }
                err(.type, "a guard can test SYN, ACK, FIN and RST; \(n) is read at run time only (use 'if \(n)' on an action)", l)
                return false
            }
            if Register.bySpelling[n] != nil || InputField.bySpelling[n] != nil {
                err(.type, "a guard reads only the input class; '\(n)' is not fixed by it. Classify it ('classify NAME on ...') and test the class", l)
                return false
            }
            return true  // unknown names are reported by `lower`
        case .number(_, let l), .add(_, _, let l), .sub(_, _, let l), .compare(_, _, let l), .call(_, _, let l):
            err(.type, "a guard reads only the input class; '\(e.text)' is not fixed by it. Compare values inside a classifier ('classify NAME on ...') and test the class", l)
            return false
        case .not(let a, _):
            return checkGuard(a)
        case .and(let a, let b, _), .or(let a, let b, _):
            let x = checkGuard(a)
            let y = checkGuard(b)
            return x && y
        case .classIs:
            return true
        }
    }
}

/// Evaluates a guard program over one input class at compile time.
enum GuardEval {
    /// nil when the program needs a classifier the cell does not carry.
    static func eval(_ ops: [Op], bits: ControlBits, classValue: (Int) -> Int?) -> Bool? {
        var stack: InlineArray<32, Bool> = .init(repeating: false)
        var sp = 0
        for op in ops {
            guard sp < 32 else { return nil }
            switch op {
            case .const(let v):
                stack[sp] = v != 0
                sp += 1
            case .flag(let b):
                stack[sp] = bits.contains(b)
                sp += 1
            case .classIn(let c, let mask):
                guard let v = classValue(c) else { return nil }
                stack[sp] = mask & (1 << UInt64(v)) != 0
                sp += 1
            case .not:
                guard sp >= 1 else { return nil }
                stack[sp - 1] = !stack[sp - 1]
            case .skipIfZero, .skipIfNonZero:
                continue
            case .and, .or:
                guard sp >= 2 else { return nil }
                let b = stack[sp - 1], a = stack[sp - 2]
                sp -= 1
                stack[sp - 1] = op == .and ? (a && b) : (a || b)
            default:
                return nil
            }
        }
        return sp > 0 ? stack[sp - 1] : nil
    }

    enum Tri { case t, f, u }

    /// Three-valued evaluation of a classifier case at compile time: control bits and classifier values the cell
    /// fixes are known, everything else (variables, fields) is unknown. Sound for feasibility: `.f` only when the
    /// condition is false for every input of the cell.
    static func tri(_ ops: [Op], bits: ControlBits, classValue: (Int) -> Int?) -> Tri {
        var stack: [Tri] = []
        func pop() -> Tri { stack.popLast() ?? .u }
        for op in ops {
            switch op {
            case .const(let v): stack.append(v != 0 ? .t : .f)
            case .flag(let b):
                stack.append(ControlBits.classBits.contains(b) ? (bits.contains(b) ? .t : .f) : .u)
            case .classIn(let c, let mask):
                if let v = classValue(c) { stack.append(mask & (1 << UInt64(v)) != 0 ? .t : .f) } else { stack.append(.u) }
            case .not:
                let a = pop()
                stack.append(a == .t ? .f : a == .f ? .t : .u)
            case .and:
                let b = pop(), a = pop()
                stack.append(a == .f || b == .f ? .f : (a == .t && b == .t ? .t : .u))
            case .or:
                let b = pop(), a = pop()
                stack.append(a == .t || b == .t ? .t : (a == .f && b == .f ? .f : .u))
            case .reg, .field:
                stack.append(.u)
            case .add, .sub, .min, .max, .cmp, .lshift:
                _ = pop()
                _ = pop()
                stack.append(.u)
            case .choose:
                _ = pop()
                _ = pop()
                _ = pop()
                stack.append(.u)
            case .cmp2, .add2, .sub2:
                stack.append(.u)
            case .cmpWith, .addWith, .subWith:
                _ = pop()
                stack.append(.u)
            case .skipIfZero, .skipIfNonZero:
                break
            }
        }
        return stack.last ?? .u
    }

    /// Whether classifier `info` can take value `v` for some input of the cell.
    static func possible(_ info: ClassifierInfo, value v: Int, bits: ControlBits, classValue: (Int) -> Int?, state: Int? = nil) -> Bool {
        for c in info.cases {
            // A case limited to other states never holds here.
            if let only = c.states, let state, !only.contains(state) { continue }
            let t = c.program.map { tri($0.ops, bits: bits, classValue: classValue) } ?? .t
            if c.value == v && t != .f { return true }
            if t == .t { return false }
        }
        return false
    }

    /// The classifiers a guard reads.
    static func classifiers(_ ops: [Op]) -> [Int] {
        ops.compactMap { if case .classIn(let c, _) = $0 { c } else { nil } }
    }
}

extension Expr {
    /// Source-like rendering for tables and explanations.
    public var text: String {
        switch self {
        case .number(let n, _): "\(n)"
        case .name(let n, _): n
        case .not(let a, _): "not \(a.atomText)"
        case .and(let a, let b, _): "\(a.text) and \(b.text)"
        case .or(let a, let b, _): "(\(a.text) or \(b.text))"
        case .add(let a, let b, _): "\(a.text)+\(b.text)"
        case .sub(let a, let b, _): "\(a.text)-\(b.atomText)"
        case .compare(let xs, let ops, _):
            zip(xs, [""] + ops.map(\.rawValue)).map { $1.isEmpty ? $0.text : " \($1) \($0.text)" }.joined()
        case .call(let n, let args, _): "\(n)(\(args.map(\.text).joined(separator: ", ")))"
        case .classIs(let n, let vs, let neg, _):
            vs.count == 1 ? "\(n) is \(neg ? "not " : "")\(vs[0].value)" : "\(n) in {\(vs.map(\.value).joined(separator: ", "))}"
        }
    }

    var atomText: String {
        switch self {
        case .number, .name, .call, .classIs: text
        default: "(\(text))"
        }
    }
}
