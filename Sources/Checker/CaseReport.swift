import Core
import Foundation
import Targets

/// Expected beside observed, by case line, as packetdrill's best error output does, but for every step.
public enum CaseReport {
    public static func text(_ r: CaseResult, color: Bool = false) -> String {
        let width = max(30, min(60, r.steps.map { $0.expected.count }.max() ?? 30))
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        var out = "\(r.path)\n"
        out += "  " + settingsLine(r.settings) + "\n"
        out += "  line  " + pad("expected", width) + "  observed\n"
        for s in r.steps {
            let mark: String
            var detail = ""
            switch s.verdict {
            case .ok: mark = "ok"
            case .sent: mark = "sent"
            case .mismatch(let reasons):
                mark = color ? "\u{1B}[31mMISMATCH\u{1B}[0m" : "MISMATCH"
                detail = reasons.map { "\n" + String(repeating: " ", count: width + 10) + "^ " + $0 }.joined()
            case .error(let e):
                mark = color ? "\u{1B}[31mERROR\u{1B}[0m" : "ERROR"
                detail = "\n" + String(repeating: " ", count: width + 10) + "^ " + e
            }
            let line = String(repeating: " ", count: max(0, 4 - String(s.line).count)) + String(s.line)
            out += "  \(line)  \(pad(s.expected, width))  \(pad(s.observed, 44)) \(mark)\(detail)\n"
        }
        let n = r.steps.count
        out += "  \(n) steps, \(r.failures) \(r.failures == 1 ? "divergence" : "divergences")"
        if let p = r.pcapPath { out += "; pcap: \(p)" }
        return out + "\n"
    }
}
