import Core
import Spec

/// `tcpspec spec explain STATE INPUT`: the rule chain for an input, step by step, with citations.
public enum Explain {
    public struct InputQuery: Sendable {
        public var event: EventKind
        /// For SEGMENT: the bits that are set (the others are clear).
        public var bits: ControlBits
        /// classifier name → accepted values.
        public var classes: [String: Set<String>]
    }

    public enum QueryError: Error, CustomStringConvertible {
        case unknown(String)
        public var description: String {
            switch self { case .unknown(let s): s }
        }
    }

    /// Parses `OPEN-ACTIVE`, `CLOSE`, `RST`, `SYN,ACK`, `ACK+FIN seq=exact ack=new,dup`, `- seq=outside` (no bits).
    public static func parse(_ text: String, spec: CompiledSpec) throws -> InputQuery {
        let words = text.split(whereSeparator: { $0 == " " })
        guard let first = words.first else { throw QueryError.unknown("empty input: give an event (CLOSE, SEND, ...) or segment bits (SYN,ACK)") }
        var q = InputQuery(event: .segment, bits: [], classes: [:])
        if let e = EventKind.bySpelling[first.uppercased()], e != .segment {
            q.event = e
        } else if first != "-" && first.uppercased() != "SEGMENT" {
            for f in first.split(whereSeparator: { $0 == "," || $0 == "+" }) {
                guard let b = ControlBits.named(f.uppercased()), ControlBits.classBits.contains(b) else {
                    throw QueryError.unknown("'\(f)' is not SYN, ACK, FIN or RST, nor an event (\(EventKind.allCases.map(\.spelling).joined(separator: ", ")))")
                }
                q.bits.insert(b)
            }
        }
        for w in words.dropFirst() {
            let kv = w.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, let c = spec.classifiers.first(where: { $0.name == kv[0] }) else {
                throw QueryError.unknown("'\(w)' is not CLASSIFIER=VALUE; classifiers: \(spec.classifiers.map(\.name).joined(separator: ", "))")
            }
            let vals = Set(kv[1].split(separator: ",").map(String.init))
            for v in vals where !c.values.contains(v) {
                throw QueryError.unknown("classifier \(c.name) has no value '\(v)'; its values are \(c.values.joined(separator: ", "))")
            }
            q.classes[kv[0]] = vals
        }
        return q
    }

    public static func text(_ spec: CompiledSpec, state s: Int, query q: InputQuery) -> String {
        let t = spec.table(state: s, event: q.event)
        var byChain: [Int: [Int]] = [:]
        var order: [Int] = []
        for (cell, ch) in t.cellChains.enumerated() where ch >= 0 {
            let coords = t.coordinates(of: cell)
            var ok = true
            for (d, dim) in t.dimensions.enumerated() {
                switch dim {
                case .bit(let b): if (coords[d] == 1) != q.bits.contains(b) { ok = false }
                case .classifier(let k):
                    if let want = q.classes[spec.classifiers[k].name], !want.contains(spec.classifiers[k].values[coords[d]]) { ok = false }
                }
            }
            guard ok else { continue }
            if byChain[ch] == nil { order.append(ch) }
            byChain[ch, default: []].append(cell)
        }
        let what = q.event == .segment ? "SEGMENT \(q.bits.isEmpty ? "(no SYN/ACK/FIN/RST)" : q.bits.description)" : q.event.spelling
        var out = "\(what) in \(spec.states[s].name), profile \(spec.profile)\n"
        if order.isEmpty {
            out += "  no input class matches (impossible combination, or the classifier values do not apply here)\n"
            return out
        }
        for (n, ch) in order.enumerated() {
            let chain = spec.chains[ch]
            let conds = InputClasses.describe(spec, t, event: q.event, cells: byChain[ch]!.map { t.coordinates(of: $0) })
            out += "\n[\(n + 1)] when \(conds.joined(separator: "\n    or "))\n"
            var state = s
            for (step, r) in zip(chain.steps, chain.rules) {
                let rule = spec.rules[r]
                out += "  \(step.map { "\($0): " } ?? "")rule \(rule.id) [\(rule.profile)] when \(rule.guardText)   (\(rule.loc))\n"
                for c in rule.citations { out += "      cite \(c.text)\n" }
                var effects: [String] = []
                var inRule = false
                for ins in chain.instrs {
                    if case .rule(let x) = ins { inRule = (x == r); continue }
                    guard inRule else { continue }
                    switch ins {
                    case .send(let t, let cond): effects.append("send \(spec.templates[t].text)" + (cond == nil ? "" : " if ..."))
                    case .set(let reg, _, let cond): effects.append("set \(reg.spelling)" + (cond == nil ? "" : " if ..."))
                    case .skipUnless: effects.append("(next assignments under one condition)")
                    case .enter(let x):
                        effects.append("enter \(spec.states[x].name)")
                        state = x
                    case .signal(let x, _): effects.append("signal \"\(spec.strings[x])\"")
                    case .reply(let x): effects.append("reply \"\(spec.strings[x])\"")
                    case .builtin(let b, _): effects.append(b.spelling)
                    case .timer(let name, let op): effects.append("timer \(name.spelling) \(op == .start ? "start" : "stop")")
                    case .rule: break
                    }
                }
                if !effects.isEmpty { out += "      → " + effects.joined(separator: "; ") + "\n" }
            }
            out += "  next state: \(spec.states[state].name)\n"
        }
        return out
    }
}
