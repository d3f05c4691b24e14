import Core
/// The compiled form of one profile: decision tables per (state, event) over input classes, and the flat action
/// programs the model runs. Immutable and shared by every model instance.

/// One step of an expression program (postfix). Booleans are 0/1.
public enum Op: Sendable, Hashable {
    case const(UInt32)
    case reg(Register)
    case field(InputField)
    case flag(ControlBits)
    case add, sub, min, max
    /// `choose(c, a, b)`: pops c, b, a; pushes a when c holds, else b.
    case choose
    /// `lshift(a, k)`: pops k, a; pushes a shifted left by k (RFC 7323's `SEG.WND << Snd.Wind.Shift`; k above 31 gives 0).
    case lshift
    /// Modulo-2^32 comparison (RFC 9293 §3.10: "=<" means less than or equal, modulo 2^32).
    case cmp(CompareOp)
    case and, or, not
    /// Pushes 1 when the classifier's value is in the mask.
    case classIn(classifier: Int, mask: UInt64)
    // Fused forms the runtime image uses (never produced by the compiler): an operation on two operands,
    // or on the top of the stack and an operand. They cut dispatches in the hot classifiers by about half.
    case cmp2(CompareOp, Operand, Operand)
    case add2(Operand, Operand)
    case sub2(Operand, Operand)
    case cmpWith(CompareOp, Operand)
    case addWith(Operand)
    case subWith(Operand)
    /// Short-circuit `and` / `or`: when the top of the stack already decides, skip the next `count` ops (the
    /// right-hand side and its `and`/`or`), leaving the top as the result. Evaluating without jumping gives the
    /// same value, which is how the compile-time evaluators treat them.
    case skipIfZero(Int)
    case skipIfNonZero(Int)
}

/// A value an instruction reads directly.
public enum Operand: Sendable, Hashable {
    case const(UInt32)
    case reg(Register)
    case field(InputField)

    init?(_ op: Op) {
        switch op {
        case .const(let v): self = .const(v)
        case .reg(let r): self = .reg(r)
        case .field(let f): self = .field(f)
        default: return nil
        }
    }
}

public struct Program: Sendable, Hashable {
    public var ops: [Op]
    public init(_ ops: [Op]) { self.ops = ops }
}

/// One input-class dimension: a control bit (2 values) or a classifier (its values).
public enum Dimension: Sendable, Hashable {
    case bit(ControlBits)
    case classifier(Int)
}

public struct StateInfo: Sendable {
    public var state: TCPState
    /// The RFC spelling (`FIN-WAIT-1`), as the spec writes it.
    public var name: String { state.rawValue }
    public var synchronized: Bool
    /// Entering the state clears the connection variables (CLOSED: "delete the TCB"; LISTEN: no connection yet).
    public var clears: Bool
    public var loc: SourceLocation
}

public struct ClassifierInfo: Sendable {
    public var name: String
    public var values: [String]
    /// Ordered cases: the first whose program yields 1 gives the value; nil program = otherwise. A case with
    /// `states` holds only there (`case V in STATE... if C`).
    public var cases: [(value: Int, program: Program?, states: Set<Int>?)]
    public var events: Set<EventKind>
    /// nil = all states.
    public var states: Set<Int>?
    public var citations: [Citation]
    public var loc: SourceLocation

    public func applies(to event: EventKind, in state: Int) -> Bool {
        events.contains(event) && (states?.contains(state) ?? true)
    }
}

public struct RuleInfo: Sendable {
    public var id: String
    public var profile: String
    public var events: [EventKind]
    public var step: String?
    public var citations: [Citation]
    public var loc: SourceLocation
    /// The guard as written, for tables and explanations.
    public var guardText: String
    public var replaced: [String]
    /// The control bits and classifiers the guard reads: the dimensions that partition the inputs it decides.
    public var reads: [Dimension] = []
    /// The RFC 9293 Appendix B requirements the rule implements: its own citation's IDs, or its group's when it
    /// names none (a group's ID covers every rule of the group that does not say otherwise).
    public var requirements: [RequirementID] = []
    /// Levels its citation states in BCP 14 words where no Appendix B ID names the requirement (own, else group's).
    public var levels: [RequirementLevel] = []

    /// No RFC text decides what the rule does: it cites only a stack's behaviour (`linux`, `pytcp`) or a gap the
    /// spec fills (`rfc-gap`). A divergence from it is `unspecified`, never a failure.
    public var isUnspecified: Bool {
        let docs = citations.flatMap(\.refs).map(\.document)
        return docs.contains { $0.hasPrefix("rfc-gap") } || !docs.contains { $0.hasPrefix("RFC ") || $0.hasPrefix("erratum ") }
    }

    public var citationText: String { citations.map(\.text).joined(separator: "; ") }
}

public struct CompiledTemplate: Sendable {
    public var seq: Program
    public var ack: Program?
    public var ctl: ControlBits
    public var data: Program?
    public var wnd: Program?
    /// Whether SEQ / ACK read an ISS-relative register (symbolic until the target's ISS is bound).
    public var seqUsesISS: Bool
    public var ackUsesISS: Bool
    /// SEQ is a constant (the `<SEQ=0>` of a reset to a segment without ACK): an absolute number, not an offset.
    public var seqConstant: Bool
    /// The template as written, `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`.
    public var text: String
}

/// What a matched chain does, in order.
public enum Instr: Sendable, Hashable {
    /// Marks the rule whose actions follow: outputs carry it as their cause.
    case rule(Int)
    case send(template: Int, condition: Int?)
    case set(Register, program: Int, condition: Int?)
    /// Skips the next `count` instructions unless the program yields 1 (a shared condition).
    case skipUnless(condition: Int, count: Int)
    case enter(Int)
    case signal(Int, condition: Int?)
    case reply(Int)
    case builtin(Builtin, condition: Int?)
    case timer(TimerName, TimerOp)
}

/// The outcome of one input class: the rules that decide it, step by step, and their flattened actions.
public struct Chain: Sendable {
    public var rules: [Int]
    /// The step each rule decided (nil for calls and timeouts).
    public var steps: [String?]
    public var instrs: [Instr]
    /// The state after the chain (nil: unchanged).
    public var finalState: Int?

    /// Whether the chain (re)starts `timer` (`timer T start`; `transmit` and `retransmit` start the
    /// retransmission timer).
    public func starts(_ timer: TimerName) -> Bool {
        instrs.contains { i in
            switch i {
            case .timer(let t, .start): t == timer
            case .builtin(.transmit, _), .builtin(.retransmit, _): timer == .retransmission
            default: false
            }
        }
    }
}

/// Decision tree over the dimensions of a (state, event) pair; leaves name chains.
public enum TreeNode: Sendable {
    case leaf(chain: Int)
    /// Test `dimension`; children for its values are at `firstChild ..< firstChild + arity`.
    case split(dimension: Int, firstChild: Int)
}

public struct EventTable: Sendable {
    /// The chain value of a dimension combination no input can produce (e.g. ACK off with `ack=new`).
    public static let impossible = -2

    public var dimensions: [Dimension]
    public var radices: [Int]
    /// The chain of each cell (mixed-radix index over `dimensions`, first dimension most significant).
    public var cellChains: [Int]
    public var tree: [TreeNode]

    public var cellCount: Int { cellChains.count }

    /// The dimension values of a cell index.
    public func coordinates(of cell: Int) -> [Int] {
        var rest = cell
        var out = [Int](repeating: 0, count: radices.count)
        for d in stride(from: radices.count - 1, through: 0, by: -1) {
            out[d] = rest % radices[d]
            rest /= radices[d]
        }
        return out
    }

    public func cellIndex(_ coords: [Int]) -> Int {
        var idx = 0
        for (d, v) in coords.enumerated() { idx = idx * radices[d] + v }
        return idx
    }
}

public final class CompiledSpec: Sendable {
    public let profile: String
    public let title: String
    /// Profiles from the base to this one.
    public let lineage: [String]
    public let states: [StateInfo]
    public let initialState: Int
    public let classifiers: [ClassifierInfo]
    public let rules: [RuleInfo]
    public let strings: [String]
    public let templates: [CompiledTemplate]
    public let programs: [Program]
    public let chains: [Chain]
    /// Indexed by `state * EventKind.count + event.rawValue`.
    public let tables: [EventTable]
    /// SEGMENT check order per state.
    public let steps: [[String]]
    /// Profile-wide behaviour switches (`option NAME`), e.g. `whole-segments`.
    public let options: Set<String>
    /// The profile's timing bounds (`timing NAME …`), the last profile of the lineage deciding.
    public let timings: [TimingName: Timing]
    /// The states whose KEEPALIVE-TIMEOUT rules restart the keep-alive timer, one bit each: where keep-alives
    /// probe at all (the model runs the timer there once the application turns them on, `timing keepalive.idle`).
    public let keepaliveStates: UInt64
    /// The same tables laid out for the model's inner loop.
    package let image: RuntimeImage

    init(profile: String, title: String, lineage: [String], states: [StateInfo], initialState: Int, classifiers: [ClassifierInfo],
         rules: [RuleInfo], strings: [String], templates: [CompiledTemplate], programs: [Program], chains: [Chain],
         tables: [EventTable], steps: [[String]], options: Set<String> = [], timings: [TimingName: Timing] = [:]) {
        self.profile = profile
        self.title = title
        self.lineage = lineage
        self.states = states
        self.initialState = initialState
        self.classifiers = classifiers
        self.rules = rules
        self.strings = strings
        self.templates = templates
        self.programs = programs
        self.chains = chains
        self.tables = tables
        self.steps = steps
        self.options = options
        self.timings = timings
        let expiry = Int(EventKind.keepaliveTimeout.rawValue)
        self.keepaliveStates = states.indices.reduce(UInt64(0)) { bits, s in
            tables[s * EventKind.count + expiry].cellChains.contains { $0 >= 0 && chains[$0].starts(.keepalive) } ? bits | (1 << UInt64(s)) : bits
        }
        // Templates and classifiers refer to programs by value; make sure every one is in the program list.
        var progs = programs
        for t in templates { for p in [t.seq, t.ack, t.data, t.wnd].compactMap({ $0 }) where !progs.contains(p) { progs.append(p) } }
        for c in classifiers { for k in c.cases { if let p = k.program, !progs.contains(p) { progs.append(p) } } }
        self.image = RuntimeImage(programs: progs, classifiers: classifiers, tables: tables, chains: chains, templates: templates, states: states)
    }

    /// The same spec with some timings replaced: a stack configured away from its defaults (Linux's
    /// `net.ipv4.tcp_rto_min_us`) is judged against its own profile with what was set.
    public func replacingTimings(_ t: [TimingName: Timing]) -> CompiledSpec {
        CompiledSpec(profile: profile, title: title, lineage: lineage, states: states, initialState: initialState, classifiers: classifiers, rules: rules,
                     strings: strings, templates: templates, programs: programs, chains: chains, tables: tables, steps: steps, options: options,
                     timings: timings.merging(t) { $1 })
    }

    public func table(state: Int, event: EventKind) -> EventTable {
        tables[state * EventKind.count + Int(event.rawValue)]
    }

    /// What a `reply "..."` says, typed (the compiler checked every reply string reads as one).
    public func reply(_ string: Int) -> CallReply { CallReply(spec: strings[string]) ?? .ok }

    public func stateIndex(named name: String) -> Int? {
        states.firstIndex { $0.name == name }
    }

    public func dimensionName(_ d: Dimension) -> String {
        switch d {
        case .bit(let b): b.description
        case .classifier(let c): classifiers[c].name
        }
    }

    public func valueName(_ d: Dimension, _ v: Int) -> String {
        switch d {
        case .bit(let b): v == 1 ? b.description : "no \(b.description)"
        case .classifier(let c): classifiers[c].values[v]
        }
    }

    /// `SYN,ACK seq=exact ack=new text=none` — a readable name for an input class.
    public func describeCell(state: Int, event: EventKind, cell: Int) -> String {
        let t = table(state: state, event: event)
        let coords = t.coordinates(of: cell)
        var parts: [String] = []
        if event == .segment {
            var bits = ControlBits()
            for (d, dim) in t.dimensions.enumerated() { if case .bit(let b) = dim, coords[d] == 1 { bits.insert(b) } }
            parts.append(bits.isEmpty ? "<none>" : bits.description)
        } else {
            parts.append(event.spelling)
        }
        for (d, dim) in t.dimensions.enumerated() {
            if case .classifier(let c) = dim { parts.append("\(classifiers[c].name)=\(classifiers[c].values[coords[d]])") }
        }
        return parts.joined(separator: " ")
    }

    public var cellCount: Int { tables.reduce(0) { $0 + $1.cellCount } }
}

/// A timing value as a profile bounds it: a window `[lower, upper]` (either side open), with the clause that sets
/// it. A stack whose timer fires outside the window breaks `requirements` (or, without IDs, the clause's `level`).
public struct Timing: Sendable, Hashable {
    public var lower: Double?
    public var upper: Double?
    public var citation: String
    public var requirements: [RequirementID]
    public var level: RequirementLevel?
    public init(lower: Double?, upper: Double?, citation: String, requirements: [RequirementID] = [], level: RequirementLevel? = nil) {
        self.lower = lower
        self.upper = upper
        self.citation = citation
        self.requirements = requirements
        self.level = level
    }

    /// R2 as the application set it (`setting`, e.g. TCP_USER_TIMEOUT=3000), for data and SYN segments alike:
    /// RFC 9293 §3.8.3 lets the application set R2 for a connection (MUST-21) and close an open attempt sooner.
    public static func applicationR2(_ seconds: Double, setting: String) -> [TimingName: Timing] {
        let t = Timing(lower: seconds, upper: seconds,
                       citation: "application setting \(setting); RFC 9293 §3.8.3 MUST-21 \"An application MUST (MUST-21) be able to set the value for R2 for a particular connection\"",
                       requirements: [RequirementID(.must, 21)], level: .must)
        return [.r2: t, .r2Syn: t]
    }

    /// Keep-alives as the application turned them on (`setting`, e.g. SO_KEEPALIVE with TCP_KEEPIDLE=2): RFC 9293
    /// §3.8.4 leaves them to the application (MUST-24), the interval configurable (MUST-27). `probes`: how many go
    /// unanswered before the connection is given up (nil: never).
    public static func applicationKeepalive(idle: Double, interval: Double, probes: Int?, setting: String) -> [TimingName: Timing] {
        let cite = "application setting \(setting); RFC 9293 §3.8.4 MUST-24 \"the application MUST be able to turn them on or off for each TCP connection\"; RFC 9293 §3.8.4 MUST-26 \"Keep-alive packets MUST only be sent when no sent data is outstanding, and no data or acknowledgment packets have been received for the connection within an interval\""
        let ids = [RequirementID(.must, 24), RequirementID(.must, 26)]
        var t: [TimingName: Timing] = [
            .keepaliveIdle: Timing(lower: idle, upper: idle, citation: cite, requirements: ids, level: .must),
            .keepaliveInterval: Timing(lower: interval, upper: interval, citation: cite, requirements: ids, level: .must),
        ]
        if let probes { t[.keepaliveProbes] = Timing(lower: Double(probes), upper: Double(probes), citation: cite, requirements: ids, level: .must) }
        return t
    }

    /// `1 s`, `1 s to 3 s`, `at least 60 s`: for reports.
    public var text: String {
        func f(_ v: Double) -> String { v < 1 ? "\(Int((v * 1000).rounded())) ms" : v == v.rounded() ? "\(Int(v)) s" : "\(v) s" }
        switch (lower, upper) {
        case let (l?, u?): return l == u ? f(l) : "\(f(l)) to \(f(u))"
        case let (l?, nil): return "at least \(f(l))"
        case let (nil, u?): return "at most \(f(u))"
        default: return "any"
        }
    }
}
