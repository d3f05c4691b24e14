import Cases
import Checker
import Core
import Targets
import Testing

/// The case runner against the reference target (the model as a stack, over a virtual link): no privileges.
@Suite("Case runner on the reference target")
struct CaseRunnerTests {
    static func run(_ text: String) throws -> CaseResult {
        let (file, diags) = CaseParser.parse(path: "t.case", text: text)
        #expect(diags.isEmpty, "\(diags)")
        var o = CaseRunner.Options()
        o.timeout = 0.05
        o.settle = 0.01
        return CaseRunner(target: ReferenceTarget(spec: compiled9293), file: file, options: o).run()
    }

    static let handshake = """
    listen
    state LISTEN
    < S 0:0(0) win 65535
    > S. 0:0(0) ack 1 win *
    state SYN-RECEIVED
    < . 1:1(0) ack 1 win 65535
    state ESTABLISHED
    accept = 0
    < P. 1:11(10) ack 1 win 65535
    > . 1:1(0) ack 11 win *
    recv 100 = 10

    """

    @Test("an RFC 9293 passive open, text and a read pass step by step")
    func passes() throws {
        let r = try Self.run(Self.handshake)
        #expect(r.passed, "\(r.steps.filter(\.failed).map { "\($0.line): \($0.verdict) observed \($0.observed)" })")
        #expect(r.steps.count == 11)
    }

    /// `option judge window-shrink` follows the right edge: text the application has not read narrows the window but
    /// keeps its edge (RCV.NXT + RCV.WND), so a conforming stack passes; a value other than window-shrink is refused.
    @Test("judge window-shrink: no shrink reported while the edge holds; an unknown check is refused at its column")
    func judgeWindowShrink() throws {
        let r = try Self.run("option judge window-shrink\n" + Self.handshake + "< P. 11:1011(1000) ack 1 win 65535\n> . 1:1(0) ack 1011 win *\n")
        #expect(r.passed, "\(r.steps.filter(\.failed).map { "\($0.line): \($0.verdict) observed \($0.observed)" })")
        let (_, diags) = CaseParser.parse(path: "t.case", text: "option judge windows\nconnect\n")
        #expect(diags.map(\.description).contains { $0.contains("t.case:1:14") && $0.contains("option judge is window-shrink") }, "\(diags)")
    }

    @Test("every wrong expectation is reported at its line, expected beside observed, and the case goes on")
    func neverStopsAtFirst() throws {
        let text = Self.handshake.replacingOccurrences(of: "> S. 0:0(0) ack 1 win *", with: "> S. 0:0(0) ack 2 win *")
            .replacingOccurrences(of: "state ESTABLISHED", with: "state CLOSE-WAIT")
            .replacingOccurrences(of: "recv 100 = 10", with: "recv 100 = -1 ECONNRESET")
        let r = try Self.run(text)
        let failed = r.steps.filter(\.failed)
        #expect(failed.map(\.line) == [4, 7, 11], "\(failed.map { "\($0.line): \($0.verdict)" })")
        #expect(failed.first?.verdict == .mismatch(["ack: expected 2, observed 1"]))
        #expect(failed.first?.expected == "> S. 0:0(0) ack 2 win *")
        #expect(failed.dropFirst().first?.verdict == .mismatch(["state: expected CLOSE-WAIT, observed ESTABLISHED"]))
        #expect(failed.last?.verdict == .mismatch(["result: expected -1, observed 10", "errno: expected ECONNRESET, observed none"]))
    }
}
