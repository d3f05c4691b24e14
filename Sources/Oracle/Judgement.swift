import Core
import Model
import Spec

/// What a divergence is, as RFC 9293 decides it: its class, the requirements it breaks and the rules held
/// responsible. A stack author reads this instead of triaging: `violates MUST-66` is a bug, `choice MAY-13`
/// is the stack's right.
///
/// The rules held responsible are those whose effect differs: a rule that sent an expected segment the stack did
/// not send alike; the rule that entered the expected state when the states differ; and the rule that ended the
/// chain when the stack sent more than the spec or the spec sent nothing (its silence was the prediction). Each
/// has a class — from the strongest requirement it cites (MUST → violates, SHLD/REC → deviates, MAY → choice);
/// with none, `violates` when an RFC clause decides it (§3.10's event processing permits no alternative) and
/// `unspecified` when no RFC does (a stack's own behaviour, a gap the spec fills) — and the divergence takes the
/// most severe of them.
public struct Judgement: Hashable, Sendable, Codable {
    public var verdictClass: VerdictClass
    /// The requirements of the responsible rules of that class (empty: a clause with no Appendix B ID, or none).
    public var requirements: [RequirementID]
    /// The responsible rules' ids.
    public var rules: [String]
    /// The RFC sections the responsible rules cite (`RFC 9293 §3.10.7.4`), for divergences no ID names.
    public var clauses: [String]
    /// The responsible rules (indices into the spec's rules).
    public var ruleIndices: [Int] = []
    /// The choice the stack took both alternatives of, when that is the finding.
    public var inconsistentChoice: String?

    public init(verdictClass: VerdictClass, requirements: [RequirementID], rules: [String], clauses: [String]) {
        self.verdictClass = verdictClass
        self.requirements = requirements
        self.rules = rules
        self.clauses = clauses
    }

    /// `violates MUST-66 (rst.abort.exact)`, `violates RFC 9293 §3.10.7.4 (ack.new)`.
    public var description: String {
        let what = !requirements.isEmpty ? requirements.map(\.description).joined(separator: ", ")
            : !clauses.isEmpty ? clauses.joined(separator: ", ") : "no clause"
        return "\(verdictClass.rawValue) \(what)" + (rules.isEmpty ? "" : " (\(rules.joined(separator: ", ")))")
    }

    /// The class a rule's own divergence has: from the strongest requirement it cites, by ID or by a level word
    /// where Appendix B numbers none.
    public static func ruleClass(_ rule: RuleInfo) -> VerdictClass {
        let classes = rule.requirements.map(\.divergenceClass) + rule.levels.map(\.divergenceClass)
        if let worst = classes.min() { return worst }
        return rule.isUnspecified ? .unspecified : .violates
    }

    /// Judges a diverged step: `chainRules` the rules that decided the input, `outputRules` the rule of each
    /// output the model sent, `chain` the chain's index (-1 for none).
    public init(spec: CompiledSpec, chain: Int, chainRules: [Int], outputRules: [Int], mismatches: [Mismatch]) {
        // The stack failing as a program breaks the whole contract; a shrinking window is SHLD-14.
        if mismatches.contains(where: { if case .failure = $0 { true } else if case .notReproducedAlone = $0 { true } else { false } }) {
            self = .stackFailure
            return
        }
        // Both alternatives of a choice are permitted; taking both is not.
        if let m = mismatches.first(where: { if case .inconsistentChoice = $0 { true } else { false } }), case .inconsistentChoice(let name, _, _, _, _, let rules) = m {
            // One finding per choice and state, whatever input showed it: the input class is the choice's.
            // Its class is the taken alternative's rule's: a stack implementing RFC 5961 that skips a SHOULD of it
            // in one state deviates; one that skips a MUST violates.
            let cls = rules.map { Judgement.ruleClass(spec.rules[$0]) }.filter { $0 != .unspecified }.min() ?? .violates
            let responsible = rules.filter { Judgement.ruleClass(spec.rules[$0]) == cls }
            // The requirements named are the choice's own rules' (MAY-12 for RFC 5961 §5): the finding is about them.
            self.init(verdictClass: cls, requirements: Array(Set(responsible.flatMap { spec.rules[$0].requirements })).sorted(),
                      rules: responsible.map { spec.rules[$0].id }, clauses: ["inconsistent choice \(name)"])
            inconsistentChoice = name
            return
        }
        // A timer outside its window breaks the `timing` lines that set the window (MUST-18's RFC 6298 values,
        // MUST-13's 2 MSL): the strongest of them decides, by its requirement level where the clause names one
        // (RFC 6298 §2.4's SHOULD under MUST-18 deviates), else by its IDs.
        if let m = mismatches.first(where: { if case .timer = $0 { true } else { false } }), case .timer(let t) = m {
            var worst: (VerdictClass, [RequirementID], String)?
            for name in t.window.timings {
                guard let timing = spec.timings[name] else { continue }
                let cls = timing.level?.divergenceClass ?? timing.requirements.map(\.divergenceClass).min() ?? .violates
                if worst == nil || cls < worst!.0 { worst = (cls, timing.requirements, name.rawValue) }
            }
            let (cls, reqs, name) = worst ?? (.violates, [], t.timed.spelling)
            let chainIDs = chainRules.map { spec.rules[$0].id }
            // An expiry whose every rule is unspecified (a keep-alive probe in CLOSE-WAIT: §3.8.4 names no states)
            // is owed by no RFC: its absence is not a failure, however the timer is timed.
            // A delayed acknowledgment is owed by the step that took the text, not by this step's rules: its timing decides.
            let ruleOwed = t.timer != nil
            if ruleOwed, t.kind == .missing, !chainRules.isEmpty, chainRules.allSatisfy({ spec.rules[$0].isUnspecified }) {
                self.init(verdictClass: .unspecified, requirements: [], rules: chainIDs, clauses: chainRules.map { "rule \(spec.rules[$0].id)" })
                ruleIndices = chainRules
                return
            }
            // An expiry that never came breaks what the timer was to do: the rule that sends its output, when that
            // rule names a requirement (a zero-window probe's MUST-36), rather than how long it runs.
            if ruleOwed, t.kind == .missing, let ruleCls = chainRules.map({ Judgement.ruleClass(spec.rules[$0]) }).filter({ $0 != .unspecified }).min() {
                let responsible = chainRules.filter { Judgement.ruleClass(spec.rules[$0]) == ruleCls }
                let ids = Array(Set(responsible.flatMap { spec.rules[$0].requirements })).sorted()
                if !ids.isEmpty {
                    self.init(verdictClass: ruleCls, requirements: ids, rules: chainIDs, clauses: responsible.map { "rule \(spec.rules[$0].id)" })
                    ruleIndices = chainRules
                    return
                }
            }
            self.init(verdictClass: cls, requirements: reqs, rules: chainIDs, clauses: ["timing \(name): \(spec.timings[TimingName(rawValue: name) ?? .rtoInitial]?.citation ?? "")"])
            ruleIndices = chainRules
            return
        }
        var responsible: [Int] = []
        func add(_ r: Int?) { if let r, !responsible.contains(r) { responsible.append(r) } }
        let terminal = chainRules.last
        var shrink = false
        for m in mismatches {
            switch m {
            case .segments(let e, let o):
                for r in outputRules { add(r) }
                if outputRules.isEmpty || o.count > e.count { add(terminal) }
            case .state:
                var entering: Int?
                if chain >= 0 {
                    var current: Int?
                    for i in spec.chains[chain].instrs {
                        if case .rule(let r) = i { current = r }
                        if case .enter = i { entering = current }
                    }
                }
                add(entering ?? terminal)
            case .windowShrink:
                shrink = true
            case .failure, .notReproducedAlone, .inconsistentChoice, .timer, .option:
                break
            }
        }
        var classes: [(VerdictClass, RuleInfo)] = responsible.map { (Judgement.ruleClass(spec.rules[$0]), spec.rules[$0]) }
        if responsible.isEmpty, shrink {
            self = .windowShrink
            return
        }
        if responsible.isEmpty, case .option(let o)? = mismatches.first(where: \.isOption) {
            self = .option(o.rule)
            return
        }
        if classes.isEmpty, let t = terminal { classes = [(Judgement.ruleClass(spec.rules[t]), spec.rules[t])] }
        guard let worst = classes.map(\.0).min() else {
            self.init(verdictClass: .unspecified, requirements: [], rules: [], clauses: [])
            return
        }
        let chosen = classes.filter { $0.0 == worst }.map(\.1)
        var reqs: [RequirementID] = []
        var clauses: [String] = []
        for r in chosen {
            // The requirements that give the class: a rule citing MUST-n and MAY-m violates MUST-n.
            for id in r.requirements where id.divergenceClass == worst && !reqs.contains(id) { reqs.append(id) }
            for ref in r.citations.flatMap(\.refs) where ref.document.hasPrefix("RFC ") || ref.document.hasPrefix("erratum ") {
                let c = ref.document + (ref.section.map { " §\($0)" } ?? "") + (ref.page.map { " p.\($0)" } ?? "")
                if !clauses.contains(c) { clauses.append(c) }
            }
        }
        self.init(verdictClass: worst, requirements: reqs.sorted(), rules: chosen.map(\.id), clauses: clauses)
        ruleIndices = responsible.filter { Judgement.ruleClass(spec.rules[$0]) == worst }
    }

    /// This judgement of an input whose numbers lie exactly 2^31 from what its classes compare them with: a divergence
    /// of segments or state is `unspecified` there (no order exists half way round, RFC 1982 §3.2; RFC 9293 §3.4
    /// compares modulo 2^32 and says no more), whatever the rules say elsewhere. A failure of the stack, a timer, an
    /// option or a choice taken both ways keeps its class.
    public func halfWay(_ mismatches: [Mismatch]) -> Judgement { unspecified(because: Judgement.halfWayClause, mismatches) }

    public static let halfWayClause = "sequence numbers exactly 2^31 apart: RFC 9293 §3.4 compares modulo 2^32, and no order exists half way round (RFC 1982 §3.2)"

    /// A keep-alive probe while text waits behind a closed window and nothing sent is outstanding: RFC 9293 §3.8.4
    /// forbids keep-alives only "when ... sent data is outstanding" (MUST-26), so the probe is the stack's to send
    /// (Linux does not, its write queue not being empty; the model follows it).
    public static let keepaliveQueuedClause = "RFC 9293 §3.8.4 MUST-26 \"Keep-alive packets MUST only be sent when no sent data is outstanding\": text queued unsent behind a closed window is not"

    /// This judgement made `unspecified` for `clause`, when what diverged is only segments or the state (an option
    /// fault beside them stays in the step's mismatches; the same fault on any other segment is its own finding).
    public func unspecified(because clause: String, _ mismatches: [Mismatch]) -> Judgement {
        guard verdictClass == .violates || verdictClass == .deviates, inconsistentChoice == nil,
              mismatches.contains(where: { !$0.isOption }),
              mismatches.allSatisfy({ if case .segments = $0 { true } else if case .state = $0 { true } else { $0.isOption } }) else { return self }
        var j = Judgement(verdictClass: .unspecified, requirements: [], rules: rules, clauses: [clause])
        j.ruleIndices = ruleIndices
        return j
    }

    /// This judgement of a segment whose options carried `oddity` (`OptionOddity`): what diverged in segments or
    /// state breaks the oddity's requirement (MUST-6 for an unknown option), with the step's rules beside it. Only
    /// once a replay without the oddity showed no divergence there (`Findings.record`); a stack failure, a timer, an
    /// option fault or a choice taken both ways keeps its class.
    public func odd(_ oddity: OptionOddity, _ mismatches: [Mismatch]) -> Judgement {
        guard oddity != .none, inconsistentChoice == nil, mismatches.contains(where: { !$0.isOption }),
              mismatches.allSatisfy({ if case .segments = $0 { true } else if case .state = $0 { true } else { $0.isOption } }) else { return self }
        let cls = oddity.divergenceClass
        var j = Judgement(verdictClass: cls, requirements: cls == .unspecified ? [] : oddity.requirement.map { [$0] } ?? [],
                          rules: rules, clauses: [oddity.clause])
        j.ruleIndices = ruleIndices
        return j
    }

    /// The stack failed as a program: it breaks the whole contract.
    public static let stackFailure = Judgement(verdictClass: .violates, requirements: [], rules: [], clauses: ["the stack failed as a program"])
    /// The target's options break a rule on options (its Appendix B ID where RFC 9293 gives one).
    public static func option(_ rule: OptionRule) -> Judgement {
        Judgement(verdictClass: rule.verdictClass, requirements: rule.requirement.map { [$0] } ?? [], rules: [], clauses: [rule.clause])
    }

    /// The target moved the right edge of its receive window left: SHLD-14.
    public static let windowShrink = Judgement(verdictClass: .deviates, requirements: [RequirementID(.should, 14)], rules: [], clauses: ["RFC 9293 §3.8.6.2.2"])
}
