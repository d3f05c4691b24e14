import Core
import Foundation
import Link
import Targets
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// Sequential SYN→RST round trips through tcpspec's link (Wire encode, pcap_inject, poll + pcap_next_ex, Wire
/// decode) against a raw AF_PACKET ping-pong on the same veth in the same run.
enum LinkBench {
    static func run(seconds: Double = 3) throws {
        let t = try LinuxTarget()
        defer { t.close() }
        func syn(_ i: Int) -> [UInt8] { LinkBench.syn(i, on: t) }
        // Warm up the path (neighbour entries, caches).
        for i in 0..<1000 {
            try t.pcap.inject(syn(i))
            _ = t.link.next(timeout: 1)
        }

        func tcpspecRate() throws -> (Double, Int) {
            var n = 0, lost = 0
            let t0 = t.clock.now
            while t.clock.now - t0 < seconds {
                try t.pcap.inject(syn(n))
                if let f = t.link.next(timeout: 0.5), let p = try? Packet.decode(f.bytes, link: .ethernet), p.tcp.flags.contains(.rst) {
                    n += 1
                } else {
                    lost += 1
                    n += 1
                }
            }
            return (Double(n) / (t.clock.now - t0), lost)
        }

        let pingPong = try RawPingPong(t)
        defer { pingPong.close() }
        // Alternate so that neither side gets the machine's quieter moments.
        var ours: [Double] = [], raw: [Double] = []
        var lostOurs = 0, lostRaw = 0
        for _ in 0..<2 {
            let (a, la) = try tcpspecRate()
            let (b, lb) = pingPong.rate(seconds: seconds)
            ours.append(a)
            raw.append(b)
            lostOurs += la
            lostRaw += lb
        }
        let o = ours.max()!, r = raw.max()!
        print(String(format: "link: %.0f SYN→RST round trips/s through tcpspec's link, %.0f/s raw AF_PACKET on the same veth; ratio %.2f (goal >= 0.8); lost %d / %d",
                     o, r, o / r, lostOurs, lostRaw))
    }

    /// A SYN from tester port 10000 + i to the target's discard port, where nobody listens: answered by a RST.
    static func syn(_ i: Int, on t: LinuxTarget) -> [UInt8] {
        let tcp = TCPHeader(sourcePort: UInt16(10000 + i % 50000), destinationPort: 9, seq: UInt32(truncatingIfNeeded: i &* 7919), flags: .syn, window: 65535)
        return Packet(ethernet: EthernetHeader(destination: t.targetMAC, source: t.testerMAC), ip: .v4(IPv4Header(source: t.testerIP, destination: t.targetIP)), tcp: tcp).encode()
    }

    /// The baseline: sequential SYN→RST round trips with a raw AF_PACKET socket on the tester's end of the target's
    /// veth, frames prebuilt (the kernel and the socket alone). `link` and `fuzz` both measure against it.
    struct RawPingPong {
        let fd: FileDescriptor
        let frames: [[UInt8]]
        let clock: any Timekeeper

        init(_ t: LinuxTarget) throws {
            clock = t.clock
            let ifindex = try t.topology.tester.run { try Sys.linkIndex(t.topology.testerInterface) }
            fd = try t.topology.tester.run { try Sys.packetSocket(ifindex: ifindex) }
            frames = (0..<4096).map { LinkBench.syn($0, on: t) }
        }

        func close() { Sys.close(fd) }

        /// Round trips per second over `seconds`, and how many went unanswered (500 ms each).
        func rate(seconds: Double) -> (Double, Int) {
            var n = 0, lost = 0
            var buf = [UInt8](repeating: 0, count: 2048)
            let t0 = clock.now
            while clock.now - t0 < seconds {
                let f = frames[n % frames.count]
                // write/read: send/recv without flags.
                _ = f.withUnsafeBytes { try? Sys.write(fd, $0) }
                var got = false
                while !got {
                    guard Sys.waitReadable(fd, timeout: 0.5) else { break }
                    let r = buf.withUnsafeMutableBytes { (try? Sys.read(fd, into: $0)) ?? -1 }
                    // Only the TCP reply counts (IPv4, protocol 6).
                    if r >= 34, buf[12] == 0x08, buf[13] == 0x00, buf[23] == 6 { got = true }
                }
                if !got { lost += 1 }
                n += 1
            }
            return (Double(n) / (clock.now - t0), lost)
        }
    }
}
