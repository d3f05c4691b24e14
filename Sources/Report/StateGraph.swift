import Core
import Spec

/// `tcpspec spec graph`: the state diagram the compiled rules imply, as Graphviz DOT. Edges carry what causes
/// them (a user call, a timeout, or the control bits of an arriving segment) and the control bits sent.
public enum StateGraph {
    /// Edge colours by verdict, for reports that overlay results (`conforms`, `diverges`, ...).
    public static func dot(_ spec: CompiledSpec, edgeColor: (_ from: Int, _ to: Int) -> String? = { _, _ in nil }) -> String {
        var labels: [[Int: [String]]] = Array(repeating: [:], count: spec.states.count)
        for s in spec.states.indices {
            for e in EventKind.allCases {
                let t = spec.table(state: s, event: e)
                var seen: Set<String> = []
                for (cell, ch) in t.cellChains.enumerated() where ch >= 0 {
                    let chain = spec.chains[ch]
                    guard let to = chain.finalState, to != s || e != .segment else { continue }
                    guard to != s else { continue }
                    let input: String
                    if e == .segment {
                        let coords = t.coordinates(of: cell)
                        var bits = ControlBits()
                        for (d, dim) in t.dimensions.enumerated() { if case .bit(let b) = dim, coords[d] == 1 { bits.insert(b) } }
                        input = "rcv " + (bits.isEmpty ? "-" : bits.description)
                    } else {
                        input = e.spelling
                    }
                    let sent = chain.instrs.compactMap { ins -> String? in
                        switch ins {
                        case .send(let t, _): spec.templates[t].ctl.description
                        case .builtin(.transmit, _): "data/FIN"
                        default: nil
                        }
                    }
                    let label = input + (sent.isEmpty ? "" : " / snd " + sent.joined(separator: "+"))
                    if seen.insert("\(to)|\(label)").inserted { labels[s][to, default: []].append(label) }
                }
            }
        }
        // SHUTDOWN is CLOSE wherever it does what CLOSE does (RFC 9293's CLOSE is the half-close): shown only
        // where it differs.
        for s in labels.indices {
            for (to, ls) in labels[s] {
                labels[s][to] = ls.filter { l in
                    guard l.hasPrefix(EventKind.shutdown.spelling) else { return true }
                    return !ls.contains(EventKind.close.spelling + l.dropFirst(EventKind.shutdown.spelling.count))
                }
            }
        }
        var dot = "digraph \"\(spec.profile)\" {\n"
        dot += "  graph [label=\"TCP state diagram compiled from profile \(spec.profile)\", labelloc=t, fontname=\"Helvetica\", rankdir=TB, nodesep=0.6, ranksep=0.5];\n"
        dot += "  node [shape=box, style=\"rounded\", fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=9];\n"
        for (k, st) in spec.states.enumerated() {
            dot += "  \"\(st.name)\"" + (k == spec.initialState ? " [penwidth=2]" : "") + ";\n"
        }
        for s in spec.states.indices {
            for (to, ls) in labels[s].sorted(by: { $0.key < $1.key }) {
                let shown = ls.prefix(4).joined(separator: "\\n") + (ls.count > 4 ? "\\n(+\(ls.count - 4) more)" : "")
                var attrs = "label=\"\(shown)\""
                if let c = edgeColor(s, to) { attrs += ", color=\"\(c)\", fontcolor=\"\(c)\"" }
                dot += "  \"\(spec.states[s].name)\" -> \"\(spec.states[to].name)\" [\(attrs)];\n"
            }
        }
        return dot + "}\n"
    }
}
