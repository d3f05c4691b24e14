import Core
import Link
import Wire

/// The probe that ends a barrier, for every target with a real stack behind a link: a SYN from a port no
/// connection uses to the discard port, where nobody listens, which a stack answers with a RST acknowledging
/// it. The stack processes frames in order, so its reply comes after its replies to every frame before it.
struct BarrierProbe {
    static let testerPort: UInt16 = 1
    static let targetPort: UInt16 = 9

    /// The last probe's sequence number: each probe has its own, so a late reply to an earlier one is told apart.
    private var seq: UInt32 = 1

    /// The next probe to inject: its sequence number and frame.
    mutating func next(to target: some Target) -> (seq: UInt32, frame: [UInt8]) {
        seq &+= 1
        return (seq, target.frame(TCPHeader(sourcePort: Self.testerPort, destinationPort: Self.targetPort, seq: seq, flags: .syn)).encode())
    }

    /// Reads captured frames until the reply to probe `seq`: the frames before it, or nil when it did not come
    /// within `within` seconds of `clock` — or, while the stack goes on sending (it is processing frames, only
    /// busy), within `within` of its last frame, up to `Self.busyFactor` times `within` in all.
    /// `gone` is asked between frames: a stack that is no longer running is not waited for (a crash is then seen at
    /// once, not after the whole `within`).
    /// `resend` injects the probe again after each quarter of `within` without its reply, frames or none, so that a
    /// probe lost on the way (a veth backlog overflowing in a large round drops frames) costs a quarter of the
    /// wait, not the run. The stack answers every copy; later replies are skipped.
    static func frames(before seq: UInt32, on link: FrameLink, clock: any Timekeeper, within: Double, gone: () -> Bool = { false },
                       resend: (() throws -> Void)? = nil) -> [Frame]? {
        var frames: [Frame] = []
        let start = clock.now
        var deadline = start + within
        let cap = start + Self.busyFactor * within
        // The quiet slices are counted too: a link that answers "nothing" without waiting (a scripted one, on a
        // clock that only moves when told) ends the wait as a real one would.
        var quiet = 0.0, sinceSend = 0.0, last = start
        func elapsed(_ d: Double) {
            sinceSend += d
            if let resend, sinceSend >= within / 4 {
                sinceSend = 0
                try? resend()
            }
        }
        while clock.now < deadline, quiet < within {
            let slice = min(0.05, deadline - clock.now)
            guard let f = link.next(timeout: slice) else {
                if gone() { return nil }
                quiet += slice
                elapsed(max(slice, clock.now - last))
                last = clock.now
                continue
            }
            let now = clock.now
            elapsed(now - last)
            last = now
            deadline = min(cap, max(deadline, now + within))
            if let p = try? Packet.decode(f.bytes, link: link.linkType), p.tcp.destinationPort == testerPort, p.tcp.sourcePort == targetPort {
                if p.tcp.ack == seq &+ 1 { return frames }
                continue  // a late reply to an earlier probe
            }
            frames.append(f)
        }
        return nil
    }

    /// How much longer than `within` a busy stack (one still sending) is waited for.
    static let busyFactor = 4.0
}
