import Core

/// A TCP header with everything a test may want to set, right or wrong.
public struct TCPHeader: Hashable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var seq: UInt32
    public var ack: UInt32
    /// The 8 flag bits: CWR ECE URG ACK PSH RST SYN FIN (RFC 9293 §3.1), as `ControlBits`.
    public var flags: ControlBits
    /// The 4 bits before the flags (reserved; bit 0 is AE, RFC 3540 / accurate ECN).
    public var reserved: UInt8 = 0
    public var window: UInt16
    public var urgentPointer: UInt16 = 0
    public var options: [TCPOption] = []
    public var payload: [UInt8] = []
    /// Set to write a wrong data offset (in 32-bit words); nil computes it.
    public var dataOffsetOverride: UInt8?
    /// Set to write this checksum instead of the right one.
    public var checksumOverride: UInt16?
    /// As decoded: the checksum found and whether it was right (nil for headers built here).
    public var decodedChecksum: UInt16?
    public var checksumValid: Bool?

    public init(sourcePort: UInt16, destinationPort: UInt16, seq: UInt32, ack: UInt32 = 0, flags: ControlBits, window: UInt16 = 65535,
                urgentPointer: UInt16 = 0, options: [TCPOption] = [], payload: [UInt8] = []) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.urgentPointer = urgentPointer
        self.options = options
        self.payload = payload
    }

    /// The model's view: SEG.SEQ, SEG.ACK, CTL, SEG.WND (unscaled), SEG.UP, text length.
    public var segment: Segment {
        Segment(seq: seq, ack: ack, ctl: flags, window: UInt32(window), urgentPointer: UInt32(urgentPointer), dataLength: UInt32(payload.count))
    }

    public var optionBytes: [UInt8] {
        var out: [UInt8] = []
        for o in options { o.encode(into: &out) }
        // Pad to 32 bits with EOL, as stacks do.
        while out.count % 4 != 0 { out.append(0) }
        return out
    }
}

public enum IPHeader: Hashable, Sendable {
    case v4(IPv4Header)
    case v6(IPv6Header)

    public var source: IPAddress {
        switch self {
        case .v4(let h): h.source
        case .v6(let h): h.source
        }
    }
    public var destination: IPAddress {
        switch self {
        case .v4(let h): h.destination
        case .v6(let h): h.destination
        }
    }
}

public struct IPv4Header: Hashable, Sendable {
    public var source: IPAddress
    public var destination: IPAddress
    public var ttl: UInt8 = 64
    public var identification: UInt16 = 0
    public var dontFragment = true
    public var tos: UInt8 = 0
    /// As decoded: the header checksum was right.
    public var checksumValid: Bool?
    public init(source: IPAddress, destination: IPAddress) {
        self.source = source
        self.destination = destination
    }
}

public struct IPv6Header: Hashable, Sendable {
    public var source: IPAddress
    public var destination: IPAddress
    public var hopLimit: UInt8 = 64
    public var trafficClass: UInt8 = 0
    public var flowLabel: UInt32 = 0
    public init(source: IPAddress, destination: IPAddress) {
        self.source = source
        self.destination = destination
    }
}

public struct EthernetHeader: Hashable, Sendable {
    public var destination: MACAddress
    public var source: MACAddress
    /// 802.1Q tags, outermost first (VLAN IDs with priority bits).
    public var vlanTags: [UInt16] = []
    public init(destination: MACAddress, source: MACAddress) {
        self.destination = destination
        self.source = source
    }
}

/// Link-layer framing of a capture or injection point.
public enum LinkType: Hashable, Sendable {
    case ethernet
    /// Raw IP (DLT_RAW / LINKTYPE_RAW, IPv4 or IPv6 by version nibble).
    case rawIP
    /// Linux cooked capture v1 (LINKTYPE_LINUX_SLL) and v2 (LINKTYPE_LINUX_SLL2).
    case linuxSLL
    case linuxSLL2
    case null
}

/// One TCP/IP packet, optionally in an Ethernet frame.
public struct Packet: Hashable, Sendable {
    public var ethernet: EthernetHeader?
    public var ip: IPHeader
    public var tcp: TCPHeader

    public init(ethernet: EthernetHeader? = nil, ip: IPHeader, tcp: TCPHeader) {
        self.ethernet = ethernet
        self.ip = ip
        self.tcp = tcp
    }

    /// The bytes on the wire: lengths and checksums computed unless the header says otherwise. Written into one
    /// buffer (the fuzzer encodes every segment it injects), checksums summed in place.
    public func encode() -> [UInt8] {
        let opts = tcp.optionBytes
        let tcpLength = 20 + opts.count + tcp.payload.count
        var out: [UInt8] = []
        out.reserveCapacity((ethernet.map { 14 + 4 * $0.vlanTags.count } ?? 0) + (ip.isV6 ? 40 : 20) + tcpLength)
        if let e = ethernet {
            e.destination.append(to: &out)
            e.source.append(to: &out)
            for tag in e.vlanTags {
                out.appendBE(UInt16(0x8100))
                out.appendBE(tag)
            }
            out.appendBE(ip.isV6 ? UInt16(0x86DD) : UInt16(0x0800))
        }
        switch ip {
        case .v4(let h):
            let start = out.count
            out.append(0x45)
            out.append(h.tos)
            out.appendBE(UInt16(truncatingIfNeeded: 20 + tcpLength))
            out.appendBE(h.identification)
            out.appendBE(h.dontFragment ? UInt16(0x4000) : 0)
            out.append(h.ttl)
            out.append(6)
            out.append(0)
            out.append(0)
            h.source.append(to: &out)
            h.destination.append(to: &out)
            let c = Checksum.ones(out, from: start, to: out.count)
            out[start + 10] = UInt8(c >> 8)
            out[start + 11] = UInt8(c & 0xff)
        case .v6(let h):
            let vtf = UInt32(6) << 28 | UInt32(h.trafficClass) << 20 | (h.flowLabel & 0xFFFFF)
            out.appendBE(vtf)
            out.appendBE(UInt16(truncatingIfNeeded: tcpLength))
            out.append(6)
            out.append(h.hopLimit)
            h.source.append(to: &out)
            h.destination.append(to: &out)
        }
        encodeTCP(options: opts, into: &out)
        return out
    }

    /// The TCP header, options and payload appended to `out`, checksum computed unless overridden.
    func encodeTCP(options opts: [UInt8], into out: inout [UInt8]) {
        let t = tcp
        let start = out.count
        out.appendBE(t.sourcePort)
        out.appendBE(t.destinationPort)
        out.appendBE(t.seq)
        out.appendBE(t.ack)
        let offset = t.dataOffsetOverride ?? UInt8(truncatingIfNeeded: (20 + opts.count) / 4)
        out.append(offset << 4 | (t.reserved & 0x0f))
        out.append(TCPHeader.wireFlags(t.flags))
        out.appendBE(t.window)
        out.append(0)
        out.append(0)
        out.appendBE(t.urgentPointer)
        out.append(contentsOf: opts)
        out.append(contentsOf: t.payload)
        let c = t.checksumOverride ?? Checksum.tcp(out, from: start, to: out.count, source: ip.source, destination: ip.destination)
        out[start + 16] = UInt8(c >> 8)
        out[start + 17] = UInt8(c & 0xff)
    }
}

extension IPHeader {
    var isV6: Bool { if case .v6 = self { true } else { false } }
}

extension TCPHeader {
    /// ControlBits to the header's flag byte (FIN=0x01 ... CWR=0x80).
    static func wireFlags(_ c: ControlBits) -> UInt8 {
        var b: UInt8 = 0
        if c.contains(.fin) { b |= 0x01 }
        if c.contains(.syn) { b |= 0x02 }
        if c.contains(.rst) { b |= 0x04 }
        if c.contains(.psh) { b |= 0x08 }
        if c.contains(.ack) { b |= 0x10 }
        if c.contains(.urg) { b |= 0x20 }
        if c.contains(.ece) { b |= 0x40 }
        if c.contains(.cwr) { b |= 0x80 }
        return b
    }

    public static func controlBits(_ b: UInt8) -> ControlBits {
        var c = ControlBits()
        if b & 0x01 != 0 { c.insert(.fin) }
        if b & 0x02 != 0 { c.insert(.syn) }
        if b & 0x04 != 0 { c.insert(.rst) }
        if b & 0x08 != 0 { c.insert(.psh) }
        if b & 0x10 != 0 { c.insert(.ack) }
        if b & 0x20 != 0 { c.insert(.urg) }
        if b & 0x40 != 0 { c.insert(.ece) }
        if b & 0x80 != 0 { c.insert(.cwr) }
        return c
    }
}

/// The Internet checksum (RFC 1071) and TCP's pseudo-header (RFC 9293 §3.1, RFC 8200 §8.1). Sums are taken
/// where the bytes lie (a range of a frame), the pseudo-header's words added as numbers: no copies.
public enum Checksum {
    public static func ones(_ b: [UInt8], initial: UInt32 = 0) -> UInt16 {
        ones(b, from: 0, to: b.count, initial: initial)
    }

    /// The checksum of `b[from..<to]`.
    static func ones(_ b: [UInt8], from: Int, to: Int, initial: UInt32 = 0) -> UInt16 {
        precondition(from >= 0 && from <= to && to <= b.count)
        var sum = initial
        b.withUnsafeBufferPointer { add($0, from: from, to: to, into: &sum) }
        return fold(sum)
    }

    /// Adds the 16-bit big-endian words of p[from..<to] (an odd last byte as a word's high half).
    @inline(__always)
    static func add(_ p: UnsafeBufferPointer<UInt8>, from: Int, to: Int, into sum: inout UInt32) {
        var i = from
        while i + 1 < to {
            sum &+= UInt32(p[i]) << 8 | UInt32(p[i + 1])
            i += 2
        }
        if i < to { sum &+= UInt32(p[i]) << 8 }
    }

    @inline(__always)
    static func fold(_ sum: UInt32) -> UInt16 {
        var sum = sum
        while sum >> 16 != 0 { sum = (sum & 0xffff) &+ (sum >> 16) }
        return ~UInt16(sum)
    }

    /// Whether a received segment's checksum is right: the sum over the pseudo-header and the segment as it
    /// came, checksum field included, is all ones (RFC 1071 §2(A)). Not "recompute and compare": the one's
    /// complement sum has two zeros, and a sender may write either 0x0000 or 0xFFFF where the sum is zero
    /// (receivers accept both; comparing with our own computation would call one of them bad).
    public static func tcpValid(_ segment: [UInt8], source: IPAddress, destination: IPAddress) -> Bool {
        tcpValid(segment, from: 0, to: segment.count, source: source, destination: destination)
    }

    /// The same for the segment at `b[from..<to]`.
    static func tcpValid(_ b: [UInt8], from: Int, to: Int, source: IPAddress, destination: IPAddress) -> Bool {
        ones(b, from: from, to: to, initial: pseudoSum(to - from, source: source, destination: destination)) == 0
    }

    /// The pseudo-header the TCP checksum covers (RFC 9293 §3.1; RFC 8200 §8.1 for IPv6).
    static func pseudoHeader(_ length: Int, source: IPAddress, destination: IPAddress) -> [UInt8] {
        var pseudo = source.bytes + destination.bytes
        if source.isV6 {
            pseudo.appendBE(UInt32(length))
            pseudo += [0, 0, 0, 6]
        } else {
            pseudo += [0, 6]
            pseudo.appendBE(UInt16(truncatingIfNeeded: length))
        }
        return pseudo
    }

    /// The sum of `pseudoHeader`'s words, without building it (both addresses are an even number of octets, so
    /// each sums on its own).
    static func pseudoSum(_ length: Int, source: IPAddress, destination: IPAddress) -> UInt32 {
        func words(_ a: IPAddress) -> UInt32 {
            switch a {
            case .v4(let v): return (v >> 16) &+ (v & 0xffff)
            case .v6(let b):
                var sum: UInt32 = 0
                b.withUnsafeBufferPointer { add($0, from: 0, to: $0.count, into: &sum) }
                return sum
            }
        }
        var sum = words(source) &+ words(destination)
        if source.isV6 {
            let l = UInt32(length)
            sum &+= (l >> 16) &+ (l & 0xffff) &+ 6
        } else {
            sum &+= 6 &+ UInt32(UInt16(truncatingIfNeeded: length))
        }
        return sum
    }

    public static func tcp(_ segment: [UInt8], source: IPAddress, destination: IPAddress) -> UInt16 {
        tcp(segment, from: 0, to: segment.count, source: source, destination: destination)
    }

    /// The checksum of the segment at `b[from..<to]`, its checksum field taken as zero.
    static func tcp(_ b: [UInt8], from: Int, to: Int, source: IPAddress, destination: IPAddress) -> UInt16 {
        precondition(to - from >= 18, "a TCP segment has a checksum field")
        var sum = pseudoSum(to - from, source: source, destination: destination)
        b.withUnsafeBufferPointer { p in
            add(p, from: from, to: from + 16, into: &sum)
            add(p, from: from + 18, to: to, into: &sum)
        }
        return fold(sum)
    }
}
