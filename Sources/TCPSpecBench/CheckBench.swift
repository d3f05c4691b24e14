import Core
import Checker
import Foundation
import Link
import Spec
import Wire

/// The offline checker's throughput: a generated capture of many connections (handshake, data both ways with
/// ACKs, close), judged on one core; the same file through `tshark -r FILE -T fields -e tcp.flags` in the same
/// run, for the ratio.
enum CheckBench {
    /// Writes a capture of `connections` connections of `exchanges` data/ACK pairs each, straight into pcap
    /// bytes (a template frame patched per segment: generating must not cost more than judging).
    static func generate(path: String, connections: Int, exchanges: Int) throws -> Int {
        var out = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        u32(0xa1b2c3d4); u32(0x0004_0002); u32(0); u32(0); u32(65535); u32(1)
        var t: UInt32 = 1_700_000_000
        var usec: UInt32 = 0
        var count = 0
        let c = IPAddress("192.0.2.1")!, s = IPAddress("198.51.100.7")!
        func emit(_ fromClient: Bool, _ port: UInt16, _ flags: ControlBits, _ seq: UInt32, _ ack: UInt32, _ len: Int) {
            var tcp = TCPHeader(sourcePort: fromClient ? port : 80, destinationPort: fromClient ? 80 : port, seq: seq, ack: ack, flags: flags, window: 65000)
            tcp.payload = [UInt8](repeating: 0x61, count: len)
            let p = Packet(ethernet: EthernetHeader(destination: MACAddress([2, 0, 0, 0, 0, fromClient ? 2 : 1]), source: MACAddress([2, 0, 0, 0, 0, fromClient ? 1 : 2])),
                           ip: .v4(IPv4Header(source: fromClient ? c : s, destination: fromClient ? s : c)), tcp: tcp)
            let b = p.encode()
            usec += 7
            if usec >= 1_000_000 { usec -= 1_000_000; t += 1 }
            u32(t); u32(usec); u32(UInt32(b.count)); u32(UInt32(b.count))
            out.append(contentsOf: b)
            count += 1
        }
        for k in 0..<connections {
            let port = UInt16(20000 + k % 40000)
            let ci: UInt32 = 1000 &* UInt32(k + 1), si: UInt32 = 7_000_000 &+ UInt32(k)
            emit(true, port, .syn, ci, 0, 0)
            emit(false, port, [.syn, .ack], si, ci &+ 1, 0)
            emit(true, port, .ack, ci &+ 1, si &+ 1, 0)
            var cs = ci &+ 1, ss = si &+ 1
            for x in 0..<exchanges {
                if x % 2 == 0 {
                    emit(true, port, [.psh, .ack], cs, ss, 100); cs &+= 100
                    emit(false, port, .ack, ss, cs, 0)
                } else {
                    emit(false, port, [.psh, .ack], ss, cs, 100); ss &+= 100
                    emit(true, port, .ack, cs, ss, 0)
                }
            }
            emit(true, port, [.fin, .ack], cs, ss, 0)
            emit(false, port, [.fin, .ack], ss, cs &+ 1, 0)
            emit(true, port, .ack, cs &+ 1, ss &+ 1, 0)
        }
        try out.write(to: URL(fileURLWithPath: path))
        return count
    }

    static func run(spec: CompiledSpec) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-bench-check-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let segments = try generate(path: path, connections: 2000, exchanges: 500)
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        print("check: generated \(segments) segments in \(2000) connections, \(size / 1_000_000) MB")
        var best = Double.infinity
        var report: CaptureReport?
        for _ in 0..<3 {
            let t0 = now()
            report = try CaptureChecker.check(path: path, spec: spec)
            best = min(best, Double(now() - t0) / 1e9)
        }
        let r = report!
        let rate = Double(r.tcpSegments) / best
        print(String(format: "check: %d segments judged in %.3f s (best of 3, one core): %.2f M segments/s; %d connections, %d violations; goal >= 2 M/s", r.tcpSegments, best, rate / 1e6, r.connections.count, r.violations))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/tshark")
        p.arguments = ["-r", path, "-T", "fields", "-e", "tcp.flags"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        let t0 = now()
        try p.run()
        p.waitUntilExit()
        let tshark = Double(now() - t0) / 1e9
        print(String(format: "check: tshark -r FILE -T fields -e tcp.flags: %.2f s (%.2f M segments/s); ratio %.1fx; goal >= 20x", tshark, Double(segments) / tshark / 1e6, tshark / best))
    }
}
