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
    static func generate(path: String, connections: Int, exchanges: Int, overlapping: Bool = false, options: Bool = true) throws -> Int {
        var out = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        u32(0xa1b2c3d4); u32(0x0004_0002); u32(0); u32(0); u32(65535); u32(1)
        var t: UInt32 = 1_700_000_000
        var usec: UInt32 = 0
        var count = 0
        let c = IPAddress("192.0.2.1")!, s = IPAddress("198.51.100.7")!
        // Options as Linux sends them: MSS, SACK-permitted, timestamps and window scale on the SYNs, timestamps on
        // every later segment (the clocks: one tick per segment, each end echoing the other's latest).
        var clocks: [UInt16: (client: UInt32, server: UInt32)] = [:]
        func emit(_ fromClient: Bool, _ port: UInt16, _ flags: ControlBits, _ seq: UInt32, _ ack: UInt32, _ len: Int) {
            var tcp = TCPHeader(sourcePort: fromClient ? port : 80, destinationPort: fromClient ? 80 : port, seq: seq, ack: ack, flags: flags, window: 65000)
            if options {
                var c = clocks[port] ?? (1_000_000 &* UInt32(port), 7_000_000 &* UInt32(port))
                if fromClient { c.client &+= 1 } else { c.server &+= 1 }
                clocks[port] = c
                let ts = TCPOption.timestamps(value: fromClient ? c.client : c.server, echo: flags == .syn ? 0 : fromClient ? c.server : c.client)
                tcp.options = flags.contains(.syn) ? [.maxSegmentSize(1460), .sackPermitted, ts, .noOperation, .windowScale(7)] : [.noOperation, .noOperation, ts]
            }
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
        // Each connection as a sequence of steps; `overlapping` interleaves them round-robin (every connection
        // open at once, as on a busy server), else one connection after another.
        struct Conn { var port: UInt16; var cs: UInt32; var ss: UInt32 }
        var conns: [Conn] = []
        for k in 0..<connections {
            let port = UInt16(20000 + k % 40000)
            let ci: UInt32 = 1000 &* UInt32(k + 1)
            let si: UInt32 = 7_000_000 &+ UInt32(k)
            conns.append(Conn(port: port, cs: ci, ss: si))
        }
        let steps = 3 + exchanges + 3
        func step(_ k: Int, _ i: Int) {
            var c = conns[k]
            switch i {
            case 0: emit(true, c.port, .syn, c.cs, 0, 0)
            case 1: emit(false, c.port, [.syn, .ack], c.ss, c.cs &+ 1, 0)
            case 2: c.cs &+= 1; c.ss &+= 1; emit(true, c.port, .ack, c.cs, c.ss, 0)
            case steps - 3: emit(true, c.port, [.fin, .ack], c.cs, c.ss, 0)
            case steps - 2: emit(false, c.port, [.fin, .ack], c.ss, c.cs &+ 1, 0)
            case steps - 1: emit(true, c.port, .ack, c.cs &+ 1, c.ss &+ 1, 0)
            default:
                if (i - 3) % 2 == 0 {
                    emit(true, c.port, [.psh, .ack], c.cs, c.ss, 100); c.cs &+= 100
                    emit(false, c.port, .ack, c.ss, c.cs, 0)
                } else {
                    emit(false, c.port, [.psh, .ack], c.ss, c.cs, 100); c.ss &+= 100
                    emit(true, c.port, .ack, c.cs, c.ss, 0)
                }
            }
            conns[k] = c
        }
        if overlapping {
            for i in 0..<steps { for k in 0..<connections { step(k, i) } }
        } else {
            for k in 0..<connections { for i in 0..<steps { step(k, i) } }
        }
        try out.write(to: URL(fileURLWithPath: path))
        return count
    }

    static func run(spec: CompiledSpec) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-bench-check-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let segments = try generate(path: path, connections: 2000, exchanges: 500)
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        print("check: generated \(segments) segments in \(2000) connections, \(size / 1_000_000) MB, with options (MSS, SACK-permitted, timestamps, window scale on the SYNs; timestamps on every segment)")
        // One thread (the model's own speed), then as `tcpspec check` runs: one judging thread per core.
        func judged(jobs: Int) throws -> (Double, CaptureReport) {
            var best = Double.infinity
            var report: CaptureReport?
            for _ in 0..<3 {
                let t0 = now()
                report = try CaptureChecker.check(path: path, spec: spec, jobs: jobs)
                best = min(best, Double(now() - t0) / 1e9)
            }
            return (best, report!)
        }
        let (one, r1) = try judged(jobs: 1)
        print(String(format: "check: %d segments judged in %.3f s on one thread (best of 3): %.2f M segments/s; %d connections, %d violations",
                     r1.tcpSegments, one, Double(r1.tcpSegments) / one / 1e6, r1.connections.count, r1.violations))
        let jobs = CaptureChecker.defaultJobs
        let (best, r) = try judged(jobs: jobs)
        let rate = Double(r.tcpSegments) / best
        let same = r.connections.map(\.violations.count) == r1.connections.map(\.violations.count) && r.connections.map(\.lastFrame) == r1.connections.map(\.lastFrame)
        print(String(format: "check: %d segments judged in %.3f s with %d judging threads (best of 3, as `tcpspec check` runs): %.2f M segments/s (%.2fx one thread); %d connections, %d violations, %@; goal >= 2 M/s",
                     r.tcpSegments, best, jobs, rate / 1e6, one / best, r.connections.count, r.violations, same ? "same verdicts as one thread" : "VERDICTS DIFFER FROM ONE THREAD"))
        // What the option checks cost: the same connections without options, judged in the same run.
        let plain = path + ".plain"
        defer { try? FileManager.default.removeItem(atPath: plain) }
        _ = try generate(path: plain, connections: 2000, exchanges: 500, options: false)
        var bestPlain = Double.infinity
        for _ in 0..<3 {
            let t0 = now()
            _ = try CaptureChecker.check(path: plain, spec: spec, jobs: jobs)
            bestPlain = min(bestPlain, Double(now() - t0) / 1e9)
        }
        print(String(format: "check: the same capture without options: %.3f s (%.2f M segments/s); with options %.2fx its time", bestPlain, Double(segments) / bestPlain / 1e6, best / bestPlain))
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
        try overlapping(spec: spec)
    }

    /// 12,000 connections open at once (every handshake, then every exchange round-robin, then every close):
    /// what the checker holds per connection, as peak RSS over the run (VmHWM, reset first through clear_refs).
    static func overlapping(spec: CompiledSpec) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-bench-check12k-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let n = 12_000
        let segments = try generate(path: path, connections: n, exchanges: 40, overlapping: true)
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
        let before = peakRSS("VmRSS:")
        let t0 = now()
        let r = try CaptureChecker.check(path: path, spec: spec)
        let secs = Double(now() - t0) / 1e9
        let peak = peakRSS("VmHWM:")
        print(String(format: "check: %d overlapping connections, %d segments in %.2f s with %d judging threads (%.2f M segments/s), %d violations; peak RSS %.0f MB (%.1f kB per connection above the %.0f MB at the start)",
                     r.connections.count, segments, secs, CaptureChecker.defaultJobs, Double(r.tcpSegments) / secs / 1e6, r.violations, Double(peak) / 1e6, Double(peak - min(before, peak)) / Double(n) / 1e3, Double(before) / 1e6))
    }

    /// A memory figure of this process from /proc/self/status (`VmHWM:` the peak, `VmRSS:` now), in bytes.
    static func peakRSS(_ field: String) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix(field) }) else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }
}
