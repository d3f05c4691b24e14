import Core
import Foundation
import Link
import Model
import Oracle
import Spec
import Wire

/// A segment an endpoint sent that the spec cannot explain, where it was and what the spec expected.
public struct Violation: Sendable, Codable {
    /// The frame, numbered as Wireshark numbers it (1 is the first frame of the file).
    public var frame: Int
    public var time: Double
    /// Who sent it, `address:port`.
    public var endpoint: String
    /// The endpoint's state (the model's) before it sent the segment.
    public var state: TCPState
    /// The segment, in numbers relative to each side's initial sequence number.
    public var observed: String
    /// Its control bits (what tells one repeat of a fault from another fault; not in the JSON).
    public var flags: ControlBits = []
    public var expected: String
    public var rules: [String]
    public var citations: [String]
    /// Where the evidence is not conclusive, why.
    public var note: String?
    /// Frames of later segments showing the same violation (not listed one by one).
    public var repeats: [Int] = []

    enum CodingKeys: String, CodingKey {
        case frame, time, endpoint, state, observed, expected, rules, citations, note, repeats
    }
}

/// One connection: its two ends, how it was followed, what each end did against the spec.
public struct ConnectionReport: Sendable, Codable {
    public var index: Int
    /// The end that opened (sent the first SYN) or, mid-connection, sent the first judged segment.
    public var client: String
    public var server: String
    public var firstFrame: Int
    public var lastFrame: Int
    public var segments = 0
    /// "the SYN", "the SYN,ACK (the SYN was not captured)", "mid-connection …".
    public var start: String
    public var finalStates: [String] = []
    public var violations: [Violation] = []
    /// Segments whose text was all seen before.
    public var retransmissions = 0
    /// Segments below the furthest octet their end sent whose text was not seen before: reordered, or their first
    /// copy was lost before the capture point (Wireshark's "out of order"). Not judged.
    public var outOfOrder = 0
    /// Segments that sent again part of what they had sent, with new text after it (judged for the new part).
    public var partialRetransmissions = 0
    /// Window probes while the peer's window is zero (RFC 9293 §3.8.6.1): one octet of new text, or a segment
    /// one octet back.
    public var zeroWindowProbes = 0
    /// Segments one octet back while the window is open: keep-alives (RFC 9293 §3.8.4).
    public var keepAlives = 0
    /// Frames whose checksum is wrong: reported, and the segment is not used.
    public var badChecksums: [Int] = []
    public var offloadedChecksums = 0
    /// Evidence of capture loss or reordering at the capture point, as found.
    public var captureNotes: [String] = []
    /// What the SYNs offered, client's / server's, as captured ("MSS 1460/1460, window scale 7/7, timestamps
    /// yes/yes, SACK-permitted yes/yes"); nil when the handshake was not captured.
    public var options: String?
    /// Option judgements made: segments held against the effective send MSS, SACK blocks, TSecr echoes, and
    /// segments with text that PAWS discards at their receiver.
    public var optionsJudged = OptionCounts()
}

public struct OptionCounts: Sendable, Codable, Equatable {
    public var mss = 0
    public var sackBlocks = 0
    public var echoes = 0
    public var pawsDiscards = 0
}

public struct CaptureReport: Sendable, Codable {
    public var file: String
    public var profile: String
    public var frames = 0
    public var tcpSegments = 0
    public var connections: [ConnectionReport] = []
    /// Frames that could not be judged (malformed, not reassembled fragments, cut TCP headers) and why.
    public var unjudged: [String] = []
    /// Set when the file ends in a cut frame.
    public var truncated: String?
    public var seconds = 0.0
    public var violations: Int { connections.reduce(0) { $0 + $1.violations.count } }
}

/// The offline checker: follows every TCP connection of a capture and runs a model instance for each of its
/// two ends (from the SYN, or from an inferred synchronized state when the capture starts mid-connection).
/// A segment one end sends is explained by the spec if it is what the model expects from an input it received
/// (an ACK, a RST, a SYN,ACK), what an application call would make it send there (SEND, CLOSE, ABORT, OPEN), a
/// pure acknowledgment, or a retransmission; anything else is a violation, reported with the frame number, the
/// rule that decided and its citation. The segment then goes to the other end's model as its input.
///
/// ```
/// $ tcpspec check trace.pcapng --profile rfc9293
/// ```
public final class CaptureChecker {
    let spec: CompiledSpec
    var flows: [FlowKey: Flow] = [:]
    /// The flow of the previous segment: consecutive segments mostly belong to one connection.
    var last: (key: FlowKey, flow: Flow)?
    var finished: [ConnectionReport] = []
    var count = 0
    /// The workers judging connections, when there are several (this checker then only decodes).
    var shards: ShardPool?
    public private(set) var report: CaptureReport

    public init(spec: CompiledSpec, file: String) {
        self.spec = spec
        report = CaptureReport(file: file, profile: spec.profile)
    }

    struct FlowKey: Hashable {
        var a: Address
        var b: Address
        var pa: UInt16
        var pb: UInt16
    }

    /// How many threads judge connections by default: one per core (the reading thread decodes).
    public static var defaultJobs: Int { max(1, min(ProcessInfo.processInfo.activeProcessorCount, 16)) }

    /// Judges a whole file. `jobs`: threads judging connections (see `check(file:spec:jobs:)`).
    public static func check(path: String, spec: CompiledSpec, jobs: Int = CaptureChecker.defaultJobs) throws -> CaptureReport {
        try check(file: PcapFile(path: path), spec: spec, jobs: jobs)
    }

    /// Judges an opened capture (a file, or one held in memory: `PcapFile(bytes:name:)`).
    ///
    /// Connections are independent, so with `jobs` > 1 the reading thread decodes each frame and hands its segment
    /// to the worker its 4-tuple hashes to (every incarnation of a 4-tuple on one worker, in capture order, so a
    /// reopening still sees the TIME-WAIT before it); the report is the same as one thread's, connections in order
    /// of their first frame.
    public static func check(file: PcapFile, spec: CompiledSpec, jobs: Int = CaptureChecker.defaultJobs) throws -> CaptureReport {
        let start = Date()
        let path = file.path
        guard file.linkType != nil || file.isPcapng else {
            throw PcapFile.Failure(description: "\(path): link type \(file.dataLinkType) is not one tcpspec reads (Ethernet, raw IP, Linux cooked v1/v2, BSD loopback)")
        }
        let c = CaptureChecker(spec: spec, file: path)
        let pool = jobs > 1 ? ShardPool(spec: spec, file: path, jobs: jobs) : nil
        c.shards = pool
        let end = file.forEachFrame { n, time, bytes, wire, link, dlt in
            guard let link else {
                // An interface of a pcapng file whose link type tcpspec has no decoder for.
                c.report.frames = n
                if c.report.unjudged.count < 100 { c.report.unjudged.append("frame \(n): link type \(dlt) is not one tcpspec reads") }
                return
            }
            c.frame(n, time, bytes, link: link, wireLength: wire)
        }
        if case .truncated(let after, let message) = end { c.report.truncated = "the file ends inside frame \(after + 1) (\(message)); frames 1–\(after) were judged" }
        if let pool { c.finished = pool.finish() }
        c.finish()
        c.report.seconds = Date().timeIntervalSince(start)
        return c.report
    }

    /// Judges one frame. `wireLength`: its length on the wire, as the capture records it: a frame captured whole
    /// whose IP header claims more than it carries is malformed, not cut by the capture's snaplen.
    public func frame(_ n: Int, _ time: Double, _ bytes: UnsafeRawBufferPointer, link: LinkType, wireLength: Int? = nil) {
        report.frames = n
        switch CapturedSegment.decode(bytes, link: link) {
        case .other: return
        case .malformed(let why):
            if report.unjudged.count < 100 { report.unjudged.append("frame \(n): \(why)") }
        case .segment(let s) where s.cut && wireLength.map({ $0 <= bytes.count }) == true:
            report.tcpSegments += 1
            if report.unjudged.count < 100 {
                report.unjudged.append("frame \(n): malformed: its IP header claims \(s.dataLength) octets of TCP text, more than the \(bytes.count)-byte frame carries, and the capture did not cut the frame (captured = length on the wire)")
            }
        case .segment(let s):
            report.tcpSegments += 1
            let start = min(s.payloadOffset, bytes.count)
            let end = min(bytes.count, s.payloadOffset + Int(s.dataLength))
            let payload = UnsafeRawBufferPointer(rebasing: bytes[start..<max(start, end)])
            if let shards { shards.add(n, time, s, payload) } else { segment(n, time, s, payload) }
        }
    }

    /// The key of a segment's connection, the same both ways, and which end sent it (0: `a`).
    @inline(__always)
    static func key(_ s: CapturedSegment) -> (FlowKey, Int) {
        let forward = (s.source, s.sourcePort) < (s.destination, s.destinationPort)
        let key = forward ? FlowKey(a: s.source, b: s.destination, pa: s.sourcePort, pb: s.destinationPort)
            : FlowKey(a: s.destination, b: s.source, pa: s.destinationPort, pb: s.sourcePort)
        return (key, forward ? 0 : 1)
    }

    func segment(_ n: Int, _ time: Double, _ s: CapturedSegment, _ payload: UnsafeRawBufferPointer) {
        let (key, e) = CaptureChecker.key(s)
        if let l = last, l.key == key, !s.flags.contains(.syn) {
            l.flow.segment(n, time, s, payload, from: e)
            return
        }
        var flow = flows[key]
        // A SYN that is not its sender's earlier SYN again starts a new connection on the same ports.
        var reopening: Reopening?
        if let f = flow, s.flags.contains(.syn), !s.flags.contains(.ack), f.initialized, !f.isRetransmittedSYN(s, from: e) {
            let p = 1 - e
            if f.ends[p].model.tcpState == .timeWait {
                reopening = Reopening(end: p, oldRcvNxt: f.ends[p].model[.rcvNxt], oldSndNxt: f.ends[p].model[.sndNxt], tsRecent: f.ends[p].tsRecent,
                                      synSeq: s.seq, synTS: s.tsVal)
            }
            finished.append(f.close())
            flow = nil
        }
        if flow == nil {
            count += 1
            flow = Flow(spec: spec, index: count, names: [Self.name(key.a, key.pa), Self.name(key.b, key.pb)], frame: n)
            flow!.reopening = reopening
            flows[key] = flow
        }
        last = (key, flow!)
        flow!.segment(n, time, s, payload, from: e)
    }

    /// `address:port`, an IPv6 address in brackets.
    static func name(_ a: Address, _ port: UInt16) -> String { a.isV6 ? "[\(a)]:\(port)" : "\(a):\(port)" }

    public func finish() {
        for f in flows.values { finished.append(f.close()) }
        flows.removeAll()
        last = nil
        report.connections = finished.sorted { $0.firstFrame < $1.firstFrame }
        for i in report.connections.indices { report.connections[i].index = i + 1 }
    }
}

/// One end of a connection as the checker follows it.
struct End {
    var name: String
    var model: TCPModel
    var modelled = false
    /// Its initial sequence number, for relative numbers in reports.
    var iss: UInt32 = 0
    /// What its SYN (or SYN,ACK) offered; nil while none was captured.
    var offer: SYNOffer?
    var windowScaleOffered: UInt8? { offer?.windowScale }
    /// Whether it offered a Window Scale is not known: its SYN was not captured, or the capture's snaplen cut the
    /// SYN's options before one was found.
    var windowScaleUnknown: Bool { offer.map { $0.windowScale == nil && $0.cut } ?? true }
    /// Its SYN was seen whole enough to show it offered no Window Scale: scaling is off whatever the peer offered.
    var windowScaleAbsent: Bool { offer.map { $0.windowScale == nil && !$0.cut } ?? false }
    /// The largest text it may put in a segment with no options (RFC 9293 §3.7.1: the peer's MSS option, or the
    /// default without one, MUST-15); nil while the peer's SYN options are not known.
    var sendMSS: UInt32?
    /// Its latest TSval, in the frame and at the time it sent it (PAWS assumes the clock never runs back, RFC 7323
    /// §5.2: one that does is noted).
    var tsHigh: (value: UInt32, frame: Int, time: Double)?
    /// A Timestamps option it sent that the SYNs did not agree was noted (once).
    var tsNoted = false
    /// Text of the peer's that PAWS discards here (RFC 7323 §5.3 R1), until the peer sends it again: an ACK of
    /// it shows this end took it.
    var pawsDiscarded: (seq: UInt32, frame: Int, tsVal: UInt32, recent: UInt32)?
    var shift: UInt32 = 0
    /// What this end has sent (how far into sequence space: a retransmission is text within it).
    var sent = SentSegments()
    /// What the model says this end should send in reply to what it received, not yet seen.
    var pending: [Output] = []
    /// The model before its last input from the peer, and when that came (see `Flow.crossingWindow`).
    var beforeInput: (core: TCPModel.Core, pending: [Output], time: Double, frame: Int)?
    /// The peer's SYN this end received before it sent anything: an end never seen open may have had no socket
    /// at all (CLOSED, RFC 9293 §3.10.7.1), which its first reply tells.
    var firstSYN: Segment?
    /// The peer's latest segments as this end received them (the last 32 to 64): a reset this end sends from CLOSED may
    /// answer one of them that reached it only after its own reset, though the capture point saw it before.
    var recentInputs: [(frame: Int, time: Double, seg: Segment)] = []
    /// Text on the peer's SYN this end received, and whether that SYN carried a Fast Open option with a cookie
    /// (nil: no Fast Open option).
    var synText: (length: UInt32, cookie: Bool?) = (0, nil)
    /// The model before it was made to send what the peer acknowledged but the capture did not show, and where
    /// it had sent up to: undone if this end then sends new text from there (the ACK was of data never sent).
    var provisional: (core: TCPModel.Core, sndNxt: UInt32)?
    /// The text it was seen to send, for telling retransmissions from gap fills and comparing their octets.
    var seen = SeenText()
    /// Where it first sent its SYN,ACK and its FIN (sequence number, frame).
    var synAt: (seq: UInt32, frame: Int)?
    var finAt: (seq: UInt32, frame: Int)?
    /// The furthest ACK field it sent, and when: an acknowledgment never moves back.
    var highestAck: (ack: UInt32, frame: Int, time: Double)?
    /// The furthest right edge (SEG.ACK + SEG.WND) the peer offered it, and in which frame.
    var offeredEdge: (edge: UInt32, frame: Int)?
    /// TS.Recent (RFC 7323 §4.3: the peer's TSval of its latest segment at or below Last.ACK.sent), and when it
    /// was set: PAWS's reference (§5.3), and RFC 6191's test on a reused 4-tuple.
    var tsRecent: UInt32?
    var tsRecentTime = 0.0
    /// Inputs delivered to it so far (`recentInputs` keeps only the last few).
    var inputCount = 0
    /// Its FIN taken as CLOSE, and the model as if it had been SHUTDOWN instead, with the replies still expected
    /// and `inputCount` then: where the profile's CLOSE is a full close (Linux's `close()` resets for text that
    /// arrives after it), only what the end does next tells a `shutdown(SHUT_WR)` apart (`halfClosed`).
    var halfClose: (core: TCPModel.Core, pending: [Output], inputCount: Int)?
}

/// A new connection on the 4-tuple of one whose end `end` was in TIME-WAIT when the SYN came (RFC 9293 §3.6.1
/// MAY-2, RFC 6191): what the old incarnation had reached, for judging the reopening.
struct Reopening {
    var end: Int
    var oldRcvNxt: UInt32
    var oldSndNxt: UInt32
    var tsRecent: UInt32?
    var synSeq: UInt32
    var synTS: UInt32?
}

final class Flow {
    let spec: CompiledSpec
    var ends: [End]
    var initialized = false
    var windowsKnown = true
    var report: ConnectionReport
    /// ACKs beyond what their end had received when sent: capture loss, or an ACK of data never sent — decided
    /// at the end, when the whole capture has shown what the peer sent.
    var ackChecks: [(frame: Int, time: Double, end: Int, ack: UInt32, state: TCPState, observed: String)] = []
    var resetAt: (frame: Int, time: Double, by: Int)?
    /// Sequence space one end sent that never reached the capture point was seen (a gap filled in).
    var sawLoss = false
    /// Set when this connection reuses the 4-tuple of one still in TIME-WAIT at one end.
    var reopening: Reopening?
    var rtt: Double?
    var synTime: Double?
    /// Whether the Timestamps option is in effect (RFC 7323 §3.2: on both SYNs); nil while not known.
    var timestamps: Bool?
    /// SACK blocks beyond what the peer had been seen to send when they came: decided at the end, when the whole
    /// capture has shown what it sent (as `ackChecks`).
    var sackChecks: [(frame: Int, time: Double, end: Int, right: UInt32, state: TCPState, observed: String)] = []
    /// Whether each state is synchronized, by state index (read per segment: kept apart from the names).
    let synchronized: [Bool]

    init(spec: CompiledSpec, index: Int, names: [String], frame: Int) {
        self.spec = spec
        let config = TCPModel.Configuration(receiveWindow: 65535, sendMSS: 1 << 30)
        ends = names.map {
            var m = TCPModel(spec: spec, configuration: config)
            // Input classes are the fuzzer's coverage map: not needed here, and a quarter of a transition's cost.
            m.recordsInputClass = false
            return End(name: $0, model: m)
        }
        synchronized = spec.states.map(\.synchronized)
        report = ConnectionReport(index: index, client: names[0], server: names[1], firstFrame: frame, lastFrame: frame, start: "")
    }

    func isRetransmittedSYN(_ s: CapturedSegment, from e: Int) -> Bool {
        ends[e].sent.any && s.seq == ends[e].iss
    }

    func rel(_ s: CapturedSegment, from e: Int) -> String {
        let p = 1 - e
        var out = (s.flags.intersection([.syn, .fin, .rst, .psh, .urg, .ack])).notation + " "
        let seq = s.seq &- ends[e].iss
        out += "\(seq):\(seq &+ s.dataLength)(\(s.dataLength))"
        if s.flags.contains(.ack) { out += " ack \(s.ack &- ends[p].iss)" }
        out += " win \(s.window)"
        return out
    }

    func rel(_ o: Segment, of e: Int) -> String {
        let p = 1 - e
        var out = (o.ctl.intersection([.syn, .fin, .rst, .ack])).notation + " "
        let seq = o.seq &- ends[e].iss
        out += "\(seq):\(seq &+ o.dataLength)(\(o.dataLength))"
        if o.ctl.contains(.ack) { out += " ack \(o.ack &- ends[p].iss)" }
        return out
    }

    // MARK: following a connection

    func segment(_ n: Int, _ time: Double, _ s: CapturedSegment, _ payload: UnsafeRawBufferPointer, from e: Int) {
        report.lastFrame = n
        report.segments += 1
        switch s.checksum {
        case .bad:
            // Reported, not trusted: a segment that was corrupted may not be what the end sent.
            report.badChecksums.append(n)
            return
        case .offloaded: report.offloadedChecksums += 1
        default: break
        }
        if !initialized {
            guard start(n, time, s, from: e) else { return }
        }
        judge(n, time, s, payload, from: e)
        deliver(n, time, s, from: e)
    }

    /// Sets both models up from the first segment: from a SYN, from a SYN,ACK, or mid-connection from a
    /// segment that carries an ACK. Returns false while nothing lets it start (a RST without ACK, say).
    func start(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int) -> Bool {
        let p = 1 - e
        if s.flags.contains(.syn), !s.flags.contains(.ack) {
            report.client = ends[e].name
            report.server = ends[p].name
            report.start = "the SYN"
            // The SYN is the OPEN call's output; the listener is the other end's passive OPEN.
            let tr = ends[e].model.call(.openActive)
            let shift = ends[e].model.adopt(.iss(s.seq))
            ends[e].iss = s.seq
            ends[e].pending = tr.outputs.map { $0.followingISS(shift) }
            _ = ends[p].model.call(.openPassive)
            synTime = time
            initialized = true
            return true
        }
        guard s.flags.contains(.ack) else {
            if report.captureNotes.count < 20 { report.captureNotes.append("frame \(n): not judged — nothing before it to follow the connection from") }
            return false
        }
        let clientISS: UInt32, serverISS: UInt32
        let server: Int
        if s.flags.contains(.syn) {
            server = e
            serverISS = s.seq
            clientISS = s.ack &- 1
            report.start = "the SYN,ACK (the SYN was not captured)"
        } else {
            // Mid-connection: this end has sent up to SEG.SEQ and received up to SEG.ACK.
            server = p
            clientISS = s.seq &- 1
            serverISS = s.ack &- 1
            windowsKnown = false
            report.start = "mid-connection at frame \(n): both ends inferred ESTABLISHED (window scale unknown: windows not judged)"
        }
        let client = 1 - server
        report.client = ends[client].name
        report.server = ends[server].name
        // Drive each model through the handshake the numbers imply, its own segments unseen.
        _ = ends[client].model.call(.openActive)
        ends[client].model.adopt(.iss(clientISS))
        ends[client].iss = clientISS
        _ = ends[server].model.call(.openPassive)
        _ = ends[server].model.receive(Segment(seq: clientISS, ctl: .syn, window: 65535))
        ends[server].model.adopt(.iss(serverISS))
        ends[server].iss = serverISS
        ends[client].sent.noteEnd(clientISS &+ 1)
        if !s.flags.contains(.syn) {
            _ = ends[client].model.receive(Segment(seq: serverISS, ack: clientISS &+ 1, ctl: [.syn, .ack], window: 1 << 30))
            _ = ends[server].model.receive(Segment(seq: clientISS &+ 1, ack: serverISS &+ 1, ctl: .ack, window: 1 << 30))
            ends[server].sent.noteEnd(serverISS &+ 1)
            for k in 0..<2 { ends[k].model.adopt(.receiveWindow(1 << 30)) }
        } else {
            // The server's SYN,ACK is the reply the model expects to the unseen SYN.
            var m = TCPModel(spec: spec, configuration: ends[server].model.configuration)
            m.recordsInputClass = false
            _ = m.call(.openPassive)
            let tr = m.receive(Segment(seq: clientISS, ctl: .syn, window: 65535))
            let shift = m.adopt(.iss(serverISS))
            ends[server].model = m
            ends[server].pending = tr.outputs.map { $0.followingISS(shift) }
        }
        initialized = true
        return true
    }

    func bindISS(_ e: Int, _ iss: UInt32) {
        let shift = ends[e].model.adopt(.iss(iss))
        ends[e].iss = iss
        ends[e].pending = ends[e].pending.map { $0.followingISS(shift) }
    }

    static let classBits: ControlBits = [.syn, .ack, .fin, .rst]

    func matches(_ o: Segment, _ s: CapturedSegment) -> Bool {
        // A reset may carry an ACK or not: the receiver's reset check reads SEQ only (RFC 9293 §3.10.7.4), and
        // stacks send RST,ACK where the RFC writes <CTL=RST> (Linux's aborts).
        let bits: ControlBits = o.ctl.contains(.rst) && s.flags.contains(.rst) ? [.syn, .fin, .rst] : Flow.classBits
        guard o.ctl.intersection(bits) == s.flags.intersection(bits), o.seq == s.seq, o.length == s.length else { return false }
        // A SYN,ACK acknowledges exactly the peer's SYN; other ACK fields may lag behind (delayed ACKs).
        if o.ctl.contains(.syn), o.ctl.contains(.ack) { return o.ack == s.ack }
        return true
    }

    /// The index of the last of the consecutive outputs that, sent as one segment, are `s`: one output, or
    /// text followed by its FIN (a stack may piggyback the FIN of a CLOSE on the last text of a SEND).
    func coalescedMatch<C: RandomAccessCollection<Output>>(_ outs: C, _ s: CapturedSegment) -> Int? where C.Index == Int {
        for k in outs.indices {
            var acc = outs[k].segment
            if matches(acc, s) { return k }
            var j = k + 1
            while j < outs.count, outs[j].segment.seq == acc.seq &+ acc.length, !acc.ctl.contains(.fin) {
                let next = outs[j].segment
                acc.ctl.formUnion(next.ctl)
                acc.dataLength &+= next.dataLength
                acc.ack = next.ack
                if matches(acc, s) { return j }
                j += 1
            }
        }
        return nil
    }

    /// Whether the spec explains the segment `e` sent; a violation if not.
    func judge(_ n: Int, _ time: Double, _ s: CapturedSegment, _ payload: UnsafeRawBufferPointer, from e: Int) {
        let p = 1 - e
        let stateIndex = ends[e].model.state
        var stateBefore: TCPState { spec.states[stateIndex].state }
        // A SYN binds an ISS still symbolic (the passive end's, on its SYN,ACK).
        if s.flags.contains(.syn), !ends[e].model.issBound { bindISS(e, s.seq) }
        // Window scaling (RFC 7323 §2.2): offered on both SYNs, it applies to every later segment.
        if s.flags.contains(.syn) {
            judgeSYNOptions(n, time, s, from: e, state: stateBefore)
            if s.flags.contains(.ack) {
                if let a = ends[e].windowScaleOffered, let b = ends[p].windowScaleOffered {
                    ends[e].shift = UInt32(min(14, a))
                    ends[p].shift = UInt32(min(14, b))
                } else if !ends[e].windowScaleAbsent && !ends[p].windowScaleAbsent {
                    // Neither SYN shows the option missing: scaling may be in effect, by an unknown shift. An unknown
                    // scale is never taken as 0 (every window would look 2^k times too small): windows are not judged.
                    windowsKnown = false
                    for k in 0..<2 { ends[k].model.adopt(.receiveWindow(1 << 30)) }
                    let why = [e, p].filter { ends[$0].windowScaleUnknown }.map {
                        ends[$0].offer == nil ? "the SYN of \(ends[$0].name) was not captured" : "the SYN options of \(ends[$0].name) are cut by the capture's snaplen"
                    }.joined(separator: ", and ")
                    report.captureNotes.append("frame \(n): window scale unknown: \(why); windows not judged")
                } else {
                    ends[e].shift = 0
                    ends[p].shift = 0
                }
                if let t = synTime { rtt = time - t }
            }
        } else if windowsKnown {
            // What this end offers is what the model's acceptability test judges the peer against.
            ends[e].model.adopt(.receiveWindow(UInt32(s.window) << ends[e].shift))
        }
        // Noted when this segment has been judged: until then `sent` is what the end sent before it.
        defer { ends[e].sent.noteEnd(s.seq &+ s.length) }
        ackNeverBackwards(n, time, s, from: e, state: stateBefore)
        controlResentElsewhere(n, time, s, from: e, state: stateBefore)
        judgeOptions(n, time, s, from: e, state: stateBefore)
        if s.flags.contains([.syn, .ack]), let r = reopening, r.end == e {
            judgeReopening(n, time, s, r, from: e)
            reopening = nil
        }
        if let prov = ends[e].provisional, s.dataLength > 0 || s.flags.contains(.fin), !s.flags.contains(.syn) {
            if s.seq == prov.sndNxt, !ends[e].sent.covers(seq: s.seq, length: s.length) { ends[e].model.core = prov.core }
            ends[e].provisional = nil
        }
        // An ACK beyond what this end has received: the peer's segments were not captured, or this end
        // acknowledges data never sent. Decided at the end; the model is brought up to the ACK meanwhile.
        let rcvNxt = ends[e].model[.rcvNxt]
        if s.flags.contains(.ack), !s.flags.contains(.rst), synchronized[ends[e].model.state], TCPModel.seqLess(rcvNxt, s.ack) {
            let gap = s.ack &- rcvNxt
            if gap < 1 << 30 {
                if !acknowledgesPAWSDiscarded(n, time, s, from: e, state: stateBefore) {
                    ackChecks.append((n, time, e, s.ack, stateBefore, rel(s, from: e)))
                }
                _ = ends[e].model.receive(Segment(seq: rcvNxt, ack: ends[e].model[.sndNxt], ctl: .ack, window: 1 << 30, dataLength: gap))
                ends[e].pending.removeAll()
                // The peer's model sends it too (its last segments were not captured), or this ACK would reach
                // it as an ACK of something it never sent.
                // Provisional: if the peer then sends new text from where it was, the ACK was of data never sent.
                let pNxt = ends[p].model[.sndNxt]
                if synchronized[ends[p].model.state], TCPModel.seqLess(pNxt, s.ack) {
                    var c = ends[p].model
                    let tr = c.call(.send(s.ack &- pNxt))
                    if tr.outputs.contains(where: { $0.segment.seq == pNxt }) {
                        ends[p].provisional = (ends[p].model.core, pNxt)
                        ends[p].model = c
                    }
                }
            }
        }
        // Its text against what this end was seen to send: octets sent again must be the octets sent first.
        var textKind = SeenText.Kind.new
        if s.dataLength > 0, !s.flags.contains(.rst) {
            let (kind, mismatch) = ends[e].seen.note(seq: s.seq &+ (s.flags.contains(.syn) ? 1 : 0), length: s.dataLength, payload: payload, frame: n)
            textKind = kind
            if let m = mismatch { resentDifferently(n, time, s, m, from: e, state: stateBefore) }
        }
        // A retransmission is the end sending again what it sent; text below the furthest sent but never seen
        // fills a gap (reordered, or its first copy lost before the capture point).
        if ends[e].sent.covers(seq: s.seq, length: s.length), !s.flags.contains(.rst) {
            if textKind == .gapFill { report.outOfOrder += 1 } else { report.retransmissions += 1 }
            return
        }
        // One octet back, empty or with that octet again: a keep-alive (RFC 9293 §3.8.4), or the zero-window
        // probe Linux sends in that form (tcp_xmit_probe_skb) while the peer's window is zero.
        if s.length <= 1, !s.flags.contains(.syn), !s.flags.contains(.rst), s.seq == ends[e].model[.sndNxt] &- 1, !s.flags.contains(.fin) {
            if ends[e].model[.sndWnd] == 0, windowsKnown { report.zeroWindowProbes += 1 } else { report.keepAlives += 1 }
            return
        }
        // Part sent before, the rest new (a sender that cut its text anew, or resent from SND.UNA after a window
        // probe): the old part is a retransmission, the new part is judged like any text.
        var s = s
        if s.dataLength > 0, let sentEnd = ends[e].sent.highestEnd, !s.flags.contains(.syn), !s.flags.contains(.rst), TCPModel.seqLess(s.seq, sentEnd),
           sentEnd == ends[e].model[.sndNxt], !TCPModel.seqLess(s.seq, ends[e].model[.sndUna]) {
            let old = sentEnd &- s.seq
            if old < s.dataLength {
                s.seq = sentEnd
                s.dataLength -= old
                report.partialRetransmissions += 1
            }
        }
        if zeroWindowProbe(s, from: e) { return }
        // A segment beyond SND.NXT (text, a FIN, or an ACK sent from there): what the end sent before it did not
        // reach the capture point (lost on the way, or reordered): the model sends it, so that this one is judged.
        let sndNxt = ends[e].model[.sndNxt]
        if !s.flags.contains(.syn), !s.flags.contains(.rst), synchronized[ends[e].model.state],
           TCPModel.seqLess(sndNxt, s.seq), s.seq &- sndNxt < 1 << 30 {
            let gap = s.seq &- sndNxt
            var c = ends[e].model
            let tr = c.call(.send(gap))
            if tr.outputs.contains(where: { $0.segment.seq == sndNxt }) {
                ends[e].model = c
                sawLoss = true
                if report.captureNotes.count < 50 {
                    report.captureNotes.append("frame \(n): \(gap) octets from \(ends[e].name) before it were not seen at the capture point (lost before it or by the capture, or reordered)")
                }
            }
        }
        beyondWindow(n, time, s, from: e, state: stateBefore)
        shrunkWindow(n, time, s, from: e, state: stateBefore)
        if fastOpen(n, s, from: e) { return }
        // Its ACK field says what it had received when it sent this: behind RCV.NXT, at where RCV.NXT was before
        // the last input, it left before that input arrived (they crossed in flight): judged from there first.
        let sentBefore = s.flags.contains(.ack) && !s.flags.contains(.rst) && TCPModel.seqLess(s.ack, ends[e].model[.rcvNxt])
        if sentBefore, crossed(n, time, s, from: e) { return }
        var best: Explanation?
        if explain(s, &ends[e], &best) { return }
        if closedPort(n, s, from: e) { return }
        if closedReply(n, time, s, from: e) { return }
        if !sentBefore, crossed(n, time, s, from: e) { return }
        if halfClosed(n, s, from: e) { return }
        violation(n, time, s, from: e, state: stateBefore, best: best)
    }

    typealias Explanation = (calls: [UserCall], transitions: [Transition], outputs: [Output])

    /// An end's ACK field never moves back: what it acknowledged it has received (RFC 9293 §3.4, the ACK is
    /// cumulative). One behind, seen within a round trip of the furthest, may have been reordered on its way to
    /// the capture point, and is noted.
    func ackNeverBackwards(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int, state: TCPState) {
        guard s.flags.contains(.ack), !s.flags.contains(.rst) else { return }
        guard let high = ends[e].highestAck else {
            ends[e].highestAck = (s.ack, n, time)
            return
        }
        if !TCPModel.seqLess(s.ack, high.ack) {
            ends[e].highestAck = (s.ack, n, time)
            return
        }
        guard high.ack &- s.ack < 1 << 30 else { return }
        let p = 1 - e
        if time - high.time < crossingWindow {
            if report.captureNotes.count < 50 {
                report.captureNotes.append("frame \(n): \(ends[e].name) acknowledges \(s.ack &- ends[p].iss), behind \(high.ack &- ends[p].iss) in frame \(high.frame) sent just before: reordered before the capture point")
            }
            return
        }
        fault(n, time, s, from: e, state: state, expected: "an ACK of at least \(high.ack &- ends[p].iss), acknowledged in frame \(high.frame)",
              citation: "RFC 9293 §3.4 \"An acknowledgment by TCP ... means that ... all sequence numbers up to but not including this one have been received\"",
              note: "its acknowledgment moves backwards by \(high.ack &- s.ack) octets")
    }

    /// New text past the peer's current right edge but within one it offered before: the peer shrank its
    /// window (RFC 9293 §3.8.6: a receiver SHOULD NOT, SHLD-14; a sender MUST be robust to it, MUST-34). Within
    /// a round trip of the peer's last segment this text may have been on its way before the smaller window
    /// reached the sender: noted. Later the sender knew the new edge, and SHLD-15 asks it not to send new data
    /// past it: flagged as that, once (not as text the send rule never allowed). Either way the model's window is
    /// opened to the edge offered.
    func shrunkWindow(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int, state: TCPState) {
        guard windowsKnown, s.dataLength > 0, !s.flags.contains(.syn), !s.flags.contains(.rst), synchronized[ends[e].model.state],
              let offer = ends[e].offeredEdge else { return }
        let m = ends[e].model
        let end = s.seq &+ s.dataLength, edge = m[.sndUna] &+ m[.sndWnd]
        guard TCPModel.seqLess(edge, end), !TCPModel.seqLess(offer.edge, end), offer.edge &- edge < 1 << 30 else { return }
        // Within a round trip of the peer's last segment (the update that shrank it, or one after it) it may have
        // crossed that update; later, the sender knew the new edge.
        let crossing = ends[e].recentInputs.last.map { time - $0.time < crossingWindow } ?? false
        Flow.openWindow(&ends[e].model, to: offer.edge)
        if !crossing {
            fault(n, time, s, from: e, state: state, expected: "no new text past the right edge \(ends[1 - e].name) now offers (\(edge &- ends[e].iss)), once the sender knows it",
                  citation: "RFC 9293 §3.8.6 SHLD-15 \"If this happens, the sender SHOULD NOT send new data, but SHOULD retransmit normally the old unacknowledged data\"",
                  note: "sends new text past the right edge \(ends[1 - e].name) shrank its window to, within the one it offered in frame \(offer.frame)")
        } else if report.captureNotes.count < 50 {
            report.captureNotes.append("frame \(n): \(ends[e].name) sends text past the right edge \(ends[1 - e].name) now offers but within the one it offered in frame \(offer.frame): the peer shrank its window (RFC 9293 §3.8.6, SHLD-14), and this may have left before the smaller window arrived")
        }
    }

    /// Shows the model a window update from the peer (an ACK of SND.UNA) that puts the right edge at `edge`: where
    /// the capture shows the end sending past the window the model holds (a probe, a shrink, a fault reported).
    static func openWindow(_ m: inout TCPModel, to edge: UInt32) {
        _ = m.receive(Segment(seq: m[.rcvNxt], ack: m[.sndUna], ctl: .ack, window: edge &- m[.sndUna]))
    }

    /// A SYN or FIN occupies one sequence number for good (RFC 9293 §3.4): sent again, it is sent at the same
    /// one. A SYN,ACK resent with another ISS, or a FIN resent at another sequence number, tells the peer a
    /// different stream.
    func controlResentElsewhere(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int, state: TCPState) {
        guard !s.flags.contains(.rst) else { return }
        var wrong: (what: String, first: (seq: UInt32, frame: Int))?
        if s.flags.contains([.syn, .ack]) {
            if let first = ends[e].synAt, first.seq != s.seq { wrong = ("its SYN,ACK with ISS \(s.seq)", first) }
            if ends[e].synAt == nil { ends[e].synAt = (s.seq, n) }
        }
        if s.flags.contains(.fin) {
            let at = s.seq &+ s.dataLength &+ (s.flags.contains(.syn) ? 1 : 0)
            if let first = ends[e].finAt, first.seq != at { wrong = ("its FIN at sequence number \(at &- ends[e].iss)", (first.seq &- ends[e].iss, first.frame)) }
            if ends[e].finAt == nil { ends[e].finAt = (at, n) }
        }
        guard let w = wrong else { return }
        fault(n, time, s, from: e, state: state, expected: "the same sequence number as in frame \(w.first.frame) (\(w.first.seq))",
              citation: "RFC 9293 §3.4 \"the SYN is considered to occur before the first actual data octet ... while the FIN is considered to occur after the last actual data octet\"",
              note: "sends \(w.what) again elsewhere than its first copy in frame \(w.first.frame)")
    }

    /// New text past the furthest right edge the peer ever offered this end (SEG.ACK + SEG.WND): sequence numbers
    /// "not yet allowed" (RFC 9293 §3.3.1, Figure 3). Reported with the amount and the frame of that offer, and
    /// the model's window is then opened to the text so that what follows is judged on its own.
    func beyondWindow(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int, state: TCPState) {
        guard windowsKnown, s.dataLength > 0, !s.flags.contains(.syn), !s.flags.contains(.rst), synchronized[ends[e].model.state],
              let offer = ends[e].offeredEdge else { return }
        let end = s.seq &+ s.dataLength
        guard TCPModel.seqLess(offer.edge, end), end &- offer.edge < 1 << 30 else { return }
        let beyond = end &- offer.edge
        // One octet into a zero window is a window probe (RFC 9293 §3.8.6.1).
        if beyond == 1, s.dataLength == 1 { return }
        let p = 1 - e
        fault(n, time, s, from: e, state: state, expected: "text up to \(offer.edge &- ends[e].iss), the right edge \(ends[p].name) advertised in frame \(offer.frame)",
              citation: "RFC 9293 §3.3.1 Figure 3 \"future sequence numbers that are not yet allowed\"; RFC 9293 §3.8.6 \"The window sent in each segment indicates the range of sequence numbers the sender of the window (the data receiver) is currently prepared to accept\"",
              note: "sends \(beyond) octets beyond the window \(ends[p].name) advertised in frame \(offer.frame)")
        Flow.openWindow(&ends[e].model, to: end)
        ends[e].offeredEdge = (end, offer.frame)
    }

    /// A SYN,ACK from an end that was in TIME-WAIT on this 4-tuple: it reopened the connection. RFC 9293 §3.6.1
    /// allows it (MAY-2) if the new ISS is above every sequence number the old incarnation used, and RFC 6191
    /// §2 says when the SYN is new enough: its TSval above the old TS.Recent when both carry timestamps, else its
    /// sequence number above the old RCV.NXT. Otherwise an old duplicate SYN could open a connection.
    func judgeReopening(_ n: Int, _ time: Double, _ s: CapturedSegment, _ r: Reopening, from e: Int) {
        var wrong: [String] = []
        if let ts = r.synTS, let recent = r.tsRecent {
            if !TCPModel.seqLess(recent, ts) { wrong.append("the SYN's TSval \(ts) is not above the old connection's TS.Recent \(recent)") }
        } else {
            if !TCPModel.seqLess(r.oldRcvNxt, r.synSeq) { wrong.append("the SYN's sequence number \(r.synSeq) is not above the old connection's RCV.NXT \(r.oldRcvNxt)") }
            if !TCPModel.seqLess(r.oldSndNxt, s.seq) { wrong.append("its new ISS \(s.seq) is not above the old connection's SND.NXT \(r.oldSndNxt)") }
        }
        guard !wrong.isEmpty else {
            if report.captureNotes.count < 50 {
                report.captureNotes.append("frame \(n): \(ends[e].name) reopens the 4-tuple from TIME-WAIT, as RFC 9293 §3.6.1 (MAY-2) and RFC 6191 allow")
            }
            return
        }
        fault(n, time, s, from: e, state: .timeWait, expected: "a SYN,ACK only to a SYN that is not an old duplicate, with an ISS above the old connection's",
              citation: "RFC 9293 §3.6.1 MAY-2 \"it MAY accept a new SYN from the remote TCP endpoint to reopen the connection directly from TIME-WAIT state, if it: (1) assigns its initial sequence number for the new connection to be larger than the largest sequence number it used on the previous connection incarnation\"; RFC 6191 §2",
              note: "reopens from TIME-WAIT although " + wrong.joined(separator: ", and "))
    }

    /// A fault found beside the spec's rules (no rule of the profile decides it): reported at its frame with the
    /// RFC text it breaks and, in `note`, what is wrong in a reviewer's words.
    func fault(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int, state: TCPState, expected: String, citation: String, note: String) {
        var v = Violation(frame: n, time: time, endpoint: ends[e].name, state: state, observed: rel(s, from: e), expected: expected,
                          rules: [], citations: [citation], note: note)
        v.flags = s.flags
        report.violations.append(v)
    }

    /// Text sent again with other values than its first copy: the receiver that took the first copy holds a
    /// stream the sender never meant, and one that takes this copy another.
    func resentDifferently(_ n: Int, _ time: Double, _ s: CapturedSegment, _ m: SeenText.Mismatch, from e: Int, state: TCPState) {
        let at = m.seq &- ends[e].iss
        fault(n, time, s, from: e, state: state, expected: String(format: "octet %u as first sent in frame %d (0x%02x); this copy carries 0x%02x", at, m.firstFrame, m.was, m.now),
              citation: "RFC 9293 §3.4 \"every octet of data sent over a TCP connection has a sequence number\" (one number, one octet: a retransmission repeats it)",
              note: "sends text again with different octets")
    }

    /// Sent so soon after this end's last input that it may have left before that input arrived (the two crossed
    /// between the ends; the capture point sees one order, each end another): judged against the state before
    /// that input. If that explains it, the end's model becomes that state after this segment, and the inputs
    /// since are given to it again in order (a FIN crossing the peer's FIN goes to CLOSING, not LAST-ACK).
    func crossed(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int) -> Bool {
        guard let prev = ends[e].beforeInput, time - prev.time < crossingWindow else { return false }
        var then = ends[e]
        then.model.core = prev.core
        then.pending = prev.pending
        // A segment that acknowledges what that input carried was sent after it arrived.
        if s.flags.contains(.ack), synchronized[then.model.state], TCPModel.seqLess(then.model[.rcvNxt], s.ack) { return false }
        var unused: Explanation?
        guard explain(s, &then, &unused) else { return false }
        // A later segment may have left before that input arrived too (two duplicate ACKs for two late duplicates, sent
        // before the peer's ACK of this end's FIN reached it): the state before the input, with this segment sent,
        // stays the point to judge such a one from, within the same crossing window.
        let sentBeforeInput = (then.model.core, then.pending)
        for input in ends[e].recentInputs where input.frame >= prev.frame {
            let tr = then.model.receive(input.seg)
            then.pending += tr.outputs
        }
        if then.pending.count > 16 { then.pending.removeFirst(then.pending.count - 16) }
        ends[e].model = then.model
        ends[e].pending = then.pending
        ends[e].beforeInput = (sentBeforeInput.0, sentBeforeInput.1, prev.time, prev.frame)
        if report.captureNotes.count < 50 {
            report.captureNotes.append("frame \(n): \(ends[e].name) sent \(rel(s, from: e)) before frame \(prev.frame) reached it: they crossed in flight (judged from the state before it, \(spec.states[prev.core.stateIndex].name))")
        }
        return true
    }

    /// The checker opened the end that received the first SYN as a listener, the common case; but an end it has
    /// never seen send anything may have had no socket on that port. If its first segment is what CLOSED answers
    /// to that SYN (RFC 9293 §3.10.7.1: `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`), it was closed: its model
    /// becomes CLOSED, and the peer's is told the reset as usual.
    /// A reset from an end that is CLOSED (it aborted, or was reset) answering a segment of the peer's that
    /// crossed its reset in flight: the capture point saw the segment first, the end got it after its TCB was
    /// gone, and answered as CLOSED does (RFC 9293 §3.10.7.1: `<SEQ=SEG.ACK><CTL=RST>`, or
    /// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>` without an ACK). Each such segment explains one reset.
    func closedReply(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int) -> Bool {
        guard s.flags.contains(.rst), ends[e].model.tcpState == .closed, !ends[e].recentInputs.isEmpty else { return false }
        guard let m = closedModel(e) else { return false }
        // Only a segment seen within a crossing window before the reset: the answer follows it by a round trip.
        for (k, input) in ends[e].recentInputs.enumerated().reversed() where !input.seg.ctl.contains(.rst) && time - input.time <= crossingWindow {
            var c = m
            let tr = c.receive(input.seg)
            guard let j = coalescedMatch(tr.outputs, s), j == tr.outputs.count - 1 else { continue }
            ends[e].recentInputs.remove(at: k)
            if report.captureNotes.count < 50 {
                report.captureNotes.append("frame \(n): \(ends[e].name), CLOSED, answers frame \(input.frame) with a reset: that segment reached it after its own reset (they crossed in flight)")
            }
            return true
        }
        return false
    }

    /// A fresh model of end `e` with no TCB (the spec's initial state must be CLOSED), for what CLOSED answers.
    func closedModel(_ e: Int) -> TCPModel? {
        var m = TCPModel(spec: spec, configuration: ends[e].model.configuration)
        m.recordsInputClass = false
        return m.tcpState == .closed ? m : nil
    }

    func closedPort(_ n: Int, _ s: CapturedSegment, from e: Int) -> Bool {
        guard s.flags.contains(.rst), !ends[e].sent.any, let syn = ends[e].firstSYN else { return false }
        guard var m = closedModel(e) else { return false }
        let tr = m.receive(syn)
        // Exactly CLOSED's answer, its ACK included: the peer in SYN-SENT reads a reset's ACK (RFC 9293 §3.10.7.3).
        guard tr.outputs.count == 1, let o = tr.outputs.first?.segment, o.ctl.intersection(Flow.classBits) == s.flags.intersection(Flow.classBits),
              o.seq == s.seq, !o.ctl.contains(.ack) || o.ack == s.ack else { return false }
        ends[e].model = m
        ends[e].pending.removeAll()
        ends[e].iss = 0
        if report.captureNotes.count < 50 {
            report.captureNotes.append("frame \(n): \(ends[e].name) had no socket on the port (CLOSED): it answered the SYN with a reset, as RFC 9293 §3.10.7.1 says")
        }
        return true
    }

    /// Text on a SYN. The SYN is the OPEN's, carrying the text of a SEND made before it (RFC 9293 §3.5: "data
    /// ... carried by the SYN ... is legitimate"; TCP Fast Open sends it, RFC 7413 §4.1): explained as OPEN then
    /// SEND with the text on the SYN. The SYN,ACK answering it either acknowledges the text too (a Fast Open
    /// server that accepts the cookie, RFC 7413 §4.2.2), or only the SYN: a server that got a Fast Open option
    /// without a cookie it accepts drops the text ("the server ... drops the data"), which the client sends again
    /// after the handshake. Returns true when `s` was explained so.
    func fastOpen(_ n: Int, _ s: CapturedSegment, from e: Int) -> Bool {
        let p = 1 - e
        if s.flags.intersection(Flow.classBits) == .syn, s.dataLength > 0 {
            var bare = s
            bare.dataLength = 0
            var unused: Explanation?
            guard explain(bare, &ends[e], &unused) else { return false }
            // SEND queues the text where the profile queues before the handshake; the SYN took it either way.
            var m = ends[e].model
            let queued = m[.sndQueue]
            _ = m.call(.send(s.dataLength))
            if m[.sndQueue] == queued &+ s.dataLength { ends[e].model = m }
            ends[e].model.adopt(.textOnSYN(s.dataLength))
            return true
        }
        guard s.flags.contains([.syn, .ack]), ends[e].synText.length > 0, let cookie = ends[e].synText.cookie else { return false }
        let text = ends[e].synText.length
        ends[e].synText = (0, nil)
        let synEnd = ends[p].iss &+ 1
        if cookie, s.ack == synEnd &+ text {
            ends[e].model.adopt(.textOnSYNAccepted(text))
            for k in ends[e].pending.indices where ends[e].pending[k].segment.ctl.contains([.syn, .ack]) { ends[e].pending[k].segment.ack &+= text }
            if report.captureNotes.count < 50 {
                report.captureNotes.append("frame \(n): \(ends[e].name) accepts the \(text) octets on the SYN with its Fast Open cookie and acknowledges them on its SYN,ACK (RFC 7413 §4.2.2; outside RFC 9293's event tables)")
            }
        } else if s.ack == synEnd {
            ends[e].model.adopt(.textOnSYNDropped)
        }
        return false
    }

    /// One octet of new text at SND.NXT while the peer's window is zero: a window probe, which RFC 9293 §3.8.6.1
    /// requires ("The sending TCP must regularly transmit at least one octet of new data (if available) ... even
    /// if the send window is zero", MUST-36; RFC 793 §3.7 p.42). The event tables have no persist timer (RFC 793
    /// §3.9 has three timeouts), so the model is shown the probe as the SEND it is with the window open by one
    /// octet; the peer's reply to it sets the window again. Under a profile whose duplicate ACKs do not update
    /// the window (rfc793: only a new ACK does) the window cannot be opened so, and the probe is judged as text.
    func zeroWindowProbe(_ s: CapturedSegment, from e: Int) -> Bool {
        guard windowsKnown, s.dataLength == 1, s.flags.intersection([.syn, .rst, .fin]).isEmpty, synchronized[ends[e].model.state],
              ends[e].model[.sndWnd] == 0, s.seq == ends[e].model[.sndNxt] else { return false }
        var m = ends[e].model
        Flow.openWindow(&m, to: m[.sndUna] &+ 1)
        guard m[.sndWnd] == 1, m.state == ends[e].model.state else { return false }
        let tr = m.call(.send(1))
        guard let k = coalescedMatch(tr.outputs, s), k == tr.outputs.count - 1 else { return false }
        ends[e].model = m
        report.zeroWindowProbes += 1
        return true
    }

    /// A round trip as the handshake measured it, with room for queueing: how long after an input an end's
    /// segment may still have been sent without it.
    var crossingWindow: Double { max(4 * (rtt ?? 0), 0.005) }

    /// Whether the spec explains `s` from an end with this model and these expected replies, advancing them if
    /// so: a reply the model expects, a pure acknowledgment at SND.NXT, or what an application call (SEND,
    /// CLOSE, ABORT, OPEN) makes it send. `best`: the call's outcome, for the report when nothing explains it.
    func explain(_ s: CapturedSegment, _ end: inout End, _ best: inout Explanation?) -> Bool {
        if let k = end.pending.firstIndex(where: { matches($0.segment, s) }) {
            end.pending.removeFirst(k + 1)
            return true
        }
        // A pure acknowledgment at SND.NXT: delayed, duplicate, or a window update.
        if s.flags.intersection(Flow.classBits) == .ack, s.dataLength == 0, synchronized[end.model.state],
           !TCPModel.seqLess(s.seq, end.model[.sndUna]), !TCPModel.seqLess(end.model[.sndNxt], s.seq) {
            return true
        }
        // The application call(s) that would make it send this: at most two (text, then CLOSE for its FIN).
        let first: UserCall, second: UserCall?
        if s.flags.contains(.syn), !s.flags.contains(.ack) {
            (first, second) = (.openActive, nil)
        } else if s.flags.contains(.rst) {
            (first, second) = (.abort, nil)
        } else if !s.flags.contains(.syn), s.dataLength > 0 {
            (first, second) = (.send(s.dataLength), s.flags.contains(.fin) ? .close : nil)
        } else if !s.flags.contains(.syn), s.flags.contains(.fin) {
            (first, second) = (.close, nil)
        } else {
            return false
        }
        // Tried on the model itself and undone if it does not explain the segment (saving the core is cheaper
        // than copying the model: this runs for every segment that carries text).
        let saved = end.model.core
        if attempt(first, second, s, &end, &best) {
            keepHalfClose(first, second, s, from: saved, &end)
            return true
        }
        end.model.core = saved
        // What the application read is not on the wire. Where unread data changes what CLOSE does (Linux resets,
        // RFC 2525 §2.17), an end that closes with a FIN shows it had read everything: read, then close.
        if first == .close || second == .close, end.model[.rcvQueue] > 0 || end.model[.rcvFin] == 1 {
            Flow.readAll(&end.model)
            var unused: Explanation?
            if attempt(first, second, s, &end, &unused) {
                keepHalfClose(first, second, s, from: saved, &end)
                return true
            }
            end.model.core = saved
        }
        return false
    }

    /// After a FIN explained as CLOSE: the model from `saved` as if the application had called SHUTDOWN instead,
    /// kept when that sends the same FIN but leaves the end elsewhere (a profile whose CLOSE is a full close).
    func keepHalfClose(_ first: UserCall, _ second: UserCall?, _ s: CapturedSegment, from saved: TCPModel.Core, _ end: inout End) {
        guard first == .close || second == .close else { return }
        var m = end.model
        m.core = saved
        let calls = [first, second].compactMap { $0 }.map { $0 == .close ? UserCall.shutdown : $0 }
        var outs: [Output] = []
        for c in calls { outs += m.call(c).outputs }
        guard let k = coalescedMatch(outs, s), m.core != end.model.core else { return }
        end.halfClose = (m.core, Array(outs[(k + 1)...]), end.inputCount)
    }

    /// A segment the model cannot explain from an end whose FIN was taken as CLOSE, explained had it been SHUTDOWN
    /// (`shutdown(SHUT_WR)`, which goes on reading): the inputs since are replayed on that model, which the end
    /// keeps from then on if it explains the segment.
    func halfClosed(_ n: Int, _ s: CapturedSegment, from e: Int) -> Bool {
        guard let alt = ends[e].halfClose else { return false }
        let since = ends[e].inputCount - alt.inputCount
        guard since <= ends[e].recentInputs.count else { return false }
        var then = ends[e]
        then.model.core = alt.core
        then.pending = alt.pending
        then.halfClose = nil
        for input in ends[e].recentInputs.suffix(since) { then.pending += then.model.receive(input.seg).outputs }
        var unused: Explanation?
        guard explain(s, &then, &unused) else { return false }
        ends[e] = then
        if report.captureNotes.count < 50 {
            report.captureNotes.append("frame \(n): \(ends[e].name) goes on reading after its FIN: that was a half-close (SHUTDOWN, `shutdown(SHUT_WR)`), not the full close this profile's CLOSE is")
        }
        return true
    }

    /// The application reads everything on hand, the peer's FIN included (RECEIVE until nothing is left).
    static func readAll(_ m: inout TCPModel) {
        if m[.rcvQueue] > 0 { _ = m.call(.receive(m[.rcvQueue])) }
        if m[.rcvFin] == 1, m[.rcvQueue] == 0 { _ = m.call(.receive(1)) }
    }

    /// The calls made on `end`'s model; true (outputs after the matched one pending) if they send `s`.
    func attempt(_ first: UserCall, _ second: UserCall?, _ s: CapturedSegment, _ end: inout End, _ best: inout Explanation?) -> Bool {
        let tr1 = end.model.call(first)
        if let second {
            let tr2 = end.model.call(second)
            let outs = Array(tr1.outputs) + Array(tr2.outputs)
            if let k = coalescedMatch(outs, s) {
                end.pending += outs[(k + 1)...]
                return true
            }
            if best == nil { best = ([first, second], [tr1, tr2], outs) }
        } else {
            if let k = coalescedMatch(tr1.outputs, s) {
                for j in (k + 1)..<tr1.outputs.count { end.pending.append(tr1.outputs[j]) }
                return true
            }
            if best == nil { best = ([first], [tr1], Array(tr1.outputs)) }
        }
        return false
    }

    func violation(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int, state: TCPState, best: (calls: [UserCall], transitions: [Transition], outputs: [Output])?) {
        var expected: String
        var rules: [Int] = []
        let sameKind = ends[e].pending.first { $0.segment.ctl.intersection(Flow.classBits) == s.flags.intersection(Flow.classBits) }
        if let o = sameKind {
            expected = rel(o.segment, of: e) + " (the reply to what it received)"
            rules = [o.rule]
        } else if let b = best {
            let what = b.calls.map { "\($0)" }.joined(separator: " then ")
            if b.outputs.isEmpty {
                let said = b.transitions.compactMap { $0.reply }.map { spec.strings[$0] } + b.transitions.flatMap { Array($0.signals) }.map { spec.strings[$0] }
                expected = "nothing: \(what) sends no segment in \(state)" + (said.isEmpty ? "" : " (\(said.joined(separator: "; ")))")
            } else {
                expected = b.outputs.map { rel($0.segment, of: e) }.joined(separator: ", ") + " (if the application called \(what))"
            }
            for tr in b.transitions where tr.chain >= 0 { rules += spec.chains[tr.chain].rules }
            for o in b.outputs { rules.append(o.rule) }
        } else {
            expected = "nothing: no input it received and no application call makes it send this in \(state)"
        }
        var seen = Set<Int>()
        rules = rules.filter { seen.insert($0).inserted }
        var v = Violation(frame: n, time: time, endpoint: ends[e].name, state: state, observed: rel(s, from: e), expected: expected,
                          rules: rules.map { spec.rules[$0].id }, citations: rules.map { spec.rules[$0].citationText }.filter { !$0.isEmpty })
        v.flags = s.flags
        if state == .closed || state == .listen, let r = resetAt, r.by != e {
            // Sent so soon after the peer's RST that it may have been on its way before the RST arrived: the
            // capture cannot tell, so it is noted, not judged (a round trip as the handshake measured it, with
            // room for queueing).
            let window = max(4 * (rtt ?? 0), 0.005)
            if time - r.time < window {
                if report.captureNotes.count < 50 {
                    report.captureNotes.append("frame \(n): \(ends[e].name) sent \(v.observed) \(String(format: "%.0f", (time - r.time) * 1e6)) µs after the RST of frame \(r.frame): it may have crossed the RST in flight (not judged)")
                }
                return
            }
            v.note = "after the RST in frame \(r.frame), \(String(format: "%.1f", (time - r.time) * 1e3)) ms later (more than a round trip: it did not cross it)"
        }
        // The same fault again (every later data segment after a FIN, say) is one violation with its frames.
        if let last = report.violations.last, last.endpoint == v.endpoint, last.state == v.state, last.rules == v.rules,
           last.flags == s.flags {
            report.violations[report.violations.count - 1].repeats.append(n)
            return
        }
        report.violations.append(v)
    }

    /// The segment as the other end's input.
    func deliver(_ n: Int, _ time: Double, _ s: CapturedSegment, from e: Int) {
        let p = 1 - e
        let window: UInt32 = !windowsKnown ? 1 << 30 : s.flags.contains(.syn) ? UInt32(s.window) : UInt32(s.window) << ends[e].shift
        let seg = Segment(seq: s.seq, ack: s.ack, ctl: s.flags, window: window, urgentPointer: UInt32(s.urgentPointer), dataLength: s.dataLength)
        if s.flags.contains(.syn), !s.flags.contains(.ack), !ends[p].sent.any {
            ends[p].firstSYN = Segment(seq: s.seq, ack: s.ack, ctl: s.flags, window: UInt32(s.window), dataLength: s.dataLength)
            ends[p].synText = (s.dataLength, s.fastOpenCookie)
        }
        if s.flags.contains(.ack), !s.flags.contains(.rst) {
            let edge = s.ack &+ window
            if ends[p].offeredEdge.map({ TCPModel.seqLess($0.edge, edge) }) ?? true { ends[p].offeredEdge = (edge, n) }
        }
        if pawsDiscards(n, time, s, from: e) { return }
        ends[p].recentInputs.append((n, time, seg))
        ends[p].inputCount += 1
        // At least the last 32, trimmed 32 at a time (shifting the array on every segment cost 4 % of a run).
        if ends[p].recentInputs.count > 64 { ends[p].recentInputs.removeFirst(32) }
        let before = ends[p].model.state
        let snapshot = ends[p].model.core
        let tr = ends[p].model.receive(seg)
        // Kept only when the input moved the state: that is when a crossing segment would be misjudged.
        if ends[p].model.state != before { ends[p].beforeInput = (snapshot, ends[p].pending, time, n) }
        for o in tr.outputs { ends[p].pending.append(o) }
        if ends[p].pending.count > 16 { ends[p].pending.removeFirst(ends[p].pending.count - 16) }
        if s.flags.contains(.rst), before != ends[p].model.state, ends[p].model.tcpState == .closed || ends[p].model.tcpState == .listen {
            resetAt = (n, time, e)
        }
        if s.flags.contains(.rst), ends[e].model.tcpState == .closed { resetAt = resetAt ?? (n, time, e) }
    }

    func close() -> ConnectionReport {
        // Segments of this connection the capture point missed (gaps in one end's sequence space, or ACKs of
        // what was not captured): then an ACK one past the last octet seen may acknowledge a FIN not captured.
        let lossy = ackChecks.count > 1 || sawLoss
        for c in ackChecks {
            let p = 1 - c.end
            let sentEnd = ends[p].sent.highestEnd ?? 0
            if lossy, c.ack == sentEnd &+ 1 {
                if report.captureNotes.count < 50 { report.captureNotes.append("frame \(c.frame): \(ends[c.end].name) acknowledges one octet past what \(ends[p].name) was seen to send: its FIN, presumably, where this capture lost other segments of the connection") }
            } else if TCPModel.seqLess(sentEnd, c.ack) {
                let v = Violation(frame: c.frame, time: c.time, endpoint: ends[c.end].name, state: c.state, observed: c.observed,
                                  expected: "an ACK of at most \(sentEnd &- ends[p].iss): the most \(ends[p].name) sent in the whole capture",
                                  rules: [], citations: ["RFC 9293 §3.4 \"A new acknowledgment ... acknowledges ... data the receiver has received\"; RFC 5961 §5.2 (an ACK of data never sent)"],
                                  note: "acknowledges data the peer never sent")
                report.violations.append(v)
            } else if report.captureNotes.count < 50 {
                report.captureNotes.append("frame \(c.frame): \(ends[c.end].name) acknowledges data of \(ends[p].name) not seen at the capture point before it (lost before it or by the capture, or reordered)")
            }
        }
        closeSACKChecks()
        report.violations.sort { $0.frame < $1.frame }
        report.finalStates = ends.map { "\($0.name) \($0.model.stateName)" }
        return report
    }
}
