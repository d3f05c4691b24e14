import Core
/// A TCP option (RFC 9293 §3.2, RFC 7323, RFC 2018), including malformed ones written on purpose.
public enum TCPOption: Hashable, Sendable {
    case endOfList
    case noOperation
    case maxSegmentSize(UInt16)
    case windowScale(UInt8)
    case sackPermitted
    case sack([SACKBlock])
    case timestamps(value: UInt32, echo: UInt32)
    /// Any kind with its data as given (the length byte is computed).
    case unknown(kind: UInt8, data: [UInt8])
    /// Bytes written verbatim: a wrong length byte, a truncated option.
    case raw([UInt8])

    public struct SACKBlock: Hashable, Sendable {
        public var left: UInt32
        public var right: UInt32
        public init(left: UInt32, right: UInt32) {
            self.left = left
            self.right = right
        }
    }

    public func encode(into out: inout [UInt8]) {
        switch self {
        case .endOfList: out.append(0)
        case .noOperation: out.append(1)
        case .maxSegmentSize(let v): out += [2, 4, UInt8(v >> 8), UInt8(v & 0xff)]
        case .windowScale(let s): out += [3, 3, s]
        case .sackPermitted: out += [4, 2]
        case .sack(let blocks):
            out += [5, UInt8(truncatingIfNeeded: 2 + 8 * blocks.count)]
            for b in blocks {
                out.appendBE(b.left)
                out.appendBE(b.right)
            }
        case .timestamps(let v, let e):
            out += [8, 10]
            out.appendBE(v)
            out.appendBE(e)
        case .unknown(let k, let d): out += [k, UInt8(truncatingIfNeeded: 2 + d.count)] + d
        case .raw(let b): out += b
        }
    }

    /// Parses the options area. Malformed options end the list as `.raw` with the remaining bytes: decoding
    /// never fails on options, because a stack's answer to a bad option is itself what tcpspec observes.
    static func decode(_ b: ArraySlice<UInt8>) -> [TCPOption] {
        var out: [TCPOption] = []
        var i = b.startIndex
        while i < b.endIndex {
            let kind = b[i]
            if kind == 0 {
                out.append(.endOfList)
                i += 1
                continue
            }
            if kind == 1 {
                out.append(.noOperation)
                i += 1
                continue
            }
            guard i + 1 < b.endIndex else {
                out.append(.raw(Array(b[i...])))
                break
            }
            let len = Int(b[i + 1])
            guard len >= 2, i + len <= b.endIndex else {
                out.append(.raw(Array(b[i...])))
                break
            }
            let d = b[(i + 2)..<(i + len)]
            switch (kind, len) {
            case (2, 4): out.append(.maxSegmentSize(UInt16(d[d.startIndex]) << 8 | UInt16(d[d.startIndex + 1])))
            case (3, 3): out.append(.windowScale(d[d.startIndex]))
            case (4, 2): out.append(.sackPermitted)
            case (5, _) where (len - 2) % 8 == 0:
                var blocks: [SACKBlock] = []
                var k = d.startIndex
                while k < d.endIndex {
                    blocks.append(SACKBlock(left: d.readBE32(k), right: d.readBE32(k + 4)))
                    k += 8
                }
                out.append(.sack(blocks))
            case (8, 10): out.append(.timestamps(value: d.readBE32(d.startIndex), echo: d.readBE32(d.startIndex + 4)))
            case (2, _), (3, _), (4, _), (5, _), (8, _): out.append(.raw(Array(b[i..<(i + len)])))
            default: out.append(.unknown(kind: kind, data: Array(d)))
            }
            i += len
        }
        return out
    }

    /// tcpdump / packetdrill spelling: `mss 1460`, `sackOK`, `TS val 1 ecr 0`, `nop`, `wscale 7`.
    public var notation: String {
        switch self {
        case .endOfList: "eol"
        case .noOperation: "nop"
        case .maxSegmentSize(let v): "mss \(v)"
        case .windowScale(let s): "wscale \(s)"
        case .sackPermitted: "sackOK"
        case .sack(let bs): "sack " + bs.map { "\($0.left):\($0.right)" }.joined(separator: " ")
        case .timestamps(let v, let e): "TS val \(v) ecr \(e)"
        case .unknown(let k, let d): "opt-\(k)" + (d.isEmpty ? "" : " " + d.map(hex2).joined())
        case .raw(let b): "raw " + b.map(hex2).joined()
        }
    }
}

extension Array where Element == UInt8 {
    mutating func appendBE(_ v: UInt32) {
        append(UInt8(v >> 24))
        append(UInt8(truncatingIfNeeded: v >> 16))
        append(UInt8(truncatingIfNeeded: v >> 8))
        append(UInt8(truncatingIfNeeded: v))
    }
    mutating func appendBE(_ v: UInt16) {
        append(UInt8(v >> 8))
        append(UInt8(v & 0xff))
    }
}

extension Collection where Element == UInt8, Index == Int {
    func readBE16(_ i: Int) -> UInt16 { UInt16(self[i]) << 8 | UInt16(self[i + 1]) }
    func readBE32(_ i: Int) -> UInt32 { UInt32(self[i]) << 24 | UInt32(self[i + 1]) << 16 | UInt32(self[i + 2]) << 8 | UInt32(self[i + 3]) }
}
