import Foundation

/// A pcapng reader of its own (the pcapng draft, IETF opsawg): libpcap reads a pcapng file only while every
/// interface has the first one's link type ("an interface has a type … different from the type of the first
/// interface"), yet one capture from several interfaces mixes them (Ethernet and Linux cooked, say). This reads
/// every section and interface, with each frame's own link type and timestamp resolution. Every length is
/// checked against the bytes there: a block that claims more than the file holds ends the reading as damage.
struct PcapngReader {
    let bytes: UnsafeRawBufferPointer

    struct Interface {
        var linkType: Int32
        var snaplen: UInt32
        /// Timestamp units per second.
        var unitsPerSecond: Double
    }

    /// Whether the bytes start like a pcapng file (a Section Header Block).
    static func looksLikePcapng(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count >= 12 && b.loadUnaligned(fromByteOffset: 0, as: UInt32.self) == 0x0A0D0D0A
    }

    func u32(_ o: Int, _ big: Bool) -> UInt32 {
        let v = bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self)
        return big ? UInt32(bigEndian: v) : UInt32(littleEndian: v)
    }

    func u16(_ o: Int, _ big: Bool) -> UInt16 {
        let v = bytes.loadUnaligned(fromByteOffset: o, as: UInt16.self)
        return big ? UInt16(bigEndian: v) : UInt16(littleEndian: v)
    }

    /// Calls `body` for every packet: its number, time, captured bytes, length on the wire and link type (DLT).
    func forEach(_ body: (Int, Double, UnsafeRawBufferPointer, Int, Int32) throws -> Void) rethrows -> PcapFile.End {
        var o = 0
        var big = false
        var interfaces: [Interface] = []
        var n = 0
        func damaged(_ why: String) -> PcapFile.End { .truncated(afterFrame: n, message: why) }
        while o < bytes.count {
            guard bytes.count - o >= 12 else { return damaged("the file ends inside a block header at offset \(o)") }
            let type = bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self)
            if type == 0x0A0D0D0A {
                // A new section: its own byte order and interfaces.
                let magic = bytes.loadUnaligned(fromByteOffset: o + 8, as: UInt32.self)
                if magic == 0x1A2B3C4D { big = false } else if magic == 0x4D3C2B1A { big = true } else {
                    return damaged("a section header at offset \(o) has no byte-order magic")
                }
                interfaces.removeAll()
            }
            let t = type == 0x0A0D0D0A ? type : (big ? UInt32(bigEndian: type) : UInt32(littleEndian: type))
            let length = Int(u32(o + 4, big))
            guard length >= 12, length % 4 == 0 else { return damaged("a block at offset \(o) claims \(length) bytes") }
            guard length <= bytes.count - o else {
                return damaged("a block at offset \(o) claims \(length) bytes where the file holds \(bytes.count - o)")
            }
            switch t {
            case 1:  // Interface Description Block
                guard length >= 20 else { return damaged("an interface description at offset \(o) is too short") }
                var iface = Interface(linkType: Int32(u16(o + 8, big)), snaplen: u32(o + 12, big), unitsPerSecond: 1e6)
                // Options: if_tsresol (code 9) sets the timestamp unit.
                var p = o + 16
                let end = o + length - 4
                while p + 4 <= end {
                    let code = u16(p, big), len = Int(u16(p + 2, big))
                    if code == 0 { break }
                    guard p + 4 + len <= end else { break }
                    if code == 9, len >= 1 {
                        let v = bytes[p + 4]
                        iface.unitsPerSecond = v & 0x80 != 0 ? pow(2, Double(v & 0x7f)) : pow(10, Double(v))
                    }
                    p += 4 + (len + 3) / 4 * 4
                }
                interfaces.append(iface)
            case 6, 2:  // Enhanced Packet Block; the obsolete Packet Block
                guard length >= 32 else { return damaged("a packet block at offset \(o) is too short") }
                let id = t == 6 ? Int(u32(o + 8, big)) : Int(u16(o + 8, big))
                guard id < interfaces.count else { return damaged("a packet at offset \(o) names interface \(id), which no block described") }
                let ts = UInt64(u32(o + 12, big)) << 32 | UInt64(u32(o + 16, big))
                let caplen = Int(u32(o + 20, big)), wire = Int(u32(o + 24, big))
                guard caplen <= length - 32 else { return damaged("a packet at offset \(o) claims \(caplen) captured bytes in a block of \(length)") }
                n += 1
                let iface = interfaces[id]
                try body(n, Double(ts) / iface.unitsPerSecond, UnsafeRawBufferPointer(rebasing: bytes[(o + 28)..<(o + 28 + caplen)]), wire, iface.linkType)
            case 3:  // Simple Packet Block: interface 0, no timestamp
                guard length >= 16, let iface = interfaces.first else { return damaged("a simple packet at offset \(o) has no interface") }
                let wire = Int(u32(o + 8, big))
                var caplen = min(wire, length - 16)
                if iface.snaplen > 0 { caplen = min(caplen, Int(iface.snaplen)) }
                n += 1
                try body(n, 0, UnsafeRawBufferPointer(rebasing: bytes[(o + 12)..<(o + 12 + caplen)]), wire, iface.linkType)
            default:
                break  // statistics, name resolution, custom blocks: nothing to judge
            }
            o += length
        }
        return .complete
    }
}
