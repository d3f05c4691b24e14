import Cases
import Core
import Foundation
import Generator
import Link
import Model
import Oracle
import Spec
import Wire
import Targets

/// Writes each divergence as a replayable case (steps, the spec's expectations, what was observed as comments)
/// and its pcap, under the corpus directory.
public struct CorpusWriter {
    let directory: String
    let spec: CompiledSpec
    let settings: [(String, String)]
    let targetName: String
    /// What the application set on the target's sockets: a case that waits records it.
    var sockets = SocketSettings()
    /// The target delayed its ACKs (`Target.delaysAcknowledgments`): the case says so, for its replay.
    var delayedAcks = false

    static let signaturePrefix = "# signature: "

    static func slug(_ d: Divergence) -> String { slug(d.stateBefore.rawValue + "-" + d.input) }

    static func slug(_ text: String) -> String {
        var s = text.lowercased()
        s = String(s.map { $0.isLetter || $0.isNumber ? $0 : "-" })
        while s.contains("--") { s = s.replacingOccurrences(of: "--", with: "-") }
        return String(s.trimmingCharacters(in: CharacterSet(charactersIn: "-")).prefix(48))
    }

    /// Writes the case and its pcap under the next free number of the directory, unless a case with the same
    /// signature is there already (another run sharing the corpus kept it meanwhile): nil then. Runs sharing a
    /// corpus take turns through a lock file, so that they neither number alike nor keep one divergence twice.
    func write(_ d: Divergence, frames: [Frame], linkType: LinkType) throws -> (String, String)? {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let lock = try Sys.open((directory as NSString).appendingPathComponent(".tcpspec.lock"), .readWrite, options: [.create])
        defer { Sys.close(lock) }
        try Sys.lock(lock)
        if KnownSignatures(corpus: directory).contains(d.signature) { return nil }
        let index = Self.nextIndex(directory)
        var base = String(format: "%03d-", index) + Self.slug(d)
        var n = 1
        while FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(base + ".case")) {
            n += 1
            base = String(format: "%03d-", index) + Self.slug(d) + "-\(n)"
        }
        let casePath = (directory as NSString).appendingPathComponent(base + ".case")
        let pcapPath = (directory as NSString).appendingPathComponent(base + ".pcap")
        // The pcap first: a case in the corpus (what later runs read) then always has its pcap.
        try PcapWriter.write(frames, linkType: linkType, to: pcapPath)
        try AtomicFile.write(CaseText.render(d, spec: spec, settings: settings, targetName: targetName, sockets: sockets, delayedAcks: delayedAcks), to: casePath)
        return (casePath, pcapPath)
    }

    /// One more than the highest `NNN-` number of the directory's cases (a restarted run goes on from there).
    static func nextIndex(_ dir: String) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let used = names.filter { $0.hasSuffix(".case") }.compactMap(number(of:))
        return (used.max() ?? -1) + 1
    }

    /// The number a file written here starts with (`007-name.case`, `1234-name.pcap`), nil for any other name:
    /// what tells tcpspec's own files from the user's.
    public static func number(of name: String) -> Int? {
        let digits = name.prefix { $0.isNumber }
        guard digits.count >= 3, name.dropFirst(digits.count).hasPrefix("-") else { return nil }
        return Int(digits)
    }
}

/// A divergence as a case file: the steps, the spec's expectation for each (so that replaying judges the
/// target against the spec), and what the target did, as comments.
public enum CaseText {
    /// A segment as a case line (`dir`: `<` injected, `>` sent by the target): as sent (the window as the target reads
    /// it, the urgent pointer; the options come from the case's `option tester-options`), or an expectation of the
    /// spec's (PSH and the window left to the stack).
    static func segmentLine(_ dir: String, _ s: Segment, expectation: Bool, options: [OptionSpec]? = nil) -> String {
        var flags = s.ctl.intersection([.syn, .fin, .rst, .psh, .urg, .ack])
        if expectation { flags.remove(.psh) }
        var spec = SegmentSpec(flags: flags, seq: .value(s.seq), length: .value(s.dataLength), ack: s.ctl.contains(.ack) ? .value(s.ack) : nil,
                               window: expectation ? .any : .value(s.window))
        if !expectation, s.ctl.contains(.urg) || s.urgentPointer != 0 { spec.urgent = .value(s.urgentPointer) }
        spec.options = options
        if !expectation { spec.oddity = s.oddity }
        return dir + " " + CaseWriter.segment(spec)
    }

    /// A step as its case-file line.
    /// `offer`, `stateBefore`: a SYN the tester sent in TIME-WAIT carried the offer without Timestamps
    /// (`OptionAgreement.prepare`'s `reuse`): written out, so that a replay sends the same.
    static func stepLine(_ step: FuzzStep, offer: TesterOptions = .mssOnly, stateBefore: TCPState? = nil) -> String {
        if case .segment(let s) = step, s.tsOld, offer.timestamps {
            // An old TSval (PAWS) is written out; its TSecr echoes the target's last TSval, as the runner's `ecr *` does.
            let ts = OptionSpec.timestamps(val: .value(OptionAgreement.oldTSval(offer)), ecr: s.ctl.contains(.ack) ? .any : .value(0))
            let opts = (s.ctl.contains(.syn) ? offer.synOptionsWithoutTimestamps : []) + [.nop, .nop, ts]
            return segmentLine("<", s, expectation: false, options: opts) + "\n"
        }
        if case .segment(let s) = step, s.ctl.contains(.syn), stateBefore == .timeWait, offer.timestamps {
            let opts = offer.synOptionsWithoutTimestamps
            return segmentLine("<", s, expectation: false, options: opts.isEmpty ? [.nop] : opts) + "\n"
        }
        return switch step {
        case .call(.openPassive): CaseWriter.line(.call(.listen(backlog: CaseParser.defaultBacklog), expect: nil)) + "\n"
        case .call(let c): step.socketCall.map { CaseWriter.line(.call($0, expect: nil)) + "\n" } ?? "# \(c) (no socket call)\n"
        case .accept: CaseWriter.line(.call(.accept, expect: nil)) + "\n"
        case .segment(let s): segmentLine("<", s, expectation: false) + "\n"
        case .wait(let d): CaseWriter.line(.wait(d)) + "\n"
        }
    }

    static func render(_ d: Divergence, spec: CompiledSpec, settings: [(String, String)], targetName: String, sockets: SocketSettings = SocketSettings(),
                       delayedAcks: Bool = false) -> String {
        var out = "# Divergence from profile \(spec.profile) on target \(targetName), minimized to \(d.steps) steps.\n"
        out += "# In \(d.stateBefore), on \(d.input): the spec expects \(d.expected); the target did \(d.observed).\n"
        out += "# Rules: \(d.rules.joined(separator: " › "))\n"
        for c in Set(d.citations).sorted() where !c.isEmpty { out += "#   cite \(c)\n" }
        out += "# Target: " + settingsLine(settings) + "\n"
        out += CorpusWriter.signaturePrefix + d.signature.description + "\n"
        // What the divergence is, as RFC 9293 decides it: a bug (violates), a SHOULD not followed, a permitted choice.
        if let j = d.signature.judgement { out += "# verdict: \(j.description)\n" }
        if let n = d.oddityNote { out += "# odd options: \(n)\n" }
        if !d.examined {
            out += "# unexamined: set aside to be replayed after the run (it waits on the stack's clock), and not replayed: the run's budget for that was spent. Not confirmed, not minimized; the pcap is empty. Replay it: tcpspec run\n"
        } else if d.replays > 0 {
            out += d.timingDependent
                ? "# timing-dependent: shown in none of \(d.replays) replays of this case alone (not a finding; the pcap is a replay that did not show it)\n"
                : "# reproduced: in \(d.reproduced) of \(d.replays) replays of this case alone\n"
        }
        out += "option tester-isn \(d.testerISN)\n"
        // The runner gives each injected segment the options (and wire window) this offer and the target's SYN agree.
        out += "option tester-options \(d.testerOptions)\n"
        // A case that waits judges timers, some of them the application's: replayed with the same settings.
        if d.log.contains(where: { if case .wait = $0.step { true } else { false } }) {
            for o in sockets.caseOptions { out += "option \(o.key) \(o.value)\n" }
        }
        if delayedAcks { out += "option delayed-acks on\n" }
        // The shrink is judged across segments, not by any one line: the runner follows the window's edge.
        if d.signature == .windowShrink { out += "option judge window-shrink\n" }
        for (i, l) in d.log.enumerated() {
            out += stepLine(l.step, offer: d.testerOptions, stateBefore: l.stateBefore)
            if case .accept = l.step {} else {
                // PSH is the sender's choice; the spec's expectations leave it out.
                let expected = l.expected.map { var s = $0; s.ctl.remove(.psh); return s }
                if expected.isEmpty { out += "> none\n" }
                for s in expected { out += segmentLine(">", s, expectation: true) + "\n" }
            }
            // A timed expectation's window, as judged (a replay checks the segments; the time is the run's).
            for e in l.expiries { out += "# timer: \(e.description)\n" }
            if l.observedState != nil { out += "state \(l.expectedState)\n" }
            if l.diverged || i == d.log.count - 1 {
                let obs = l.observed.isEmpty ? ["> none"] : l.observed.map { segmentLine(">", $0, expectation: false) }
                out += "# observed: " + obs.joined(separator: "; ") + (l.observedState.map { "; state \($0)" } ?? "") + "\n"
                for m in l.mismatches { out += "# ^ \(m)\n" }
            }
        }
        return out
    }
}
