import Core
import Targets

/// What differed at one step between the model's prediction and the target, typed: reports, signatures and the
/// differential mode read these fields, never a sentence. `description` is the one rendering (case files'
/// `# ^` lines, reports).
public enum Mismatch: Hashable, Sendable, CustomStringConvertible {
    /// The segments differ (each side normalized: contiguous text is one run however it was cut).
    case segments(expected: [SegmentKey], observed: [SegmentKey])
    case state(expected: TCPState, observed: TCPState)
    /// The target moved the right edge of its receive window left (RFC 9293 §3.8.6.2.2 SHLD-14): by `by`
    /// octets, advertising `window` with ACK `ack` (tester-relative); `inferredShift` when the advertisement
    /// reads as scaled by 2^k without a Window Scale agreed.
    case windowShrink(by: UInt32, window: UInt32, ack: UInt32, inferredShift: Int?)
    /// The stack failed as a program (crashed, hung, broke the agent protocol, did not start).
    case failure(TargetFailure.Kind, detail: String)
    /// A failure of a whole round that no connection of it reproduces alone.
    case notReproducedAlone(others: Int)
    /// The stack took one alternative of a choice the RFC leaves open after an earlier step bound the other:
    /// each alternative is permitted, switching between them is not.
    /// `rules`: the choice's rules that decided the step (indices into the spec's rules), which give its class.
    case inconsistentChoice(choice: String, title: String, bound: String, boundAt: String, observed: String, rules: [Int])
    /// A timer expired outside the window the profile's `timing` lines give it, or not at all.
    case timer(TimerMismatch)
    /// The options of a segment the target sent break a requirement on options (beside the spec's tables).
    case option(OptionMismatch)

    public var description: String {
        switch self {
        case .segments(let e, let o):
            "segments: expected \(Mismatch.list(e)), observed \(Mismatch.list(o))"
        case .state(let e, let o):
            "state: expected \(e), observed \(o)"
        case .windowShrink(let by, let window, let ack, let k):
            "window: the target moved the right edge of its receive window left by \(by) octets (advertised \(window) at ACK \(ack)"
                + (k.map { ", as if scaled by 2^\($0) without a Window Scale agreed" } ?? "")
                + "); RFC 9293 §3.8.6.2.2 SHLD-14 \"A TCP receiver SHOULD NOT shrink the window\""
        case .failure(let kind, let detail):
            "\(kind.rawValue): \(detail)"
        case .notReproducedAlone(let others):
            "not reproduced alone: the failure needed the other \(others) connections of its round"
        case .inconsistentChoice(_, let title, let bound, let boundAt, let observed, _):
            "choice: \(title): the stack \(observed) here, but \(bound) at \(boundAt)"
        case .timer(let t):
            t.description
        case .option(let o):
            o.description
        }
    }

    static func list(_ keys: [SegmentKey]) -> String {
        keys.isEmpty ? "none" : keys.map(\.description).joined(separator: ", ")
    }

    public var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }

    public var isOption: Bool {
        if case .option = self { return true }
        return false
    }

    public var isWindowShrink: Bool {
        if case .windowShrink = self { return true }
        return false
    }
}

/// A segment's options against an `OptionRule`: which rule, what was expected, what the segment did.
public struct OptionMismatch: Hashable, Sendable, CustomStringConvertible {
    public var rule: OptionRule
    public var expected: String
    public var observed: String
    public init(rule: OptionRule, expected: String, observed: String) {
        self.rule = rule
        self.expected = expected
        self.observed = observed
    }
    public var description: String {
        "option: the target \(observed); expected \(expected) (\(rule.requirement.map { "\($0), " } ?? "")\(rule.clause))"
    }
}
