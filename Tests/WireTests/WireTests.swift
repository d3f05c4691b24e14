import Core
import Generator
import Spec
import Testing
@testable import Wire

@Suite("Wire codec")
struct WireTests {
    static let a4 = IPAddress("192.0.2.1")!, b4 = IPAddress("192.0.2.2")!
    static let a6 = IPAddress("2001:db8::1")!, b6 = IPAddress("2001:db8::2")!
    static let eth = EthernetHeader(destination: .local(2), source: .local(1))

    static func syn(_ v6: Bool = false) -> Packet {
        let tcp = TCPHeader(sourcePort: 40000, destinationPort: 80, seq: 1000, flags: .syn, window: 65535,
                            options: [.maxSegmentSize(1460), .sackPermitted, .timestamps(value: 1, echo: 0), .noOperation, .windowScale(7)])
        let ip: IPHeader = v6 ? .v6(IPv6Header(source: a6, destination: b6)) : .v4(IPv4Header(source: a4, destination: b4))
        return Packet(ethernet: eth, ip: ip, tcp: tcp)
    }

    @Test("addresses parse and print, IPv6 compressed")
    func addresses() {
        #expect(IPAddress("198.51.100.7")?.description == "198.51.100.7")
        #expect(IPAddress("2001:db8::1")?.description == "2001:db8::1")
        #expect(IPAddress("2001:db8:0:0:1:0:0:1")?.description == "2001:db8::1:0:0:1")
        #expect(IPAddress("300.1.1.1") == nil && IPAddress("2001:db8:::1") == nil)
        #expect(MACAddress.local(0x01020304).description == "02:7c:01:02:03:04")
    }

    @Test("encode then decode gives the same packet, IPv4 and IPv6, checksums right", arguments: [false, true])
    func roundTrip(v6: Bool) throws {
        var p = Self.syn(v6)
        p.tcp.payload = Array("hello".utf8)
        let bytes = p.encode()
        let q = try Packet.decode(bytes, link: .ethernet)
        #expect(q.tcp.checksumValid == true)
        #expect(q.tcp.options == p.tcp.options)
        #expect(q.tcp.payload == p.tcp.payload)
        #expect(q.tcp.seq == 1000 && q.tcp.flags == .syn && q.tcp.window == 65535)
        #expect(q.ip.source == p.ip.source && q.ip.destination == p.ip.destination)
        if case .v4(let h) = q.ip { #expect(h.checksumValid == true) }
        // Raw IP framing is the same bytes without the Ethernet header.
        let raw = try Packet.decode(Array(bytes.dropFirst(14)), link: .rawIP)
        #expect(raw.tcp == q.tcp)
    }

    @Test("a known IPv4 TCP checksum")
    func knownChecksum() throws {
        // 192.0.2.1:40000 -> 192.0.2.2:80 SYN seq 1000 win 65535 no options: checksum computed by hand.
        let p = Packet(ip: .v4(IPv4Header(source: Self.a4, destination: Self.b4)),
                       tcp: TCPHeader(sourcePort: 40000, destinationPort: 80, seq: 1000, flags: .syn, window: 65535))
        let b = p.encode()
        #expect(b.count == 40)
        // Sum of pseudo header and segment words, folded, complemented.
        var sum: UInt32 = 0xC000 + 0x0201 + 0xC000 + 0x0202 + 0x0006 + 20
        sum += 40000 + 80 + 0 + 1000 + 0 + 0 + 0x5002 + 65535 + 0
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        #expect(b.readBE16(36) == ~UInt16(sum))
    }

    @Test("a checksum of 0xFFFF where the sum is zero is as right as 0x0000 (one's complement has two zeros); a wrong one is not")
    func negativeZeroChecksum() throws {
        // Find a segment whose checksum computes to 0x0000 (by its window), then write the other zero.
        var found: [UInt8]?
        for w in 0...UInt16.max {
            let p = Packet(ip: .v4(IPv4Header(source: Self.a4, destination: Self.b4)),
                           tcp: TCPHeader(sourcePort: 40000, destinationPort: 80, seq: 1000, flags: .syn, window: w))
            let b = p.encode()
            if b.readBE16(36) == 0 { found = b; break }
        }
        var b = try #require(found)
        #expect(try Packet.decode(b, link: .rawIP).tcp.checksumValid == true)
        b[36] = 0xff
        b[37] = 0xff
        #expect(try Packet.decode(b, link: .rawIP).tcp.checksumValid == true)
        b[37] = 0xfe
        #expect(try Packet.decode(b, link: .rawIP).tcp.checksumValid == false)
    }

    @Test("deliberate malformations are written as asked and reported when decoded")
    func malformations() throws {
        var p = Self.syn()
        p.tcp.checksumOverride = 0xBEEF
        p.tcp.reserved = 0b0101
        p.tcp.flags = [.syn, .ece, .cwr, .urg]
        p.tcp.urgentPointer = 7
        p.tcp.options.append(.raw([2, 9, 0]))  // MSS with a wrong length, truncated
        let q = try Packet.decode(p.encode(), link: .ethernet)
        #expect(q.tcp.checksumValid == false && q.tcp.decodedChecksum == 0xBEEF)
        #expect(q.tcp.reserved == 0b0101)
        #expect(q.tcp.flags == [.syn, .ece, .cwr, .urg])
        #expect(q.tcp.urgentPointer == 7)
        #expect(q.tcp.options.contains(.raw([2, 9, 0, 0])))  // the padding EOL is part of what follows it
        var d = Self.syn()
        d.tcp.dataOffsetOverride = 15  // claims 60 bytes of header
        #expect(throws: WireError.badDataOffset(15)) { try Packet.decode(d.encode(), link: .ethernet) }
        d.tcp.dataOffsetOverride = 4
        #expect(throws: WireError.badDataOffset(4)) { try Packet.decode(d.encode(), link: .ethernet) }
    }

    @Test("decoding any byte string returns a packet or a typed error, never traps")
    func fuzzDecode() {
        var rng = SplitMix64(seed: 5)
        let base = Self.syn().encode()
        var decoded = 0, errors = 0
        for n in 0..<20_000 {
            var b: [UInt8]
            if n % 2 == 0 {
                b = (0..<Int(rng.next() % 120)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                b = base
                for _ in 0..<(1 + Int(rng.next() % 6)) {
                    let at = Int(rng.next() % UInt64(b.count))
                    switch rng.next() % 3 {
                    case 0: b[at] = UInt8(truncatingIfNeeded: rng.next())
                    case 1: b = Array(b.prefix(at))
                    default: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                    }
                    if b.isEmpty { break }
                }
            }
            for link in [LinkType.ethernet, .rawIP, .linuxSLL, .linuxSLL2, .null] {
                do {
                    _ = try Packet.decode(b, link: link)
                    decoded += 1
                } catch {
                    errors += 1
                }
            }
        }
        #expect(decoded > 1000 && errors > 1000)
    }

    @Test("tcpdump/packetdrill notation, absolute and relative")
    func notation() {
        let p = Self.syn()
        #expect(Notation.format(p.tcp) == "S 1000:1000(0) win 65535 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>")
        #expect(Notation.format(p.tcp, seqBase: 1000) == "S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>")
        let data = TCPHeader(sourcePort: 1, destinationPort: 2, seq: 1001, ack: 5001, flags: [.psh, .ack], window: 502, payload: Array(repeating: 0, count: 10))
        #expect(Notation.format(data, seqBase: 1000, ackBase: 5000) == "P. 1:11(10) ack 1 win 502")
        #expect(ControlBits([.rst, .ack]).notation == "R." && ControlBits([.fin, .ack]).notation == "F." && ControlBits().notation == "none")
    }
}
