import Core
import Foundation

/// The alternatives RFC 9293 leaves to the implementer, stated once (`Spec/choices.toml`): each names the rules
/// of a profile that take one alternative and an overlay profile (`Spec/*.tcpspec`) that replaces exactly those
/// rules with the other. Under that profile the oracle does not fail a stack for taking either: it binds the
/// choice from the stack's first observed behaviour — as it binds the ISN — reports it, and holds the stack to
/// it (a stack that challenges an in-window RST in ESTABLISHED and resets on one in FIN-WAIT-2 is inconsistent:
/// a finding). A profile that fixes a choice (linux) lists none.
public struct ChoiceCatalog: Sendable {
    public static let fileName = "choices.toml"

    public struct Choice: Sendable {
        public var name: String
        public var title: String
        /// Where the RFC leaves it open, e.g. `RFC 9293 §3.10.7.4`.
        public var source: String
        /// The requirement the choice is (`MAY-2`), if Appendix B numbers it.
        public var requirement: RequirementID?
        /// The profile whose rules take the first alternative.
        public var profile: String
        /// Those rules.
        public var rules: [String]
        /// What each alternative does, as reports say it.
        public var taken: String
        public var other: String
        /// The overlay profile of the other alternative (it extends `profile` and replaces only `rules`).
        public var otherProfile: String
        /// The states whose steps bind the choice (`binds-in`; empty: any). Elsewhere a step before the binding
        /// is judged under either alternative and binds nothing; after it, it is held to it. RFC 5961 protects
        /// the synchronized states, ESTABLISHED first: a stack's reset in SYN-SENT (where RFC 9293 §3.10.7.3
        /// asks the check only of stacks that take it, as a SHOULD) or in a state it handles apart (Linux's
        /// orphaned FIN-WAIT-2) must not bind it for the whole run, as whichever step came first did.
        public var bindsIn: [String] = []
        /// Never bound (`per-step = true`): every step that tells the alternatives apart is judged under either.
        /// For what the stack decides by something the oracle cannot see (Linux's socket memory), not by design.
        public var perStep = false
        /// Rules the other alternative also replaces whose steps never bind the choice (`non-binding`): their
        /// input tells the alternatives apart only together with something else the stack may do. A RST at RCV.NXT
        /// with an old TSval in TIME-WAIT, ignored, is RFC 1337's choice or PAWS applied to a RST (RFC 7323 §5.3
        /// exempts it): before the binding either passes; bound to the other alternative, the step is judged under
        /// it; bound to the profile's, under the profile — the rule's own requirement, not an inconsistency.
        public var nonBinding: [String] = []
        public var location: SourceLocation
    }

    public var choices: [Choice]

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The catalog of a spec directory; none when the file is absent (a directory of specs without choices).
    public static func load(directory: String) throws(Failure) -> ChoiceCatalog {
        let path = directory.hasSuffix("/") ? directory + fileName : directory + "/" + fileName
        guard FileManager.default.fileExists(atPath: path) else { return ChoiceCatalog(choices: []) }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw Failure(description: "\(path): error: cannot read the choices")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(Failure) -> ChoiceCatalog {
        let tables: [TOMLReader.Table]
        do { tables = try TOMLReader.read(text, file: file) } catch { throw Failure(description: error.description) }
        func fail(_ at: TOMLReader.Position, _ m: String) -> Failure { Failure(description: "\(file):\(at.line):\(at.column): error: \(m)") }
        var out: [Choice] = []
        let known: Set = ["name", "title", "source", "requirement", "profile", "rules", "taken", "other", "other-profile", "binds-in", "per-step", "non-binding"]
        for t in tables where !(t.name.isEmpty && t.entries.isEmpty) {
            guard t.name == "choice", t.isArrayElement else { throw fail(t.at, "expected [[choice]] tables only, found [\(t.name)]") }
            var fields: [String: TOMLReader.Entry] = [:]
            for e in t.entries {
                guard known.contains(e.key) else { throw fail(e.keyAt, "unknown key '\(e.key)'; a choice has \(known.sorted().joined(separator: ", "))") }
                guard fields[e.key] == nil else { throw fail(e.keyAt, "duplicate key '\(e.key)'") }
                fields[e.key] = e
            }
            func string(_ key: String, required: Bool = true) throws(Failure) -> String? {
                guard let e = fields[key] else {
                    if required { throw fail(t.at, "choice has no '\(key)'") }
                    return nil
                }
                guard case .string(let s) = e.value.value, !s.isEmpty else { throw fail(e.value.at, "'\(key)' must be a non-empty string") }
                return s
            }
            var rules: [String] = []
            guard let re = fields["rules"] else { throw fail(t.at, "choice has no 'rules'") }
            guard case .array(let items) = re.value.value, !items.isEmpty else { throw fail(re.value.at, "'rules' must be a non-empty array of rule ids") }
            for i in items {
                guard case .string(let s) = i.value else { throw fail(i.at, "'rules' must be an array of strings") }
                rules.append(s)
            }
            var nonBinding: [String] = []
            if let ne = fields["non-binding"] {
                guard case .array(let items) = ne.value.value, !items.isEmpty else { throw fail(ne.value.at, "'non-binding' must be a non-empty array of rule ids") }
                for i in items {
                    guard case .string(let s) = i.value else { throw fail(i.at, "'non-binding' must be an array of strings") }
                    if rules.contains(s) { throw fail(i.at, "rule '\(s)' is in 'rules' already: a non-binding rule is listed only in 'non-binding'") }
                    nonBinding.append(s)
                }
            }
            var bindsIn: [String] = []
            if let be = fields["binds-in"] {
                guard case .array(let items) = be.value.value, !items.isEmpty else { throw fail(be.value.at, "'binds-in' must be a non-empty array of state names") }
                for i in items {
                    guard case .string(let s) = i.value, TCPState(name: s) != nil else { throw fail(i.at, "'binds-in' must be an array of state names (ESTABLISHED, FIN-WAIT-1, …)") }
                    bindsIn.append(s)
                }
            }
            var perStep = false
            if let pe = fields["per-step"] {
                guard case .bool(let b) = pe.value.value else { throw fail(pe.value.at, "'per-step' must be true or false") }
                if b, fields["binds-in"] != nil { throw fail(pe.keyAt, "a per-step choice is never bound: it takes no 'binds-in'") }
                perStep = b
            }
            var requirement: RequirementID?
            if let r = try string("requirement", required: false) {
                guard let id = RequirementID(r) else { throw fail(fields["requirement"]!.value.at, "'\(r)' is not a requirement ID") }
                requirement = id
            }
            let name = try string("name")!
            if out.contains(where: { $0.name == name }) { throw fail(fields["name"]!.value.at, "duplicate choice '\(name)'") }
            out.append(Choice(name: name, title: try string("title")!, source: try string("source")!, requirement: requirement,
                              profile: try string("profile")!, rules: rules, taken: try string("taken")!, other: try string("other")!,
                              otherProfile: try string("other-profile")!, bindsIn: bindsIn, perStep: perStep, nonBinding: nonBinding,
                              location: SourceLocation(file: file, line: t.at.line, column: t.at.column)))
        }
        return ChoiceCatalog(choices: out)
    }
}

/// The choices that apply to one compiled profile, each with its other alternative compiled: what the oracle
/// runs beside the profile's own model.
public struct ChoiceSet: Sendable {
    public struct Bound: Sendable {
        public var choice: ChoiceCatalog.Choice
        /// The other alternative's spec (same states and variables as the profile's: it only replaces rules),
        /// compiled in the background from the moment the set is loaded (a debug build takes seconds per
        /// profile; a run starts its target meanwhile).
        let compiled: Pending
        /// The other alternative's spec, once compiled; nil if it does not compile (`spec check` reports why).
        public var other: CompiledSpec? { try? compiled.value.get() }
        /// The profile's rules that take the first alternative (indices into its rules), the non-binding ones too.
        public var rules: Set<Int>
        /// Those of them that never bind the choice (`Choice.nonBinding`).
        public var nonBinding: Set<Int> = []
        /// Whether a step decided by the rules `chain` may bind the choice (one of its binding rules decided it).
        public func binds(chain: [Int]) -> Bool { chain.contains { rules.contains($0) && !nonBinding.contains($0) } }
        /// Whether a step in `state` may bind the choice (`Choice.bindsIn`).
        public func binds(in state: TCPState) -> Bool { !choice.perStep && (choice.bindsIn.isEmpty || choice.bindsIn.contains(state.rawValue)) }
    }

    /// A compilation running on its own thread; `value` waits for it.
    final class Pending: @unchecked Sendable {
        private let condition = NSCondition()
        private var result: Result<CompiledSpec, ChoiceCatalog.Failure>?

        init(_ work: @escaping @Sendable () -> Result<CompiledSpec, ChoiceCatalog.Failure>) {
            Thread.detachNewThread { [self] in
                let r = work()
                condition.lock()
                result = r
                condition.broadcast()
                condition.unlock()
            }
        }

        var value: Result<CompiledSpec, ChoiceCatalog.Failure> {
            condition.lock()
            defer { condition.unlock() }
            while result == nil { condition.wait() }
            return result!
        }
    }

    public var choices: [Bound]
    public static let none = ChoiceSet(choices: [])

    /// The choices of `spec`'s profile in a spec directory. The catalog and the rules it names are checked now;
    /// each alternative compiles in the background and is checked when `validate()` (or a step) first needs it:
    /// it must extend the choice's profile and replace only the choice's rules.
    public static func load(for spec: CompiledSpec, directory: String) throws(ChoiceCatalog.Failure) -> ChoiceSet {
        let catalog = try ChoiceCatalog.load(directory: directory)
        var out: [Bound] = []
        for c in catalog.choices where c.profile == spec.profile {
            var rules: Set<Int> = [], nonBinding: Set<Int> = []
            for name in c.rules + c.nonBinding {
                let idx = spec.rules.indices.filter { spec.rules[$0].id == name }
                guard !idx.isEmpty else { throw ChoiceCatalog.Failure(description: "\(c.location): error: choice '\(c.name)' names rule '\(name)', which profile \(c.profile) does not have") }
                rules.formUnion(idx)
                if c.nonBinding.contains(name) { nonBinding.formUnion(idx) }
            }
            let lineage = spec.lineage, states = spec.states.map(\.state)
            let pending = Pending {
                let r = SpecLoader.compile(profile: c.otherProfile, directory: directory)
                guard let other = r.spec else {
                    return .failure(ChoiceCatalog.Failure(description: "\(c.location): error: choice '\(c.name)': its other alternative, profile \(c.otherProfile), does not compile:\n"
                                                          + r.diagnostics.map(\.rendered).joined(separator: "\n")))
                }
                guard other.lineage.dropLast() == lineage[...], other.states.map(\.state) == states else {
                    return .failure(ChoiceCatalog.Failure(description: "\(c.location): error: choice '\(c.name)': profile \(c.otherProfile) must extend \(c.profile) directly"))
                }
                // The alternative replaces the choice's rules and nothing else.
                for rule in other.rules where rule.profile == c.otherProfile {
                    for replaced in rule.replaced where !c.rules.contains(replaced) && !c.nonBinding.contains(replaced) {
                        return .failure(ChoiceCatalog.Failure(description: "\(rule.loc): error: rule \(rule.id) of the alternative of choice '\(c.name)' replaces \(replaced), which is not one of the choice's rules (\((c.rules + c.nonBinding).joined(separator: ", ")))"))
                    }
                }
                return .success(other)
            }
            out.append(Bound(choice: c, compiled: pending, rules: rules, nonBinding: nonBinding))
        }
        return ChoiceSet(choices: out)
    }

    /// Waits for every alternative and throws the first that does not compile or does not fit.
    public func validate() throws(ChoiceCatalog.Failure) {
        for b in choices { _ = try b.compiled.value.get() }
    }
}
