import Core
import Foundation
import Link
import Spec
import Targets
import Testing
import Wire

/// The link and the Linux target, really started: namespaces, veth, libpcap, the kernel's TCP.
@Suite("Linux target: link and handshake", .serialized)
struct LinkSmokeTests {
    static func frame(_ t: LinuxTarget, _ tcp: TCPHeader) -> [UInt8] {
        let ip: IPHeader = t.targetIP.isV6 ? .v6(IPv6Header(source: t.testerIP, destination: t.targetIP)) : .v4(IPv4Header(source: t.testerIP, destination: t.targetIP))
        return Packet(ethernet: EthernetHeader(destination: t.targetMAC, source: t.testerMAC), ip: ip, tcp: tcp).encode()
    }

    @Test("a SYN in, a SYN,ACK out; sock_diag sees SYN-RECEIVED then ESTABLISHED; tshark reads the pcap", arguments: [IPVersion.v4, .v6])
    func handshake(ip: IPVersion) throws {
        let t = try LinuxTarget(.init(ip: ip))
        defer { t.close() }
        let tuple = Tuple(targetPort: 8080, testerPort: 40000)
        #expect(try t.call(.listen(backlog: 128), on: tuple) == CallResult(value: 0))
        #expect(try t.state(of: tuple) == .listen)
        var frames: [Frame] = []
        let syn = Self.frame(t, TCPHeader(sourcePort: tuple.testerPort, destinationPort: tuple.targetPort, seq: 1000, flags: .syn, window: 65535, options: [.maxSegmentSize(1460)]))
        try t.inject([syn])
        frames.append(Frame(time: Sys.wallClockNow(), bytes: syn, direction: .injected))
        let got = try #require(t.link.next(timeout: 2), "no reply to the SYN")
        frames.append(got)
        let synack = try Packet.decode(got.bytes, link: t.link.linkType)
        #expect(synack.tcp.flags == [.syn, .ack])
        #expect(synack.tcp.ack == 1001)
        #expect(synack.tcp.checksumValid == true)
        #expect(synack.ip.source == t.targetIP)
        #expect(try t.state(of: tuple) == .synReceived)
        let ack = Self.frame(t, TCPHeader(sourcePort: tuple.testerPort, destinationPort: tuple.targetPort, seq: 1001, ack: synack.tcp.seq &+ 1, flags: .ack, window: 65535))
        try t.inject([ack])
        frames.append(Frame(time: Sys.wallClockNow(), bytes: ack, direction: .injected))
        #expect(try t.barrier().isEmpty)
        #expect(try t.state(of: tuple) == .established)
        #expect(try t.call(.accept, on: tuple).errno == 0)
        #expect(try t.call(.recv(10), on: tuple).errno == EAGAIN)

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-smoke-\(UUID().uuidString).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PcapWriter.write(frames, linkType: t.link.linkType, to: path)
        let out = try run("/usr/bin/tshark", ["-r", path, "-T", "fields", "-e", "tcp.flags.str", "-e", "tcp.seq_raw", "-e", "tcp.checksum.status", "-o", "tcp.check_checksum:TRUE"])
        let lines = out.split(separator: "\n")
        #expect(lines.count == 3, "\(out)")
        #expect(lines.first?.contains("1000") == true)
        // tcp.checksum.status 1 is "Good": tshark verified every checksum, the target's included.
        #expect(lines.allSatisfy { $0.hasSuffix("\t1") }, "checksum status: \(out)")
    }

    @Test("a SYN to a closed port gets a RST,ACK; the run leaves no namespace or link behind")
    func closedPortAndCleanup() throws {
        let linksBefore = try run("/usr/sbin/ip", ["-o", "link", "show"])
        // Named namespaces other than those the capture tests make while this runs (tcpspec-ca…/tcpspec-cb…,
        // created and deleted by scripts in parallel suites): the target names none of its own.
        func named() throws -> [Substring] {
            try run("/usr/sbin/ip", ["netns", "list"]).split(separator: "\n").filter { !$0.hasPrefix("tcpspec-ca") && !$0.hasPrefix("tcpspec-cb") }
        }
        let netnsBefore = try named()
        do {
            let t = try LinuxTarget()
            try t.inject([Self.frame(t, TCPHeader(sourcePort: 40001, destinationPort: 9, seq: 77, flags: .syn))])
            let got = try #require(t.link.next(timeout: 2))
            let rst = try Packet.decode(got.bytes, link: .ethernet)
            #expect(rst.tcp.flags == [.rst, .ack] && rst.tcp.seq == 0 && rst.tcp.ack == 78)
            t.close()
        }
        // The namespaces go with their threads; nothing was ever created in the root namespace.
        try await_(2) { try run("/usr/sbin/ip", ["-o", "link", "show"]) == linksBefore }
        #expect(try run("/usr/sbin/ip", ["-o", "link", "show"]) == linksBefore)
        #expect(try named() == netnsBefore)
    }
}

func run(_ exe: String, _ args: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = Pipe()
    try p.run()
    let d = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: d, as: UTF8.self)
}

func await_(_ seconds: Double, _ cond: () throws -> Bool) rethrows {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if try cond() { return }
        Thread.sleep(forTimeInterval: 0.05)
    }
}

@Suite("Linux target: batch states")
struct StatesBatchTests {
    @Test("states(of:) answers for many tuples at once, repeatedly")
    func states() throws {
        let t = try LinuxTarget()
        defer { t.close() }
        let tuples = (0..<50).map { Tuple(targetPort: UInt16(10000 + $0), testerPort: 20000) }
        for _ in 0..<3 {
            let s = try t.states(of: tuples)
            #expect(s.count == 50)
            #expect(s.values.allSatisfy { $0 == .closed })
        }
        _ = try t.call(.listen(backlog: 8), on: tuples[0])
        #expect(try t.states(of: tuples)[tuples[0]] == .some(.listen))
        #expect(try t.barrier().isEmpty)
    }
}
