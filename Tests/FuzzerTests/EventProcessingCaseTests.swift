import Cases
import Checker
import Core
import Targets
import TestSupport
import Testing

/// RFC 9293 §3.10 clauses the spec once contradicted, each as a short case against the reference target (the
/// model as a stack): what the RFC says must go on the wire does.
@Suite("RFC 9293 §3.10 cases on the reference target")
struct EventProcessingCaseTests {
    static func run(_ text: String, profile: String) throws -> CaseResult {
        let (file, diags) = CaseParser.parse(path: "t.case", text: text)
        #expect(diags.isEmpty, "\(diags)")
        var o = CaseRunner.Options()
        o.timeout = 0.05
        o.settle = 0.01
        return CaseRunner(target: ReferenceTarget(spec: try Repository.spec(profile)), file: file, options: o).run()
    }

    static func failures(_ r: CaseResult) -> [String] {
        r.steps.filter(\.failed).map { "\($0.line): \($0.verdict) observed \($0.observed)" }
    }

    /// §3.10.7.4 fifth, FIN-WAIT-1: "In addition to the processing for the ESTABLISHED state" — the peer closes
    /// its window on the first 100 octets, then reopens it with a duplicate ACK (SND.UNA =< SEG.ACK: the window
    /// is updated); the other 200 octets and the FIN must go out. (RFC 793 as written updates the window only when
    /// SND.UNA < SEG.ACK, in ESTABLISHED as in FIN-WAIT-1: its profile waits for a new ACK, and is not run here.)
    static let finWait1Window = """
    listen
    < S 0:0(0) win 100
    > S. 0:0(0) ack 1 win *
    < . 1:1(0) ack 1 win 100
    accept = 0
    send 300 = 300
    > P. 1:101(100) ack 1 win *
    close = 0
    state FIN-WAIT-1
    < . 1:1(0) ack 101 win 0
    > none
    < . 1:1(0) ack 101 win 1000
    > FP. 101:301(200) ack 1 win *
    < . 1:1(0) ack 302 win 1000
    state FIN-WAIT-2

    """

    /// CLOSING: "In addition to the processing for the ESTABLISHED state, if the ACK acknowledges our FIN then
    /// enter the TIME-WAIT state; otherwise ignore the segment": an ACK of the first 100 octets advances SND.UNA
    /// and the window, and the rest and the FIN go out.
    static let closingWindow = """
    listen
    < S 0:0(0) win 100
    > S. 0:0(0) ack 1 win *
    < . 1:1(0) ack 1 win 100
    accept = 0
    send 300 = 300
    > P. 1:101(100) ack 1 win *
    close = 0
    state FIN-WAIT-1
    < F. 1:1(0) ack 1 win 100
    > . 101:101(0) ack 2 win *
    state CLOSING
    < . 2:2(0) ack 101 win 1000
    > FP. 101:301(200) ack 2 win *
    state CLOSING
    < . 2:2(0) ack 302 win 1000
    state TIME-WAIT

    """

    /// LAST-ACK entered by a CLOSE with text still queued behind the peer's window: the ACK of the text sent is
    /// processed as in CLOSE-WAIT, and the rest and the FIN go out.
    static let lastAckWindow = """
    listen
    < S 0:0(0) win 100
    > S. 0:0(0) ack 1 win *
    < . 1:1(0) ack 1 win 100
    accept = 0
    < F. 1:1(0) ack 1 win 100
    > . 1:1(0) ack 2 win *
    state CLOSE-WAIT
    send 300 = 300
    > P. 1:101(100) ack 2 win *
    close = 0
    state LAST-ACK
    < . 2:2(0) ack 101 win 1000
    > FP. 101:301(200) ack 2 win *
    state LAST-ACK
    < . 2:2(0) ack 302 win 1000
    state CLOSED

    """

    @Test("a CLOSE with text queued behind the peer's window: the window update releases the rest and the FIN",
          arguments: [("FIN-WAIT-1", "rfc9293"), ("FIN-WAIT-1", "linux"),
                      ("CLOSING", "rfc793"), ("CLOSING", "rfc9293"), ("CLOSING", "linux"),
                      ("LAST-ACK", "rfc793"), ("LAST-ACK", "rfc9293"), ("LAST-ACK", "linux")])
    func closeWithQueuedText(state: String, profile: String) throws {
        let text = switch state {
        case "FIN-WAIT-1": Self.finWait1Window
        case "CLOSING": Self.closingWindow
        default: Self.lastAckWindow
        }
        let failed = Self.failures(try Self.run(text, profile: profile))
        #expect(failed.isEmpty, "\(state) \(profile)")
    }
}
