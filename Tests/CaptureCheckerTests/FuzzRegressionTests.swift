import Core
import Checker
import Foundation
import Link
import Spec
import TestSupport
import Testing
import Wire

/// Inputs the `segment` and `pcap` fuzz harnesses (Fuzz/Harnesses/) crashed on, through the calls they make,
/// and the in-memory capture reader the `pcap` harness uses. Fuzz/regressions/{segment,pcap}/ hold them.
@Suite("Fuzz regressions: frame decoders and captures")
struct FuzzRegressionTests {
    static let regressions = Repository.url("Fuzz/regressions")
    static let links: [LinkType] = [.ethernet, .rawIP, .linuxSLL, .linuxSLL2, .null]

    static func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: regressions.appendingPathComponent(path)))
    }

    static func decode(_ bytes: [UInt8], _ link: LinkType) -> CapturedSegment.Outcome {
        bytes.withUnsafeBytes { CapturedSegment.decode($0, link: link) }
    }

    /// An IPv6 header saying 8 octets of payload, then a hop-by-hop header saying it is 16 long: the TCP length
    /// is 8 - 16 = -8. UInt64(-8) trapped in the pseudo-header sum before the length was checked.
    static let shortPayloadV6: [UInt8] = {
        var b: [UInt8] = [0x60, 0, 0, 0, 0, 8, 0, 64]           // version 6, payload 8, next header 0 (hop-by-hop)
        b += [UInt8](repeating: 0, count: 15) + [1]               // ::1
        b += [UInt8](repeating: 0, count: 15) + [2]               // ::2
        b += [6, 1] + [UInt8](repeating: 0, count: 14)           // next TCP, length (1+1)*8 = 16
        b += [0x9c, 0x40, 0, 80] + [UInt8](repeating: 0, count: 8) + [0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]  // a SYN
        return b
    }()

    @Test("IPv6 extension headers longer than the payload: malformed, not a trap (hand-made)")
    func extensionLongerThanPayload() {
        guard case .malformed(let why) = Self.decode(Self.shortPayloadV6, .rawIP) else {
            Issue.record("decoded as something else: \(Self.decode(Self.shortPayloadV6, .rawIP))")
            return
        }
        #expect(why == "the TCP header does not fit the IP length")
        #expect(throws: WireError.self) { try Packet.decode(Self.shortPayloadV6, link: .rawIP) }
    }

    @Test("the fuzzer's frame: malformed as loopback (IPv6 after the 4-byte header), every link type decodes")
    func segmentRegression() throws {
        let b = try Self.bytes("segment/ipv6-ext-longer-than-payload.bin")
        guard case .malformed(let why) = Self.decode(b, .null) else {
            Issue.record("decoded as something else: \(Self.decode(b, .null))")
            return
        }
        #expect(why == "the TCP header does not fit the IP length")
        #expect(throws: WireError.self) { try Packet.decode(b, link: .null) }
        // The harness's loop: both decoders, every link type, with and without checksums.
        for link in Self.links {
            _ = try? Packet.decode(b, link: link)
            _ = b.withUnsafeBytes { CapturedSegment.decode($0, link: link, verifyChecksums: false) }
            _ = Self.decode(b, link)
        }
    }

    @Test("the fuzzer's capture: read from memory, the bad frame is unjudged with the reason, not a trap")
    func pcapRegression() throws {
        let spec = try Repository.spec("linux")
        let report = try CaptureChecker.check(file: PcapFile(bytes: Self.bytes("pcap/ipv6-ext-longer-than-payload.pcap"), name: "regression.pcap"), spec: spec)
        #expect(report.file == "regression.pcap")
        #expect(report.unjudged.contains { $0.hasPrefix("frame ") && $0.hasSuffix(": the TCP header does not fit the IP length") }, "\(report.unjudged)")
    }

    @Test("a capture read from memory gives the report the file on disk gives", arguments: ["pcap", "pcapng"])
    func memoryLikeFile(format: String) throws {
        let spec = try Repository.spec("rfc9293")
        let path = try #require(FileManager.default.enumerator(atPath: Repository.url("Corpus").path)?
            .compactMap { $0 as? String }.filter { $0.hasSuffix(".pcap") }.sorted().first)
        var file = Repository.url("Corpus").appendingPathComponent(path).path
        if format == "pcapng" {
            // libpcap's other reader: the same frames converted by editcap (installed with tshark).
            let out = tempPath("memory.pcapng")
            let (rc, text) = try sh("editcap -F pcapng '\(file)' '\(out)'")
            try #require(rc == 0, "\(text)")
            file = out
        }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        let fromDisk = try CaptureChecker.check(path: file, spec: spec)
        let fromMemory = try CaptureChecker.check(file: PcapFile(bytes: bytes, name: file), spec: spec)
        #expect(fromDisk.frames > 0 && fromMemory.frames == fromDisk.frames)
        #expect(fromMemory.tcpSegments == fromDisk.tcpSegments && fromMemory.violations == fromDisk.violations)
        #expect(fromMemory.connections.map(\.finalStates) == fromDisk.connections.map(\.finalStates))
        #expect(fromMemory.truncated == fromDisk.truncated)
    }

    @Test("bytes that are not a capture: a failure naming the input", arguments: [[], [0xd4, 0xc3, 0xb2], Array("not a capture".utf8)] as [[UInt8]])
    func notACapture(bytes: [UInt8]) {
        do {
            _ = try PcapFile(bytes: bytes, name: "junk.pcap")
            Issue.record("read \(bytes.count) junk bytes as a capture")
        } catch {
            #expect("\(error)".hasPrefix("junk.pcap: not a pcap or pcapng file libpcap can read"), "\(error)")
        }
    }
}
