import Core
import Foundation
import Link
import Targets
import Testing
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// The injection guard and the root-namespace guard against the real kernel: an interface tcpspec did not make is
/// refused until named, a frame between non-documentation addresses never leaves, and nothing that changes links
/// or sysctls acts in the root namespace.
@Suite("Safety: injection and root-namespace guards", .serialized)
struct SafetyTests {
    static func sh(_ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let d = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: d, as: UTF8.self))
    }

    static func tcpFrame(from src: String, to dst: String, dport: UInt16 = 80) -> [UInt8] {
        let (s, d) = (IPAddress(src)!, IPAddress(dst)!)
        let ip: IPHeader = s.isV6 ? .v6(IPv6Header(source: s, destination: d)) : .v4(IPv4Header(source: s, destination: d))
        return Packet(ethernet: EthernetHeader(destination: MACAddress([2, 0, 0, 0, 0, 2]), source: MACAddress([2, 0, 0, 0, 0, 1])),
                      ip: ip, tcp: TCPHeader(sourcePort: 40000, destinationPort: dport, seq: 1, flags: .syn)).encode()
    }

    @Test("a veth the test made with ip netns add is refused for injection until named, then carries a frame")
    func foreignInterface() throws {
        // The test's own namespace (documentation addresses, IPv6 off so the wire stays quiet), removed after.
        let tag = String(UUID().uuidString.prefix(6)).lowercased()
        let ns = "tcpspec-safety-\(tag)", a = "tsa\(tag)", b = "tsb\(tag)"
        #expect(try Self.sh(["ip", "netns", "add", ns]).0 == 0)
        defer { _ = try? Self.sh(["ip", "netns", "del", ns]) }
        for cmd in [["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"],
                    ["ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b],
                    ["ip", "-n", ns, "addr", "add", "198.51.100.2/24", "dev", b],
                    ["ip", "-n", ns, "link", "set", a, "up"], ["ip", "-n", ns, "link", "set", b, "up"]] {
            let (rc, out) = try Self.sh(cmd)
            #expect(rc == 0, "\(cmd): \(out)")
        }
        let thread = try NamespaceThread(name: "foreign", newNamespace: false, joining: "/run/netns/\(ns)")
        defer { thread.stop() }
        do {
            _ = try PcapLink(interface: a, on: thread, filter: "tcp")
            Issue.record("opened \(a) for injection without --allow-foreign-interface")
        } catch let e as SafetyError {
            #expect(e.description.contains("refusing to inject on interface '\(a)'") && e.description.contains("--allow-foreign-interface \(a)"), "\(e)")
        }
        // Named, both ends open; a frame injected on one arrives on the other, byte for byte.
        InjectionGuard.allowForeign([a, b])
        defer { InjectionGuard.revokeForeign([a, b]) }
        let sender = try PcapLink(interface: a, on: thread, filter: "tcp")
        let receiver = try PcapLink(interface: b, on: thread, filter: "tcp and dst port 7")
        let frame = Self.tcpFrame(from: "198.51.100.1", to: "198.51.100.2", dport: 7)
        try sender.inject(frame)
        let got = receiver.next(timeout: 2)
        #expect(got?.bytes == frame)
        // Revoked again: refused again.
        InjectionGuard.revokeForeign([a])
        #expect(throws: SafetyError.self) { _ = try PcapLink(interface: a, on: thread, filter: "tcp") }
    }

    @Test("a frame with a non-documentation address is refused at the seam and never reaches the target's wire")
    func nonDocumentationFrame() throws {
        let t = try LinuxTarget()
        defer { t.close() }
        // What arrives at the target's end of the veth (tcpspec made it: the guard lets it open).
        let wire = try PcapLink(interface: t.topology.targetInterface, on: t.topology.target, filter: "tcp")
        for (src, dst) in [("10.0.0.1", "192.0.2.2"), ("192.0.2.1", "8.8.8.8"), ("192.0.3.1", "192.0.2.2")] {
            let f = Self.tcpFrame(from: src, to: dst, dport: 9)
            do {
                try t.pcap.inject(f)
                Issue.record("injected \(src) → \(dst)")
            } catch let e as SafetyError {
                #expect(e.description.contains("\(src) → \(dst)") && e.description.contains("--allow-non-documentation-addresses"), "\(e)")
            }
        }
        #expect(throws: SafetyError.self) { try t.pcap.inject([UInt8](repeating: 0xff, count: 12) + [0x08, 0x06] + [UInt8](repeating: 0, count: 28)) }  // ARP
        #expect(wire.next(timeout: 0.3) == nil, "a refused frame reached the wire")
        // The other documentation ranges are sent, and arrive.
        for (src, dst) in [("198.51.100.1", "203.0.113.2"), ("192.0.2.1", "192.0.2.2")] {
            let f = Self.tcpFrame(from: src, to: dst, dport: 9)
            try t.pcap.inject(f)
            #expect(wire.next(timeout: 2)?.bytes == f, "\(src) → \(dst) did not arrive")
        }
    }

    @Test("the IPv6 documentation prefix is the only IPv6 sent")
    func ipv6Frames() throws {
        #expect(throws: Never.self) { try InjectionGuard.checkFrame(Self.tcpFrame(from: "2001:db8::1", to: "2001:db8:ffff::2"), linkType: .ethernet) }
        #expect(throws: SafetyError.self) { try InjectionGuard.checkFrame(Self.tcpFrame(from: "2001:db9::1", to: "2001:db8::2"), linkType: .ethernet) }
        #expect(throws: SafetyError.self) { try InjectionGuard.checkFrame(Self.tcpFrame(from: "2001:db8::1", to: "fe80::2"), linkType: .ethernet) }
        // Raw IP links: the same check without the Ethernet header.
        let raw = Array(Self.tcpFrame(from: "192.0.2.1", to: "10.9.9.9").dropFirst(14))
        #expect(throws: SafetyError.self) { try InjectionGuard.checkFrame(raw, linkType: .rawIP) }
    }

    @Test("sysctl and rtnetlink changes are refused in the root namespace (called from the test's own thread)")
    func rootNamespace() throws {
        // This thread is in the namespace the test process started in: the root namespace, pid 1's (where pid 1's
        // can be read: a sandbox may hide it even from root, and then the start-namespace rule is what refuses).
        let mine = Sys.threadNetnsInode()
        #expect(mine != nil && mine == Sys.netnsInode("/proc/self/ns/net"))
        if let root = Sys.netnsInode("/proc/1/ns/net") { #expect(mine == root, "the test must run in the root network namespace") }
        // Written back with its own value: even a broken guard would change nothing.
        let key = "net.ipv4.tcp_rfc1337"
        let before = try #require(Sys.readSysctl(key))
        let mtime = try FileManager.default.attributesOfItem(atPath: "/proc/sys/net/ipv4/tcp_rfc1337")[.modificationDate] as? Date
        do {
            try Sys.writeSysctl(key, before)
            Issue.record("wrote \(key) in the root namespace")
        } catch {
            let why = error.refusal ?? ""
            #expect(why.hasPrefix("tcpspec: refusing to write sysctl \(key): this thread is in the") && why.contains("network namespace"), "\(error)")
        }
        #expect(Sys.readSysctl(key) == before)
        #expect(try FileManager.default.attributesOfItem(atPath: "/proc/sys/net/ipv4/tcp_rfc1337")[.modificationDate] as? Date == mtime)
        // Setting lo up (already up: a no-op if the guard were broken).
        let nl = try Sys.rtnlOpen()
        defer { Sys.close(nl) }
        let lo = try Sys.linkIndex("lo")
        #expect(throws: SystemError.self) { try Sys.linkSet(nl, lo, up: true, mac: nil) }
        // The same calls in a namespace tcpspec makes are allowed.
        let t = try NamespaceThread(name: "own", newNamespace: true)
        defer { t.stop() }
        try t.run {
            try Sys.writeSysctl(key, "1")
            #expect(Sys.readSysctl(key) == "1")
            let nl = try Sys.rtnlOpen()
            defer { Sys.close(nl) }
            try Sys.linkSet(nl, try Sys.linkIndex("lo"), up: true, mac: nil)
        }
        #expect(Sys.readSysctl(key) == before)
    }
}
