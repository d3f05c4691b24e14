import Core
import Model
import Oracle
import Wire

/// What one end's SYN (or SYN,ACK) offered, as captured.
struct SYNOffer {
    var mss: UInt16?
    var windowScale: UInt8?
    var sackPermitted: Bool
    var timestamps: Bool
    /// The capture cut the SYN's options (snaplen): an option not found may have been there.
    var cut: Bool
    var ipv6: Bool

    init(_ s: CapturedSegment) {
        mss = s.mss
        windowScale = s.windowScale
        sackPermitted = s.sackPermitted
        timestamps = s.tsVal != nil
        cut = s.optionsCut
        ipv6 = s.source.isV6
    }

    /// The send MSS it gives its peer (RFC 9293 §3.7.1: its MSS option, or 536 for IPv4 and 1220 for IPv6 without
    /// one, MUST-15); nil when the capture cut the options before an MSS option was found.
    var sendMSS: UInt32? {
        if let m = mss { return UInt32(m) }
        return cut ? nil : ipv6 ? 1220 : 536
    }
}

/// The options each end sends, judged against RFC 9293 §3.1–§3.2 and §3.7.1 (the option format, MSS), RFC 7323
/// (Window Scale, Timestamps, PAWS) and RFC 2018 (SACK). What is known only when the SYNs were captured whole is
/// judged only then: an option a snaplen cut or a SYN not captured is unknown, never taken as absent.
extension Flow {
    /// A SYN's options: noted as its end's offer, and checked against what a SYN,ACK may offer (only what the SYN
    /// it answers offered). Sets what is agreed when the SYN,ACK is seen.
    func judgeSYNOptions(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int, state: TCPState) {
        let p = 1 - e
        let offer = SYNOffer(s)
        ends[e].offer = offer
        ends[p].sendMSS = offer.sendMSS
        guard s.flags.contains(.ack) else { return }
        // Only what the SYN it answers offered (when that SYN was captured whole).
        if let peer = ends[p].offer, !peer.cut {
            // No RFC 7323 sentence forbids it (§2.2 grants the SYN,ACK's option when the SYN carried one), and
            // scaling stays off without both: noted, not judged.
            if s.windowScale != nil, peer.windowScale == nil, report.captureNotes.count < 50 {
                report.captureNotes.append("frame \(n): \(ends[e].name)'s SYN,ACK carries a Window Scale option its peer's SYN did not offer (scaling stays off, RFC 7323 §2.2)")
            }
            if offer.timestamps, !peer.timestamps {
                optionFault(n, time, s, from: e, state: state, expected: "no Timestamps option: the SYN offered none",
                      rule: .timestampsOnSYNACK, note: "its SYN,ACK carries a Timestamps option the SYN did not offer")
            }
        }
        report.options = optionSummary(server: e)
        // SACK.OK in both models (RFC 2018 §2: both SYNs carried SACK-Permitted); a SYN cut before the option or not
        // captured leaves it off — what reads it (the linux profile's RST at the highest SACK block) then judges as
        // without SACK.
        let sackOK = offer.sackPermitted && ends[p].offer?.sackPermitted == true
        for k in 0..<2 { ends[k].model.adopt(.sackPermitted(sackOK)) }
        // In effect when both SYNs carry it; the SYN,ACK may carry it only if the SYN did, so the SYN,ACK decides
        // when the SYN was not captured. Unknown (nil) where a snaplen cut what would decide.
        if offer.timestamps {
            switch ends[p].offer {
            case nil: timestamps = true
            case let o?: timestamps = o.timestamps ? true : o.cut ? nil : false
            }
        } else {
            timestamps = offer.cut ? nil : false
        }
    }

    /// "MSS 1460/1460, window scale 7/7, timestamps yes/yes, SACK-permitted yes/yes", client's / server's; "?" where
    /// a snaplen cut the option list or the SYN was not captured, "-" where the SYN had none.
    func optionSummary(server: Int) -> String {
        let o = [ends[1 - server].offer, ends[server].offer]
        func both(_ f: (SYNOffer) -> String?) -> String {
            o.map { x in x.map { f($0) ?? ($0.cut ? "?" : "-") } ?? "?" }.joined(separator: "/")
        }
        let ts = both { $0.timestamps ? "yes" : nil }, sack = both { $0.sackPermitted ? "yes" : nil }
        return "MSS \(both { $0.mss.map(String.init) }), window scale \(both { $0.windowScale.map(String.init) }), timestamps \(ts), SACK-permitted \(sack)"
    }

    /// Every segment's options: the list's format, SYN-only options elsewhere, the MSS, timestamps and SACK blocks.
    func judgeOptions(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int, state: TCPState) {
        let p = 1 - e
        // What the segment's own options break (the format, SYN-only options elsewhere, a shift above 14, text
        // beyond the effective send MSS): one audit, the live oracle's too. The MSS only on segments whose checksum
        // is whole: a capture before TSO/GSO or after GRO holds super-segments the NIC or the receiver's stack cut or
        // merged, and those carry the pseudo-header's sum only.
        let mssJudged = s.checksum == .good
        if mssJudged, ends[e].sendMSS != nil, s.dataLength > 0, !s.flags.contains(.syn) { report.optionsJudged.mss += 1 }
        let sendMSS = ends[e].sendMSS, peerMSS = ends[p].offer?.mss, peerName = ends[p].name
        // (The words only when a fault needs them: an autoclosure, no string built per segment.)
        for f in OptionRule.audit(s.options, syn: s.flags.contains(.syn), dataLength: s.dataLength, sendMSS: sendMSS, mssJudged: mssJudged,
                                  mssSaid: peerMSS.map { "the MSS \($0) \(peerName) offered" } ?? "the default send MSS \(sendMSS ?? 536) (no MSS option offered, MUST-15)") {
            optionFault(n, time, s, from: e, state: state, expected: f.expected, rule: f.rule, note: f.note)
        }
        // A Window Scale without SYN the receiver MUST ignore (RFC 7323 §2.2), and no sentence forbids sending one:
        // noted.
        if s.synOnlyKinds.contains(.windowScale), report.captureNotes.count < 50 {
            report.captureNotes.append("frame \(n): \(ends[e].name) sends a Window Scale option without SYN (the receiver MUST ignore it, RFC 7323 §2.2)")
        }
        judgeTimestamps(n, time, s, from: e, state: state)
        guard s.sack.count > 0 else { return }
        if let peer = ends[p].offer, !peer.cut, !peer.sackPermitted {
            optionFault(n, time, s, from: e, state: state, expected: "no SACK option: \(ends[p].name) did not send SACK-Permitted",
                  rule: .sackPermission, note: "sends a SACK option although its peer's SYN offered no SACK-Permitted")
        }
        let sentEnd = ends[p].sent.highestEnd
        for i in 0..<s.sack.count {
            let b = s.sack[i]
            report.optionsJudged.sackBlocks += 1
            if !TCPModel.seqLess(b.left, b.right) || b.right &- b.left >= 1 << 30 {
                optionFault(n, time, s, from: e, state: state, expected: "SACK blocks whose left edge is below their right edge",
                      rule: .sackBlockEdges,
                      note: "its SACK block \(i + 1) runs from \(b.left &- ends[p].iss) to \(b.right &- ends[p].iss)")
            } else if let end = sentEnd, TCPModel.seqLess(end, b.right), b.right &- end < 1 << 30 {
                sackChecks.append((n, time, e, b.right, state, rel(s, from: e) + " sack \(b.left &- ends[p].iss):\(b.right &- ends[p].iss)"))
            }
        }
    }

    /// Timestamps once in effect (RFC 7323 §3.2): on every segment but RSTs; the echo never a TSval the peer did not
    /// send. A TSval behind an earlier one (reordered, or a clock that ran back) is noted, not judged: PAWS assumes
    /// a monotone clock (§5.2), no sentence requires one.
    func judgeTimestamps(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int, state: TCPState) {
        let p = 1 - e
        guard let ts = s.tsVal else {
            if timestamps == true, !s.flags.contains(.rst), !s.flags.contains(.syn), !s.optionsCut {
                optionFault(n, time, s, from: e, state: state, expected: "a Timestamps option: both SYNs carried one",
                      rule: .timestampsEverySegment, note: "sends a segment without the Timestamps option the connection agreed")
            }
            return
        }
        // Not agreed: the receiver MUST ignore it (RFC 7323 §3.2); no sentence forbids sending it. The clock running
        // back is no stated requirement either (PAWS assumes it does not, §5.2): both noted, not judged.
        if timestamps == false, !s.flags.contains(.syn), !ends[e].tsNoted, report.captureNotes.count < 50 {
            ends[e].tsNoted = true
            report.captureNotes.append("frame \(n): \(ends[e].name) sends a Timestamps option the SYNs did not agree (the receiver MUST ignore it, RFC 7323 §3.2)")
        }
        if let high = ends[e].tsHigh, TCPModel.seqLess(ts, high.value) {
            if report.captureNotes.count < 50 {
                let why = time - high.time < crossingWindow ? "reordered before the capture point, presumably" : "its timestamp clock ran back (PAWS at the peer discards such segments, RFC 7323 §5.2–§5.3)"
                report.captureNotes.append("frame \(n): \(ends[e].name)'s TSval \(ts) is behind \(high.value) in frame \(high.frame): \(why)")
            }
        } else {
            ends[e].tsHigh = (ts, n, time)
        }
        // The echo: a TSval the peer sent (TS.Recent), never one from its future. Judged when the peer's segments
        // this acknowledges were captured (otherwise a later TSval may have come in one the capture lost).
        guard timestamps == true, s.flags.contains(.ack), !s.flags.contains(.rst), let peer = ends[p].tsHigh else { return }
        report.optionsJudged.echoes += 1
        if TCPModel.seqLess(peer.value, s.tsEcr), s.tsEcr &- peer.value < 1 << 31, !TCPModel.seqLess(ends[p].sent.highestEnd ?? s.ack, s.ack) {
            optionFault(n, time, s, from: e, state: state, expected: "a TSecr of at most \(peer.value), the latest TSval \(ends[p].name) sent (frame \(peer.frame))",
                  rule: .timestampEcho, note: "echoes TSval \(s.tsEcr), which \(ends[p].name) never sent")
        }
    }

    /// PAWS at the receiving end (RFC 7323 §5.3): a segment with text whose TSval is older than TS.Recent is not
    /// acceptable, and is not given to the model (an ACK of its text then shows the end took it); otherwise
    /// TS.Recent follows R3. Returns whether the segment was discarded.
    func pawsDiscards(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int) -> Bool {
        guard let ts = s.tsVal, !s.flags.contains(.rst) else { return false }
        let p = 1 - e
        let judged = timestamps == true && synchronized[ends[p].model.state]
        // In place: reading the end's fields one by one through the array copied the whole End (a fifth of the
        // checker's time in `tcpspec-bench check`).
        let discarded = Flow.paws(&ends[p], n, time, s, ts, judged: judged)
        if discarded { report.optionsJudged.pawsDiscards += 1 }
        return discarded
    }

    static func paws(_ end: inout End, _ n: Int, _ time: Double, _ s: CapturedSegment, _ ts: UInt32, judged: Bool) -> Bool {
        // The SYN's TSval starts TS.Recent (RFC 7323 §3.2, §4.3).
        if s.flags.contains(.syn) {
            end.tsRecent = ts
            end.tsRecentTime = time
            return false
        }
        let older = end.tsRecent.map { TCPModel.seqLess(ts, $0) } ?? false
        // TS.Recent goes invalid after 24 days idle (RFC 7323 §5.5).
        if judged, older, let recent = end.tsRecent, time - end.tsRecentTime < 24 * 86400, s.dataLength > 0 || s.flags.contains(.fin) {
            end.pawsDiscarded = (s.seq, n, ts, recent)
            return true
        }
        // R3: taken when at or after TS.Recent and the segment starts at or below Last.ACK.sent.
        let lastAck = end.highestAck?.ack ?? s.seq
        if !older, s.seq == lastAck || TCPModel.seqLess(s.seq, lastAck) {
            end.tsRecent = ts
            end.tsRecentTime = time
        }
        if let d = end.pawsDiscarded, s.dataLength > 0, !TCPModel.seqLess(d.seq, s.seq), TCPModel.seqLess(d.seq, s.seq &+ s.length) {
            end.pawsDiscarded = nil
        }
        return false
    }

    /// An ACK from `e` over text PAWS discards: it took a segment RFC 7323 §5.3 R1 makes unacceptable.
    func acknowledgesPAWSDiscarded(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int, state: TCPState) -> Bool {
        guard let d = ends[e].pawsDiscarded, !TCPModel.seqLess(d.seq, ends[e].model[.rcvNxt]), TCPModel.seqLess(d.seq, s.ack) else { return false }
        let p = 1 - e
        ends[e].pawsDiscarded = nil
        optionFault(n, time, s, from: e, state: state,
              expected: "an ACK of at most \(d.seq &- ends[p].iss): the text from there came in frame \(d.frame) with TSval \(d.tsVal), older than TS.Recent \(d.recent)",
              rule: .paws, note: "acknowledges text of frame \(d.frame) that PAWS makes unacceptable")
        return true
    }

    /// An option fault, reported once per end and kind: later segments with the same fault are its repeats (a
    /// stack that leaves out its timestamps does so on every segment).
    func optionFault(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int, state: TCPState, expected: String, rule: OptionRule, note: String) {
        let citation = rule.citation
        if let k = report.violations.lastIndex(where: { $0.endpoint == ends[e].name && $0.citations == [citation] }) {
            report.violations[k].repeats.append(n)
            return
        }
        fault(n, time, s, from: e, state: state, expected: expected, citation: citation, note: note)
    }

    /// SACK blocks past everything the peer sent in the whole capture: data never sent.
    func closeSACKChecks() {
        for c in sackChecks {
            let p = 1 - c.end
            guard let sentEnd = ends[p].sent.highestEnd, TCPModel.seqLess(sentEnd, c.right) else { continue }
            report.violations.append(Violation(frame: c.frame, time: c.time, endpoint: ends[c.end].name, state: c.state, observed: c.observed,
                                               expected: "SACK blocks up to \(sentEnd &- ends[p].iss) at most: the most \(ends[p].name) sent in the whole capture",
                                               rules: [], citations: [OptionRule.sackReceivedData.citation], note: "selectively acknowledges data the peer never sent"))
        }
    }
}
