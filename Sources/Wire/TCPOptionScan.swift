/// A TCP header's options as a receiver reads them, in one pass over the captured bytes, with the first way the list
/// breaks RFC 9293 §3.1's format. The offline checker and the live oracle read a stack's options through this one
/// scan (what a malformed list is, is decided once).
public struct TCPOptionScan: Sendable, Equatable {
    public var mss: UInt16?
    public var windowScale: UInt8?
    /// A SACK-Permitted option (RFC 2018 §2), on any segment.
    public var sackPermitted = false
    /// A Timestamps option (RFC 7323 §3): TSval, and TSecr beside it.
    public var tsVal: UInt32?
    public var tsEcr: UInt32 = 0
    /// The blocks of a SACK option (RFC 2018 §3).
    public var sack = SACKBlocks()
    /// A TCP Fast Open option on a SYN (RFC 7413 §4.1.1: kind 34, or the experimental 254 with magic 0xF989);
    /// `true` when it carries a cookie, `false` when it only asks for one.
    public var fastOpenCookie: Bool?
    /// Options that belong on a SYN only, found on a segment without SYN.
    public var synOnlyKinds: SynOnlyKinds = []
    /// How the list breaks the format, if it does (the first fault found; the scan stops there).
    public var fault: Fault?
    /// Octets of options (the header beyond its 20 fixed octets): what the effective send MSS leaves less room for
    /// text (RFC 9293 §3.7.1, TCPhdrsize).
    public var length: UInt16 = 0
    /// The capture ends inside the options (snaplen): an option not found may have been there.
    public var cut = false

    public init() {}

    /// Up to four SACK blocks (the most 40 octets of options hold), inline: a segment is copied on every step.
    public struct SACKBlocks: Sendable, Equatable {
        private var stored: UInt8 = 0
        private var edges: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0, 0, 0, 0, 0)
        public var count: Int { Int(stored) }
        public init() {}
        public init(_ blocks: [(left: UInt32, right: UInt32)]) { for b in blocks.prefix(4) { append(left: b.left, right: b.right) } }
        public mutating func append(left: UInt32, right: UInt32) {
            guard stored < 4 else { return }
            let k = count
            withUnsafeMutableBytes(of: &edges) { $0.storeBytes(of: left, toByteOffset: k * 8, as: UInt32.self); $0.storeBytes(of: right, toByteOffset: k * 8 + 4, as: UInt32.self) }
            stored += 1
        }
        /// Block `i`: its left edge (first sequence number) and right edge (the one after its last).
        public subscript(i: Int) -> (left: UInt32, right: UInt32) {
            withUnsafeBytes(of: edges) { ($0.load(fromByteOffset: i * 8, as: UInt32.self), $0.load(fromByteOffset: i * 8 + 4, as: UInt32.self)) }
        }
        public static func == (a: SACKBlocks, b: SACKBlocks) -> Bool { a.count == b.count && (0..<a.count).allSatisfy { a[$0] == b[$0] } }
    }

    /// MSS (RFC 9293 §3.2), Window Scale (RFC 7323 §2.2), SACK-Permitted (RFC 2018 §2): SYN-only.
    public struct SynOnlyKinds: OptionSet, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let mss = SynOnlyKinds(rawValue: 1)
        public static let windowScale = SynOnlyKinds(rawValue: 2)
        public static let sackPermitted = SynOnlyKinds(rawValue: 4)
    }

    /// A malformed option list, as RFC 9293 §3.1 defines the format. `at`: the option's offset within the options.
    public enum Fault: Sendable, Equatable {
        /// An option's length octet below 2 (MUST-68: every option but EOL and NOP has a length that counts its
        /// kind and length octets; MUST-7: a receiver must survive an illegal one, e.g. zero).
        case lengthBelowTwo(kind: UInt8, length: UInt8, at: UInt8)
        /// An option whose length runs past the header's end (the data offset).
        case overruns(kind: UInt8, length: UInt8, at: UInt8)
        /// A known option of the wrong length (MSS 4, Window Scale 3, SACK-Permitted 2, Timestamps 10, SACK 2+8n).
        case wrongLength(kind: UInt8, length: UInt8, at: UInt8)
        /// Non-zero octets after the End of Option List (MUST-69: header padding of zeros).
        case paddingNotZero(at: UInt8)

        /// A length below 2 or past the header's end: what MUST-7 calls an illegal option length.
        public var illegalLength: Bool {
            switch self {
            case .lengthBelowTwo, .overruns: true
            case .wrongLength, .paddingNotZero: false
            }
        }
    }

    @inline(__always) static func be16(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt16 { UInt16(p[i]) << 8 | UInt16(p[i + 1]) }
    @inline(__always) static func be32(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
        UInt32(p[i]) << 24 | UInt32(p[i + 1]) << 16 | UInt32(p[i + 2]) << 8 | UInt32(p[i + 3])
    }

    /// Scans the options from `first` (20 octets into the TCP header) to `headerEnd` (where the data offset puts the
    /// header's end), reading no further than the buffer holds (a snaplen-cut capture: `cut`).
    public static func scan(_ p: UnsafeRawBufferPointer, from first: Int, headerEnd: Int, syn: Bool) -> TCPOptionScan {
        var s = TCPOptionScan()
        guard headerEnd > first else { return s }
        var o = first
        let end = min(headerEnd, p.count)
        s.length = UInt16(headerEnd - first)
        s.cut = headerEnd > p.count
        func at(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: i - first) }
        while o < end {
            let kind = p[o]
            if kind == 0 {
                var z = o + 1
                while z < end, p[z] == 0 { z += 1 }
                if z < end { s.fault = .paddingNotZero(at: at(z)) }
                break
            }
            if kind == 1 {
                o += 1
                continue
            }
            guard o + 1 < end else {
                if !s.cut { s.fault = .overruns(kind: kind, length: 0, at: at(o)) }
                break
            }
            let len = Int(p[o + 1])
            guard len >= 2 else {
                s.fault = .lengthBelowTwo(kind: kind, length: UInt8(len), at: at(o))
                break
            }
            guard o + len <= end else {
                if o + len > headerEnd { s.fault = .overruns(kind: kind, length: UInt8(len), at: at(o)) }
                break
            }
            let expected: Bool
            switch kind {
            case 2:
                expected = len == 4
                if expected { if syn { s.mss = be16(p, o + 2) } else { s.synOnlyKinds.insert(.mss) } }
            case 3:
                expected = len == 3
                if expected { if syn { s.windowScale = p[o + 2] } else { s.synOnlyKinds.insert(.windowScale) } }
            case 4:
                expected = len == 2
                if expected {
                    s.sackPermitted = true
                    if !syn { s.synOnlyKinds.insert(.sackPermitted) }
                }
            case 5:
                expected = len >= 10 && (len - 2) % 8 == 0
                if expected { for b in stride(from: o + 2, to: o + len, by: 8) { s.sack.append(left: be32(p, b), right: be32(p, b + 4)) } }
            case 8:
                expected = len == 10
                if expected {
                    s.tsVal = be32(p, o + 2)
                    s.tsEcr = be32(p, o + 6)
                }
            case 34:
                expected = true
                if syn { s.fastOpenCookie = len > 2 }
            case 254:
                expected = true
                if syn, len >= 4, be16(p, o + 2) == 0xF989 { s.fastOpenCookie = len > 4 }
            default:
                expected = true
            }
            if !expected, s.fault == nil { s.fault = .wrongLength(kind: kind, length: UInt8(len), at: at(o)) }
            o += len
        }
        return s
    }

    /// Scans a decoded header's options (their bytes as sent: a malformed list decodes to `.raw` and encodes back).
    public static func scan(_ tcp: TCPHeader) -> TCPOptionScan {
        let bytes = tcp.optionBytes
        return bytes.withUnsafeBytes { scan($0, from: 0, headerEnd: bytes.count, syn: tcp.flags.contains(.syn)) }
    }
}
