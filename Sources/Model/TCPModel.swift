import Core
import Spec

/// The TCB variables as one value: RFC 9293 §3.3.1 plus the model's queues (see `Register`).
public struct TCB: Hashable, Sendable {
    /// One slot per `Register` (a new register needs the count raised: an InlineArray's count is a literal).
    @usableFromInline var r: InlineArray<37, UInt32> = .init(repeating: 0)

    /// How many separate out-of-order ranges the model holds (`Register.holdSeq1`…): more than RFC 2018's SACK
    /// option can report (four blocks), and more than any case of a few dozen steps makes in practice. A range
    /// beyond them is forgotten and RCV.HOLD.LOST set, so the oracle can tell its own limit from a stack's fault.
    public static let heldRanges = 5

    public init() {}

    @inlinable public subscript(_ reg: Register) -> UInt32 {
        get { r[Int(reg.rawValue)] }
        set { r[Int(reg.rawValue)] = newValue }
    }

    public static func == (a: TCB, b: TCB) -> Bool {
        for i in a.r.indices where a.r[i] != b.r[i] { return false }
        return true
    }

    public func hash(into h: inout Hasher) {
        for i in r.indices { h.combine(r[i]) }
    }
}

/// A TCP endpoint executing a compiled spec: a pure value type with one `mutating func` per kind of event, each
/// returning the `Transition` for the caller to act on (send the segments, report the signals). No I/O.
///
/// Values the endpoint chooses (its ISS, its receive window) may be unknown to whoever drives the model — the
/// target's ISS, say. Until `bind(iss:)` they are placeholders and the outputs that depend on them are marked
/// symbolic; binding rebases every ISS-relative variable. Sequence arithmetic is modulo 2^32 throughout.
public struct TCPModel: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// RCV.WND of a new connection (the endpoint's receive buffer), until observed.
        public var receiveWindow: UInt32
        /// The peer's MSS (the tester announces 1460), for profiles that send whole segments only.
        public var sendMSS: UInt32
        public init(receiveWindow: UInt32 = 65535, sendMSS: UInt32 = 1460) {
            self.receiveWindow = receiveWindow
            self.sendMSS = sendMSS
        }
    }

    public let spec: CompiledSpec
    /// `spec`'s runtime image, read without reference counting (`spec` keeps it alive).
    let img: RuntimeImage.View
    public private(set) var configuration: Configuration
    /// The profile's `option whole-segments`.
    let wholeSegments: Bool
    /// The profile's `option loss-window`.
    let lossWindow: Bool
    /// The profile's `option hold-whole`: text let in is taken (or held) whole, past the window's right edge.
    let holdWhole: Bool
    /// The profile's `option loss-window-one-syn`: one retransmission of the SYN or SYN,ACK leaves no loss window
    /// once a segment synchronizes the connection.
    let lossWindowOneSyn: Bool
    /// The states where keep-alives probe, one bit each (those whose KEEPALIVE-TIMEOUT rules restart the timer);
    /// 0 while the application has not turned keep-alives on (`timing keepalive.idle` unset: MUST-25).
    let keepaliveStates: UInt64
    public private(set) var state: Int
    public internal(set) var tcb = TCB()

    /// This model with register `r` at `v` and nothing else changed: a what-if (the class solver checks an
    /// explanation with it), not a transition.
    public func with(_ r: Register, _ v: UInt32) -> TCPModel {
        var m = self
        m.tcb[r] = v
        return m
    }
    /// The ISS the event being run chose (its `iss:` argument); nil leaves ISS symbolic until adopted.
    var nextISS: UInt32?
    public private(set) var issBound = false
    /// The connection's timers, as its rules start and stop them.
    public internal(set) var timers = Timers()
    public private(set) var receiveWindowBound = false
    /// Whether transitions report their input class (`Transition.cell`). Computing it evaluates every classifier
    /// of the state, not only those the decision needs; turn it off where only outputs matter.
    public var recordsInputClass = true

    public init(spec: CompiledSpec, configuration: Configuration = .init()) {
        self.spec = spec
        self.img = spec.image.view
        self.configuration = configuration
        self.wholeSegments = spec.options.contains("whole-segments")
        self.lossWindow = spec.options.contains("loss-window")
        self.holdWhole = spec.options.contains("hold-whole")
        self.lossWindowOneSyn = spec.options.contains("loss-window-one-syn")
        self.keepaliveStates = spec.timings[.keepaliveIdle] == nil ? 0 : spec.keepaliveStates
        self.state = spec.initialState
        clearConnection()
    }

    /// The state, typed (`state` is its index in the spec).
    public var tcpState: TCPState { spec.states[state].state }
    public var stateName: String { spec.states[state].name }

    @inlinable public subscript(_ reg: Register) -> UInt32 { tcb[reg] }

    /// What inputs change — the state, the TCB, the bindings — without the spec and the tables the model also
    /// holds: a caller that may undo an input saves and restores this (a third of the model's size, and no
    /// reference counting).
    public struct Core: Sendable, Equatable {
        var state: Int
        var tcb: TCB
        var issBound: Bool
        var receiveWindowBound: Bool
        var timers: Timers
        public var stateIndex: Int { state }
        /// Whether more separate out-of-order ranges arrived than the model holds (`TCB.heldRanges`): from then on
        /// what it expects of text beyond the lost range is its own limit, not the stack's behaviour.
        public var heldLost: Bool { tcb[.holdLost] == 1 }
        /// RCV.NXT: what the endpoint has taken of the peer's sequence space (a delayed ACK's due is from its move).
        public var receiveNext: UInt32 { tcb[.rcvNxt] }
    }

    public var core: Core {
        get { Core(state: state, tcb: tcb, issBound: issBound, receiveWindowBound: receiveWindowBound, timers: timers) }
        set {
            state = newValue.state
            tcb = newValue.tcb
            issBound = newValue.issBound
            receiveWindowBound = newValue.receiveWindowBound
            timers = newValue.timers
        }
    }

    mutating func clearConnection() {
        timers = Timers()
        tcb = TCB()
        tcb[.rcvWnd] = configuration.receiveWindow
        issBound = false
        receiveWindowBound = false
    }

    // MARK: events

    // The endpoint's own choices are inputs too: `iss` is the ISS it chooses if this event selects one (a stack
    // that decides as the reference target does); left nil, ISS stays symbolic until the endpoint's SYN shows
    // it and `adopt(.iss)` binds it.

    public mutating func receive(_ seg: Segment, iss: UInt32? = nil) -> Transition {
        nextISS = iss
        defer { nextISS = nil }
        var ctx = EvalContext(event: .segment, seg: seg, callLength: 0)
        return run(&ctx)
    }

    public mutating func call(_ c: UserCall, iss: UInt32? = nil) -> Transition {
        nextISS = iss
        defer { nextISS = nil }
        var ctx = EvalContext(event: c.event, seg: Segment(seq: 0, ctl: []), callLength: c.length)
        return run(&ctx)
    }

    public mutating func timeout(_ t: Timeout) -> Transition {
        var ctx = EvalContext(event: t.event, seg: Segment(seq: 0, ctl: []), callLength: 0)
        return run(&ctx)
    }

    public mutating func apply(_ input: Input, iss: UInt32? = nil) -> Transition {
        switch input {
        case .segment(let s): receive(s, iss: iss)
        case .call(let c): call(c, iss: iss)
        case .timeout(let t): timeout(t)
        }
    }

    /// RFC 9293's passive OPEN makes one connection (§3.10.1: LISTEN becomes SYN-RECEIVED); the sockets API's
    /// listener stays open for more until it is closed. tcpspec's targets close it once its connection is accepted
    /// (one connection per listener), so a connection that ends (CLOSED) before that leaves the port listening, as
    /// a passive OPEN made afresh: the targets' state lookups find the listener, and a new SYN is answered.
    /// `listenerOpen`: the application's listener is still open. Returns whether the model listens again.
    @discardableResult
    public mutating func listenAgain(listenerOpen: Bool) -> Bool {
        guard listenerOpen, state == spec.initialState else { return false }
        _ = call(.openPassive)
        return true
    }

    /// The input class an input falls in, without acting on it.
    public func classify(_ input: Input) -> (cell: Int, chain: Int) {
        var m = self
        let cell = m.cell(of: input)
        return (cell, spec.table(state: state, event: input.event).cellChains[cell])
    }

    /// The input class an input falls in (`classify(input).cell`), read in place: no copy of the model, for a
    /// caller that classifies many inputs (the planner's surveys). `mutating` only so that the interpreter reads
    /// the model in place (see below); nothing changes.
    public mutating func cell(of input: Input) -> Int {
        var ctx = EvalContext(input)
        return cellIndex(&ctx)
    }

    /// Whether an input falls in input class `cell` of the current state's table for its event: the same answer
    /// as `classify(input).cell == cell`, without copying the model, and comparing each dimension's value as it
    /// is evaluated (the last first), so that an input of another class stops at the first value that differs. A
    /// planner drawing candidates until one falls in a class (up to 120 a step) rejects most of them early.
    /// `mutating` only so that the interpreter reads the model in place (see below); nothing changes.
    public mutating func falls(_ input: Input, in cell: Int) -> Bool {
        var ctx = EvalContext(input)
        let ti = Int(state) * EventKind.count + Int(ctx.event.rawValue)
        let first = Int(img.tableDimStart[ti])
        var d = Int(img.tableDimStart[ti + 1])
        var rest = cell
        while d > first {
            d -= 1
            let dim = img.dims[d]
            let radix = Int(dim.radix)
            if dimensionValue(kind: dim.kind, arg: dim.arg, &ctx) != rest % radix { return false }
            rest /= radix
        }
        return rest == 0
    }

    // MARK: binding symbolic values

    /// What the endpoint chose that the spec leaves to it, as observed on the wire.
    public enum Choice: Sendable {
        /// Its ISS, from its SYN or SYN,ACK.
        case iss(UInt32)
        /// The window it advertises (RCV.WND).
        case receiveWindow(UInt32)
        /// Its SYN carried this many octets of text (RFC 9293 §3.5 allows text on a SYN; TCP Fast Open, RFC 7413
        /// §4.1, sends it): SND.NXT moves past them, and they leave the send queue if a SEND had queued them.
        case textOnSYN(UInt32)
        /// It took this many octets of text from the peer's SYN at once, acknowledging them on its SYN,ACK (RFC
        /// 7413 §4.2.2, a Fast Open server with a valid cookie): RCV.NXT moves past them, no longer held.
        case textOnSYNAccepted(UInt32)
        /// It dropped the text on the peer's SYN (RFC 7413 §4.2.2: a cookie it does not accept): nothing held.
        case textOnSYNDropped
        /// Both SYNs agreed a Window Scale (RFC 7323 §2.2): the shifts of the peer's windows and of its own.
        case windowShifts(send: UInt8, receive: UInt8)
        /// Both SYNs carried SACK-Permitted (RFC 2018 §2), or (false) not: SACK.OK.
        case sackPermitted(Bool)
        /// Both SYNs carried Timestamps (RFC 7323 §3.2), or (false) not: TS.OK, under which PAWS applies (§5.3).
        case timestampsAgreed(Bool)
        /// The largest text it puts in a segment: the MSS the peer offered (536 without one, RFC 9293 §3.7.1
        /// MUST-15), less the options it sends on every segment (12 octets of Timestamps once agreed).
        case sendMSS(UInt32)
        /// It sent this many octets fewer than a transmission the model made (and its FIN, when `fin`), as a
        /// sender limited by its congestion window does (RFC 5681 §3.1, RFC 9293 §3.8.2 MUST-19): they go back
        /// to the send queue, for the next transmission to send.
        case heldBack(UInt32, fin: Bool)
    }

    /// Adopts an observed choice: binds the symbolic value and rebases what depends on it. Returns how far
    /// ISS-relative values moved (0 when already bound, and for windows), which outputs computed before
    /// (`Output.followingISS`) move by too.
    @discardableResult
    public mutating func adopt(_ choice: Choice) -> UInt32 {
        switch choice {
        case .iss(let iss):
            guard !issBound else { return 0 }
            let delta = iss &- tcb[.iss]
            for reg in Register.allCases where reg.isISSRelative { tcb[reg] = tcb[reg] &+ delta }
            issBound = true
            return delta
        case .receiveWindow(let w):
            tcb[.rcvWnd] = w
            receiveWindowBound = true
            return 0
        case .textOnSYN(let n):
            // Whatever of it a SEND queued leaves the queue (a stack may take it with the OPEN itself, as
            // sendto(MSG_FASTOPEN) does, where a SEND before the handshake would be refused).
            tcb[.sndQueue] -= min(n, tcb[.sndQueue])
            tcb[.sndNxt] &+= n
            return 0
        case .textOnSYNAccepted(let n):
            for k in 0..<TCB.heldRanges { tcb[TCPModel.holdLen(k)] = 0 }
            take(n)
            return 0
        case .textOnSYNDropped:
            for k in 0..<TCB.heldRanges { tcb[TCPModel.holdLen(k)] = 0 }
            return 0
        case .sendMSS(let n):
            configuration.sendMSS = max(1, n)
            return 0
        case .windowShifts(let send, let receive):
            tcb[.sndWindShift] = UInt32(min(send, 14))
            tcb[.rcvWindShift] = UInt32(min(receive, 14))
            return 0
        case .sackPermitted(let on):
            tcb[.sackOK] = on ? 1 : 0
            return 0
        case .timestampsAgreed(let on):
            tcb[.tsOK] = on ? 1 : 0
            return 0
        case .heldBack(let n, let fin):
            tcb[.sndNxt] = tcb[.sndNxt] &- n &- (fin ? 1 : 0)
            tcb[.sndQueue] &+= n
            if fin { tcb[.finSent] = 0 }
            return 0
        }
    }

    // MARK: interpreter

    struct EvalContext {
        var event: EventKind
        var seg: Segment
        var callLength: UInt32
        /// Classifier values computed for this input, +1 (0 = not yet).
        var classCache: InlineArray<16, UInt8> = .init(repeating: 0)
        /// The input's fields by `InputField` index, read by the programs' operands with one load.
        var fields: InlineArray<8, UInt32>

        @inline(__always)
        init(event: EventKind, seg: Segment, callLength: UInt32) {
            self.event = event
            self.seg = seg
            self.callLength = callLength
            fields = [seg.seq, seg.ack, seg.length, seg.window, seg.urgentPointer, seg.dataLength, callLength, seg.tsOld ? 1 : 0]
        }

        /// The context of an input that is only classified.
        init(_ input: Input) {
            switch input {
            case .segment(let s): self.init(event: .segment, seg: s, callLength: 0)
            case .call(let c): self.init(event: c.event, seg: Segment(seq: 0, ctl: []), callLength: c.length)
            case .timeout(let t): self.init(event: t.event, seg: Segment(seq: 0, ctl: []), callLength: 0)
            }
        }
    }

    /// The input class: every dimension's value, mixed radix (what coverage counts). Classifiers the decision
    /// tree already evaluated come from the cache.
    mutating func cellIndex(_ ctx: inout EvalContext) -> Int {
        let ti = Int(state) * EventKind.count + Int(ctx.event.rawValue)
        var cell = 0
        for d in Int(img.tableDimStart[ti])..<Int(img.tableDimStart[ti + 1]) {
            let dim = img.dims[d]
            cell = cell * Int(dim.radix) + dimensionValue(kind: dim.kind, arg: dim.arg, &ctx)
        }
        return cell
    }

    /// Walks the decision tree: only the dimensions that matter for this (state, event) are evaluated.
    mutating func chainByTree(_ ctx: inout EvalContext) -> Int {
        var node = Int(img.tableRoot[Int(state) * EventKind.count + Int(ctx.event.rawValue)])
        while true {
            let n = img.nodes[node]
            if n.kind == 0 { return Int(n.arg) }
            node = Int(n.first) + dimensionValue(kind: n.kind, arg: n.arg, &ctx)
        }
    }

    @inline(__always)
    mutating func dimensionValue(kind: Int8, arg: Int32, _ ctx: inout EvalContext) -> Int {
        kind == 1 ? (ctx.seg.ctl.rawValue & UInt8(truncatingIfNeeded: arg) != 0 ? 1 : 0) : classifierValue(Int(arg), &ctx)
    }

    mutating func classifierValue(_ k: Int, _ ctx: inout EvalContext) -> Int {
        if k < 16, ctx.classCache[k] != 0 { return Int(ctx.classCache[k]) - 1 }
        var value = 0
        for c in Int(img.caseStart[k])..<Int(img.caseStart[k + 1]) {
            // A case limited to other states does not hold in this one (`case V in STATE... if C`).
            if img.caseStates[c] & (1 << UInt64(state)) == 0 { continue }
            let p = img.caseProgram[c]
            if p < 0 || eval(Int(p), &ctx) != 0 {
                value = Int(img.caseValue[c])
                break
            }
        }
        if k < 16 { ctx.classCache[k] = UInt8(value + 1) }
        return value
    }

    @inline(__always)
    public static func seqLess(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: a &- b) < 0 }

    // The interpreter's functions are `mutating` though they only read: a mutating function gets the model by
    // address, where a non-mutating one called from `run` gets a copy of the whole model (measured: 344-byte
    // copies per program evaluated, a fifth of the offline checker's time).

    /// An operand of a program: a TCB register, an input field, or the constant itself.
    @inline(__always)
    mutating func value(_ kind: RuntimeImage.Code.Kind, _ v: UInt32, _ ctx: inout EvalContext) -> UInt32 {
        switch kind {
        case .register: tcb.r[Int(v)]
        case .field: v < 8 ? ctx.fields[Int(v)] : v == UInt32(InputField.keepaliveLeft.rawValue) ? keepaliveLeft
            : v == UInt32(InputField.heldEnd.rawValue) ? heldEnd
            : v == UInt32(InputField.segECRFuture.rawValue) ? (ctx.seg.oddity == .futureEcho ? 1 : 0)
            : held(ctx.seg, fin: v == UInt32(InputField.heldFin.rawValue))
        case .constant: v
        }
    }

    /// Modulo-2^32 comparison (RFC 9293 §3.10) as a relation bit — 1 less, 2 equal, 4 greater — for a
    /// comparison's mask to select (`=<` is 1|2): no second dispatch on the kind of comparison.
    @inline(__always)
    static func relation(_ a: UInt32, _ b: UInt32) -> UInt8 {
        let d = Int32(bitPattern: a &- b)
        return d < 0 ? 1 : d == 0 ? 2 : 4
    }

    /// Runs program `p` (postfix) on a fixed stack.
    mutating func eval(_ p: Int, _ ctx: inout EvalContext) -> UInt32 {
        // Most programs are one operation (a register, a field, one comparison: 3 in 5 evaluated by the offline
        // checker): those need no stack and no loop.
        let start = Int(img.programStart[p])
        if Int(img.programStart[p + 1]) - start == 1 {
            let c = img.ops[start]
            switch c.op {
            case .push: return value(c.xKind, c.x, &ctx)
            case .flag: return UInt32(ctx.seg.ctl.rawValue) & c.x != 0 ? 1 : 0
            case .cmp2: return TCPModel.relation(value(c.xKind, c.x, &ctx), value(c.yKind, c.y, &ctx)) & c.mask != 0 ? 1 : 0
            case .add2: return value(c.xKind, c.x, &ctx) &+ value(c.yKind, c.y, &ctx)
            case .sub2: return value(c.xKind, c.x, &ctx) &- value(c.yKind, c.y, &ctx)
            case .classIn: return classMask(c) & (1 << UInt64(classifierValue(Int(c.z), &ctx))) != 0 ? 1 : 0
            default: break
            }
        }
        // An uninitialized stack buffer: the compiler's programs never read a slot they did not push.
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 32) { stack in
            evalOn(stack, p, &ctx)
        }
    }

    @inline(__always)
    func classMask(_ c: RuntimeImage.Code) -> UInt64 { UInt64(c.y) << 32 | UInt64(c.x) }

    @inline(__always)
    mutating func evalOn(_ stack: UnsafeMutableBufferPointer<UInt32>, _ p: Int, _ ctx: inout EvalContext) -> UInt32 {
        var sp = 0
        var i = Int(img.programStart[p])
        let end = Int(img.programStart[p + 1])
        while i < end {
            let c = img.ops[i]
            i += 1
            switch c.op {
            case .skipIfZero:
                if stack[sp - 1] == 0 { i += Int(c.x) }
            case .skipIfNonZero:
                if stack[sp - 1] != 0 { i += Int(c.x) }
            case .push:
                stack[sp] = value(c.xKind, c.x, &ctx)
                sp += 1
            case .flag:
                stack[sp] = UInt32(ctx.seg.ctl.rawValue) & c.x != 0 ? 1 : 0
                sp += 1
            case .classIn:
                stack[sp] = classMask(c) & (1 << UInt64(classifierValue(Int(c.z), &ctx))) != 0 ? 1 : 0
                sp += 1
            case .not:
                stack[sp - 1] = stack[sp - 1] == 0 ? 1 : 0
            case .cmp2:
                stack[sp] = TCPModel.relation(value(c.xKind, c.x, &ctx), value(c.yKind, c.y, &ctx)) & c.mask != 0 ? 1 : 0
                sp += 1
            case .add2:
                stack[sp] = value(c.xKind, c.x, &ctx) &+ value(c.yKind, c.y, &ctx)
                sp += 1
            case .sub2:
                stack[sp] = value(c.xKind, c.x, &ctx) &- value(c.yKind, c.y, &ctx)
                sp += 1
            case .cmpWith:
                stack[sp - 1] = TCPModel.relation(stack[sp - 1], value(c.xKind, c.x, &ctx)) & c.mask != 0 ? 1 : 0
            case .addWith:
                stack[sp - 1] = stack[sp - 1] &+ value(c.xKind, c.x, &ctx)
            case .subWith:
                stack[sp - 1] = stack[sp - 1] &- value(c.xKind, c.x, &ctx)
            case .add:
                stack[sp - 2] = stack[sp - 2] &+ stack[sp - 1]
                sp -= 1
            case .sub:
                stack[sp - 2] = stack[sp - 2] &- stack[sp - 1]
                sp -= 1
            // min/max of sequence numbers or windows, modulo 2^32 like every comparison
            case .min:
                let b = stack[sp - 1], a = stack[sp - 2]
                stack[sp - 2] = TCPModel.seqLess(b, a) ? b : a
                sp -= 1
            case .max:
                let b = stack[sp - 1], a = stack[sp - 2]
                stack[sp - 2] = TCPModel.seqLess(a, b) ? b : a
                sp -= 1
            case .choose:
                stack[sp - 3] = stack[sp - 1] != 0 ? stack[sp - 3] : stack[sp - 2]
                sp -= 2
            case .lshift:
                let k = stack[sp - 1]
                stack[sp - 2] = k > 31 ? 0 : stack[sp - 2] << k
                sp -= 1
            case .and:
                stack[sp - 2] = (stack[sp - 2] != 0 && stack[sp - 1] != 0) ? 1 : 0
                sp -= 1
            case .or:
                stack[sp - 2] = (stack[sp - 2] != 0 || stack[sp - 1] != 0) ? 1 : 0
                sp -= 1
            case .cmp:
                stack[sp - 2] = TCPModel.relation(stack[sp - 2], stack[sp - 1]) & c.mask != 0 ? 1 : 0
                sp -= 1
            }
        }
        return sp > 0 ? stack[sp - 1] : 0
    }

    @inline(__always)
    mutating func holds(_ cond: Int?, _ ctx: inout EvalContext) -> Bool {
        guard let cond else { return true }
        return eval(cond, &ctx) != 0
    }

    // Inlined into each event function so the transition is built in the caller's result (a 234-byte copy
    // per input otherwise, a tenth of the offline checker's time).
    @inline(__always)
    mutating func run(_ ctx: inout EvalContext) -> Transition {
        // Recording the input class evaluates every dimension anyway: the cell then gives the chain with one
        // load, where the tree would test the same dimensions again (cells no input can reach, which the tree
        // decides as it likes, are left to the tree).
        var chainIndex: Int, cell = -1
        if recordsInputClass {
            cell = cellIndex(&ctx)
            let ti = Int(state) * EventKind.count + Int(ctx.event.rawValue)
            chainIndex = Int(img.cellChains[Int(img.tableCellStart[ti]) + cell])
            if chainIndex < -1 { chainIndex = chainByTree(&ctx) }
        } else {
            chainIndex = chainByTree(&ctx)
        }
        var tr = Transition(from: state, to: state, event: ctx.event, cell: cell, chain: chainIndex)
        guard chainIndex >= 0 else { return tr }
        let before = (una: tcb[.sndUna], iss: tcb[.iss], timers: timers, synchronized: spec.states[state].synchronized, probing: windowProbeDue,
                      nxt: tcb[.sndNxt], rcvNxt: tcb[.rcvNxt])
        var rule = 0
        var i = Int(img.chainStart[chainIndex])
        let end = Int(img.chainStart[chainIndex + 1])
        while i < end {
            defer { i += 1 }
            switch img.instrs[i] {
            case .skipUnless(let cond, let count):
                if eval(cond, &ctx) == 0 { i += count }
            case .rule(let r):
                rule = r
            case .send(let ti, let cond):
                guard holds(cond, &ctx) else { continue }
                let tpl = img.templates[ti]
                var ctl = tpl.ctl
                let data = tpl.data >= 0 ? eval(Int(tpl.data), &ctx) : 0
                if data > 0 { ctl.insert(.psh) }
                let seg = Segment(seq: eval(Int(tpl.seq), &ctx), ack: tpl.ack >= 0 ? eval(Int(tpl.ack), &ctx) : 0, ctl: ctl,
                                  window: tpl.wnd >= 0 ? eval(Int(tpl.wnd), &ctx) : tcb[.rcvWnd], dataLength: data)
                emit(Output(segment: seg, rule: rule, seqSymbolic: tpl.seqUsesISS && !issBound, windowSymbolic: tpl.wnd < 0 && !receiveWindowBound,
                            seqConstant: tpl.seqConstant), into: &tr)
            case .set(let reg, let p, let cond):
                guard holds(cond, &ctx) else { continue }
                tcb[reg] = eval(p, &ctx)
            case .enter(let s):
                // Only a segment ends the handshake this way (Linux's tcp_init_transfer runs from segment
                // processing); a CLOSE that moves SYN-RECEIVED to FIN-WAIT-1 leaves the loss window in place.
                if lossWindowOneSyn, ctx.event == .segment, timers.backoffs <= 1, !spec.states[state].synchronized, spec.states[s].synchronized {
                    timers.lossLifted = true
                }
                state = s
                if img.clears[s] { clearConnection() }
            case .signal(let s, let cond):
                guard holds(cond, &ctx) else { continue }
                tr.signals.append(s)
            case .reply(let s):
                tr.reply = s
            case .builtin(let b, let cond):
                guard holds(cond, &ctx) else { continue }
                builtin(b, rule: rule, &ctx, &tr)
            case .timer(let name, let op):
                let bit = UInt8(1) << name.rawValue
                if op == .start { tr.timersStarted |= bit } else { tr.timersStopped |= bit }
            }
        }
        tr.to = state
        applyTimers(&tr, event: ctx.event, before: before)
        if keepaliveStates != 0 { applyKeepalive(&tr, seg: ctx.seg, before: before) }
        return tr
    }

    /// The peer's window is closed while text (or a FIN that needs window) waits and nothing is in flight: what
    /// the retransmission timer then times is a zero-window probe.
    public var windowProbeDue: Bool {
        tcb[.sndWnd] == 0 && tcb[.sndNxt] == tcb[.sndUna] && spec.states[state].synchronized
            && (tcb[.sndQueue] > 0 || (tcb[.finPending] == 1 && tcb[.finSent] == 0))
    }

    /// Adds a segment, aggregating acknowledgments (RFC 9293 §3.10.7.4 MUST-58: "aggregate ACK segments whenever
    /// possible"; "piggybacked on a segment being transmitted"): a pure ACK is replaced by a later segment of the
    /// same transition that carries an acknowledgment at least as new.
    mutating func emit(_ o: Output, into tr: inout Transition) {
        if o.segment.ctl.contains(.ack), !o.segment.ctl.contains(.rst) {
            var k = Int(tr.pushed)
            while k < tr.outputs.count {
                let prev = tr.outputs[k].segment
                if prev.ctl == .ack, prev.dataLength == 0, !TCPModel.seqLess(o.segment.ack, prev.ack), prev.seq == o.segment.seq {
                    tr.outputs.remove(at: k)
                } else {
                    k += 1
                }
            }
        }
        tr.outputs.append(o)
    }

    mutating func builtin(_ b: Builtin, rule: Int, _ ctx: inout EvalContext, _ tr: inout Transition) {
        switch b {
        case .selectISS:
            if let iss = nextISS {
                tcb[.iss] = iss
                issBound = true
                nextISS = nil
            } else {
                tcb[.iss] = 0
                issBound = false
            }
        case .transmit:
            // After a timeout the congestion window is one segment (RFC 5681 §3.1), which the retransmission
            // fills: new text and the FIN wait until what was sent again is acknowledged.
            if lossWindow, timers.backoffs > 0, !timers.lossLifted, TCPModel.seqLess(tcb[.sndUna], timers.retransmittedTo) { return }
            let usableSigned = Int64(Int32(bitPattern: (tcb[.sndUna] &+ tcb[.sndWnd]) &- tcb[.sndNxt]))
            let usable = UInt32(clamping: max(0, usableSigned))
            var n = min(tcb[.sndQueue], usable)
            var fin = tcb[.finPending] == 1 && tcb[.finSent] == 0 && tcb[.sndQueue] == n
            if wholeSegments {
                // Segments go whole or not at all, the FIN included (sender SWS avoidance); a segment is at most
                // half the largest window the peer has offered, once that exceeds 536 octets (RFC 1122
                // §4.2.3.4's Fs = 1/2, as Linux's tcp_bound_to_half_wnd applies it). The segments that fit are
                // one output: the oracle takes contiguous text as one run however it is cut.
                var mss = configuration.sendMSS
                let maxWindow = tcb[.maxSndWnd]
                let cutoff = maxWindow > 536 ? maxWindow >> 1 : maxWindow
                if cutoff > 0, mss > cutoff { mss = max(cutoff, 48) }
                var queued = tcb[.sndQueue], room = usable
                let finWaiting = tcb[.finPending] == 1 && tcb[.finSent] == 0
                n = 0
                // Text of more than one segment goes out to the window's end, the last segment short: Linux's
                // GSO path cuts a multi-segment buffer at the window once its first segment fits (tcp_mss_split_point:
                // with TCP_NODELAY the partial segment is not held back); one segment's worth goes whole or not at all.
                let fillsWindow = queued > mss
                while queued > 0 {
                    var seg = min(queued, mss)
                    // (tcp_snd_wnd_test: the buffer's first segment must fit whole before anything goes.)
                    if fillsWindow, n > 0, seg > room { seg = room }
                    // The last segment carries the FIN when one waits: it needs one more unit of window.
                    if seg == 0 || UInt64(seg) + (finWaiting && seg == queued && !fillsWindow ? 1 : 0) > UInt64(room) { break }
                    n += seg
                    queued -= seg
                    room -= seg
                }
                fin = finWaiting && queued == 0 && room >= 1
            }
            guard n > 0 || fin else {
                // The peer's window is closed with something waiting and nothing in flight: the retransmission
                // timer times a zero-window probe (RFC 9293 §3.8.6.1, MUST-36; the first after the RTO, SHLD-29).
                if windowProbeDue { tr.timersStarted |= 1 << TimerName.retransmission.rawValue }
                return
            }
            var ctl: ControlBits = .ack
            if n > 0 { ctl.insert(.psh) }
            if fin { ctl.insert(.fin) }
            let seg = Segment(seq: tcb[.sndNxt], ack: tcb[.rcvNxt], ctl: ctl, window: tcb[.rcvWnd], dataLength: n)
            tcb[.sndNxt] = tcb[.sndNxt] &+ n &+ (fin ? 1 : 0)
            tcb[.sndQueue] -= n
            if fin { tcb[.finSent] = 1 }
            emit(Output(segment: seg, rule: rule, seqSymbolic: !issBound, windowSymbolic: !receiveWindowBound), into: &tr)
            tr.timersStarted |= 1 << TimerName.retransmission.rawValue
        case .retransmit:
            guard tcb[.sndNxt] != tcb[.sndUna] else { return }
            // "Retransmit the segment at the front of the retransmission queue": while our SYN is unacknowledged
            // (a CLOSE in SYN-RECEIVED sent the FIN before the handshake ended), that is the SYN,ACK.
            if tcb[.sndUna] == tcb[.iss] {
                let seg = Segment(seq: tcb[.iss], ack: tcb[.rcvNxt], ctl: [.syn, .ack], window: tcb[.rcvWnd])
                emit(Output(segment: seg, rule: rule, seqSymbolic: !issBound, windowSymbolic: !receiveWindowBound), into: &tr)
                tr.timersStarted |= 1 << TimerName.retransmission.rawValue
                return
            }
            let finOutstanding = tcb[.finSent] == 1
            let len = tcb[.sndNxt] &- tcb[.sndUna] &- (finOutstanding ? 1 : 0)
            var ctl: ControlBits = .ack
            if len > 0 { ctl.insert(.psh) }
            if finOutstanding { ctl.insert(.fin) }
            let seg = Segment(seq: tcb[.sndUna], ack: tcb[.rcvNxt], ctl: ctl, window: tcb[.rcvWnd], dataLength: len)
            emit(Output(segment: seg, rule: rule, seqSymbolic: !issBound, windowSymbolic: !receiveWindowBound), into: &tr)
            tr.timersStarted |= 1 << TimerName.retransmission.rawValue
        case .acceptText:
            let seg = ctx.seg
            let start = seg.seq &+ (seg.ctl.contains(.syn) ? 1 : 0)
            let already = Int64(Int32(bitPattern: tcb[.rcvNxt] &- start))
            if already >= 0 {
                let avail = UInt64(seg.dataLength) > UInt64(already) ? seg.dataLength - UInt32(already) : 0
                take(holdWhole && tcb[.rcvWnd] > 0 ? avail : min(avail, tcb[.rcvWnd]))
            }
            // Held text that now touches RCV.NXT is processed too, range after range; a held FIN it reaches is
            // the fin step's (classifier value `held`, read from HELD.FIN before this ran).
            // A FIN ends the stream where it stands: held text beyond it is never the peer's (it lies past the end).
            guard !seg.ctl.contains(.fin) else { return }
            let reached = releaseHeld()
            take(holdWhole ? reached : min(reached, tcb[.rcvWnd]))
            if tcb[.holdFin] == 1, tcb[.holdFinSeq] == tcb[.rcvNxt] { tcb[.holdFin] = 0 }
        case .hold:
            // Only before the peer's FIN: text beyond it is never processed, and one FIN is enough.
            guard tcb[.rcvFin] == 0 else { return }
            let seg = ctx.seg
            let start = seg.seq &+ (seg.ctl.contains(.syn) ? 1 : 0)
            var room = (tcb[.rcvNxt] &+ tcb[.rcvWnd]) &- start
            // Whole: a segment that starts inside the window is held to its end, its FIN too.
            if holdWhole, room > 0, room <= tcb[.rcvWnd] { room = UInt32.max }
            let len = min(seg.dataLength, room)
            if len > 0 { holdText(start, len) }
            // The FIN occupies the octet after the text: held if that octet is inside the window.
            if seg.ctl.contains(.fin), seg.dataLength < room {
                // RCV.HOLD.FINEND is at least the held FIN's end whenever one is held (set only here): the farther end.
                let end = start &+ seg.dataLength &+ 1
                if tcb[.holdFin] == 0 || TCPModel.seqLess(tcb[.holdFinEnd], end) { tcb[.holdFinEnd] = end }
                tcb[.holdFin] = 1
                tcb[.holdFinSeq] = start &+ seg.dataLength
            }
        case .deliver:
            let n = min(tcb[.rcvQueue], ctx.callLength)
            tcb[.rcvQueue] -= n
            tcb[.rcvWnd] &+= n
            tr.delivered = n
        case .push:
            tr.pushed = UInt8(tr.outputs.count)
        case .flush:
            tcb[.sndQueue] = 0
            tcb[.rcvQueue] = 0
            for k in 0..<TCB.heldRanges { tcb[TCPModel.holdLen(k)] = 0 }
            tcb[.holdFin] = 0
            tcb[.finPending] = 0
        }
    }

    // MARK: held segments

    @inline(__always) static func holdSeq(_ k: Int) -> Register { Register(rawValue: Register.holdSeq1.rawValue + UInt8(2 * k))! }
    @inline(__always) static func holdLen(_ k: Int) -> Register { Register(rawValue: Register.holdLen1.rawValue + UInt8(2 * k))! }

    /// Adds [start, start+len) to the held ranges, kept disjoint, non-adjacent and ordered by distance from
    /// RCV.NXT; overlapping and touching ranges merge (a retransmission of held text, or text that joins two).
    mutating func holdText(_ start: UInt32, _ len: UInt32) {
        let base = tcb[.rcvNxt]
        // Offsets from RCV.NXT: every held range lies in the window, so they do not wrap.
        var ranges: [(lo: UInt64, hi: UInt64)] = [(UInt64(start &- base), UInt64(start &- base) + UInt64(len))]
        for k in 0..<TCB.heldRanges where tcb[TCPModel.holdLen(k)] > 0 {
            let lo = UInt64(tcb[TCPModel.holdSeq(k)] &- base)
            ranges.append((lo, lo + UInt64(tcb[TCPModel.holdLen(k)])))
        }
        ranges.sort { $0.lo < $1.lo }
        var merged: [(lo: UInt64, hi: UInt64)] = []
        for r in ranges {
            if let last = merged.last, r.lo <= last.hi { merged[merged.count - 1].hi = max(last.hi, r.hi) } else { merged.append(r) }
        }
        if merged.count > TCB.heldRanges { tcb[.holdLost] = 1 }
        for k in 0..<TCB.heldRanges {
            if k < merged.count {
                tcb[TCPModel.holdSeq(k)] = base &+ UInt32(merged[k].lo)
                tcb[TCPModel.holdLen(k)] = UInt32(merged[k].hi - merged[k].lo)
            } else {
                tcb[TCPModel.holdLen(k)] = 0
            }
        }
    }

    /// Removes the held ranges RCV.NXT has reached and returns how many octets beyond RCV.NXT they add; the
    /// ranges beyond the new end stay, moved to the front.
    mutating func releaseHeld() -> UInt32 {
        let base = tcb[.rcvNxt]
        var end: UInt32 = 0 // offset from RCV.NXT
        var kept = 0
        for k in 0..<TCB.heldRanges {
            let len = tcb[TCPModel.holdLen(k)]
            guard len > 0 else { break }
            let lo = Int64(Int32(bitPattern: tcb[TCPModel.holdSeq(k)] &- base))
            let hi = lo + Int64(len)
            if lo <= Int64(end) {
                if hi > Int64(end) { end = UInt32(hi) }
            } else {
                tcb[TCPModel.holdSeq(kept)] = tcb[TCPModel.holdSeq(k)]
                tcb[TCPModel.holdLen(kept)] = len
                kept += 1
            }
        }
        for k in kept..<TCB.heldRanges { tcb[TCPModel.holdLen(k)] = 0 }
        return end
    }

    /// HELD.NEXT and HELD.FIN: what taking this segment's own text (as `accept-text` would) makes contiguous
    /// with RCV.NXT — octets of held text beyond the segment's end, or whether the held FIN is then next.
    func held(_ seg: Segment, fin: Bool) -> UInt32 {
        guard tcb[.holdLen1] > 0 || tcb[.holdFin] == 1, !seg.ctl.contains(.fin) else { return 0 }
        let base = tcb[.rcvNxt]
        var room = holdWhole && tcb[.rcvWnd] > 0 ? UInt64(UInt32.max) : UInt64(tcb[.rcvWnd])
        var end: UInt64 = 0 // offset from RCV.NXT
        let start = seg.seq &+ (seg.ctl.contains(.syn) ? 1 : 0)
        let already = Int64(Int32(bitPattern: base &- start))
        if already >= 0, UInt64(seg.dataLength) > UInt64(already) {
            end = min(UInt64(seg.dataLength) - UInt64(already), room)
        }
        let own = end
        for k in 0..<TCB.heldRanges {
            let len = tcb[TCPModel.holdLen(k)]
            guard len > 0 else { break }
            let lo = Int64(Int32(bitPattern: tcb[TCPModel.holdSeq(k)] &- base))
            guard lo <= Int64(end) else { break }
            end = max(end, UInt64(max(0, lo + Int64(len))))
        }
        room = min(end, room)
        if fin { return tcb[.holdFin] == 1 && tcb[.holdFinSeq] &- base == UInt32(truncatingIfNeeded: room) ? 1 : 0 }
        return UInt32(room - own)
    }

    /// The held range (start, length) holding sequence number `seq`, if any.
    public func heldRange(holding seq: UInt32) -> (start: UInt32, length: UInt32)? {
        for k in 0..<TCB.heldRanges {
            let len = tcb[TCPModel.holdLen(k)]
            guard len > 0 else { break }
            let start = tcb[TCPModel.holdSeq(k)]
            if seq &- start < len { return (start, len) }
        }
        return nil
    }

    /// HELD.END: just past the highest held octet or held FIN (RCV.NXT when nothing is held; the farthest FIN held, a
    /// second FIN having replaced it, counts) — the right edge of the highest SACK block (Linux's `max_sack` in
    /// tcp_validate_incoming). Ranges are kept nearest first.
    public var heldEnd: UInt32 {
        let base = tcb[.rcvNxt]
        var end: UInt32 = 0 // offset from RCV.NXT
        for k in 0..<TCB.heldRanges {
            let len = tcb[TCPModel.holdLen(k)]
            guard len > 0 else { break }
            end = max(end, tcb[TCPModel.holdSeq(k)] &- base &+ len)
        }
        if tcb[.holdFin] == 1 { end = max(end, tcb[.holdFinSeq] &- base &+ 1, tcb[.holdFinEnd] &- base) }
        return base &+ end
    }

    /// Whether a number of segment `s` lies exactly 2^31 from one the rules order it against — SEG.SEQ or its end
    /// against RCV.NXT and the window's right edge; SEG.ACK (when the ACK bit is set) against SND.UNA, SND.NXT, ISS
    /// and SND.UNA-MAX.SND.WND (IRS and HELD.END are only compared for equality, defined half way round too). RFC 9293 compares modulo 2^32 (§3.4) and no order exists between two
    /// numbers half way round (serial-number arithmetic leaves it undefined, RFC 1982 §3.2): how a stack classes
    /// such an input is its own, and a divergence there is unspecified.
    public func halfWayApart(_ s: Segment) -> Bool {
        let half: UInt32 = 0x8000_0000
        let receive = [tcb[.rcvNxt], tcb[.rcvNxt] &+ tcb[.rcvWnd]]
        for x in [s.seq, s.seq &+ s.length] where receive.contains(where: { x &- $0 == half }) { return true }
        guard s.ctl.contains(.ack) else { return false }
        return [tcb[.sndUna], tcb[.sndNxt], tcb[.iss], tcb[.sndUna] &- tcb[.maxSndWnd]].contains { s.ack &- $0 == half }
    }

    mutating func take(_ n: UInt32) {
        tcb[.rcvNxt] &+= n
        tcb[.rcvQueue] &+= n
        // Text taken past the right edge (`hold-whole`) closes the window; it never goes below 0.
        tcb[.rcvWnd] -= min(n, tcb[.rcvWnd])
    }
}
