import Core
import Targets
import Wire

/// What identifies a divergence, so that one fault is one finding however many inputs show it: the state, what
/// decided the input (the spec's rules, its own partition of input classes), and how expected and observed
/// differ. Typed; `description` is its one stable text, the key of `Spec/baselines/*.toml` and of the
/// `# signature:` line of corpus cases (tested: SignatureTests).
public enum Signature: Hashable, Sendable, CustomStringConvertible {
    /// A shrinking window is one finding in any state.
    case windowShrink
    /// The stack failed as a program: one finding per kind and what tcpspec was waiting for (numbers out).
    case failure(String)
    /// The target's options break a rule on options: one finding per rule, in any state.
    case option(OptionRule)
    case step(Step)

    public struct Step: Hashable, Sendable {
        public var state: TCPState
        /// The input class as the responsible rules partition it: the control bits (or the call) and the
        /// values of the classifiers those rules read. Two faults that differ there are two findings.
        public var input: String
        /// The rules' ids joined by ` › ` (or the input's notation where no rule decided).
        public var decidedBy: String
        public var expected: [Shape]
        public var expectedState: TCPState
        public var observed: [Shape]
        /// Fields that differ where both sides sent the same segments' control bits.
        public var differing: [Field]
        public var observedState: TCPState?
        /// The class and the requirements broken: a baseline entry accepts exactly what it names.
        public var judgement: Judgement?
        /// A timer outside its window: which, how (early, late, missing) and the timings that set the window.
        public var timer: String?
    }

    /// A segment's control bits and whether it carries text.
    public struct Shape: Hashable, Sendable, CustomStringConvertible {
        public var ctl: ControlBits
        public var text: Bool
        public init(ctl: ControlBits, text: Bool) {
            self.ctl = ctl
            self.text = text
        }
        public var description: String { ctl.notation + (text ? "+data" : "") }
    }

    public enum Field: String, Hashable, Sendable, Comparable {
        case ack, length, seq
        public static func < (a: Field, b: Field) -> Bool { a.rawValue < b.rawValue }
    }

    static let windowShrinkText = "any state | window | the target moved the right edge of its receive window left (RFC 9293 §3.8.6.2.2 SHLD-14)"

    /// The signature of a judged step. `decidedBy`: the rules that decided the input, or the input itself.
    public init(state: TCPState, input: String = "", decidedBy: String, expected: [Segment], expectedState: TCPState, observed: [Segment],
                observedState: TCPState?, mismatches: [Mismatch], judgement: Judgement? = nil) {
        if let first = mismatches.first, case .failure(let kind, let detail) = first {
            // Not the step: in a failed round every connection's step carries the failure; the detail names the
            // request the stack failed on.
            let line = "\(kind.rawValue): \(TargetFailure.identifying(detail))".split(separator: "\n", omittingEmptySubsequences: false)[0]
            self = .failure(String(line.replacing(/[0-9]+/, with: "N").prefix(240)))
            return
        }
        if !mismatches.isEmpty, mismatches.allSatisfy(\.isWindowShrink) {
            self = .windowShrink
            return
        }
        // Options are not in the spec's tables: a fault in them is one finding whatever the step's input.
        if !mismatches.isEmpty, mismatches.allSatisfy({ $0.isOption || $0.isWindowShrink }), case .option(let o)? = mismatches.first(where: \.isOption) {
            self = .option(o.rule)
            return
        }
        // A timer's finding is the timer, how it strayed and the timings: what a wait's segments were depends on
        // how long the case waited (shortened when minimized).
        let timed = mismatches.contains { if case .timer = $0 { true } else { false } }
        let e = timed ? [] : SegmentKey.normalize(expected), o = timed ? [] : SegmentKey.normalize(observed)
        var fields: Set<Field> = []
        if e.count == o.count, zip(e, o).allSatisfy({ $0.ctl == $1.ctl }) {
            for (a, b) in zip(e, o) {
                if a.seq != b.seq { fields.insert(.seq) }
                if a.ack != b.ack { fields.insert(.ack) }
                if a.length != b.length { fields.insert(.length) }
            }
        }
        var step = Step(state: state, input: input, decidedBy: decidedBy, expected: e.map { Shape(ctl: $0.ctl, text: $0.length > 0) }, expectedState: expectedState,
                        observed: o.map { Shape(ctl: $0.ctl, text: $0.length > 0) }, differing: fields.sorted(), observedState: observedState, judgement: judgement)
        for case .timer(let t) in mismatches {
            // A delayed ACK past its bound is one finding whether it came late or not by the end: which one
            // depends on how long the case went on.
            let kind = t.timed == .delayedAck ? TimerMismatch.Kind.late : t.kind
            step.timer = "\(t.timed.spelling) \(kind.rawValue) (\(t.window.timings.map(\.rawValue).joined(separator: ", ")))"
            break
        }
        self = .step(step)
    }

    /// A stack failure's kind as the signature names it (`target-crash`), nil for a step's divergence.
    public var failureKind: Substring? {
        if case .failure(let text) = self { text.prefix { $0 != ":" } } else { nil }
    }

    public var description: String {
        switch self {
        case .windowShrink: return Signature.windowShrinkText
        case .failure(let text): return "any state | \(text)"
        case .option(let rule): return "any state | option \(rule.rawValue) | \(rule.verdictClass.rawValue)" + (rule.requirement.map { " \($0)" } ?? "") + " (\(rule.clause))"
        case .step(let s):
            func shape(_ x: [Shape]) -> String { x.isEmpty ? "none" : x.map(\.description).joined(separator: ",") }
            let how = s.differing.isEmpty ? "" : " (\(s.differing.map(\.rawValue).joined(separator: ",")) differ)"
            let input = s.input.isEmpty ? "" : "\(s.input) | "
            let verdict = s.judgement.map { j in " | \(j.verdictClass.rawValue)" + (j.requirements.isEmpty ? "" : " " + j.requirements.map(\.description).joined(separator: ",")) } ?? ""
            let timer = s.timer.map { " | timer \($0)" } ?? ""
            return "\(s.state) | \(input)\(s.decidedBy) | expected \(shape(s.expected)) → \(s.expectedState) | observed \(shape(s.observed))\(how) → \(s.observedState?.rawValue ?? "?")\(timer)\(verdict)"
        }
    }
}

extension Signature {
    /// The class of the finding: a shrinking window departs from SHLD-14; a stack that fails as a program breaks
    /// the contract outright.
    public var verdictClass: VerdictClass { judgement?.verdictClass ?? .violates }

    /// The requirements the finding breaks (empty where no Appendix B ID names the clause).
    public var requirements: [RequirementID] { judgement?.requirements ?? [] }

    public var judgement: Judgement? {
        switch self {
        case .windowShrink: .windowShrink
        case .failure: .stackFailure
        case .option(let rule): Judgement.option(rule)
        case .step(let s): s.judgement
        }
    }
}
