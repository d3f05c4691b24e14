import Core
import Model
import Wire

/// The options a connection agreed: the tester's offer (on each SYN it sends) against the target's SYN or SYN,ACK
/// (RFC 7323 §2.2, §3.2; RFC 2018 §2; RFC 9293 §3.7.1). A value a lane (or the case runner) keeps: it gives each of
/// the tester's segments its options and wire window, takes each of the target's, scales the target's window to
/// what it means, and says what the target's options break. One copy of the negotiation for the fuzzer, the
/// conformance suite and case replays.
public struct OptionAgreement: Sendable, Equatable {
    public let offer: TesterOptions
    /// Over IPv6 (the default MSS differs).
    public let ipv6: Bool
    /// The options of the target's latest SYN (nil until one is seen): with the offer, what is in effect.
    public private(set) var targetSYN: TCPOptionScan?
    /// The tester's timestamp clock: it ticks once per segment the tester sends, so a replay sends the same values
    /// (RFC 7323 §5.4 asks only that it be monotone and not too fast; one tick a segment is far below 1 per ms).
    public private(set) var testerClock: UInt32
    /// The tester's TS.Recent (RFC 7323 §4.3): the TSval it echoes. Set by the target's SYN, then by R3: a segment's
    /// TSval at least TS.Recent, if its SEQ is at or below Last.ACK.sent (the ACK field the tester last sent). While
    /// the target is still in SYN-RECEIVED (`observe`'s `handshakeDone` false) only its SYN,ACKs move it: Linux's
    /// request socket refuses a TSecr outside the TSvals of its SYN,ACKs (tcp_check_req "tsecr_reject"), and the ACKs
    /// it sends from there carry later ones (an echo of those is still "a recently received TSval", RFC 7323 §3.2,
    /// but Linux drops the segment, and whether it does depends on a clock tick between the two).
    public private(set) var tsRecent: UInt32?
    /// The tester sent `oldTSval` (a segment marked old): an echo of it is an echo of a TSval the tester sent.
    public private(set) var oldTSvalSent = false
    /// Last.ACK.sent (RFC 7323 §4.3): the ACK field of the tester's latest segment with ACK (absolute).
    public private(set) var lastAckSent: UInt32?
    /// The sequence space the tester's segments occupied (absolute, start and end), newest last, at most
    /// `sentRangesKept`: a SACK block not covered by them describes data never sent. The tester sends anywhere in
    /// sequence space (half way round included), so no single "highest" number would do.
    public private(set) var sentRanges: [SentRange] = []
    /// More segments than `sentRangesKept` were sent: a block the kept ranges do not cover may be older data.
    public private(set) var sentRangesForgotten = false
    /// The end of the farthest segment the target sent (absolute; SYN and FIN counted): SACK blocks beyond it report
    /// data the target never sent (`OptionOddity.sackBeyondSent`).
    public private(set) var targetHighest: UInt32?
    /// The latest TSval the target sent (`OptionOddity.futureEcho` echoes one 2^20 after it).
    public private(set) var targetTSval: UInt32?
    public static let sentRangesKept = 256

    public struct SentRange: Sendable, Equatable {
        public var start: UInt32
        public var end: UInt32
        public init(start: UInt32, end: UInt32) {
            self.start = start
            self.end = end
        }
    }

    /// The tester's first TSval (the offer's: 1, or just below 2^32 so that the clock wraps).
    public var firstTSval: UInt32 { offer.timestampStart }
    /// The TSval of a segment the tester sends as old (`Segment.tsOld`): 2^20 ticks before its first, so before
    /// every TSval it sent and any TS.Recent the target holds (RFC 7323 §5.3 R1), far outside Linux's one-tick
    /// PAWS slack (TCP_PAWS_WINDOW) and its replay window for a disordered ACK (tcp_disordered_ack_check), and
    /// within 2^31 of them, so it is ordered (§5.2).
    public var oldTSval: UInt32 { OptionAgreement.oldTSval(offer) }
    public static func oldTSval(_ offer: TesterOptions) -> UInt32 { offer.timestampStart &- (1 << 20) }

    public init(offer: TesterOptions, ipv6: Bool = false) {
        self.offer = offer
        self.ipv6 = ipv6
        testerClock = offer.timestampStart
    }

    /// Both SYNs carried a Window Scale (RFC 7323 §2.2 "... only if both sides ..."), so every later window is scaled.
    public var windowScaleAgreed: Bool { offer.windowScale != nil && targetSYN?.windowScale != nil }
    /// The shift the target's windows carry: its own offer, at most 14 (RFC 7323 §2.3).
    public var targetShift: UInt8 { windowScaleAgreed ? min(targetSYN?.windowScale ?? 0, 14) : 0 }
    /// The shift the tester's windows carry: its offer, at most 14 — the target must read a larger one so too.
    public var testerShift: UInt8 { windowScaleAgreed ? min(offer.windowScale ?? 0, 14) : 0 }
    /// Both SYNs carried Timestamps (RFC 7323 §3.2): every non-RST segment carries them from then on.
    public var timestampsAgreed: Bool { offer.timestamps && targetSYN?.tsVal != nil }
    /// The tester sent SACK-Permitted, so the target may send SACK blocks (RFC 2018 §4).
    public var sackAllowed: Bool { offer.sackPermitted }
    /// Both SYNs carried SACK-Permitted (RFC 2018 §2): the target reports what it holds in SACK blocks (SACK.OK).
    public var sackAgreed: Bool { offer.sackPermitted && targetSYN?.sackPermitted == true }
    /// What `observe` judged: per rule, the target's segments it applied to and those that broke it.
    public private(set) var tally = OptionTally()
    /// The target's send MSS: the tester's offer, else the default (RFC 9293 §3.7.1 MUST-15: 536 over IPv4, 1220 over
    /// IPv6).
    public var sendMSS: UInt32 { offer.mss.map(UInt32.init) ?? (ipv6 ? 1220 : 536) }
    /// The most text the target puts in one segment: the send MSS less the options it must send on every segment
    /// (12 octets of Timestamps once agreed; RFC 9293 §3.7.1 "less the TCP options").
    public var segmentText: UInt32 { sendMSS - (timestampsAgreed ? 12 : 0) }

    /// What is in effect, for logs and reports: `window scale 7/7, timestamps, SACK` (tester/target shifts).
    public var summary: String {
        guard targetSYN != nil else { return "offered \(offer); the target's SYN not seen" }
        var parts = ["offered \(offer)"]
        parts.append(windowScaleAgreed ? "window scale \(testerShift)/\(targetShift) (tester/target)" : "no window scale")
        parts.append(timestampsAgreed ? "timestamps" : "no timestamps")
        parts.append(sackAgreed ? "SACK both ways" : offer.sackPermitted ? "SACK to the tester only" : "no SACK")
        parts.append("target's send MSS \(sendMSS)")
        return parts.joined(separator: ", ")
    }

    // MARK: the tester's segments

    /// The options of the tester's next segment `s` (absolute numbers); the clock moves on. A SYN carries the offer;
    /// any other segment, once timestamps are agreed, a Timestamps option (RFC 7323 §3.2; also a RST, which may).
    /// TSecr echoes TS.Recent when ACK is set, else 0 (§3.2: without ACK the TSecr is not valid).
    /// `reuse`: a SYN sent to a connection in TIME-WAIT goes without Timestamps — with them RFC 6191 §3 lets a stack
    /// take it as a new incarnation whatever its sequence number (PyTCP does), a rule the profiles do not state yet.
    public mutating func prepare(_ s: Segment, reuse: Bool = false) -> [TCPOption] {
        let syn = s.ctl.contains(.syn)
        var out: [TCPOption] = []
        let echo = s.ctl.contains(.ack) ? tsRecent ?? 0 : 0
        if s.ctl.contains(.ack) { lastAckSent = s.ack }
        // An old TSval (SEG.TSOLD) leaves the clock where it is: the next segment's is still newer than any sent.
        let old = s.tsOld && timestampsAgreed
        if old { oldTSvalSent = true }
        if syn {
            if let m = offer.mss { out.append(.maxSegmentSize(m)) }
            if offer.sackPermitted { out.append(.sackPermitted) }
            // An old TSval cannot open a new incarnation (PAWS rejects it first), so it goes even to TIME-WAIT.
            if offer.timestamps, !reuse || old { out.append(.timestamps(value: tsVal(old: old), echo: echo)) }
            if let k = offer.windowScale { out += [.noOperation, .windowScale(k)] }
        } else if timestampsAgreed {
            out += [.noOperation, .noOperation, .timestamps(value: tsVal(old: old), echo: echo)]
        }
        out = withOddity(s.oddity, out, syn: syn, echo: echo)
        if s.length > 0 {
            if sentRanges.count == OptionAgreement.sentRangesKept {
                sentRanges.removeFirst()
                sentRangesForgotten = true
            }
            sentRanges.append(SentRange(start: s.seq, end: s.seq &+ s.length))
        }
        return out
    }

    /// The window the target reads from the tester's window field (as steps and case files write it, at most
    /// 65535): in units of 2^shift once a Window Scale is agreed; a SYN's never scaled (RFC 7323 §2.2, §2.3).
    public func testerWindow(_ field: UInt32, syn: Bool) -> UInt32 {
        UInt32(UInt16(clamping: field)) << (syn ? 0 : UInt32(testerShift))
    }

    /// The TSval of the tester's next segment: the old one (the clock stays), else the clock's, which moves on.
    private mutating func tsVal(old: Bool) -> UInt32 {
        if old { return oldTSval }
        defer { testerClock &+= 1 }
        return testerClock
    }

    /// Whether the oddity `o` changes the option list of the tester's next segment (SYN or not): SYN-only options
    /// only without SYN, unaligned options only where there are some.
    public func applies(_ o: OptionOddity, syn: Bool) -> Bool {
        switch o {
        case .none: false
        case .unknownKind, .afterEOL, .zeroLength, .lengthPastEnd: true
        // Both act on the options the segment carries: the offer on a SYN, Timestamps after it.
        case .duplicated, .unaligned: syn ? offer.offersAny : timestampsAgreed
        case .sackBeyondSent: !syn && sackAgreed && targetHighest != nil
        case .futureEcho: !syn && timestampsAgreed
        case .synOptionsOnNonSYN: !syn
        }
    }

    /// The option list `out` with the oddity `o` put in (`OptionOddity`; a receiver that reads options as RFC 9293
    /// says reads the same list). An oddity with nothing to act on (unaligned options where there are none) leaves
    /// the list as it is. At most 40 octets: the largest offer (20) with any oddity stays within 24.
    public func withOddity(_ o: OptionOddity, _ out: [TCPOption], syn: Bool, echo: UInt32) -> [TCPOption] {
        switch o {
        case .none:
            return out
        case .unknownKind:
            // RFC 6994's experimental kind with an ExID no one registered: "tc".
            return [.unknown(kind: 253, data: [0x74, 0x63])] + out
        case .synOptionsOnNonSYN:
            guard !syn else { return out }
            return [.maxSegmentSize(UInt16(clamping: sendMSS)), .noOperation, .windowScale(14), .noOperation, .noOperation, .sackPermitted] + out
        case .unaligned:
            let options = out.filter { $0 != .noOperation }
            return options.isEmpty ? out : [.noOperation] + options
        case .afterEOL:
            // Bytes a reader past EOL would take as an option that matters: an old TSval once Timestamps are agreed
            // (PAWS would refuse the segment), a Window Scale 14 on a SYN (scaling the tester never offered, or
            // another shift), else an MSS (harmless either way).
            var junk: [UInt8] = []
            let meaning: TCPOption = syn ? .windowScale(14)
                : timestampsAgreed ? .timestamps(value: oldTSval, echo: echo) : .maxSegmentSize(64)
            meaning.encode(into: &junk)
            return out + [.endOfList, .raw(junk)]
        case .duplicated:
            guard let i = out.firstIndex(where: { $0 != .noOperation && $0 != .endOfList }) else { return out }
            var twice = out
            twice.insert(out[i], at: i + 1)
            return twice
        case .sackBeyondSent:
            guard !syn, sackAgreed, let h = targetHighest else { return out }
            let b = h &+ (1 << 20)
            return out + [.noOperation, .noOperation, .sack([.init(left: b, right: b &+ 1000), .init(left: b &+ 500, right: b &+ 1500)])]
        case .futureEcho:
            // The echo of a TSval the target would send a good while from now (on an ACK-less segment too: its TSecr,
            // meant to be 0, is then from the future as well).
            guard !syn, timestampsAgreed else { return out }
            let future = (targetTSval ?? 0) &+ (1 << 20)
            return out.map { if case .timestamps(let v, _) = $0 { .timestamps(value: v, echo: future) } else { $0 } }
        case .zeroLength:
            // Two octets, so that the header's padding cannot hide it; a reader stops here (or drops, or resets).
            return out + [.raw([253, 0])]
        case .lengthPastEnd:
            // 40 octets claimed where at most 24 remain, the header padded to a word after it.
            return out + [.raw([253, 40])]
        }
    }

    /// The first sequence number in left..<right that no segment the tester sent occupied, if any.
    func firstUnsent(_ left: UInt32, _ right: UInt32) -> UInt32? {
        var at = left
        // Each pass moves `at` to the end of a range that holds it; at most one pass per range.
        for _ in 0...sentRanges.count {
            guard TCPModel.seqLess(at, right) else { return nil }
            let holding = sentRanges.filter { !TCPModel.seqLess(at, $0.start) && TCPModel.seqLess(at, $0.end) }
            guard let furthest = holding.max(by: { TCPModel.seqLess($0.end, $1.end) }) else { return at }
            at = furthest.end
        }
        return nil
    }

    // MARK: the target's segments

    /// Takes the target's segment `s` (absolute numbers): a SYN decides the agreement (a new incarnation's SYN
    /// decides it again); any other segment's window is scaled to what it means. Returns what its options break:
    /// the list's format, SYN-only options elsewhere, a shift above 14, text beyond the send MSS (`OptionRule.audit`),
    /// and once agreed, a non-RST segment without Timestamps (RFC 7323 §3.2), a TSecr the tester never sent, a SACK
    /// block without SACK-Permitted, reversed, or past the tester's data.
    public mutating func observe(_ s: inout TimedSegment, handshakeDone: Bool = true) -> [Mismatch] {
        let o = s.options
        let seg = s.segment
        let syn = seg.ctl.contains(.syn)
        var found = OptionRule.audit(o, syn: syn, dataLength: seg.dataLength, sendMSS: sendMSS, mssJudged: s.whole,
                                     mssSaid: offer.mss != nil ? "the MSS \(sendMSS) the tester offered" : "the default MSS \(sendMSS) (the tester offered none)")
        if syn {
            targetSYN = o
        } else if targetShift > 0 {
            s.segment.window = seg.window << UInt32(targetShift)
        }
        if !syn, timestampsAgreed, !seg.ctl.contains(.rst), o.tsVal == nil {
            found.append((.timestampsEverySegment, "a Timestamps option on every non-RST segment (both SYNs carried one)", "sends a segment without a Timestamps option"))
        }
        if let v = o.tsVal {
            // A TSecr is an echo only where the tester sent that TSval: from the first value of its clock to the last.
            // (An echo of the old TSval is of one the tester sent: a simultaneous open's SYN may carry it, TS.Recent
            // being unset in SYN-SENT.)
            // Modulo 2^32: the clock may have wrapped (`TesterOptions.wrappingTimestampStart`).
            if timestampsAgreed, seg.ctl.contains(.ack), !(oldTSvalSent && o.tsEcr == oldTSval),
               o.tsEcr &- firstTSval >= testerClock &- firstTSval {
                let sent = testerClock != firstTSval ? "\(firstTSval)…\(testerClock &- 1)" : "none yet"
                found.append((.timestampEcho, "a TSecr echoing a TSval the tester sent (\(sent))", "echoes TSecr \(o.tsEcr), a TSval the tester never sent"))
            }
            if syn || targetTSval.map({ TCPModel.seqLess($0, v) }) ?? true { targetTSval = v }
            let newer = tsRecent.map { !TCPModel.seqLess(v, $0) } ?? true
            if newer, syn || (handshakeDone && lastAckSent.map({ !TCPModel.seqLess($0, seg.seq) }) == true) { tsRecent = v }
        }
        if o.sack.count > 0 {
            if !offer.sackPermitted {
                found.append((.sackPermission, "no SACK option: the tester sent no SACK-Permitted", "sends a SACK option with \(o.sack.count) block(s)"))
            }
            for i in 0..<o.sack.count {
                let b = o.sack[i]
                if !TCPModel.seqLess(b.left, b.right) {
                    found.append((.sackBlockEdges, "a SACK block's left edge before its right edge", "sends a SACK block \(b.left)–\(b.right)"))
                } else if !sentRangesForgotten, let gap = firstUnsent(b.left, b.right) {
                    found.append((.sackReceivedData, "SACK blocks within the sequence space the tester's segments occupied", "sends a SACK block \(b.left)–\(b.right) covering \(gap), which the tester never sent"))
                }
            }
        }
        let end = seg.seq &+ seg.length
        if let h = targetHighest, !syn, !TCPModel.seqLess(h, end) {} else { targetHighest = end }
        count(seg, o, syn: syn, whole: s.whole)
        for f in found { tally.broke(f.rule) }
        return found.map { .option(OptionMismatch(rule: $0.rule, expected: $0.expected, observed: $0.note)) }
    }

    /// RFC 2018 §4's first block, over the target's segments answering a step whose text the receiver holds out of order
    /// (`held`, the part of it inside the window, absolute): a pure ACK with SACK blocks answers it if its first block —
    /// the second, after a D-SACK (RFC 2883 §4: a first block below the ACK field, or inside the second) — contains
    /// `held`. Broken only when no such ACK does while one reports `held` in a later block: an ACK the step drew for
    /// something else (a delayed ACK crossing the segment) is excused by the one that answers it, and a stack that
    /// reports the segment nowhere did not hold it (what that means is the model's to judge, not this rule's).
    public mutating func judgeFirstBlock(held: SentRange, answers: [TimedSegment]) -> Mismatch? {
        guard sackAgreed else { return nil }
        let acks = answers.filter { $0.segment.ctl == .ack && $0.segment.dataLength == 0 && $0.options.sack.count > 0 }
        guard !acks.isEmpty else { return nil }
        func covers(_ b: (left: UInt32, right: UInt32), _ r: SentRange) -> Bool {
            !TCPModel.seqLess(r.start, b.left) && !TCPModel.seqLess(b.right, r.end)
        }
        func meets(_ b: (left: UInt32, right: UInt32), _ r: SentRange) -> Bool {
            TCPModel.seqLess(b.left, r.end) && TCPModel.seqLess(r.start, b.right)
        }
        tally.judge(.sackFirstBlock)
        var reportedLater: (left: UInt32, right: UInt32, first: (left: UInt32, right: UInt32))?
        for a in acks {
            let b = a.options.sack
            var first = 0
            if TCPModel.seqLess(b[0].left, a.segment.ack) || (b.count > 1 && covers(b[1], SentRange(start: b[0].left, end: b[0].right))) {
                guard b.count > 1 else { return nil }  // a D-SACK alone: nothing said about the held text
                first = 1
            }
            if covers(b[first], held) { return nil }
            for i in (first + 1)..<max(first + 1, b.count) where meets(b[i], held) { reportedLater = (b[i].left, b[i].right, b[first]) }
        }
        guard let later = reportedLater else { return nil }
        tally.broke(.sackFirstBlock)
        return .option(OptionMismatch(rule: .sackFirstBlock, expected: "a first SACK block containing \(held.start)–\(held.end), the text that drew the ACK (held out of order)",
                                      observed: "reports it in a later block \(later.left)–\(later.right), first \(later.first.left)–\(later.first.right)"))
    }

    /// The rules `observe` applied to this segment: those it could have broken.
    private mutating func count(_ seg: Segment, _ o: TCPOptionScan, syn: Bool, whole: Bool) {
        if o.length > 0 {
            tally.judge(.optionLength)
            tally.judge(.optionPadding)
            tally.judge(.optionKnownLength)
        }
        if syn {
            if o.windowScale != nil { tally.judge(.shiftAbove14) }
            return
        }
        tally.judge(.mssOnlyOnSYN)
        tally.judge(.sackPermittedOnlyOnSYN)
        if whole, seg.dataLength > 0 { tally.judge(.effectiveMSS) }
        if timestampsAgreed, !seg.ctl.contains(.rst) { tally.judge(.timestampsEverySegment) }
        if timestampsAgreed, o.tsVal != nil, seg.ctl.contains(.ack) { tally.judge(.timestampEcho) }
        if !offer.sackPermitted { tally.judge(.sackPermission) }
        if o.sack.count > 0 {
            tally.judge(.sackBlockEdges, o.sack.count)
            if !sentRangesForgotten { tally.judge(.sackReceivedData, o.sack.count) }
        }
    }
}
