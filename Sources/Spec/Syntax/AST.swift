import Core
/// The typed syntax tree of one `.tcpspec` file, as written (before profiles are merged).

public struct Located<T: Sendable>: Sendable {
    public var value: T
    public var loc: SourceLocation
    public init(_ value: T, _ loc: SourceLocation) {
        self.value = value
        self.loc = loc
    }
}

public indirect enum Expr: Sendable {
    case number(UInt32, SourceLocation)
    case name(String, SourceLocation)
    case not(Expr, SourceLocation)
    case and(Expr, Expr, SourceLocation)
    case or(Expr, Expr, SourceLocation)
    case add(Expr, Expr, SourceLocation)
    case sub(Expr, Expr, SourceLocation)
    /// `a =< b < c`: a chain of modulo-2^32 comparisons, as the RFC writes them.
    case compare([Expr], [CompareOp], SourceLocation)
    case call(String, [Expr], SourceLocation)
    /// `seq is exact`, `ack in {new, dup}`, `seq is not outside`.
    case classIs(String, [Located<String>], negated: Bool, SourceLocation)

    public var loc: SourceLocation {
        switch self {
        case .number(_, let l), .name(_, let l), .not(_, let l), .and(_, _, let l), .or(_, _, let l), .add(_, _, let l),
             .sub(_, _, let l), .compare(_, _, let l), .call(_, _, let l), .classIs(_, _, _, let l):
            l
        }
    }
}

public enum CompareOp: String, Sendable {
    case lt = "<", le = "=<", gt = ">", ge = ">=", eq = "=", ne = "!="
}

/// A cited source: `RFC 793 §3.9 p.69`, `RFC 9293 §3.10.7.4`, `RFC 5961 §3.2`, `erratum 4772`, `linux tcp_validate_incoming`.
public struct CitationRef: Sendable, Hashable, CustomStringConvertible {
    public var document: String
    public var section: String?
    public var page: Int?
    public var quote: String?
    /// RFC 9293 Appendix B IDs the reference names (`RFC 9293 §3.10.7.4 MUST-66 "..."`).
    public var requirements: [RequirementID] = []
    /// The level the reference states without an Appendix B ID (`RFC 9293 §3.10.7.3 SHOULD "..."`).
    public var level: RequirementLevel?

    public var description: String {
        var s = document
        if let section { s += " §\(section)" }
        if let page { s += " p.\(page)" }
        for r in requirements { s += " \(r)" }
        if let level { s += " " + level.rawValue.replacingOccurrences(of: " ", with: "-") }
        if let quote { s += " \"\(quote)\"" }
        return s
    }
}

public struct Citation: Sendable {
    public var refs: [CitationRef]
    public var loc: SourceLocation
    public var text: String { refs.map(\.description).joined(separator: "; ") }
    public var requirements: [RequirementID] { refs.flatMap(\.requirements) }
    public var levels: [RequirementLevel] { refs.compactMap(\.level) }
}

/// `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>` — a segment to send, in RFC 9293 §3.10 notation.
public struct SegmentTemplate: Sendable {
    public var seq: Expr
    public var ack: Expr?
    public var ctl: ControlBits
    public var data: Expr?
    public var wnd: Expr?
    public var loc: SourceLocation
}

public enum Action: Sendable {
    case send(SegmentTemplate, condition: Expr?)
    /// `set A <- x, B <- y if C`: the assignments share one condition, tested once, as the RFC's
    /// "If (...), set SND.WND <- SEG.WND, set SND.WL1 <- SEG.SEQ, and set SND.WL2 <- SEG.ACK".
    case set([(Located<String>, Expr)], condition: Expr?)
    case enter(Located<String>)
    case signal(String, condition: Expr?)
    /// The immediate return of a user call: `reply "ok"`, `reply "error: connection closing"`.
    case reply(String)
    case builtin(Located<String>, condition: Expr?)
    case timer(Located<String>, TimerOp)
    case drop
    case ret
    case `continue`(at: Located<String>?)

    public var isControl: Bool {
        switch self {
        case .drop, .ret, .continue: true
        default: false
        }
    }
}

public struct RuleDecl: Sendable {
    public var id: Located<String>
    /// nil for `otherwise`.
    public var guardExpr: Expr?
    public var replaces: [Located<String>]
    /// `replaces X in STATE...`: the replaced rules give up only these states and keep the others.
    public var replacesIn: [Located<String>]
    public var actions: [Located<Action>]
    public var citations: [Citation]
}

/// `on EVENT[, EVENT] in STATE... [step NAME]` followed by its rules.
public struct GroupDecl: Sendable {
    public var events: [Located<String>]
    public var states: [Located<String>]
    public var step: Located<String>?
    public var citations: [Citation]
    public var rules: [RuleDecl]
    public var loc: SourceLocation
}

public struct ClassifierCase: Sendable {
    public var value: Located<String>
    /// nil for `otherwise`.
    public var condition: Expr?
    /// `case V in STATE... if C`: the states where the case can hold (empty: every state the classifier
    /// applies in). Elsewhere it never holds, and input classes with its value are not input classes there.
    public var states: [Located<String>] = []
}

/// `classify NAME on EVENT... in STATE...` with ordered `case` lines: the first that holds gives the value.
public struct ClassifierDecl: Sendable {
    public var name: Located<String>
    public var events: [Located<String>]
    public var states: [Located<String>]
    public var cases: [ClassifierCase]
    public var citations: [Citation]
    public var isOverride: Bool
    /// `classify NAME prepend ...`: the cases go before the inherited classifier's (an overlay's test that comes
    /// first, as PAWS comes before the acceptability test), the rest of it unchanged.
    public var isPrepend: Bool = false
    public var loc: SourceLocation
}

public struct StateDecl: Sendable {
    public var name: Located<String>
    public var attributes: [Located<String>]
}

/// `steps in STATE...: a, b, c` — the check order of SEGMENT ARRIVES for those states.
public struct StepsDecl: Sendable {
    public var states: [Located<String>]
    public var steps: [Located<String>]
    public var citations: [Citation]
    public var loc: SourceLocation
}

/// `acknowledge in STATE... from EXPR`: in these states, every acknowledgment or reset a rule forms at
/// `<SEQ=SND.NXT>` (ACK set; no SYN, FIN or text) takes its SEQ from EXPR instead — how a stack chooses the sequence
/// number of its pure ACKs (Linux's `tcp_acceptable_seq`), stated once per profile rather than in every rule.
public struct AcknowledgeDecl: Sendable {
    public var states: [Located<String>]
    public var seq: Expr
    public var citations: [Citation]
    public var loc: SourceLocation
}

/// `option NAME`: a profile-wide switch of how the endpoint behaves where a rule says only "transmit".
public struct OptionDecl: Sendable {
    public var name: Located<String>
    public var citations: [Citation]
}

/// `timing NAME BOUNDS`: how long a timer runs (or a factor, for `rto.backoff`), as the bounds the profile
/// allows: `1s`, `1s to 3s`, `at-least 60s`, `at-most 500ms`.
public struct TimingDecl: Sendable {
    public var name: Located<String>
    public var lower: Double?
    public var upper: Double?
    /// Whether the values are durations (seconds) rather than plain numbers.
    public var isDuration: Bool
    public var citations: [Citation]
}

public struct ProfileDecl: Sendable {
    public var name: Located<String>
    public var extends: Located<String>?
    public var title: String?
}

public struct SpecFileAST: Sendable {
    public var file: SourceFile
    public var profile: ProfileDecl?
    public var states: [StateDecl] = []
    public var steps: [StepsDecl] = []
    public var classifiers: [ClassifierDecl] = []
    public var groups: [GroupDecl] = []
    public var acknowledges: [AcknowledgeDecl] = []
    public var options: [OptionDecl] = []
    public var timings: [TimingDecl] = []
}
