import Core
/// Merges a profile with the profiles it extends, resolves names, runs the static checks and builds the decision
/// tables. Reports every error it finds; returns a spec only when there are none.
public struct SpecCompiler {
    public struct Result: Sendable {
        public var spec: CompiledSpec?
        public var diagnostics: [Diagnostic]
    }

    /// A rule after overlays were applied, with its compiled guard and actions.
    struct RuleDef {
        var decl: RuleDecl
        var group: GroupDecl
        var profileIndex: Int
        var profile: String
        var events: [EventKind]
        var states: [Int]
        var guardOps: [Op]?  // nil: otherwise
        var guardOK: Bool
        var instrs: [Instr]
        var control: Control
        var enters: Int?
        var index = 0
    }

    enum Control: Equatable {
        case none, drop, ret, cont(String?)
    }

    var diags: [Diagnostic] = []
    var files: [SpecFileAST]
    var states: [StateInfo] = []
    var stateIndex: [String: Int] = [:]
    var initialState = 0
    var steps: [[String]] = []
    var classifiers: [ClassifierInfo] = []
    var classifierDecls: [ClassifierDecl] = []
    var classifierIndex: [String: Int] = [:]
    var programs: [Program] = []
    var programIndex: [Program: Int] = [:]
    var strings: [String] = []
    var stringIndex: [String: Int] = [:]
    var templates: [CompiledTemplate] = []
    var rules: [RuleDef] = []
    /// From `acknowledge in STATES from EXPR`: per state, the template substitutions its chains use.
    var ackRemapOfState: [Int: Int] = [:]
    var ackRemaps: [[Int: Int]] = []

    /// `whole-segments`: `transmit` sends the next segment (up to the peer's MSS or half the largest window it has
    /// offered, with a FIN that ends the data) only when all of it fits in the send window. `loss-window`: after a
    /// retransmission timeout nothing new goes out until the retransmitted flight is acknowledged (RFC 5681 §3.1's
    /// loss window of one segment, counted in segments). `hold-whole`: text the sequence test let in is taken or held
    /// whole, past the window's right edge (a segment that starts inside the window, or at RCV.NXT of a window that
    /// is not closed).
    static let knownOptions: Set<String> = ["whole-segments", "loss-window", "loss-window-one-syn", "hold-whole"]

    public static func compile(profile: String, files: [SpecFileAST]) -> Result {
        var c = SpecCompiler(files: files)
        let spec = c.run(profile: profile)
        let diags = attachSourceLines(c.diags, files: files)
        return Result(spec: diags.isEmpty ? spec : nil, diagnostics: diags)
    }

    /// Fills each diagnostic's source line from the parsed files, and sorts them by position.
    public static func attachSourceLines(_ diags: [Diagnostic], files: [SpecFileAST]) -> [Diagnostic] {
        let byPath = Dictionary(files.map { ($0.file.path, $0.file) }, uniquingKeysWith: { a, _ in a })
        return diags.map { d in
            var d = d
            if d.sourceLine == nil, let loc = d.location, let f = byPath[loc.file] { d.sourceLine = f.lineText(loc.line) }
            return d
        }.sorted { ($0.location?.description ?? "") < ($1.location?.description ?? "") || ($0.location == $1.location && $0.message < $1.message) }
    }

    private mutating func err(_ kind: Diagnostic.Kind, _ msg: String, _ loc: SourceLocation?, notes: [String] = []) {
        diags.append(Diagnostic(kind, msg, at: loc, notes: notes))
    }

    // MARK: profiles

    private mutating func lineage(of profile: String) -> [SpecFileAST]? {
        var byName: [String: SpecFileAST] = [:]
        for f in files {
            guard let p = f.profile else {
                err(.profile, "file has no 'profile NAME' line", SourceLocation(file: f.file.path, line: 1, column: 1))
                continue
            }
            if let other = byName[p.name.value] {
                err(.duplicate, "profile '\(p.name.value)' is also declared in \(other.profile!.name.loc)", p.name.loc)
                continue
            }
            byName[p.name.value] = f
        }
        guard var cur = byName[profile] else {
            let known = byName.keys.sorted().joined(separator: ", ")
            err(.profile, "no profile named '\(profile)'" + (known.isEmpty ? "" : "; known profiles: \(known)"), nil)
            return nil
        }
        var chain = [cur]
        while let ext = cur.profile?.extends {
            guard let base = byName[ext.value] else {
                err(.overlayTarget, "profile '\(cur.profile!.name.value)' extends '\(ext.value)', which no spec file declares", ext.loc)
                return nil
            }
            if chain.contains(where: { $0.profile?.name.value == ext.value }) {
                err(.profile, "profiles extend each other in a cycle through '\(ext.value)'", ext.loc)
                return nil
            }
            chain.append(base)
            cur = base
        }
        return chain.reversed()
    }

    // MARK: driver

    mutating func run(profile: String) -> CompiledSpec? {
        guard let chain = lineage(of: profile) else { return nil }
        let base = chain[0]
        for f in chain.dropFirst() {
            for s in f.states { err(.profile, "states are declared in the base profile only; '\(f.profile!.name.value)' is an overlay", s.name.loc) }
            for s in f.steps { err(.profile, "check orders ('steps') are declared in the base profile only", s.loc) }
        }
        declareStates(base)
        guard !states.isEmpty else {
            err(.profile, "the base profile declares no states", SourceLocation(file: base.file.path, line: 1, column: 1))
            return nil
        }
        declareSteps(base)
        for (k, f) in chain.enumerated() { declareClassifiers(f, isBase: k == 0) }
        compileClassifierCases()
        for (k, f) in chain.enumerated() { declareRules(f, profileIndex: k) }
        for k in rules.indices { rules[k].index = k }
        declareAcknowledges(chain)
        var cells = CellBuilder(compiler: self)
        let (tables, chains) = cells.build()
        diags += cells.diags
        let ruleInfos = rules.map { r in
            var info = RuleInfo(id: r.decl.id.value, profile: r.profile, events: r.events, step: r.group.step?.value,
                                citations: r.group.citations + r.decl.citations, loc: r.decl.id.loc,
                                guardText: r.decl.guardExpr?.text ?? "otherwise", replaced: r.decl.replaces.map(\.value))
            let own = r.decl.citations.flatMap(\.requirements)
            info.requirements = own.isEmpty ? r.group.citations.flatMap(\.requirements) : own
            let ownLevels = r.decl.citations.flatMap(\.levels)
            info.levels = ownLevels.isEmpty && own.isEmpty ? r.group.citations.flatMap(\.levels) : ownLevels
            for op in r.guardOps ?? [] {
                switch op {
                case .flag(let bits):
                    for b in ControlBits.classBits where bits.contains(b) && !info.reads.contains(.bit(b)) { info.reads.append(.bit(b)) }
                case .classIn(let k, _):
                    if !info.reads.contains(.classifier(k)) { info.reads.append(.classifier(k)) }
                default: break
                }
            }
            return info
        }
        var options: Set<String> = []
        for f in chain {
            for o in f.options {
                if !SpecCompiler.knownOptions.contains(o.name.value) {
                    err(.unknownName, "unknown option '\(o.name.value)'; options are \(SpecCompiler.knownOptions.sorted().joined(separator: ", "))", o.name.loc)
                } else if o.citations.isEmpty {
                    err(.citation, "option '\(o.name.value)' has no citation: cite the RFC text or the stack behaviour it follows", o.name.loc)
                }
                options.insert(o.name.value)
            }
        }
        var timings: [TimingName: Timing] = [:]
        for f in chain {
            for t in f.timings {
                guard let name = TimingName(rawValue: t.name.value) else {
                    err(.unknownName, "unknown timing '\(t.name.value)'; timings are \(TimingName.allCases.map(\.spelling).joined(separator: ", "))", t.name.loc)
                    continue
                }
                if name.isApplicationSetting {
                    // MUST-25: keep-alives default to off; only the application turns them on (a target's setting).
                    err(.unknownName, "timing '\(name.spelling)' is an application setting (keep-alives are off unless the application turns them on, RFC 9293 §3.8.4 MUST-25): a target sets it, not a profile", t.name.loc)
                    continue
                }
                if name.isDuration != t.isDuration {
                    err(.type, name.isDuration ? "timing '\(name.spelling)' is a duration: write a unit (200ms, 1s, 4m)" : "timing '\(name.spelling)' is a factor: write a number", t.name.loc)
                }
                if t.citations.isEmpty {
                    err(.citation, "timing '\(name.spelling)' has no citation: cite the RFC text or the stack behaviour it follows", t.name.loc)
                }
                timings[name] = Timing(lower: t.lower, upper: t.upper, citation: t.citations.map(\.text).joined(separator: "; "),
                                       requirements: t.citations.flatMap(\.requirements), level: t.citations.flatMap(\.levels).first)
            }
        }
        let top = chain.last!.profile!
        return CompiledSpec(profile: top.name.value, title: top.title ?? top.name.value, lineage: chain.map { $0.profile!.name.value },
                            states: states, initialState: initialState, classifiers: classifiers, rules: ruleInfos, strings: strings,
                            templates: templates, programs: programs, chains: chains, tables: tables, steps: steps, options: options,
                            timings: timings)
    }

    // MARK: declarations

    private mutating func declareStates(_ f: SpecFileAST) {
        var initial: [Located<String>] = []
        for s in f.states {
            // A spec's states are the RFC's: targets report them and reports compare them by type.
            guard let rfcState = TCPState(name: s.name.value) else {
                err(.unknownName, "unknown state '\(s.name.value)': a spec's states are RFC 9293's (\(TCPState.allCases.map(\.rawValue).joined(separator: ", ")))", s.name.loc)
                continue
            }
            if let k = stateIndex[s.name.value] {
                err(.duplicate, "state '\(s.name.value)' is declared twice (first at \(states[k].loc))", s.name.loc)
                continue
            }
            var sync = false
            var clears = false
            for a in s.attributes {
                switch a.value {
                case "initial":
                    initial.append(s.name)
                    clears = true
                case "synchronized": sync = true
                case "clears": clears = true
                default: err(.unknownName, "unknown state attribute '\(a.value)'; use 'initial', 'synchronized' or 'clears'", a.loc)
                }
            }
            stateIndex[s.name.value] = states.count
            states.append(StateInfo(state: rfcState, synchronized: sync, clears: clears, loc: s.name.loc))
        }
        if initial.count == 1 {
            initialState = stateIndex[initial[0].value] ?? 0
        } else if initial.isEmpty, !f.states.isEmpty {
            err(.profile, "one state must be marked 'initial' (the CLOSED state: no TCB)", f.states[0].name.loc)
        } else if initial.count > 1 {
            err(.duplicate, "only one state can be 'initial'", initial[1].loc)
        }
        steps = Array(repeating: [], count: states.count)
    }

    mutating func resolveStates(_ names: [Located<String>]) -> [Int] {
        if names.count == 1, names[0].value == "any" { return Array(states.indices) }
        var out: [Int] = []
        for n in names {
            if n.value == "any" {
                err(.syntax, "'any' stands alone: it means every state", n.loc)
            } else if let k = stateIndex[n.value] {
                if !out.contains(k) { out.append(k) }
            } else {
                err(.unknownName, "unknown state '\(n.value)'; states are \(states.map(\.name).joined(separator: ", "))", n.loc)
            }
        }
        return out
    }

    private mutating func declareSteps(_ f: SpecFileAST) {
        for d in f.steps {
            if d.citations.isEmpty { err(.citation, "a check order needs a citation (cite RFC ... §...)", d.loc) }
            var seen: Set<String> = []
            for s in d.steps where !seen.insert(s.value).inserted {
                err(.duplicate, "step '\(s.value)' appears twice in one check order", s.loc)
            }
            for k in resolveStates(d.states) {
                if !steps[k].isEmpty { err(.duplicate, "state '\(states[k].name)' already has a check order", d.loc) }
                steps[k] = d.steps.map(\.value)
            }
        }
    }

    private mutating func declareClassifiers(_ f: SpecFileAST, isBase: Bool) {
        for d in f.classifiers {
            let name = d.name.value
            if d.citations.isEmpty { err(.citation, "classifier '\(name)' needs a citation", d.name.loc) }
            if d.isPrepend {
                prependClassifier(d)
                continue
            }
            var events = Set<EventKind>()
            for e in d.events {
                if let ev = EventKind.bySpelling[e.value] { events.insert(ev) } else {
                    err(.unknownName, "unknown event '\(e.value)'", e.loc)
                }
            }
            let sts: Set<Int>? = d.states.isEmpty ? nil : Set(resolveStates(d.states))
            var values: [String] = []
            for c in d.cases where !values.contains(c.value.value) { values.append(c.value.value) }
            if values.count > 64 { err(.type, "a classifier has at most 64 values", d.name.loc) }
            if d.cases.isEmpty { err(.syntax, "classifier '\(name)' has no 'case' lines", d.name.loc) }
            if let last = d.cases.last, last.condition != nil {
                err(.incomplete, "classifier '\(name)' must end with 'case VALUE otherwise' so that every input gets a value", last.value.loc)
            }
            for c in d.cases.dropLast() where c.condition == nil {
                err(.deadRule, "'otherwise' must be the last case; the cases after it can never apply", c.value.loc)
            }
            let info = ClassifierInfo(name: name, values: values, cases: [], events: events, states: sts, citations: d.citations, loc: d.name.loc)
            if let k = classifierIndex[name] {
                if !d.isOverride {
                    err(isBase ? .duplicate : .overlayShadow, "classifier '\(name)' is already declared (\(classifiers[k].loc)); an overlay must say 'classify \(name) override'", d.name.loc)
                    continue
                }
                classifiers[k] = info
                classifierDecls[k] = d
            } else {
                if d.isOverride { err(.overlayTarget, "'override' names classifier '\(name)', which no base profile declares", d.name.loc) }
                classifierIndex[name] = classifiers.count
                classifiers.append(info)
                classifierDecls.append(d)
            }
        }
    }

    /// `classify NAME prepend on ...`: its cases go first, before the inherited classifier's, which must apply to the
    /// same events and states (the extension is of that classifier, nowhere else). Each prepended case needs a
    /// condition: the inherited `otherwise` stays the last case.
    private mutating func prependClassifier(_ d: ClassifierDecl) {
        let name = d.name.value
        guard let k = classifierIndex[name] else {
            err(.overlayTarget, "'prepend' names classifier '\(name)', which no base profile declares", d.name.loc)
            return
        }
        var merged = classifierDecls[k]
        let same = Set(d.events.map(\.value)) == Set(merged.events.map(\.value)) && Set(d.states.map(\.value)) == Set(merged.states.map(\.value))
        if !same {
            err(.type, "'prepend' must name the events and states classifier '\(name)' applies to (\(merged.name.loc)): it extends that classifier, nowhere else", d.name.loc)
            return
        }
        if d.cases.isEmpty { err(.syntax, "classifier '\(name)' has no 'case' lines", d.name.loc) }
        for c in d.cases where c.condition == nil {
            err(.deadRule, "a prepended case needs a condition: the inherited classifier's 'otherwise' stays its last case", c.value.loc)
        }
        merged.cases = d.cases + merged.cases
        merged.citations += d.citations
        var values: [String] = []
        for c in merged.cases where !values.contains(c.value.value) { values.append(c.value.value) }
        if values.count > 64 { err(.type, "a classifier has at most 64 values", d.name.loc) }
        let old = classifiers[k]
        classifiers[k] = ClassifierInfo(name: name, values: values, cases: [], events: old.events, states: old.states, citations: merged.citations, loc: old.loc)
        classifierDecls[k] = merged
    }

    private mutating func compileClassifierCases() {
        var ec = exprCompiler()
        for (k, d) in classifierDecls.enumerated() {
            var cases: [(value: Int, program: Program?, states: Set<Int>?)] = []
            for c in d.cases {
                let v = classifiers[k].values.firstIndex(of: c.value.value)!
                var only: Set<Int>?
                if !c.states.isEmpty {
                    let sts = Set(resolveStates(c.states))
                    if let all = classifiers[k].states, let stray = c.states.first(where: { stateIndex[$0.value].map { !all.contains($0) } ?? false }) {
                        err(.type, "classifier '\(classifiers[k].name)' does not apply in \(stray.value): its case '\(c.value.value)' cannot be limited to it", stray.loc)
                    }
                    only = sts
                }
                if let cond = c.condition {
                    // A classifier that tests itself or a later one would not be well founded.
                    if case let ops? = ec.top(cond, want: .boolean) {
                        for dep in GuardEval.classifiers(ops) where dep >= k {
                            ec.err(.type, "a classifier can test only classifiers declared before it ('\(classifiers[dep].name)' is not)", cond.loc)
                        }
                        cases.append((v, Program(ops), only))
                    }
                } else {
                    cases.append((v, nil, nil))
                }
            }
            classifiers[k].cases = cases
        }
        diags += ec.diags
    }

    func exprCompiler() -> ExprCompiler {
        ExprCompiler(classifierIndex: classifierIndex, classifierValues: classifiers.map(\.values))
    }

    mutating func intern(_ p: [Op]) -> Int {
        let prog = Program(p)
        if let k = programIndex[prog] { return k }
        programIndex[prog] = programs.count
        programs.append(prog)
        return programs.count - 1
    }

    mutating func intern(string s: String) -> Int {
        if let k = stringIndex[s] { return k }
        stringIndex[s] = strings.count
        strings.append(s)
        return strings.count - 1
    }

    // MARK: rules

    private mutating func declareRules(_ f: SpecFileAST, profileIndex: Int) {
        let pname = f.profile!.name.value
        for g in f.groups {
            var events: [EventKind] = []
            for e in g.events {
                if let ev = EventKind.bySpelling[e.value] { events.append(ev) } else {
                    err(.unknownName, "unknown event '\(e.value)'; events are \(EventKind.allCases.map(\.spelling).joined(separator: ", "))", e.loc)
                }
            }
            guard !events.isEmpty else { continue }
            let sts = resolveStates(g.states)
            if events.contains(.segment) {
                if events.count > 1 { err(.syntax, "SEGMENT rules have check steps; give them an 'on SEGMENT' group of their own", g.events[0].loc) }
                if let st = g.step {
                    for s in sts where !steps[s].contains(st.value) {
                        err(.unknownName, "state '\(states[s].name)' has no step '\(st.value)'; its check order is \(steps[s].joined(separator: ", "))", st.loc)
                    }
                } else {
                    err(.syntax, "SEGMENT rules belong to a step of the check order: 'on SEGMENT in STATES step NAME'", g.events[0].loc)
                }
            } else if let st = g.step {
                err(.syntax, "only SEGMENT has check steps; remove 'step \(st.value)'", st.loc)
            }
            if g.rules.isEmpty { err(.syntax, "'on \(g.events.map(\.value).joined(separator: ", "))' has no rules", g.loc) }
            for r in g.rules { declareRule(r, group: g, events: events, states: sts, profileIndex: profileIndex, profile: pname) }
        }
    }

    private mutating func declareRule(_ r: RuleDecl, group g: GroupDecl, events: [EventKind], states sts: [Int], profileIndex: Int, profile: String) {
        let event = events[0]
        if r.citations.isEmpty, g.citations.isEmpty {
            err(.citation, "rule '\(r.id.value)' has no citation: add 'cite RFC ... §...' (and p.N for RFC 793), or the stack behaviour it follows", r.id.loc)
        }
        let only = r.replacesIn.isEmpty ? nil : resolveStates(r.replacesIn)
        for t in r.replaces {
            if profileIndex == 0 {
                err(.overlayTarget, "'replaces' belongs in an overlay; the base profile has nothing to replace", t.loc)
            } else if let k = rules.firstIndex(where: { $0.decl.id.value == t.value && $0.profileIndex < profileIndex }) {
                if let only {
                    // Partial replacement: the rule keeps its other states.
                    for s in only where !rules[k].states.contains(s) {
                        err(.overlayTarget, "rule '\(t.value)' does not apply in \(states[s].name); it applies in \(rules[k].states.map { states[$0].name }.joined(separator: ", "))", t.loc)
                    }
                    rules[k].states.removeAll { only.contains($0) }
                    if rules[k].states.isEmpty { rules.remove(at: k) }
                } else {
                    rules.remove(at: k)
                }
            } else {
                err(.overlayTarget, "rule '\(r.id.value)' replaces '\(t.value)', which no profile this one extends defines", t.loc)
            }
        }
        if let other = rules.first(where: { $0.decl.id.value == r.id.value }) {
            err(.duplicate, "rule '\(r.id.value)' is already defined at \(other.decl.id.loc)", r.id.loc)
            return
        }
        var ec = exprCompiler()
        var guardOps: [Op]?
        var guardOK = true
        if let gexpr = r.guardExpr {
            guardOK = ec.checkGuard(gexpr)
            if guardOK {
                guardOps = ec.top(gexpr, want: .boolean)
                guardOK = guardOps != nil
            }
        }
        var instrs: [Instr] = []
        var control = Control.none
        var enters: Int?
        for (k, a) in r.actions.enumerated() {
            if control != .none {
                err(.control, "nothing can follow '\(controlName(control))' in a rule", a.loc)
                break
            }
            switch a.value {
            case .send(let t, let cond):
                if let ct = compileTemplate(t, &ec), let c = compileCondition(cond, &ec) {
                    instrs.append(.send(template: ct, condition: c.index))
                }
            case .set(let assignments, let cond):
                var sets: [Instr] = []
                var assigned: Set<Register> = []
                for (reg, e) in assignments {
                    guard let rg = Register.bySpelling[reg.value] else {
                        if InputField.bySpelling[reg.value] != nil {
                            err(.type, "'\(reg.value)' belongs to the arriving segment or call and cannot be set", reg.loc)
                        } else {
                            err(.unknownName, "unknown variable '\(reg.value)'", reg.loc)
                        }
                        continue
                    }
                    guard let ops = ec.top(e, want: .number) else { continue }
                    // The assignments of one line take effect together: none may read what an earlier one set.
                    for case .reg(let r) in ops where assigned.contains(r) {
                        err(.type, "'\(r.spelling)' is set earlier on this line; its assignments happen together, so split them into separate 'set' lines", e.loc)
                    }
                    assigned.insert(rg)
                    sets.append(.set(rg, program: intern(ops), condition: nil))
                }
                if let cond {
                    if let c = compileCondition(cond, &ec), let ci = c.index {
                        if sets.count == 1, case .set(let r, let p, _) = sets[0] {
                            instrs.append(.set(r, program: p, condition: ci))
                        } else {
                            instrs.append(.skipUnless(condition: ci, count: sets.count))
                            instrs += sets
                        }
                    }
                } else {
                    instrs += sets
                }
            case .enter(let s):
                if let k2 = stateIndex[s.value] {
                    if enters != nil { err(.control, "a rule enters one state", s.loc) }
                    enters = k2
                    instrs.append(.enter(k2))
                } else {
                    err(.unknownName, "unknown state '\(s.value)'", s.loc)
                }
            case .signal(let s, let cond):
                if let c = compileCondition(cond, &ec) { instrs.append(.signal(intern(string: s), condition: c.index)) }
            case .reply(let s):
                if let bad = events.first(where: { !$0.isUserCall }) { err(.control, "'reply' answers a user call; use 'signal' for \(bad.spelling)", a.loc) }
                if CallReply(spec: s) == nil {
                    let texts = CallError.allCases.map { "error: \($0.rawValue)" }.joined(separator: ", ")
                    err(.unknownName, "unknown reply '\(s)': a reply is ok, queued, state or one of \(texts)", a.loc)
                }
                instrs.append(.reply(intern(string: s)))
            case .builtin(let b, let cond):
                if let bi = Builtin.bySpelling[b.value] {
                    if let c = compileCondition(cond, &ec) { instrs.append(.builtin(bi, condition: c.index)) }
                } else {
                    err(.unknownName, "unknown action '\(b.value)'", b.loc)
                }
            case .timer(let name, let op):
                if let t = TimerName.bySpelling[name.value] { instrs.append(.timer(t, op)) } else {
                    err(.unknownName, "unknown timer '\(name.value)'; timers are time-wait, retransmission, user", name.loc)
                }
            case .drop: control = .drop
            case .ret: control = .ret
            case .continue(let at):
                if event != .segment { err(.control, "'continue' moves to the next check step; \(event.spelling) has no steps", a.loc) }
                control = .cont(at?.value)
                if let at, !states.indices.contains(where: { steps[$0].contains(at.value) }) {
                    err(.unknownName, "no state has a step '\(at.value)'", at.loc)
                }
            }
            _ = k
        }
        if event == .segment, control == .none {
            err(.control, "rule '\(r.id.value)' must end with 'drop', 'return' or 'continue' (what happens to the segment next)", r.actions.last?.loc ?? r.id.loc)
        }
        diags += ec.diags
        rules.append(RuleDef(decl: r, group: g, profileIndex: profileIndex, profile: profile, events: events, states: sts,
                             guardOps: r.guardExpr == nil ? nil : guardOps, guardOK: guardOK, instrs: instrs, control: control, enters: enters))
    }

    private func controlName(_ c: Control) -> String {
        switch c {
        case .none: ""
        case .drop: "drop"
        case .ret: "return"
        case .cont: "continue"
        }
    }

    private struct Cond { var index: Int? }

    private mutating func compileCondition(_ e: Expr?, _ ec: inout ExprCompiler) -> Cond? {
        guard let e else { return Cond(index: nil) }
        guard let ops = ec.top(e, want: .boolean) else { return nil }
        return Cond(index: intern(ops))
    }

    /// `acknowledge in STATES from EXPR`: a later profile's declaration wins for its states; within one profile
    /// a state may be named once. Every template at `<SEQ=SND.NXT>` with ACK and without SYN, FIN or text gets
    /// a twin with SEQ from EXPR, which the chains of those states use.
    private mutating func declareAcknowledges(_ chain: [SpecFileAST]) {
        for f in chain {
            var seen: [Int: SourceLocation] = [:]
            for d in f.acknowledges {
                let sts = resolveStates(d.states)
                for k in sts {
                    if let first = seen[k] {
                        err(.duplicate, "state '\(states[k].name)' already has an 'acknowledge' line in this profile (at \(first))", d.loc)
                    }
                    seen[k] = d.loc
                }
                var ec = exprCompiler()
                let compiled = ec.top(d.seq, want: .number)
                diags += ec.diags
                guard let ops = compiled else { continue }
                var remap: [Int: Int] = [:]
                for (t, tpl) in templates.enumerated() {
                    guard tpl.seq.ops == [.reg(.sndNxt)], tpl.ctl.contains(.ack), tpl.ctl.isDisjoint(with: [.syn, .fin]), tpl.data == nil else { continue }
                    var twin = tpl
                    twin.seq = Program(ops)
                    twin.seqUsesISS = ops.contains { if case .reg(let r) = $0 { r.isISSRelative } else { false } }
                    twin.seqConstant = false
                    twin.text = tpl.text.replacingOccurrences(of: "<SEQ=SND.NXT>", with: "<SEQ=\(d.seq.text)>")
                    remap[t] = templates.count
                    templates.append(twin)
                }
                if sts.isEmpty { continue }
                for k in sts { ackRemapOfState[k] = ackRemaps.count }
                ackRemaps.append(remap)
            }
        }
    }

    private mutating func compileTemplate(_ t: SegmentTemplate, _ ec: inout ExprCompiler) -> Int? {
        let seq = ec.top(t.seq, want: .number)
        let ack = t.ack.map { ec.top($0, want: .number) }
        let data = t.data.map { ec.top($0, want: .number) }
        let wnd = t.wnd.map { ec.top($0, want: .number) }
        guard let seq else { return nil }
        if case .some(nil) = ack { return nil }
        if case .some(nil) = data { return nil }
        if case .some(nil) = wnd { return nil }
        func usesISS(_ ops: [Op]?) -> Bool {
            ops?.contains { if case .reg(let r) = $0 { r.isISSRelative } else { false } } ?? false
        }
        var text = "<SEQ=\(t.seq.text)>"
        if let a = t.ack { text += "<ACK=\(a.text)>" }
        text += "<CTL=\(t.ctl.description)>"
        if let d = t.data { text += "<DATA=\(d.text)>" }
        if let w = t.wnd { text += "<WND=\(w.text)>" }
        let ct = CompiledTemplate(seq: Program(seq), ack: ack.flatMap { $0 }.map(Program.init), ctl: t.ctl,
                                  data: data.flatMap { $0 }.map(Program.init), wnd: wnd.flatMap { $0 }.map(Program.init),
                                  seqUsesISS: usesISS(seq), ackUsesISS: usesISS(ack ?? nil),
                                  seqConstant: seq.allSatisfy { if case .const = $0 { true } else { false } }, text: text)
        templates.append(ct)
        return templates.count - 1
    }
}
