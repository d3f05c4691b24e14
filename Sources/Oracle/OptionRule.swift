import Core
import Wire

/// A requirement on the options a stack sends, judged beside the spec (whose tables do not model options yet):
/// the clause, its Appendix B ID where RFC 9293 gives one, and its class. The offline checker and the live oracle
/// name what they find by these.
public enum OptionRule: String, Hashable, Sendable, CaseIterable, Codable {
    case effectiveMSS = "effective-mss"
    case mssOnlyOnSYN = "mss-only-on-syn"
    case sackPermittedOnlyOnSYN = "sack-permitted-only-on-syn"
    case optionLength = "option-length"
    case optionPadding = "option-padding"
    case optionKnownLength = "option-known-length"
    case shiftAbove14 = "window-scale-above-14"
    case timestampsOnSYNACK = "timestamps-on-syn-ack-unoffered"
    case timestampsEverySegment = "timestamps-every-segment"
    case timestampEcho = "timestamp-echo"
    case paws = "paws"
    case sackPermission = "sack-without-permission"
    case sackBlockEdges = "sack-block-edges"
    case sackReceivedData = "sack-block-unsent"
    case sackFirstBlock = "sack-first-block"

    /// The Appendix B ID, where RFC 9293 gives the clause one.
    public var requirement: RequirementID? {
        switch self {
        case .effectiveMSS: RequirementID(.must, 16)
        case .mssOnlyOnSYN: RequirementID(.must, 65)
        case .optionLength: RequirementID(.must, 68)
        case .optionPadding: RequirementID(.must, 69)
        default: nil
        }
    }

    /// Each is a MUST or MUST NOT, or a procedure (PAWS's R1, a SACK block's definition) no alternative to which
    /// is permitted: breaking it violates.
    public var verdictClass: VerdictClass { .violates }

    /// The document and section, for reports' clause lists.
    public var clause: String {
        switch self {
        case .effectiveMSS: "RFC 9293 §3.7.1"
        case .mssOnlyOnSYN, .optionKnownLength: "RFC 9293 §3.2"
        case .optionLength, .optionPadding: "RFC 9293 §3.1"
        case .shiftAbove14: "RFC 7323 §2.3"
        case .timestampsOnSYNACK, .timestampsEverySegment, .timestampEcho: "RFC 7323 §3.2"
        case .paws: "RFC 7323 §5.3"
        case .sackPermittedOnlyOnSYN: "RFC 2018 §2"
        case .sackPermission, .sackFirstBlock: "RFC 2018 §4"
        case .sackBlockEdges, .sackReceivedData: "RFC 2018 §3"
        }
    }

    /// The clause with its words (and ID), as a report cites it.
    public var citation: String {
        switch self {
        case .effectiveMSS: "RFC 9293 §3.7.1 MUST-16 \"The maximum size of a segment that a TCP endpoint really sends, the 'effective send MSS', MUST be the smaller of the send MSS ... and the largest transmission size permitted by the IP layer\" (Eff.snd.MSS = min(SendMSS+20, MMS_S) - TCPhdrsize - IPoptionsize)"
        case .mssOnlyOnSYN: "RFC 9293 §3.2 MUST-65 \"This field may be sent in the initial connection request (i.e., in segments with the SYN control bit set) and MUST NOT be sent in other segments\" (MSS)"
        case .sackPermittedOnlyOnSYN: "RFC 2018 §2 \"It MUST NOT be sent on non-SYN segments\" (SACK-Permitted)"
        case .optionLength: "RFC 9293 §3.1 MUST-68 \"All TCP Options except End of Option List Option (EOL) and No-Operation (NOP) MUST have length fields\"; \"The option-length counts the two octets of option-kind and option-length as well as the option-data octets\""
        case .optionPadding: "RFC 9293 §3.1 MUST-69 \"The content of the header beyond the End of Option List Option MUST be header padding of zeros\""
        case .optionKnownLength: "RFC 9293 §3.2 (MSS: Kind 2, Length 4); RFC 7323 §2.2, §3.2 (Window Scale: Length 3; Timestamps: Length 10); RFC 2018 §2–§3 (SACK-Permitted: Length 2; SACK: Length 8n+2)"
        case .shiftAbove14: "RFC 7323 §2.3 \"the shift count MUST be limited to 14\""
        case .timestampsOnSYNACK: "RFC 7323 §3.2 \"A TCP ... MAY send a TSopt in <SYN,ACK> only if it received a TSopt in the initial <SYN> segment for the connection\""
        case .timestampsEverySegment: "RFC 7323 §3.2 \"Once TSopt has been successfully negotiated, that is both <SYN> and <SYN,ACK> contain TSopt, the TSopt MUST be sent in every non-<RST> segment for the duration of the connection\""
        case .timestampEcho: "RFC 7323 §3.2 \"When the ACK bit is set in an outgoing segment, the sender MUST echo a recently received TSval sent by the remote TCP in the TSval field of a Timestamps option\""
        case .paws: "RFC 7323 §5.3 R1 \"If there is a Timestamps option in the arriving segment, SEG.TSval < TS.Recent, TS.Recent is valid (see later discussion), and if the RST bit is not set, then treat the arriving segment as not acceptable: Send an acknowledgment in reply ... and drop the segment\""
        case .sackPermission: "RFC 2018 §4 \"If the data receiver has not received a SACK-Permitted option for a given connection, it MUST NOT send SACK options on that connection\""
        case .sackBlockEdges: "RFC 2018 §3 \"Left Edge of Block ... the first sequence number of this block. Right Edge of Block ... the sequence number immediately following the last sequence number of this block\""
        case .sackReceivedData: "RFC 2018 §3 \"This option contains a list of some of the blocks of contiguous sequence space occupied by data that has been received and queued within the window\""
        case .sackFirstBlock: "RFC 2018 §4 \"The first SACK block (i.e., the one immediately following the kind and length fields in the option) MUST specify the contiguous block of data containing the segment which triggered this ACK, unless that segment advanced the Acknowledgment Number field in the header\"; RFC 2883 §4 (a D-SACK block may come first)"
        }
    }

    /// A malformed list: its rule, what was expected, and what is wrong in a reviewer's words.
    public static func describe(_ f: TCPOptionScan.Fault) -> (rule: OptionRule, expected: String, note: String) {
        switch f {
        case .lengthBelowTwo(let kind, let length, let at):
            (.optionLength, "an option length of at least 2", "option kind \(kind) at octet \(at) of the options has length \(length)")
        case .overruns(let kind, let length, let at):
            (.optionLength, "options that end within the header (its data offset)", "option kind \(kind) at octet \(at) of the options, length \(length), runs past the header's end")
        case .wrongLength(let kind, let length, let at):
            (.optionKnownLength, "option kind \(kind) in its defined length", "option kind \(kind) at octet \(at) of the options has length \(length)")
        case .paddingNotZero(let at):
            (.optionPadding, "zeros after the End of Option List", "a non-zero octet at octet \(at) of the options, after the End of Option List")
        }
    }

    /// What a segment's own options break, judged from it alone and what the sender's peer offered on its SYN
    /// (`peerOffer`: nil while unknown): the list's format, SYN-only options elsewhere, a shift above 14, text beyond
    /// the effective send MSS. `sendMSS`: the MSS the peer gave the sender (nil: unknown); `mssJudged`: the
    /// segment was captured whole as sent (not a TSO/GSO or GRO super-segment). The timestamps' and SACK's rules
    /// need the connection's history: the offline checker judges those.
    /// `mssSaid`: where the send MSS came from, in the report's words ("the MSS 536 192.0.2.2:80 offered").
    public static func audit(_ o: TCPOptionScan, syn: Bool, dataLength: UInt32, sendMSS: UInt32?, mssJudged: Bool, mssSaid: @autoclosure () -> String) -> [(rule: OptionRule, expected: String, note: String)] {
        var out: [(OptionRule, String, String)] = []
        if let f = o.fault { out.append(describe(f)) }
        if o.synOnlyKinds.contains(.mss) { out.append((.mssOnlyOnSYN, "no Maximum Segment Size option on a segment without SYN", "sends an MSS option on a segment without SYN")) }
        if o.synOnlyKinds.contains(.sackPermitted) { out.append((.sackPermittedOnlyOnSYN, "no SACK-Permitted option on a segment without SYN", "sends a SACK-Permitted option on a segment without SYN")) }
        if let w = o.windowScale, w > 14 { out.append((.shiftAbove14, "a Window Scale shift of at most 14", "offers a window scale shift of \(w)")) }
        if let mss = sendMSS, mssJudged, !syn, dataLength > 0 {
            let room = mss > UInt32(o.length) ? mss - UInt32(o.length) : 0
            // Exactly two or more full segments is a super-segment that TSO/GSO cut or GRO merged at the segment
            // size, its checksum recomputed whole (seen in a capture of HTTP on a veth: 7,240 = 5 × 1,448): not judged.
            if dataLength > room, !(room > 0 && dataLength % room == 0) {
                out.append((.effectiveMSS, "at most \(room) octets of text: \(mssSaid()), less \(o.length) octets of options",
                            "sends \(dataLength) octets of text in one segment, \(dataLength - room) beyond the effective send MSS"))
            }
        }
        return out
    }
}

/// How many of the target's segments each `OptionRule` judged, and how many broke it: the option tests' verdicts by
/// requirement, for reports (a rule judges a segment where it could be broken: Timestamps on every non-RST segment
/// once agreed, each SACK block's edges, the MSS on every segment with text, the format on every segment).
public struct OptionTally: Sendable, Equatable {
    public private(set) var judged: [OptionRule: Int] = [:]
    public private(set) var broken: [OptionRule: Int] = [:]
    public init() {}

    mutating func judge(_ rule: OptionRule, _ n: Int = 1) { judged[rule, default: 0] += n }
    mutating func broke(_ rule: OptionRule) { broken[rule, default: 0] += 1 }

    public mutating func merge(_ o: OptionTally) {
        judged.merge(o.judged, uniquingKeysWith: +)
        broken.merge(o.broken, uniquingKeysWith: +)
    }

    /// The rules that judged anything, in the enum's order.
    public var rules: [OptionRule] { OptionRule.allCases.filter { judged[$0, default: 0] > 0 || broken[$0, default: 0] > 0 } }
}
