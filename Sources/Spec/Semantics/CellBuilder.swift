import Core
/// Enumerates every input class of every (state, event), walks the check steps to find the rules that decide it,
/// and runs the checks that need the whole table: completeness, determinism, overlay shadowing, dead and
/// shadowed rules, reachability.
struct CellBuilder {
    typealias RuleDef = SpecCompiler.RuleDef

    let c: SpecCompiler
    var diags: [Diagnostic] = []
    /// rule indices by [state][event][step or ""].
    var index: [[[String: [Int]]]]
    var decidedCount: [Int]
    var chainKeys: [[Int]: Int] = [:]
    var chains: [Chain] = []
    var reported: Set<String> = []

    static let impossible = EventTable.impossible

    // Per-rule facts the hot loops read, kept apart so that no loop copies a whole RuleDef.
    let guards: [[Op]?]
    let isOtherwise: [Bool]
    let guardOK: [Bool]
    let profileOf: [Int]
    let entersOf: [Int?]
    let controlOf: [SpecCompiler.Control]
    /// Whether classifier k can take value v, tabulated: by state (when a case is limited to some states), by the
    /// SYN/ACK/FIN/RST bits, and by the values of the classifiers its cases read (nil when those are too many to
    /// tabulate: asked per cell). Feasibility is asked for every cell of every table, so it must be a load.
    struct Possible {
        var deps: [Int]
        var radices: [Int]
        var perState: Bool
        var values: Int
        /// [state or 0][((mask * Πradices + deps) * values) + v]
        var table: [[Bool]]

        /// The mixed-radix index of the cell's values of `deps`; nil if one is unclassified in this cell.
        func combo(_ cell: Cell) -> Int? {
            var x = 0
            for (n, d) in deps.enumerated() {
                guard let v = cell.value(d) else { return nil }
                x = x * radices[n] + v
            }
            return x
        }
    }
    let possibleByBits: [Possible?]

    init(compiler: SpecCompiler) {
        c = compiler
        guards = compiler.rules.map(\.guardOps)
        isOtherwise = compiler.rules.map { $0.decl.guardExpr == nil }
        guardOK = compiler.rules.map(\.guardOK)
        profileOf = compiler.rules.map(\.profileIndex)
        entersOf = compiler.rules.map(\.enters)
        controlOf = compiler.rules.map(\.control)
        possibleByBits = compiler.classifiers.map { info in
            var deps: [Int] = []
            for c in info.cases { for d in c.program.map({ GuardEval.classifiers($0.ops) }) ?? [] where !deps.contains(d) { deps.append(d) } }
            deps.sort()
            let radices = deps.map { max(1, compiler.classifiers[$0].values.count) }
            let combos = radices.reduce(1, *)
            guard combos <= 4096 else { return nil }
            let perState = info.cases.contains { $0.states != nil }
            let table = (perState ? Array(compiler.states.indices) : [0]).map { s in
                var t: [Bool] = []
                t.reserveCapacity(16 * combos * info.values.count)
                for mask in 0..<16 {
                    var bits = ControlBits()
                    for (i, b) in ControlBits.classBits.enumerated() where mask & (1 << i) != 0 { bits.insert(b) }
                    for combo in 0..<combos {
                        var rest = combo, dv: [Int: Int] = [:]
                        for (n, d) in deps.enumerated().reversed() { dv[d] = rest % radices[n]; rest /= radices[n] }
                        for v in info.values.indices {
                            t.append(GuardEval.possible(info, value: v, bits: bits, classValue: { dv[$0] }, state: perState ? s : nil))
                        }
                    }
                }
                return t
            }
            return Possible(deps: deps, radices: radices, perState: perState, values: info.values.count, table: table)
        }
        index = Array(repeating: Array(repeating: [:], count: EventKind.allCases.count), count: compiler.states.count)
        decidedCount = Array(repeating: 0, count: compiler.rules.count)
        for r in compiler.rules {
            for s in r.states {
                for e in r.events { index[s][Int(e.rawValue)][r.group.step?.value ?? "", default: []].append(r.index) }
            }
        }
    }

    private mutating func once(_ key: String, _ kind: Diagnostic.Kind, _ msg: String, _ loc: SourceLocation?, notes: [String] = []) {
        guard reported.insert(key).inserted else { return }
        diags.append(Diagnostic(kind, msg, at: loc, notes: notes))
    }

    func dimensions(state: Int, event: EventKind) -> [Dimension] {
        var dims: [Dimension] = []
        if event == .segment { dims += ControlBits.classBits.map { .bit($0) } }
        for (k, cl) in c.classifiers.enumerated() where cl.applies(to: event, in: state) { dims.append(.classifier(k)) }
        return dims
    }

    func radix(_ d: Dimension) -> Int {
        switch d {
        case .bit: 2
        case .classifier(let k): max(1, c.classifiers[k].values.count)
        }
    }

    /// One input class: its control bits and the value of each classifier that applies (-1 where none does).
    struct Cell {
        var bits: ControlBits
        var values: [Int]

        func value(_ k: Int) -> Int? { values[k] >= 0 ? values[k] : nil }
        var classified: [(Int, Int)] { values.enumerated().filter { $0.1 >= 0 }.map { ($0.0, $0.1) } }
    }

    func cell(_ coords: [Int], _ dims: [Dimension]) -> Cell {
        var cell = Cell(bits: [], values: Array(repeating: -1, count: c.classifiers.count))
        for (d, dim) in dims.enumerated() {
            switch dim {
            case .bit(let b): if coords[d] == 1 { cell.bits.insert(b) }
            case .classifier(let k): cell.values[k] = coords[d]
            }
        }
        return cell
    }

    /// False for combinations no input can produce, such as ACK off with `ack=new`: they are not input classes.
    func feasible(_ cell: Cell, state: Int) -> Bool {
        var mask = 0
        for (i, b) in ControlBits.classBits.enumerated() where cell.bits.contains(b) { mask |= 1 << i }
        for k in cell.values.indices where cell.values[k] >= 0 {
            let v = cell.values[k]
            // A classifier with no cases (already reported) classifies nothing.
            guard v < c.classifiers[k].values.count else { return false }
            if let p = possibleByBits[k], let combo = p.combo(cell) {
                if !p.table[p.perState ? state : 0][(mask * p.radices.reduce(1, *) + combo) * p.values + v] { return false }
            } else if !GuardEval.possible(c.classifiers[k], value: v, bits: cell.bits, classValue: cell.value, state: state) {
                return false
            }
        }
        return true
    }

    func describe(_ cell: Cell, event: EventKind) -> String {
        var parts = [event == .segment ? (cell.bits.isEmpty ? "<no SYN/ACK/FIN/RST>" : cell.bits.description) : event.spelling]
        for (k, v) in cell.classified { parts.append("\(c.classifiers[k].name)=\(c.classifiers[k].values[v])") }
        return parts.joined(separator: " ")
    }

    /// nil if the guard needs a classifier the cell lacks (reported).
    mutating func matches(_ k: Int, _ cell: Cell, startState: Int) -> Bool? {
        guard let ops = guards[k] else { return guardOK[k] }
        let v = GuardEval.eval(ops, bits: cell.bits, classValue: cell.value)
        if v == nil {
            let r = c.rules[k]
            let missing = GuardEval.classifiers(ops).filter { cell.value($0) == nil }.map { c.classifiers[$0].name }
            once("missing:\(r.index):\(startState)", .type,
                 "rule '\(r.decl.id.value)' tests \(missing.joined(separator: ", ")), which is not classified for \(r.events.map(\.spelling).joined(separator: "/")) arriving in \(c.states[startState].name) (the state this input started in)",
                 r.decl.guardExpr?.loc ?? r.decl.id.loc)
        }
        return v
    }

    /// The one rule deciding `cell` among `candidates`; reports ambiguity.
    mutating func decide(_ candidates: [Int], _ cell: Cell, startState: Int, event: EventKind, where what: String) -> Int?? {
        var hits: [Int] = []
        var otherwise: [Int] = []
        for k in candidates {
            if isOtherwise[k] {
                if guardOK[k] { otherwise.append(k) }
            } else if matches(k, cell, startState: startState) == true {
                hits.append(k)
            }
        }
        if otherwise.count > 1 { reportPair(otherwise[0], otherwise[1], cell, event: event) }
        if hits.count > 1 { reportPair(hits[0], hits[1], cell, event: event) }
        // An overlay's `when` rule that takes inputs from an inherited `otherwise` shadows it just as much.
        if let h = hits.first, let o = otherwise.first, profileOf[h] > profileOf[o] {
            reportPair(h, o, cell, event: event)
        }
        if let h = hits.first { return .some(h) }
        if let o = otherwise.first { return .some(o) }
        return .some(nil)
    }

    mutating func reportPair(_ a: Int, _ b: Int, _ cell: Cell, event: EventKind) {
        let ra = c.rules[a], rb = c.rules[b]
        let (early, late) = ra.profileIndex <= rb.profileIndex ? (ra, rb) : (rb, ra)
        let key = "pair:\(min(a, b)):\(max(a, b))"
        if early.profileIndex < late.profileIndex {
            once(key, .overlayShadow,
                 "rule '\(late.decl.id.value)' of profile \(late.profile) decides inputs that inherited rule '\(early.decl.id.value)' (\(early.decl.id.loc)) also decides; write 'replaces \(early.decl.id.value)' or narrow its guard",
                 late.decl.id.loc, notes: ["for example \(describe(cell, event: event))"])
        } else {
            once(key, .nondeterministic,
                 "rules '\(late.decl.id.value)' and '\(early.decl.id.value)' (\(early.decl.id.loc)) both decide the same input",
                 late.decl.id.loc, notes: ["for example \(describe(cell, event: event))"])
        }
    }

    /// Walks the check steps for one input class. Returns the deciding rules with their steps, or nil.
    mutating func walk(state start: Int, event: EventKind, cell: Cell) -> [(rule: Int, step: String?)]? {
        var out: [(Int, String?)] = []
        var s = start
        let e = Int(event.rawValue)
        if event != .segment {
            guard case .some(let hit) = decide(index[s][e][""] ?? [], cell, startState: start, event: event, where: ""), let r = hit else {
                reportIncomplete(state: s, event: event, step: nil, cell: cell)
                return nil
            }
            return [(r, nil)]
        }
        guard var step = c.steps[s].first else {
            once("nosteps:\(s)", .incomplete, "state \(c.states[s].name) has no check order for SEGMENT ARRIVES ('steps in \(c.states[s].name): ...')", c.states[s].loc)
            return nil
        }
        for _ in 0..<64 {
            guard case .some(let hit) = decide(index[s][e][step] ?? [], cell, startState: start, event: event, where: step), let r = hit else {
                reportIncomplete(state: s, event: event, step: step, cell: cell)
                return nil
            }
            out.append((r, step))
            if let en = entersOf[r] { s = en }
            switch controlOf[r] {
            case .drop, .ret, .none:
                return out
            case .cont(let at):
                let order = c.steps[s]
                let here = order.firstIndex(of: step)
                if let at {
                    guard let to = order.firstIndex(of: at), here.map({ to > $0 }) ?? true else {
                        once("contat:\(r):\(s)", .control, "rule '\(c.rules[r].decl.id.value)' continues at '\(at)', which is not a later step of \(c.states[s].name) (\(order.joined(separator: ", ")))", c.rules[r].decl.id.loc)
                        return nil
                    }
                    step = at
                } else {
                    guard let here else {
                        once("cont:\(r):\(s)", .control, "rule '\(c.rules[r].decl.id.value)' continues from step '\(step)' in \(c.states[s].name), whose check order has no such step; say 'continue at STEP'", c.rules[r].decl.id.loc)
                        return nil
                    }
                    if here + 1 >= order.count { return out }
                    step = order[here + 1]
                }
            }
        }
        once("loop:\(start)", .control, "segment processing in \(c.states[start].name) does not end after 64 steps", c.states[start].loc)
        return nil
    }

    mutating func reportIncomplete(state: Int, event: EventKind, step: String?, cell: Cell) {
        let key = "inc:\(state):\(event.rawValue):\(step ?? "")"
        let e = Int(event.rawValue)
        let loc = (index[state][e][step ?? ""]?.first).map { c.rules[$0].group.loc } ?? c.states[state].loc
        let where_ = step.map { " at step '\($0)'" } ?? ""
        once(key, .incomplete, "no rule decides \(event.spelling) in \(c.states[state].name)\(where_) for input \(describe(cell, event: event))", loc,
             notes: ["add a rule for it, or 'rule NAME otherwise' with the RFC's default"])
    }

    mutating func build() -> ([EventTable], [Chain]) {
        var tables: [EventTable] = []
        var entered = Set<Int>([c.initialState])
        var edges: [Int: Set<Int>] = [:]
        for s in c.states.indices {
            for event in EventKind.allCases {
                // SHUTDOWN in a state with no rules of its own is CLOSE there (RFC 9293's CLOSE is the half-close):
                // the same table, so the same classes and chains, counted as SHUTDOWN's own input classes.
                if event == .shutdown, index[s][Int(event.rawValue)].values.allSatisfy(\.isEmpty) {
                    tables.append(tables[s * EventKind.count + Int(EventKind.close.rawValue)])
                    continue
                }
                let dims = dimensions(state: s, event: event)
                let radices = dims.map(radix)
                let count = radices.reduce(1, *)
                var cellChains = [Int](repeating: -1, count: count)
                var t = EventTable(dimensions: dims, radices: radices, cellChains: [], tree: [])
                let e = Int(event.rawValue)
                let hasRules = !(index[s][e].values.allSatisfy(\.isEmpty))
                for k in 0..<count {
                    let coords = t.coordinates(of: k)
                    let cl = cell(coords, dims)
                    guard feasible(cl, state: s) else {
                        cellChains[k] = CellBuilder.impossible
                        continue
                    }
                    guard hasRules || event == .segment else {
                        reportIncomplete(state: s, event: event, step: nil, cell: cl)
                        continue
                    }
                    guard let path = walk(state: s, event: event, cell: cl) else { continue }
                    for p in path { decidedCount[p.rule] += 1 }
                    let ruleList = path.map(\.rule)
                    // A state with an `acknowledge` line forms its ACKs its own way: its chains are its own.
                    let remapGroup = c.ackRemapOfState[s]
                    let chainKey = remapGroup.map { ruleList + [-1 - $0] } ?? ruleList
                    if let existing = chainKeys[chainKey] {
                        cellChains[k] = existing
                    } else {
                        var instrs: [Instr] = []
                        var final: Int?
                        for r in ruleList {
                            instrs.append(.rule(r))
                            instrs += c.rules[r].instrs
                            if let en = entersOf[r] { final = en }
                        }
                        if let g = remapGroup {
                            let remap = c.ackRemaps[g]
                            instrs = instrs.map { i in
                                if case .send(let t, let cond) = i, let twin = remap[t] { .send(template: twin, condition: cond) } else { i }
                            }
                        }
                        // The model keeps a transition's outputs inline: bound them here, where a spec can be fixed.
                        let sends = instrs.filter {
                            switch $0 {
                            case .send, .builtin(.transmit, _), .builtin(.retransmit, _): true
                            default: false
                            }
                        }.count
                        let signals = instrs.filter { if case .signal = $0 { true } else { false } }.count
                        if sends > 4 || signals > 4 {
                            once("outputs:\(ruleList)", .control, "the rules deciding \(describe(cl, event: event)) in \(c.states[s].name) can send \(sends) segments and \(signals) signals; one input may produce at most 4 of each",
                                 c.rules[ruleList[0]].decl.id.loc)
                        }
                        chainKeys[chainKey] = chains.count
                        cellChains[k] = chains.count
                        chains.append(Chain(rules: ruleList, steps: path.map(\.step), instrs: instrs, finalState: final))
                    }
                    for r in ruleList {
                        if let en = entersOf[r] {
                            entered.insert(en)
                            edges[s, default: []].insert(en)
                        }
                    }
                }
                t.cellChains = cellChains
                t.tree = cellChains.contains(-1) ? [] : DecisionTree.build(cellChains: cellChains, radices: radices)
                tables.append(t)
            }
        }
        checkRules()
        checkReachability(edges: edges)
        return (tables, chains)
    }

    /// Dead: the guard matches no input class where the rule applies. Shadowed: it matches some, but earlier
    /// steps decide all of them.
    mutating func checkRules() {
        // A rule that decided some input is live; only the others need the full search to tell dead from shadowed.
        for r in c.rules where r.guardOK && decidedCount[r.index] == 0 {
            var satisfiable = false
            var example: (Int, Cell, EventKind)?
            for s in r.states {
              for event in r.events {
                let dims = dimensions(state: s, event: event)
                let radices = dims.map(radix)
                let t = EventTable(dimensions: dims, radices: radices, cellChains: [], tree: [])
                for k in 0..<radices.reduce(1, *) {
                    let cl = cell(t.coordinates(of: k), dims)
                    guard feasible(cl, state: s) else { continue }
                    let hit: Bool
                    if r.decl.guardExpr == nil {
                        // `otherwise` is live where no sibling guard holds.
                        let siblings = index[s][Int(event.rawValue)][r.group.step?.value ?? ""] ?? []
                        hit = !siblings.contains { $0 != r.index && c.rules[$0].decl.guardExpr != nil && GuardEval.eval(c.rules[$0].guardOps ?? [], bits: cl.bits, classValue: cl.value) == true }
                    } else {
                        hit = GuardEval.eval(r.guardOps ?? [], bits: cl.bits, classValue: cl.value) ?? true
                    }
                    if hit {
                        satisfiable = true
                        if example == nil { example = (s, cl, event) }
                    }
                }
              }
            }
            if !satisfiable {
                diags.append(Diagnostic(.deadRule, r.decl.guardExpr == nil
                    ? "rule '\(r.decl.id.value)' (otherwise) covers nothing: the other rules of its step decide every input"
                    : "rule '\(r.decl.id.value)' never applies: no input class satisfies its guard", at: r.decl.id.loc))
            } else if decidedCount[r.index] == 0 && !reported.contains(where: { $0.hasPrefix("inc:") || $0.hasPrefix("missing:") || $0.hasPrefix("cont") }) {
                var notes: [String] = []
                if let (s, cl, ev) = example {
                    notes.append("for example \(describe(cl, event: ev)) in \(c.states[s].name)")
                }
                diags.append(Diagnostic(.shadowedRule, "rule '\(r.decl.id.value)' is never reached: earlier check steps decide every input it matches", at: r.decl.id.loc, notes: notes))
            }
        }
    }

    mutating func checkReachability(edges: [Int: Set<Int>]) {
        var seen: Set<Int> = [c.initialState]
        var work = [c.initialState]
        while let s = work.popLast() {
            for n in edges[s] ?? [] where seen.insert(n).inserted { work.append(n) }
        }
        for (k, st) in c.states.enumerated() where !seen.contains(k) {
            diags.append(Diagnostic(.unreachableState, "state \(st.name) is unreachable from \(c.states[c.initialState].name): no rule chain enters it", at: st.loc))
        }
    }
}

/// Builds the per-(state, event) decision tree: test only the dimensions that matter, in declaration order.
enum DecisionTree {
    static func build(cellChains: [Int], radices: [Int]) -> [TreeNode] {
        var nodes: [TreeNode] = [.leaf(chain: 0)]
        let n = radices.count
        var strides = [Int](repeating: 1, count: n)
        if n > 1 { for d in stride(from: n - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * radices[d + 1] } }

        func cells(_ fixed: [Int?]) -> [Int] {
            var out = [0]
            for d in 0..<n {
                if let v = fixed[d] {
                    out = out.map { $0 + v * strides[d] }
                } else {
                    out = out.flatMap { base in (0..<radices[d]).map { base + $0 * strides[d] } }
                }
            }
            return out
        }

        func fill(_ slot: Int, _ fixed: [Int?]) {
            let cs = cells(fixed)
            let first = cellChains[cs[0]]
            if cs.allSatisfy({ cellChains[$0] == first }) {
                nodes[slot] = .leaf(chain: first)
                return
            }
            // The first free dimension on which the chain depends within this subspace.
            var pick = -1
            for d in 0..<n where fixed[d] == nil {
                let relevant = cs.contains { cell in
                    let v = (cell / strides[d]) % radices[d]
                    return (0..<radices[d]).contains { w in w != v && cellChains[cell + (w - v) * strides[d]] != cellChains[cell] }
                }
                if relevant {
                    pick = d
                    break
                }
            }
            if pick < 0 { pick = fixed.firstIndex(where: { $0 == nil })! }
            let firstChild = nodes.count
            nodes[slot] = .split(dimension: pick, firstChild: firstChild)
            nodes += Array(repeating: .leaf(chain: 0), count: radices[pick])
            for v in 0..<radices[pick] {
                var f = fixed
                f[pick] = v
                fill(firstChild + v, f)
            }
        }
        fill(0, Array(repeating: nil, count: n))
        return nodes
    }
}
