import Core
import CPcap
import Foundation
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// One frame seen or sent at the link, with its time.
public struct Frame: Sendable {
    public enum Direction: Sendable { case injected, captured }
    public var time: Double
    public var bytes: [UInt8]
    public var direction: Direction

    public init(time: Double, bytes: [UInt8], direction: Direction) {
        self.time = time
        self.bytes = bytes
        self.direction = direction
    }
}

public struct PcapError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(description: String) { self.description = description }
}

/// libpcap on one interface: inject frames, capture what arrives. Opened from the interface's namespace
/// thread (the capture socket belongs to the namespace it is opened in), used from any thread after that.
public final class PcapLink: @unchecked Sendable {
    private let handle: OpaquePointer
    private let fd: FileDescriptor
    public let linkType: LinkType
    public let interface: String
    /// What `next(timeout:)` waits on (its target's clock).
    public let clock: any Timekeeper

    /// - Parameters:
    ///   - filter: a BPF expression, e.g. "tcp" or "tcp and host 192.0.2.2".
    public init(interface: String, on thread: NamespaceThread, filter: String, clock: any Timekeeper = MonotonicClock()) throws {
        self.interface = interface
        self.clock = clock
        try PcapLibrary.require()
        let opened: (OpaquePointer, Int32, Int32) = try thread.run {
            // Injection only on interfaces tcpspec made, or that the user named (see `InjectionGuard`).
            try InjectionGuard.checkOpen(interface)
            var err = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
            guard let p = pcap_create(interface, &err) else { throw PcapError(description: "pcap_create(\(interface)): \(String(cString: err))") }
            func fail(_ what: String) -> PcapError {
                let msg = String(cString: pcap_geterr(p))
                pcap_close(p)
                return PcapError(description: "\(what) on \(interface): \(msg)")
            }
            pcap_set_snaplen(p, 65535)
            // Without immediate mode libpcap batches frames and replies arrive late.
            pcap_set_immediate_mode(p, 1)
            pcap_set_buffer_size(p, 8 << 20)
            pcap_set_timeout(p, 1)
            let rc = pcap_activate(p)
            if rc < 0 { throw fail("pcap_activate (\(rc))") }
            if pcap_setdirection(p, PCAP_D_IN) != 0 { throw fail("pcap_setdirection(IN)") }
            var prog = bpf_program()
            if pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0 { throw fail("pcap_compile(\"\(filter)\")") }
            defer { pcap_freecode(&prog) }
            if pcap_setfilter(p, &prog) != 0 { throw fail("pcap_setfilter") }
            if pcap_setnonblock(p, 1, &err) != 0 { throw fail("pcap_setnonblock") }
            let fd = pcap_get_selectable_fd(p)
            if fd < 0 { throw fail("pcap_get_selectable_fd") }
            return (p, fd, pcap_datalink(p))
        }
        handle = opened.0
        fd = FileDescriptor(rawValue: opened.1)
        switch opened.2 {
        case DLT_EN10MB: linkType = .ethernet
        case DLT_RAW, 101: linkType = .rawIP
        case 113: linkType = .linuxSLL
        default:
            pcap_close(handle)
            throw PcapError(description: "link type \(opened.2) on \(interface) is not Ethernet or raw IP")
        }
    }

    deinit { pcap_close(handle) }

    /// Sends one frame as is.
    public func inject(_ bytes: [UInt8]) throws {
        try InjectionGuard.checkFrame(bytes, linkType: linkType)
        // A burst can fill the socket's send buffer (ENOBUFS): wait for the link to drain and send again.
        for attempt in 0..<2000 {
            let n = bytes.withUnsafeBytes { pcap_inject(handle, $0.baseAddress, $0.count) }
            if n == bytes.count { return }
            let e = errno
            guard n < 0, e == ENOBUFS || e == EAGAIN, attempt < 1999 else { break }
            // Real time, whatever the clock: the kernel drains the queue meanwhile.
            Sys.sleep(attempt < 10 ? 10e-6 : 100e-6)
        }
        throw PcapError(description: "pcap_inject on \(interface): \(String(cString: pcap_geterr(handle)))")
    }

    /// The next captured frame, waiting up to `timeout` seconds (0: only what is already there).
    public func next(timeout: Double) -> Frame? {
        let deadline = clock.now + timeout
        while true {
            var hdr: UnsafeMutablePointer<pcap_pkthdr>?
            var data: UnsafePointer<UInt8>?
            let rc = pcap_next_ex(handle, &hdr, &data)
            if rc == 1, let hdr, let data {
                let h = hdr.pointee
                let time = Double(h.ts.tv_sec) + Double(h.ts.tv_usec) / 1e6
                return Frame(time: time, bytes: Array(UnsafeBufferPointer(start: data, count: Int(h.caplen))), direction: .captured)
            }
            if rc < 0 { return nil }
            let left = deadline - clock.now
            if left <= 0 { return nil }
            Sys.waitReadable(fd, timeout: left)
        }
    }
}

/// Writes frames as a classic pcap file (LINKTYPE_ETHERNET or LINKTYPE_RAW), microsecond timestamps.
public enum PcapWriter {
    public static func data(_ frames: [Frame], linkType: LinkType) -> Data {
        var d = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        u32(0xa1b2c3d4)
        u16(2)
        u16(4)
        u32(0)
        u32(0)
        u32(65535)
        u32(linkType == .rawIP ? 101 : 1)
        for f in frames {
            let sec = f.time.rounded(.down)
            u32(UInt32(sec))
            u32(UInt32(((f.time - sec) * 1e6).rounded(.down)))
            u32(UInt32(f.bytes.count))
            u32(UInt32(f.bytes.count))
            d.append(contentsOf: f.bytes)
        }
        return d
    }

    public static func write(_ frames: [Frame], linkType: LinkType, to path: String) throws {
        // Foundation's .atomic would leave a .dat.nosync* file behind if the run were killed mid-write.
        try AtomicFile.write(data(frames, linkType: linkType), to: path)
    }
}
