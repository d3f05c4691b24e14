import Core

/// Why bytes are not a TCP packet. Decoding returns one of these, never traps.
public enum WireError: Error, Hashable, Sendable, CustomStringConvertible {
    case truncated(layer: String, need: Int, have: Int)
    case notIP(etherType: UInt16)
    case badIPVersion(UInt8)
    case badIPHeaderLength(Int)
    case notTCP(protocolNumber: UInt8)
    case fragment
    case badDataOffset(Int)

    public var description: String {
        switch self {
        case .truncated(let l, let need, let have): "truncated \(l): needs \(need) bytes, has \(have)"
        case .notIP(let t): "not IP (ethertype 0x\(String(t, radix: 16)))"
        case .badIPVersion(let v): "IP version \(v)"
        case .badIPHeaderLength(let n): "bad IPv4 header length \(n)"
        case .notTCP(let p): "not TCP (protocol \(p))"
        case .fragment: "an IP fragment (not reassembled)"
        case .badDataOffset(let n): "TCP data offset \(n) is outside the segment"
        }
    }
}

extension Packet {
    /// Decodes a frame of `link` framing. Checksums are verified and reported (`checksumValid`), not enforced.
    public static func decode(_ bytes: [UInt8], link: LinkType) throws(WireError) -> Packet {
        var eth: EthernetHeader?
        var i = 0
        switch link {
        case .ethernet:
            guard bytes.count >= 14 else { throw .truncated(layer: "Ethernet header", need: 14, have: bytes.count) }
            var h = EthernetHeader(destination: MACAddress(Array(bytes[0..<6])), source: MACAddress(Array(bytes[6..<12])))
            var type = bytes.readBE16(12)
            i = 14
            while type == 0x8100 || type == 0x88A8 {
                guard bytes.count >= i + 4 else { throw .truncated(layer: "VLAN tag", need: i + 4, have: bytes.count) }
                h.vlanTags.append(bytes.readBE16(i))
                type = bytes.readBE16(i + 2)
                i += 4
            }
            guard type == 0x0800 || type == 0x86DD else { throw .notIP(etherType: type) }
            eth = h
        case .rawIP:
            i = 0
        case .linuxSLL:
            guard bytes.count >= 16 else { throw .truncated(layer: "Linux cooked header", need: 16, have: bytes.count) }
            let type = bytes.readBE16(14)
            guard type == 0x0800 || type == 0x86DD else { throw .notIP(etherType: type) }
            i = 16
        case .linuxSLL2:
            guard bytes.count >= 20 else { throw .truncated(layer: "Linux cooked v2 header", need: 20, have: bytes.count) }
            let type = bytes.readBE16(0)
            guard type == 0x0800 || type == 0x86DD else { throw .notIP(etherType: type) }
            i = 20
        case .null:
            guard bytes.count >= 4 else { throw .truncated(layer: "loopback header", need: 4, have: bytes.count) }
            i = 4
        }
        guard bytes.count > i else { throw .truncated(layer: "IP header", need: i + 1, have: bytes.count) }
        let version = bytes[i] >> 4
        let ip: IPHeader
        let tcpStart: Int
        let tcpEnd: Int
        switch version {
        case 4:
            guard bytes.count >= i + 20 else { throw .truncated(layer: "IPv4 header", need: i + 20, have: bytes.count) }
            let ihl = Int(bytes[i] & 0x0f) * 4
            guard ihl >= 20 else { throw .badIPHeaderLength(ihl) }
            guard bytes.count >= i + ihl else { throw .truncated(layer: "IPv4 options", need: i + ihl, have: bytes.count) }
            let total = Int(bytes.readBE16(i + 2))
            let fragField = bytes.readBE16(i + 6)
            if fragField & 0x1FFF != 0 || fragField & 0x2000 != 0 { throw .fragment }
            guard bytes[i + 9] == 6 else { throw .notTCP(protocolNumber: bytes[i + 9]) }
            var h = IPv4Header(source: IPAddress(bytes: Array(bytes[(i + 12)..<(i + 16)]))!, destination: IPAddress(bytes: Array(bytes[(i + 16)..<(i + 20)]))!)
            h.tos = bytes[i + 1]
            h.identification = bytes.readBE16(i + 4)
            h.dontFragment = fragField & 0x4000 != 0
            h.ttl = bytes[i + 8]
            h.checksumValid = Checksum.ones(bytes, from: i, to: i + ihl) == 0
            ip = .v4(h)
            tcpStart = i + ihl
            // A total length beyond the capture means the capture is cut (snaplen); shorter means padding.
            tcpEnd = total >= ihl ? min(bytes.count, i + total) : bytes.count
        case 6:
            guard bytes.count >= i + 40 else { throw .truncated(layer: "IPv6 header", need: i + 40, have: bytes.count) }
            let payloadLen = Int(bytes.readBE16(i + 4))
            var next = bytes[i + 6]
            var h = IPv6Header(source: IPAddress(bytes: Array(bytes[(i + 8)..<(i + 24)]))!, destination: IPAddress(bytes: Array(bytes[(i + 24)..<(i + 40)]))!)
            h.hopLimit = bytes[i + 7]
            let vtf = bytes.readBE32(i)
            h.trafficClass = UInt8(truncatingIfNeeded: vtf >> 20)
            h.flowLabel = vtf & 0xFFFFF
            var k = i + 40
            // Skip hop-by-hop, routing and destination options headers; a fragment header stops us.
            while next == 0 || next == 43 || next == 60 || next == 44 {
                if next == 44 { throw .fragment }
                guard bytes.count >= k + 8 else { throw .truncated(layer: "IPv6 extension header", need: k + 8, have: bytes.count) }
                next = bytes[k]
                k += (Int(bytes[k + 1]) + 1) * 8
            }
            guard next == 6 else { throw .notTCP(protocolNumber: next) }
            ip = .v6(h)
            tcpStart = k
            tcpEnd = min(bytes.count, i + 40 + payloadLen)
        default:
            throw .badIPVersion(version)
        }
        guard tcpEnd >= tcpStart + 20 else { throw .truncated(layer: "TCP header", need: tcpStart + 20, have: tcpEnd) }
        let s = tcpStart
        let offset = Int(bytes[s + 12] >> 4) * 4
        guard offset >= 20, s + offset <= tcpEnd else { throw .badDataOffset(offset / 4) }
        var tcp = TCPHeader(sourcePort: bytes.readBE16(s), destinationPort: bytes.readBE16(s + 2), seq: bytes.readBE32(s + 4), ack: bytes.readBE32(s + 8),
                            flags: TCPHeader.controlBits(bytes[s + 13]), window: bytes.readBE16(s + 14), urgentPointer: bytes.readBE16(s + 18))
        tcp.reserved = bytes[s + 12] & 0x0f
        tcp.options = TCPOption.decode(bytes[(s + 20)..<(s + offset)])
        tcp.payload = Array(bytes[(s + offset)..<tcpEnd])
        let found = bytes.readBE16(s + 16)
        tcp.decodedChecksum = found
        tcp.checksumValid = Checksum.tcpValid(bytes, from: tcpStart, to: tcpEnd, source: ip.source, destination: ip.destination)
        if offset != 20 + tcp.optionBytes.count { tcp.dataOffsetOverride = UInt8(offset / 4) }
        return Packet(ethernet: eth, ip: ip, tcp: tcp)
    }
}
