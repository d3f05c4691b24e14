import Core
import ArgumentParser
import Checker
import Foundation
import Link
import Spec

/// The offline checker: every TCP connection in a capture judged against the spec, both ends.
///
/// ```
/// $ tcpspec check trace.pcapng
/// $ tcpspec check trace.pcap --profile linux --json > verdicts.json
/// $ tcpspec check big.pcap --jobs 1      # one judging thread (default: one per core)
/// ```
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Judge every TCP connection in a pcap or pcapng file against the spec; exit 0 only when nothing violates it.",
        discussion: """
            Frames are numbered as Wireshark numbers them. Exit status: 0 no violation, 1 violations, 2 the file \
            cannot be read, 3 the file is damaged (cut inside a record, a record claiming more than the file holds, \
            two files run together): what comes before the damage is judged and reported, but the rest is not, so \
            the capture cannot pass as clean (a violation found before the damage still exits 1).
            """
    )

    @OptionGroup var specOptions: SpecOptions
    @Argument(help: "A pcap or pcapng file.") var file: String
    @Flag(help: "Print the report as JSON.") var json = false
    @Option(help: "Threads judging connections (default: one per core). The report does not depend on it.") var jobs: Int?

    func validate() throws {
        if let jobs, jobs < 1 || jobs > 256 { throw ValidationError("--jobs must be between 1 and 256, not \(jobs)") }
    }

    func run() throws {
        let spec = try specOptions.compile()
        try requireLibpcap()
        let report: CaptureReport
        do {
            report = try CaptureChecker.check(path: file, spec: spec, jobs: jobs ?? CaptureChecker.defaultJobs)
        } catch {
            printError("tcpspec: \(error)")
            throw ExitCode(2)
        }
        // Cut short before its first frame: there is nothing to judge, the file is not a usable capture.
        if let t = report.truncated, report.frames == 0 {
            printError("tcpspec: \(file): not a usable capture: \(t.replacingOccurrences(of: "; frames 1–0 were judged", with: ""))")
            throw ExitCode(2)
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
        } else {
            print(CheckText.render(report), terminator: "")
        }
        if report.violations > 0 { throw ExitCode(1) }
        // Judged only up to the damage: not clean, and said so where a script's log shows it.
        if let t = report.truncated {
            printError("tcpspec: \(file): damaged capture: \(t); the rest of the file was not judged")
            throw ExitCode(3)
        }
    }
}

enum CheckText {
    static func render(_ r: CaptureReport) -> String {
        var out = "\(r.file): \(r.frames) frames, \(r.tcpSegments) TCP segments, \(r.connections.count) connections, profile \(r.profile)\n"
        for c in r.connections {
            out += "\nconnection \(c.index): \(c.client) → \(c.server), frames \(c.firstFrame)–\(c.lastFrame), \(c.segments) segments, followed from \(c.start)\n"
            for v in c.violations {
                out += "  frame \(v.frame)  \(v.endpoint) in \(v.state)\n"
                out += "    observed: \(v.observed)\n"
                out += "    expected: \(v.expected)\n"
                if !v.rules.isEmpty { out += "    rules:    \(v.rules.joined(separator: " › "))\n" }
                for cite in Set(v.citations).sorted() { out += "    cite      \(cite)\n" }
                if let n = v.note { out += "    note:     \(n)\n" }
                if !v.repeats.isEmpty { out += "    again in frames \(v.repeats.prefix(20).map(String.init).joined(separator: ", "))\(v.repeats.count > 20 ? ", …" : "")\n" }
            }
            var facts = ["\(c.violations.count) \(c.violations.count == 1 ? "violation" : "violations")", "ends: \(c.finalStates.joined(separator: ", "))"]
            if c.retransmissions > 0 { facts.append("\(c.retransmissions) retransmissions") }
            if c.partialRetransmissions > 0 { facts.append("\(c.partialRetransmissions) partly retransmitted (new text after old)") }
            if c.zeroWindowProbes > 0 { facts.append("\(c.zeroWindowProbes) zero-window probes") }
            if c.keepAlives > 0 { facts.append("\(c.keepAlives) keep-alives") }
            if c.outOfOrder > 0 { facts.append("\(c.outOfOrder) gap fills (reordered, or the first copy lost before the capture point)") }
            if !c.badChecksums.isEmpty { facts.append("bad checksums in frames \(c.badChecksums.prefix(10).map(String.init).joined(separator: ", ")) (not trusted)") }
            if c.offloadedChecksums > 0 { facts.append("\(c.offloadedChecksums) checksums left to the NIC (captured before offload)") }
            out += "  " + facts.joined(separator: "; ") + "\n"
            if let o = c.options {
                let j = c.optionsJudged
                var judged = ["\(j.mss) segments against the MSS", "\(j.echoes) timestamp echoes", "\(j.sackBlocks) SACK blocks"]
                if j.pawsDiscards > 0 { judged.append("\(j.pawsDiscards) segments PAWS discards") }
                out += "  options: \(o) (client/server); judged: \(judged.joined(separator: ", "))\n"
            }
            for n in c.captureNotes.prefix(10) { out += "  capture: \(n)\n" }
        }
        if !r.unjudged.isEmpty {
            out += "\nnot judged: \(r.unjudged.count) frames\n"
            for u in r.unjudged.prefix(10) { out += "  \(u)\n" }
        }
        if let t = r.truncated { out += "\nwarning: \(t)\n" }
        let bad = r.connections.filter { !$0.violations.isEmpty }.count
        out += "\nsummary: \(r.connections.count) connections, \(bad) with violations, \(r.violations) violations\n"
        return out
    }
}
