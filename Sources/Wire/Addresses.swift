import Core
/// A MAC address.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    public var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    public init(_ b: [UInt8]) {
        precondition(b.count == 6)
        bytes = (b[0], b[1], b[2], b[3], b[4], b[5])
    }

    public var array: [UInt8] { [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5] }

    /// The six octets appended to a frame being written.
    func append(to out: inout [UInt8]) {
        out.append(bytes.0)
        out.append(bytes.1)
        out.append(bytes.2)
        out.append(bytes.3)
        out.append(bytes.4)
        out.append(bytes.5)
    }

    public static func == (a: MACAddress, b: MACAddress) -> Bool { a.array == b.array }
    public func hash(into h: inout Hasher) { h.combine(array) }

    public var description: String { array.map { hex2($0) }.joined(separator: ":") }

    /// Locally administered unicast addresses derived from a seed, so runs never collide with real hardware.
    public static func local(_ seed: UInt32) -> MACAddress {
        MACAddress([0x02, 0x7c, UInt8(truncatingIfNeeded: seed >> 24), UInt8(truncatingIfNeeded: seed >> 16), UInt8(truncatingIfNeeded: seed >> 8), UInt8(truncatingIfNeeded: seed)])
    }
}

func hex2(_ b: UInt8) -> String {
    let d = Array("0123456789abcdef")
    return String([d[Int(b >> 4)], d[Int(b & 15)]])
}

/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)
    case v6([UInt8])

    public var bytes: [UInt8] {
        switch self {
        case .v4(let a): [UInt8(a >> 24), UInt8(truncatingIfNeeded: a >> 16), UInt8(truncatingIfNeeded: a >> 8), UInt8(truncatingIfNeeded: a)]
        case .v6(let b): b
        }
    }

    public var isV6: Bool { if case .v6 = self { true } else { false } }

    /// The address's octets appended to a frame being written.
    func append(to out: inout [UInt8]) {
        switch self {
        case .v4(let a):
            out.append(UInt8(a >> 24))
            out.append(UInt8(truncatingIfNeeded: a >> 16))
            out.append(UInt8(truncatingIfNeeded: a >> 8))
            out.append(UInt8(truncatingIfNeeded: a))
        case .v6(let b): out.append(contentsOf: b)
        }
    }

    public init?(_ text: String) {
        if text.contains(":") {
            guard let b = IPAddress.parse6(text) else { return nil }
            self = .v6(b)
        } else {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var v: UInt32 = 0
            for p in parts {
                guard let n = UInt32(p), n < 256 else { return nil }
                v = v << 8 | n
            }
            self = .v4(v)
        }
    }

    public init?(bytes b: [UInt8]) {
        switch b.count {
        case 4: self = .v4(UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3]))
        case 16: self = .v6(b)
        default: return nil
        }
    }

    static func parse6(_ text: String) -> [UInt8]? {
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ s: String) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            for g in s.split(separator: ":", omittingEmptySubsequences: false) {
                guard g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            all += Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    public var description: String {
        switch self {
        case .v4: return bytes.map(String.init).joined(separator: ".")
        case .v6(let b):
            var groups: [UInt16] = []
            for i in stride(from: 0, to: 16, by: 2) { groups.append(UInt16(b[i]) << 8 | UInt16(b[i + 1])) }
            // Compress the longest run of zero groups (RFC 5952).
            var best = (start: -1, len: 0), cur = (start: -1, len: 0)
            for (i, g) in groups.enumerated() {
                if g == 0 {
                    cur = cur.start < 0 ? (i, 1) : (cur.start, cur.len + 1)
                    if cur.len > best.len { best = cur }
                } else {
                    cur = (-1, 0)
                }
            }
            let hex = groups.map { String($0, radix: 16) }
            if best.len >= 2 {
                let l = hex[..<best.start].joined(separator: ":"), r = hex[(best.start + best.len)...].joined(separator: ":")
                return l + "::" + r
            }
            return hex.joined(separator: ":")
        }
    }
}
