import Core
import Spec

/// `tcpspec spec table`: the compiled state × input-class matrix in Markdown, each input class naming its rules.
public enum SpecTable {
    public static func markdown(_ spec: CompiledSpec) -> String {
        var md = "# \(spec.title)\n\n"
        md += "Profile `\(spec.profile)` (\(spec.lineage.joined(separator: " → "))): \(spec.states.count) states, \(spec.rules.count) rules, "
        let feasible = spec.tables.reduce(0) { $0 + $1.cellChains.filter { $0 >= 0 }.count }
        md += "\(feasible) input classes.\n\n"
        md += "## Overview\n\nEach cell names the rule deciding a user call or timeout; SEGMENT cells count the distinct rule chains (detailed below).\n\n"
        let events = EventKind.allCases
        md += "| state | " + events.map(\.spelling).joined(separator: " | ") + " |\n"
        md += "|---|" + events.map { _ in "---" }.joined(separator: "|") + "|\n"
        for (s, st) in spec.states.enumerated() {
            var row = "| \(st.name) |"
            for e in events {
                let groups = InputClasses.groups(spec, state: s, event: e)
                if e == .segment {
                    row += " \(groups.count) chains |"
                } else {
                    let names = groups.map { g -> String in
                        let rule = spec.rules[spec.chains[g.chain].rules.last!].id
                        return groups.count == 1 ? "`\(rule)`" : "`\(rule)` (\(g.conditions.joined(separator: "; ")))"
                    }
                    row += " " + names.joined(separator: "<br>") + " |"
                }
            }
            md += row + "\n"
        }
        for (s, st) in spec.states.enumerated() {
            md += "\n## SEGMENT ARRIVES in \(st.name)\n\n"
            md += "Check order: \(spec.steps[s].joined(separator: ", ")).\n\n"
            md += "| input class | rules (step: rule) | effect |\n|---|---|---|\n"
            for g in InputClasses.groups(spec, state: s, event: .segment) {
                let chain = spec.chains[g.chain]
                let rules = zip(chain.steps, chain.rules).map { "\($0 ?? "-"): `\(spec.rules[$1].id)`" }.joined(separator: " › ")
                let effect = InputClasses.effects(spec, chain: g.chain).joined(separator: "; ")
                md += "| \(g.conditions.joined(separator: "<br>")) | \(rules) | \(effect.isEmpty ? "—" : effect.replacingOccurrences(of: "|", with: "\\|")) |\n"
            }
        }
        md += "\n## Rules and citations\n\n| rule | profile | guard | citation |\n|---|---|---|---|\n"
        for r in spec.rules {
            md += "| `\(r.id)` | \(r.profile) | \(r.guardText.replacingOccurrences(of: "|", with: "\\|")) | \(r.citationText.replacingOccurrences(of: "|", with: "\\|")) |\n"
        }
        return md
    }
}
