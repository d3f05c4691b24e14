// libFuzzer harness: arbitrary bytes as one captured frame, through both of tcpspec's frame decoders, for
// every link type: Wire's Packet.decode (the live links and the CLI's frame reader) and the offline checker's
// in-place CapturedSegment.decode (with and without checksum verification).
//
// CapturedSegment reads libFuzzer's own buffer (exactly `size` bytes, so ASan sees any read past the frame:
// UnsafeRawBufferPointer's subscript is not bounds-checked in optimized builds). Beyond "no crash", where both
// decoders accept a frame they must agree on the TCP header fields the checker judges.
import Foundation
import Checker
import Wire

let links: [LinkType] = [.ethernet, .rawIP, .linuxSLL, .linuxSLL2, .null]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSegment(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let raw = UnsafeRawBufferPointer(start: size == 0 ? nil : data, count: size)
    let bytes = Array(raw)
    for link in links {
        let packet = try? Packet.decode(bytes, link: link)
        _ = CapturedSegment.decode(raw, link: link, verifyChecksums: false)
        guard case .segment(let s) = CapturedSegment.decode(raw, link: link), let p = packet else { continue }
        let t = p.tcp
        require(s.sourcePort == t.sourcePort && s.destinationPort == t.destinationPort && s.seq == t.seq && s.ack == t.ack
                     && s.flags == t.flags && s.window == t.window && s.urgentPointer == t.urgentPointer,
                     "the decoders disagree on a \(link) frame's TCP header")
        // Both take the segment's length from the IP header when the capture holds all of it.
        if !s.cut { require(Int(s.dataLength) == t.payload.count, "data length \(s.dataLength) vs payload \(t.payload.count) (\(link))") }
    }
    return 0
}
