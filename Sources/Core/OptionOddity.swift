/// An oddity the tester puts in its option list on purpose (issue 20: "valid and malformed"). Most leave what the
/// segment means unchanged for a receiver that reads options as RFC 9293 §3.1–§3.2 say, so the model predicts what
/// it predicts for the plain segment, and a stack that reacts otherwise breaks the oddity's requirement. An illegal
/// length (MUST-7) is the receiver's to handle as it will short of crashing: the oracle takes any of the three
/// outcomes a stack can reasonably give — the segment processed with the options before it, the segment dropped,
/// the connection reset ("a suggested procedure") — and a stack that crashes or hangs fails as a program.
public enum OptionOddity: UInt8, Sendable, CaseIterable, BitwiseCopyable, CustomStringConvertible {
    case none
    /// An option of a kind the receiver does not implement, with its length field, first in the list: an
    /// experimental kind (253, RFC 6994) with an unregistered ExID. MUST-6: ignored without error.
    case unknownKind
    /// MSS, Window Scale 14 and SACK-Permitted on a segment without SYN. MUST-5: an option is received in any
    /// segment; RFC 7323 §2.2: a Window Scale option there "should be ignored"; RFC 9293 §3.7.1 and RFC 2018 §2
    /// send them on SYNs only, so none of them changes what was agreed.
    case synOptionsOnNonSYN
    /// The options off word boundaries: one NOP first and no other padding before them. MUST-64: receivers process
    /// options that do not begin on a word boundary.
    case unaligned
    /// After an End of Option List, the bytes of an option that would change the segment's meaning (a Timestamps
    /// option with an old TSval; on a SYN, a Window Scale 14). RFC 9293 §3.2: EOL "indicates the end of the option
    /// list"; the tester breaks MUST-69 (zero padding) on purpose.
    case afterEOL
    /// The list's first option that means something (MSS on a SYN, Timestamps after), twice, the copies identical:
    /// no RFC says which of two copies counts, and identical ones mean the same either way.
    case duplicated
    /// Once SACK is agreed, a SACK option with two overlapping blocks 2^20 beyond anything the receiver sent (RFC 2018
    /// §3 reports data held; the blocks inform of nothing, and the segment is processed by its ACK field).
    case sackBeyondSent
    /// Once Timestamps are agreed, a TSecr 2^20 ahead of the receiver's latest TSval: an echo from the future. RFC
    /// 7323 §4 uses TSecr for RTTM only; acceptability (PAWS, §5.3) reads TSval.
    case futureEcho
    /// Last in the list, an option whose length octet is 0 (MUST-7's own example; MUST-68: at least 2).
    case zeroLength
    /// Last in the list, an option whose length runs past the end of the header (the data offset).
    case lengthPastEnd

    /// The oddities the fuzzer draws: all but `none`. Linux checks a TSecr where no RFC asks — its request socket
    /// refuses a segment echoing none of its SYN,ACKs' TSvals (tcp_check_req "tsecr_reject"); the linux profile
    /// states it (SEG.ECRFUTURE), so `futureEcho` is drawn like the rest.
    public static let drawn: [OptionOddity] = allCases.filter { $0 != .none }
    /// What `[odd-options KIND]` accepts.
    public static var written: [OptionOddity] { drawn }

    /// An illegal length (MUST-7): the receiver may process the segment, drop it or reset the connection.
    public var illegalLength: Bool { self == .zeroLength || self == .lengthPastEnd }

    /// What a divergence the oddity causes is: a violation of its requirement; for an illegal length, which RFC 9293
    /// lets the receiver handle as it will short of crashing, and for SACK blocks or an echo no RFC tells a receiver
    /// to check, an outcome no RFC decides (`unspecified`: reported, never a failure).
    public var divergenceClass: VerdictClass {
        switch self {
        case .zeroLength, .lengthPastEnd, .duplicated, .sackBeyondSent, .futureEcho: .unspecified
        default: requirement?.divergenceClass ?? .violates
        }
    }

    /// Case files and reports: `unknown-kind`, `syn-options`, `unaligned`, `after-eol`.
    public var description: String {
        switch self {
        case .none: "none"
        case .unknownKind: "unknown-kind"
        case .synOptionsOnNonSYN: "syn-options"
        case .unaligned: "unaligned"
        case .afterEOL: "after-eol"
        case .duplicated: "duplicated"
        case .sackBeyondSent: "sack-beyond-sent"
        case .futureEcho: "future-echo"
        case .zeroLength: "zero-length"
        case .lengthPastEnd: "length-past-end"
        }
    }

    /// The requirement a stack breaks when the oddity changes what it does with the segment (nil: a clause without
    /// an Appendix B ID, `clause` says which).
    public var requirement: RequirementID? {
        switch self {
        case .none, .afterEOL, .duplicated, .sackBeyondSent, .futureEcho: nil
        case .unknownKind: RequirementID(.must, 6)
        case .synOptionsOnNonSYN: RequirementID(.must, 5)
        case .unaligned: RequirementID(.must, 64)
        case .zeroLength, .lengthPastEnd: RequirementID(.must, 7)
        }
    }

    /// The clause the oddity tests, as a report cites it.
    public var clause: String {
        switch self {
        case .none: ""
        case .unknownKind: "RFC 9293 §3.1 MUST-6: an option the receiver does not implement is ignored without error (the segment carried kind 253 with an unregistered ExID)"
        case .synOptionsOnNonSYN: "RFC 9293 §3.1 MUST-5: an option is received in any segment; RFC 7323 §2.2: a Window Scale option without SYN is ignored (the segment carried MSS, Window Scale 14 and SACK-Permitted without SYN)"
        case .unaligned: "RFC 9293 §3.2 MUST-64: options are processed when they do not begin on a word boundary (the segment's options were unaligned)"
        case .afterEOL: "RFC 9293 §3.2: End of Option List \"indicates the end of the option list\" (the segment carried an option's bytes after EOL)"
        case .duplicated: "RFC 9293 §3.1: no RFC says which of two copies of an option counts; these were identical (the segment carried its first option twice), so either reading means the same"
        case .sackBeyondSent: "RFC 2018 §3: SACK blocks report data the receiver holds; these two overlapping blocks lie 2^20 beyond anything it sent, inform of nothing, and no RFC tells it to answer them (the segment is processed by its ACK field, RFC 9293 §3.10.7.4)"
        case .futureEcho: "RFC 7323 §4: TSecr serves RTTM; acceptability reads TSval (§5.3), and no RFC tells a receiver to check an echo it never sent (the segment echoed a TSval 2^20 ahead of the receiver's)"
        case .zeroLength, .lengthPastEnd:
            "RFC 9293 §3.1 MUST-7: an illegal option length (here \(self == .zeroLength ? "0" : "past the header's end")) is handled without crashing, \"a suggested procedure is to reset the connection\"; the stack neither processed the segment, dropped it, nor reset"
        }
    }
}
