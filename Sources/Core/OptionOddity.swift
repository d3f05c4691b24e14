/// An oddity the tester puts in its option list on purpose (issue 20: "valid and malformed"). Each leaves what the
/// segment means unchanged for a receiver that reads options as RFC 9293 §3.1–§3.2 say, so the model predicts what
/// it predicts for the plain segment; a stack that reacts otherwise breaks the oddity's requirement. (An illegal
/// length, MUST-7, is not one of them: RFC 9293 lets the receiver reset the connection, so it changes the outcome.)
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

    /// The oddities the fuzzer draws (all but `none`).
    public static let drawn: [OptionOddity] = [.unknownKind, .synOptionsOnNonSYN, .unaligned, .afterEOL]

    /// Case files and reports: `unknown-kind`, `syn-options`, `unaligned`, `after-eol`.
    public var description: String {
        switch self {
        case .none: "none"
        case .unknownKind: "unknown-kind"
        case .synOptionsOnNonSYN: "syn-options"
        case .unaligned: "unaligned"
        case .afterEOL: "after-eol"
        }
    }

    /// The requirement a stack breaks when the oddity changes what it does with the segment (nil: a clause without
    /// an Appendix B ID, `clause` says which).
    public var requirement: RequirementID? {
        switch self {
        case .none, .afterEOL: nil
        case .unknownKind: RequirementID(.must, 6)
        case .synOptionsOnNonSYN: RequirementID(.must, 5)
        case .unaligned: RequirementID(.must, 64)
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
        }
    }
}
