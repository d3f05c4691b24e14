import Core
import CPcap
import Foundation
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// A capture file (pcap or pcapng) read through libpcap, frame by frame, without copying the bytes.
///
/// ```
/// let file = try PcapFile(path: "trace.pcapng")
/// let ended = try file.forEach { number, time, bytes, originalLength in ... }
/// ```
public final class PcapFile {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(description: String) { self.description = description }
    }

    private let handle: OpaquePointer
    public let path: String
    /// The file's link type (DLT), and tcpspec's name for it when it can decode it.
    public let dataLinkType: Int32
    public let linkType: LinkType?

    public init(path: String) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { throw Failure(description: "\(path): no such file") }
        if let m = PcapLibrary.missingMessage { throw Failure(description: m) }
        var err = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let h = pcap_open_offline(path, &err) else {
            // libpcap's own words ("unknown file format", "truncated dump file; tried to read 24 file header bytes…").
            throw Failure(description: "\(path): not a pcap or pcapng file libpcap can read: \(String(cString: err))")
        }
        handle = h
        dataLinkType = pcap_datalink(h)
        linkType = PcapFile.linkType(dataLinkType)
        if let d = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped),
           d.withUnsafeBytes({ PcapngReader.looksLikePcapng($0) }) {
            pcapng = d
        }
    }

    /// A capture held in memory (`name` stands for its path in messages and reports), read by the same libpcap
    /// readers as a file through fmemopen(3): what the fuzz harness uses, with no file to write per input.
    public init(bytes: [UInt8], name: String) throws {
        path = name
        // libpcap reads from the FILE until pcap_close; the copy lives as long as the handle.
        let copy = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        copy.copyMemory(from: bytes, byteCount: bytes.count)
        guard !bytes.isEmpty, let stream = fmemopen(copy, bytes.count, "rb") else {
            copy.deallocate()
            throw Failure(description: "\(name): not a pcap or pcapng file libpcap can read: empty")
        }
        var err = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let h = pcap_fopen_offline(stream, &err) else {
            fclose(stream)
            copy.deallocate()
            throw Failure(description: "\(name): not a pcap or pcapng file libpcap can read: \(String(cString: err))")
        }
        handle = h
        memory = copy
        dataLinkType = pcap_datalink(h)
        linkType = PcapFile.linkType(dataLinkType)
        if bytes.withUnsafeBytes({ PcapngReader.looksLikePcapng($0) }) { pcapng = Data(bytes) }
    }

    /// The bytes of a pcapng file (mapped, not read): its frames are read by tcpspec's own reader, which gives
    /// each frame its interface's link type (libpcap stops at an interface whose link type differs from the first).
    private var pcapng: Data?

    /// Whether the frames may have several link types (pcapng: one per interface).
    public var isPcapng: Bool { pcapng != nil }

    /// Calls `body` for each frame: its number, time, captured bytes (valid only during the call), length on the
    /// wire, and link type (tcpspec's decoder, nil when it has none, and the DLT number).
    public func forEachFrame(_ body: (Int, Double, UnsafeRawBufferPointer, Int, LinkType?, Int32) throws -> Void) rethrows -> End {
        if let ng = pcapng {
            return try ng.withUnsafeBytes { raw in
                try PcapngReader(bytes: raw).forEach { n, time, bytes, wire, dlt in try body(n, time, bytes, wire, PcapFile.linkType(dlt), dlt) }
            }
        }
        let link = linkType, dlt = dataLinkType
        return try forEach { n, time, bytes, wire in try body(n, time, bytes, wire, link, dlt) }
    }

    /// The bytes behind an in-memory capture, freed after libpcap has closed its stream.
    private var memory: UnsafeMutableRawPointer?

    deinit {
        pcap_close(handle)  // also fcloses the stream of init(bytes:)
        memory?.deallocate()
    }

    /// tcpspec's decoder for a DLT: Ethernet (with VLAN tags), raw IP, Linux cooked v1/v2, BSD loopback.
    public static func linkType(_ dlt: Int32) -> LinkType? {
        switch dlt {
        case 1: .ethernet          // DLT_EN10MB
        case 12, 14, 101: .rawIP   // DLT_RAW (its values differ by platform), LINKTYPE_RAW
        case 228, 229: .rawIP      // LINKTYPE_IPV4, LINKTYPE_IPV6
        case 113: .linuxSLL
        case 276: .linuxSLL2
        case 0: .null              // DLT_NULL (BSD loopback)
        default: nil
        }
    }

    /// How reading ended: at the end of the file, or cut short (a truncated last frame) with libpcap's message.
    public enum End: Sendable, Equatable {
        case complete
        case truncated(afterFrame: Int, message: String)
    }

    /// Calls `body` for each frame in order: its number (1-based, as Wireshark numbers frames), its time, its
    /// captured bytes (valid only during the call) and its length on the wire.
    public func forEach(_ body: (Int, Double, UnsafeRawBufferPointer, Int) throws -> Void) rethrows -> End {
        var n = 0
        while true {
            var hdr: UnsafeMutablePointer<pcap_pkthdr>?
            var data: UnsafePointer<UInt8>?
            let rc = pcap_next_ex(handle, &hdr, &data)
            if rc == 1, let hdr, let data {
                n += 1
                let h = hdr.pointee
                try body(n, Double(h.ts.tv_sec) + Double(h.ts.tv_usec) / 1e6, UnsafeRawBufferPointer(start: data, count: Int(h.caplen)), Int(h.len))
                continue
            }
            if rc == -2 { return .complete }  // PCAP_ERROR_BREAK: end of file
            return .truncated(afterFrame: n, message: String(cString: pcap_geterr(handle)))
        }
    }
}
