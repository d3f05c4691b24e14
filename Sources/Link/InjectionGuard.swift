import Core
import Foundation
import Synchronization
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// A refusal on safety grounds: tcpspec would have sent where it must not, or changed a namespace it does not own.
public struct SafetyError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The one seam where frames leave tcpspec (`PcapLink`): it opens links for injection only on interfaces tcpspec
/// created itself (recorded by name, ifindex and namespace inode when `Topology`/`AgentTarget` make them), or on
/// an interface the user named with `--allow-foreign-interface NAME`; and it sends only frames whose IP source and
/// destination are in the documentation ranges (RFC 5737, RFC 3849) unless `--allow-non-documentation-addresses`.
public enum InjectionGuard {
    public struct Interface: Hashable, Sendable {
        public var name: String
        public var ifindex: Int32
        /// The inode of the network namespace the interface lives in (`net:[inode]`).
        public var namespace: UInt64
    }

    private static let created = Mutex<Set<Interface>>([])
    private static let foreign = Mutex<Set<String>>([])
    private static let anyAddress = Atomic<Bool>(false)

    /// Records an interface tcpspec just made; call on the thread of the namespace it lives in.
    public static func recordCreated(_ name: String) throws {
        let idx = try Sys.linkIndex(name)
        guard let ns = Sys.threadNetnsInode() else { throw SafetyError("cannot read this thread's network namespace to record \(name)") }
        created.withLock { _ = $0.insert(Interface(name: name, ifindex: idx, namespace: ns)) }
    }

    /// Forgets the interfaces of a namespace tcpspec has let go (its inode may be reused by a namespace it did not make).
    public static func forget(namespace: UInt64) {
        created.withLock { $0 = $0.filter { $0.namespace != namespace } }
    }

    public static var createdInterfaces: Set<Interface> { created.withLock { $0 } }

    /// Interfaces the user named explicitly (`--allow-foreign-interface NAME`).
    public static func allowForeign(_ names: [String]) {
        foreign.withLock { $0.formUnion(names) }
    }

    public static func revokeForeign(_ names: [String]) {
        foreign.withLock { $0.subtract(names) }
    }

    /// `--allow-non-documentation-addresses`.
    public static var allowsNonDocumentationAddresses: Bool {
        get { anyAddress.load(ordering: .relaxed) }
        set { anyAddress.store(newValue, ordering: .relaxed) }
    }

    /// Refuses to open `name` for injection unless tcpspec made it (same name, ifindex and namespace) or the user
    /// named it. Runs on the thread of the namespace the link is opened in.
    public static func checkOpen(_ name: String) throws {
        let idx = (try? Sys.linkIndex(name)) ?? -1
        let ns = Sys.threadNetnsInode() ?? 0
        if created.withLock({ $0.contains(Interface(name: name, ifindex: idx, namespace: ns)) }) { return }
        if foreign.withLock({ $0.contains(name) }) { return }
        throw SafetyError("tcpspec: refusing to inject on interface '\(name)' (ifindex \(idx), network namespace net:[\(ns)]): tcpspec did not create it; to inject on an interface you prepared yourself, name it with --allow-foreign-interface \(name)")
    }

    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 (RFC 5737) and 2001:db8::/32 (RFC 3849).
    @inline(__always)
    public static func isDocumentation(_ b: UnsafeRawBufferPointer, at o: Int, v6: Bool) -> Bool {
        if v6 { return b[o] == 0x20 && b[o + 1] == 0x01 && b[o + 2] == 0x0d && b[o + 3] == 0xb8 }
        let (a0, a1, a2) = (b[o], b[o + 1], b[o + 2])
        return (a0 == 192 && a1 == 0 && a2 == 2) || (a0 == 198 && a1 == 51 && a2 == 100) || (a0 == 203 && a1 == 0 && a2 == 113)
    }

    public static func isDocumentation(_ a: IPAddress) -> Bool {
        let bytes = a.bytes
        return bytes.withUnsafeBytes { isDocumentation($0, at: 0, v6: bytes.count == 16) }
    }

    /// Checks one frame about to be injected: an IPv4 or IPv6 packet between documentation addresses. A few byte
    /// compares, no decoding: it runs for every frame sent.
    public static func checkFrame(_ bytes: [UInt8], linkType: LinkType) throws {
        if allowsNonDocumentationAddresses { return }
        let ok: Bool? = bytes.withUnsafeBytes { b -> Bool? in
            var ip = 0
            if linkType == .ethernet {
                guard b.count >= 14 else { return nil }
                var type = UInt16(b[12]) << 8 | UInt16(b[13])
                ip = 14
                if type == 0x8100, b.count >= 18 {  // one VLAN tag
                    type = UInt16(b[16]) << 8 | UInt16(b[17])
                    ip = 18
                }
                guard type == 0x0800 || type == 0x86DD else { return nil }
            } else if linkType != .rawIP {
                return nil
            }
            guard b.count > ip else { return nil }
            switch b[ip] >> 4 {
            case 4:
                guard b.count >= ip + 20 else { return nil }
                return isDocumentation(b, at: ip + 12, v6: false) && isDocumentation(b, at: ip + 16, v6: false)
            case 6:
                guard b.count >= ip + 40 else { return nil }
                return isDocumentation(b, at: ip + 8, v6: true) && isDocumentation(b, at: ip + 24, v6: true)
            default:
                return nil
            }
        }
        guard let ok else {
            throw SafetyError("tcpspec: refusing to inject a \(bytes.count)-byte frame that is not an IPv4 or IPv6 packet (\(linkType)); tcpspec sends only TCP over IP between documentation addresses")
        }
        if !ok {
            let p = try? Packet.decode(bytes, link: linkType)
            let what = p.map { "\($0.ip.source) → \($0.ip.destination)" } ?? "addresses outside the documentation ranges"
            throw SafetyError("tcpspec: refusing to inject a frame \(what): only documentation addresses (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) are sent unless --allow-non-documentation-addresses is given")
        }
    }
}
