import Core
import Spec
import Wire

/// An IPv4 or IPv6 address in 128 bits (IPv4 as ::ffff:a.b.c.d), cheap to hash and compare.
public struct Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var hi: UInt64
    public var lo: UInt64
    public var isV6: Bool { !(hi == 0 && lo >> 32 == 0xffff) }

    public static func < (a: Address, b: Address) -> Bool { (a.hi, a.lo) < (b.hi, b.lo) }

    public var description: String {
        if !isV6 {
            let v = UInt32(truncatingIfNeeded: lo)
            return "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)"
        }
        var bytes: [UInt8] = []
        for w in [hi, lo] { for k in (0..<8).reversed() { bytes.append(UInt8(truncatingIfNeeded: w >> (UInt64(k) * 8))) } }
        return IPAddress(bytes: bytes).map { "\($0)" } ?? "?"
    }
}

/// What the checksum of a captured segment says.
public enum ChecksumStatus: Sendable, Equatable {
    case good
    case bad(found: UInt16, computed: UInt16)
    /// Left for the NIC to fill in (captured on the sending host, before offload): not an error.
    case offloaded
    /// Not all of the segment was captured (snaplen): not verifiable.
    case unverified
}

/// One TCP segment as the offline checker reads it: decoded in place from the captured bytes, its length taken
/// from the IP header (so that a snaplen-cut or offloaded super-segment still counts all its octets).
public struct CapturedSegment: Sendable {
    public var source: Address
    public var destination: Address
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var seq: UInt32
    public var ack: UInt32
    public var flags: ControlBits
    public var window: UInt16
    public var urgentPointer: UInt16
    public var dataLength: UInt32
    /// Its options, as scanned (format faults included).
    public var options = TCPOptionScan()
    public var mss: UInt16? { options.mss }
    public var windowScale: UInt8? { options.windowScale }
    public var fastOpenCookie: Bool? { options.fastOpenCookie }
    public var tsVal: UInt32? { options.tsVal }
    public var tsEcr: UInt32 { options.tsEcr }
    public var sackPermitted: Bool { options.sackPermitted }
    public var sack: TCPOptionScan.SACKBlocks { options.sack }
    public var synOnlyKinds: TCPOptionScan.SynOnlyKinds { options.synOnlyKinds }
    public var optionFault: TCPOptionScan.Fault? { options.fault }
    public var optionsLength: UInt16 { options.length }
    /// The capture ends inside the options (snaplen): an option not found may have been there.
    public var optionsCut: Bool { options.cut }
    public var checksum: ChecksumStatus
    /// The capture holds less than the whole segment (snaplen).
    public var cut: Bool
    /// Where the text starts in the captured bytes (what of it was captured: up to the end of the frame).
    public var payloadOffset = 0

    public var length: UInt32 { dataLength &+ (flags.contains(.syn) ? 1 : 0) &+ (flags.contains(.fin) ? 1 : 0) }

    public enum Outcome: Sendable {
        case segment(CapturedSegment)
        /// Not TCP (ARP, UDP, ICMP, a later IP fragment …): not judged.
        case other
        case malformed(String)
    }


    @inline(__always) static func be16(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt16 { UInt16(p[i]) << 8 | UInt16(p[i + 1]) }
    @inline(__always) static func be32(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
        UInt32(p[i]) << 24 | UInt32(p[i + 1]) << 16 | UInt32(p[i + 2]) << 8 | UInt32(p[i + 3])
    }
    @inline(__always) static func be64(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt64 {
        UInt64(be32(p, i)) << 32 | UInt64(be32(p, i + 4))
    }

    /// The one's-complement sum of bytes `from..<to` as big-endian 16-bit words (RFC 1071), folded to 16 bits.
    /// Summed 8 bytes at a time in the host's byte order and swapped at the end (RFC 1071 §2(B): the sum is
    /// byte-order independent): a quarter of the work of summing words one by one.
    @inline(__always) static func onesComplementSum(_ p: UnsafeRawBufferPointer, from: Int, to: Int) -> UInt16 {
        guard let base = p.baseAddress, to > from else { return 0 }
        var acc: UInt64 = 0
        var j = from
        while j + 8 <= to {
            let w = base.loadUnaligned(fromByteOffset: j, as: UInt64.self)
            acc &+= (w & 0xffff_ffff) &+ (w >> 32)
            j += 8
        }
        while j + 2 <= to {
            acc &+= UInt64(base.loadUnaligned(fromByteOffset: j, as: UInt16.self))
            j += 2
        }
        // A last odd byte is the high half of a big-endian word: in host order, it is where a load puts it.
        if j < to { acc &+= UInt64(UInt16(bigEndian: UInt16(p[j]) << 8)) }
        while acc >> 16 != 0 { acc = (acc & 0xffff) &+ (acc >> 16) }
        return UInt16(bigEndian: UInt16(truncatingIfNeeded: acc))
    }

    /// Decodes a captured frame of `link` framing, checksums verified when the whole segment was captured.
    public static func decode(_ p: UnsafeRawBufferPointer, link: LinkType, verifyChecksums: Bool = true) -> Outcome {
        var i = 0
        var etherType: UInt16?
        switch link {
        case .ethernet:
            guard p.count >= 14 else { return .malformed("an Ethernet header needs 14 bytes, has \(p.count)") }
            var t = be16(p, 12)
            i = 14
            while t == 0x8100 || t == 0x88a8 {  // 802.1Q and 802.1ad (QinQ) tags
                guard p.count >= i + 4 else { return .malformed("a VLAN tag is cut") }
                t = be16(p, i + 2)
                i += 4
            }
            etherType = t
        case .linuxSLL:
            guard p.count >= 16 else { return .malformed("a Linux cooked header needs 16 bytes") }
            etherType = be16(p, 14)
            i = 16
        case .linuxSLL2:
            guard p.count >= 20 else { return .malformed("a Linux cooked v2 header needs 20 bytes") }
            etherType = be16(p, 0)
            i = 20
        case .null:
            guard p.count >= 4 else { return .malformed("a loopback header needs 4 bytes") }
            i = 4
        case .rawIP:
            break
        }
        if let t = etherType, t != 0x0800, t != 0x86dd { return .other }
        guard p.count > i else { return .malformed("no IP header") }
        let version = p[i] >> 4
        var s = CapturedSegment(source: Address(hi: 0, lo: 0), destination: Address(hi: 0, lo: 0), sourcePort: 0, destinationPort: 0,
                                seq: 0, ack: 0, flags: [], window: 0, urgentPointer: 0, dataLength: 0, checksum: .unverified, cut: false)
        let tcpStart: Int
        var tcpLength: Int
        var pseudo: UInt64 = 0
        if version == 4 {
            guard p.count >= i + 20 else { return .malformed("the IPv4 header is cut") }
            let ihl = Int(p[i] & 0x0f) * 4
            guard ihl >= 20, p.count >= i + ihl else { return .malformed("bad IPv4 header length \(ihl)") }
            guard p[i + 9] == 6 else { return .other }
            let frag = be16(p, i + 6)
            if frag & 0x1fff != 0 { return .other }          // a later fragment: no TCP header here
            if frag & 0x2000 != 0 { return .malformed("a first IP fragment (not reassembled)") }
            var total = Int(be16(p, i + 2))
            // Total length 0 is what a TSO super-segment captured before segmentation may carry: use the capture.
            if total == 0 { total = p.count - i }
            guard total >= ihl + 20 else { return .malformed("IPv4 total length \(total) leaves no TCP header") }
            s.source = Address(hi: 0, lo: 0xffff_0000_0000 | UInt64(be32(p, i + 12)))
            s.destination = Address(hi: 0, lo: 0xffff_0000_0000 | UInt64(be32(p, i + 16)))
            tcpStart = i + ihl
            tcpLength = total - ihl
            pseudo = UInt64(be32(p, i + 12) >> 16) + UInt64(be32(p, i + 12) & 0xffff) + UInt64(be32(p, i + 16) >> 16) + UInt64(be32(p, i + 16) & 0xffff) + 6 + UInt64(tcpLength)
        } else if version == 6 {
            guard p.count >= i + 40 else { return .malformed("the IPv6 header is cut") }
            var next = p[i + 6]
            let payload = Int(be16(p, i + 4))
            s.source = Address(hi: be64(p, i + 8), lo: be64(p, i + 16))
            s.destination = Address(hi: be64(p, i + 24), lo: be64(p, i + 32))
            var k = i + 40
            // Hop-by-hop, routing, destination options: skip; a fragment header: not reassembled.
            while next == 0 || next == 43 || next == 60 || next == 44 {
                guard p.count >= k + 8 else { return .malformed("an IPv6 extension header is cut") }
                if next == 44 { return .malformed("an IPv6 fragment (not reassembled)") }
                next = p[k]
                k += (Int(p[k + 1]) + 1) * 8
            }
            guard next == 6 else { return .other }
            tcpStart = k
            tcpLength = (payload == 0 ? p.count - i - 40 : payload) - (k - i - 40)
            // Extension headers longer than the payload make this negative, which UInt64() below would trap on
            // (found by fuzzing, Fuzz/regressions/segment/): check before the pseudo-header sum, not after.
            guard tcpLength >= 20 else { return .malformed("the TCP header does not fit the IP length") }
            for j in stride(from: 8, to: 40, by: 2) { pseudo += UInt64(be16(p, i + j)) }
            pseudo += 6 + UInt64(tcpLength)
        } else {
            return .malformed("IP version \(version)")
        }
        guard tcpLength >= 20 else { return .malformed("the TCP header does not fit the IP length") }
        guard p.count >= tcpStart + 20 else { return .malformed("the TCP header is cut by the capture (snaplen)") }
        let t = tcpStart
        s.sourcePort = be16(p, t)
        s.destinationPort = be16(p, t + 2)
        s.seq = be32(p, t + 4)
        s.ack = be32(p, t + 8)
        let offset = Int(p[t + 12] >> 4) * 4
        guard offset >= 20, offset <= tcpLength else { return .malformed("TCP data offset \(offset / 4) is outside the segment") }
        s.flags = TCPHeader.controlBits(p[t + 13])
        s.window = be16(p, t + 14)
        s.urgentPointer = be16(p, t + 18)
        s.dataLength = UInt32(tcpLength - offset)
        s.payloadOffset = t + offset
        // Every option scanned, whatever the segment (a SYN-only option elsewhere is reported, not dropped).
        s.options = TCPOptionScan.scan(p, from: t + 20, headerEnd: t + offset, syn: s.flags.contains(.syn))
        s.cut = p.count < tcpStart + tcpLength
        if verifyChecksums, !s.cut {
            var sum = pseudo &+ UInt64(onesComplementSum(p, from: t, to: t + tcpLength))
            let found = be16(p, t + 16)
            // The sum includes the checksum field: all ones when right.
            var f = sum
            while f >> 16 != 0 { f = (f & 0xffff) &+ (f >> 16) }
            if f == 0xffff {
                s.checksum = .good
            } else {
                // Offloaded: the field holds the pseudo-header sum, the NIC adds the rest (Linux CHECKSUM_PARTIAL).
                var ph = pseudo
                while ph >> 16 != 0 { ph = (ph & 0xffff) &+ (ph >> 16) }
                var without = sum &- UInt64(found)
                while without >> 16 != 0 { without = (without & 0xffff) &+ (without >> 16) }
                s.checksum = UInt16(ph) == found ? .offloaded : .bad(found: found, computed: ~UInt16(truncatingIfNeeded: without))
            }
        }
        return .segment(s)
    }
}
