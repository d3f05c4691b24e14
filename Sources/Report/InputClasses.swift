import Core
import Spec

/// Groups the input classes of a (state, event) by the chain that decides them, and describes each group as a
/// few readable conditions (`+ACK -RST seq ∈ {exact, overlap} ack=new`).
public struct ChainGroup: Sendable {
    public var chain: Int
    public var cells: [Int]
    /// Conditions, one line per product of dimension values covering part of the group.
    public var conditions: [String]
}

public enum InputClasses {
    public static func groups(_ spec: CompiledSpec, state: Int, event: EventKind) -> [ChainGroup] {
        let t = spec.table(state: state, event: event)
        var byChain: [Int: [Int]] = [:]
        var order: [Int] = []
        for (cell, chain) in t.cellChains.enumerated() where chain >= 0 {
            if byChain[chain] == nil { order.append(chain) }
            byChain[chain, default: []].append(cell)
        }
        return order.map { ch in
            let cells = byChain[ch]!
            return ChainGroup(chain: ch, cells: cells, conditions: describe(spec, t, event: event, cells: cells.map { t.coordinates(of: $0) }))
        }
    }

    /// Splits a set of coordinates into products of per-dimension value sets and renders each.
    static func describe(_ spec: CompiledSpec, _ t: EventTable, event: EventKind, cells: [[Int]]) -> [String] {
        let n = t.radices.count
        if n == 0 { return [event.spelling] }
        func values(_ cs: [[Int]]) -> [Set<Int>] { (0..<n).map { d in Set(cs.map { $0[d] }) } }
        func isProduct(_ cs: [[Int]], _ vs: [Set<Int>]) -> Bool { vs.reduce(1) { $0 * $1.count } == Set(cs.map { $0 }).count }
        func render(_ vs: [Set<Int>]) -> String {
            var parts: [String] = []
            for (d, dim) in t.dimensions.enumerated() {
                if vs[d].count == t.radices[d] { continue }
                switch dim {
                case .bit(let b): parts.append((vs[d].contains(1) ? "+" : "-") + b.description)
                case .classifier(let k):
                    let names = vs[d].sorted().map { spec.classifiers[k].values[$0] }
                    parts.append(names.count == 1 ? "\(spec.classifiers[k].name)=\(names[0])" : "\(spec.classifiers[k].name) ∈ {\(names.joined(separator: ", "))}")
                }
            }
            return parts.isEmpty ? (event == .segment ? "any segment" : event.spelling) : parts.joined(separator: " ")
        }
        func cover(_ cs: [[Int]], depth: Int) -> [String] {
            let vs = values(cs)
            if isProduct(cs, vs) || depth > n { return [render(vs)] }
            // Split on the dimension with the most values and describe each part.
            let d = (0..<n).filter { vs[$0].count > 1 }.max { vs[$0].count < vs[$1].count } ?? 0
            return vs[d].sorted().flatMap { v in cover(cs.filter { $0[d] == v }, depth: depth + 1) }
        }
        return cover(cells, depth: 0)
    }

    /// What a chain does, for tables: sends, builtins, signals, replies and the state it ends in.
    public static func effects(_ spec: CompiledSpec, chain: Int) -> [String] {
        var out: [String] = []
        for ins in spec.chains[chain].instrs {
            switch ins {
            case .send(let t, let cond): out.append("send \(spec.templates[t].text)" + (cond == nil ? "" : " (conditional)"))
            case .builtin(let b, _): out.append(b.spelling)
            case .signal(let s, _): out.append("signal \"\(spec.strings[s])\"")
            case .reply(let s): out.append("reply \"\(spec.strings[s])\"")
            case .enter(let s): out.append("→ \(spec.states[s].name)")
            default: break
            }
        }
        return out
    }
}
