/// The options the tester offers on every SYN it sends (and so the options a connection can agree): MSS (RFC 9293
/// §3.7.1), Window Scale with the tester's shift (RFC 7323 §2), Timestamps (RFC 7323 §3) and SACK-Permitted (RFC 2018
/// §2). One per connection: drawn by the fuzzer (`combinations`), written into a case as
/// `option tester-options mss 1460,sackOK,TS,wscale 7`, and read back by the case runner.
public struct TesterOptions: Hashable, Sendable, CustomStringConvertible {
    /// The MSS offered; nil offers none (the target then sends at most 536 octets over IPv4, 1220 over IPv6).
    public var mss: UInt16?
    /// The shift offered (above 14 the receiver takes 14: RFC 7323 §2.3); nil offers no Window Scale.
    public var windowScale: UInt8?
    public var sackPermitted: Bool
    public var timestamps: Bool
    /// The tester's first TSval (its timestamp clock ticks once per segment from there): `defaultTimestampStart`, or
    /// `wrappingTimestampStart`, which takes the clock through 2^32 on the connection's fourth segment — RFC 7323 §5.2
    /// compares timestamps modulo 2^32, and a receiver that does not refuses every segment after the wrap as old.
    public var timestampStart: UInt32

    public init(mss: UInt16? = 1460, windowScale: UInt8? = nil, sackPermitted: Bool = false, timestamps: Bool = false,
                timestampStart: UInt32 = TesterOptions.defaultTimestampStart) {
        self.mss = mss
        self.windowScale = windowScale
        self.sackPermitted = sackPermitted
        self.timestamps = timestamps
        self.timestampStart = timestampStart
    }

    public static let defaultTimestampStart: UInt32 = 1
    /// 2^32 − 3: the SYN, the ACK and the next segment carry the three largest TSvals, the fourth 0.
    public static let wrappingTimestampStart: UInt32 = UInt32.max - 2

    /// What the tester offered before options were a dimension: an MSS of 1460 alone (so no window scaling,
    /// timestamps or SACK on the connection). Cases without `option tester-options` run so.
    public static let mssOnly = TesterOptions()

    /// Every combination the fuzzer draws from: each option on or off, and the Window Scale with the shifts that
    /// change what a window means differently — 0 (agreed, windows unchanged), 7 (Linux's own) and 14 (the
    /// largest). 2 × 4 × 2 × 2 = 32. A shift above 14 (which the target MUST read as 14, RFC 7323 §2.3) is offered
    /// on request (`--tester-options 'wscale 15'`): drawn, it moved every seeded run's path, and two seeded tests
    /// met cases of their own fragile at a timer's edge (stop 44's note).
    public static let combinations: [TesterOptions] = {
        var out: [TesterOptions] = []
        for mss in [UInt16?.some(1460), nil] {
            for ws in [UInt8?.none, 0, 7, 14] {
                for sack in [false, true] {
                    for ts in [false, true] { out.append(TesterOptions(mss: mss, windowScale: ws, sackPermitted: sack, timestamps: ts)) }
                }
            }
        }
        return out
    }()

    /// Whether the offer puts any option on the tester's SYN (`none` puts none).
    public var offersAny: Bool { mss != nil || windowScale != nil || sackPermitted || timestamps }

    /// The option dimensions as a coverage key: which options are offered (the shift's value apart).
    public var dimensions: String {
        [mss != nil ? "mss" : nil, windowScale != nil ? "wscale" : nil, sackPermitted ? "sackOK" : nil,
         timestamps ? (timestampStart == TesterOptions.defaultTimestampStart ? "TS" : "TS-wrapping") : nil]
            .compactMap { $0 }.joined(separator: ",").nonEmpty ?? "none"
    }

    /// As a case file and the command line write it: `mss 1460,sackOK,TS,wscale 7`, or `none`; a first TSval other
    /// than 1 follows TS (`TS 4294967293`).
    public var description: String {
        var parts: [String] = []
        if let mss { parts.append("mss \(mss)") }
        if sackPermitted { parts.append("sackOK") }
        if timestamps { parts.append(timestampStart == TesterOptions.defaultTimestampStart ? "TS" : "TS \(timestampStart)") }
        if let windowScale { parts.append("wscale \(windowScale)") }
        return parts.isEmpty ? "none" : parts.joined(separator: ",")
    }

    /// Reads `description`'s form back. Throws the reason, with the column (0-based, in `text`) it starts at.
    public init(parsing text: String) throws(TesterOptionsError) {
        self.init(mss: nil)
        let trimmed = text.trimmingSpaces
        if trimmed == "none" { return }
        var column = 0
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let words = item.split(separator: " ")
            let at = column + (item.firstIndex { $0 != " " }.map { item.distance(from: item.startIndex, to: $0) } ?? 0)
            column += item.count + 1
            switch words.first.map(String.init) {
            case "mss"?:
                guard words.count == 2, let v = UInt16(words[1]), v > 0 else { throw .init(column: at, reason: "'mss' takes a value from 1 to 65535") }
                guard mss == nil else { throw .init(column: at, reason: "mss given twice") }
                mss = v
            case "wscale"?:
                guard words.count == 2, let v = UInt8(words[1]) else { throw .init(column: at, reason: "'wscale' takes a shift from 0 to 255") }
                guard windowScale == nil else { throw .init(column: at, reason: "wscale given twice") }
                windowScale = v
            case "sackOK"? where words.count == 1:
                guard !sackPermitted else { throw .init(column: at, reason: "sackOK given twice") }
                sackPermitted = true
            case "TS"? where words.count <= 2:
                guard !timestamps else { throw .init(column: at, reason: "TS given twice") }
                if words.count == 2 {
                    guard let v = UInt32(words[1]) else { throw .init(column: at, reason: "'TS' takes an optional first TSval from 0 to 4294967295") }
                    timestampStart = v
                }
                timestamps = true
            default:
                throw .init(column: at, reason: "unknown option '\(item.trimmingSpaces)'; the tester offers mss N, wscale N, sackOK, TS [FIRST-TSVAL] (comma-separated), or none")
            }
        }
    }
}

public struct TesterOptionsError: Error, Sendable, CustomStringConvertible {
    /// 0-based, within the text parsed.
    public var column: Int
    public var reason: String
    public var description: String { reason }
}

extension Substring {
    fileprivate var trimmingSpaces: String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}

extension String {
    fileprivate var trimmingSpaces: String { Substring(self).trimmingSpaces }
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}
