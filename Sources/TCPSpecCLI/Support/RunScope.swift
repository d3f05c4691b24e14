import Core
import Foundation
import Link

/// The start of every command that makes namespaces, devices or processes: sweep what killed runs left, then
/// record this run (`RunRegistry`). One line on stderr says what was swept, when anything was:
///
/// ```
/// $ tcpspec fuzz --target pytcp --duration 10s
/// tcpspec: swept a killed run: run 48112 (fuzz): killed process 48120; removed out/corpus/.004-x.pcap.48112-1934411-3.tmp
/// ```
enum RunScope {
    static func begin(_ command: String) {
        let swept = RunRegistry.begin(command: command)
        guard !swept.isEmpty else { return }
        let what = swept.map(\.description).joined(separator: "; ")
        printError("tcpspec: swept \(swept.count == 1 ? "a killed run" : "\(swept.count) killed runs"): \(what)")
    }
}
