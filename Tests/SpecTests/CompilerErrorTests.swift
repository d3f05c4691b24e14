import Core
import Foundation
import Spec
import Testing

/// A minimal valid base profile: two states, two check steps. Each test breaks it in one way.
let miniSpec = """
profile mini "a small spec for compiler tests"
state CLOSED initial
state LISTEN
steps in CLOSED, LISTEN: first, second
  cite RFC 9293 §3.10.7
on SEGMENT in CLOSED, LISTEN step first
  cite RFC 9293 §3.10.7.1
  rule first.rst when RST
    drop
  rule first.other when not RST
    continue
on SEGMENT in CLOSED, LISTEN step second
  cite RFC 9293 §3.10.7.1
  rule second.any otherwise
    drop
on OPEN-PASSIVE in CLOSED
  cite RFC 9293 §3.10.1
  rule open otherwise
    enter LISTEN
    reply "ok"
on OPEN-PASSIVE in LISTEN
  cite RFC 9293 §3.10.1
  rule open.again otherwise
    reply "error: connection already exists"
on OPEN-ACTIVE, SEND, RECEIVE, CLOSE, ABORT, STATUS, USER-TIMEOUT, RETRANSMISSION-TIMEOUT, TIME-WAIT-TIMEOUT, KEEPALIVE-TIMEOUT in any
  cite RFC 9293 §3.10
  rule other otherwise
    return

"""

func compileTexts(_ files: [(String, String)], profile: String = "mini") -> SpecCompiler.Result {
    SpecLoader.compile(profile: profile, sources: files.map { (path: $0.0, text: $0.1) })
}

func compileText(_ text: String) -> SpecCompiler.Result { compileTexts([("mini.tcpspec", text)]) }

/// Line and column (1-based) of the first occurrence of `needle` in `text`.
func position(of needle: String, in text: String, occurrence: Int = 1) -> (Int, Int) {
    var searchFrom = text.startIndex
    var range = text.range(of: needle)!
    for _ in 1..<occurrence { searchFrom = range.upperBound; range = text.range(of: needle, range: searchFrom..<text.endIndex)! }
    let before = text[..<range.lowerBound]
    let line = before.filter { $0 == "\n" }.count + 1
    let col = before.split(separator: "\n", omittingEmptySubsequences: false).last!.unicodeScalars.count + 1
    return (line, col)
}

func right(_ p: (Int, Int), _ n: Int) -> (Int, Int) { (p.0, p.1 + n) }

func expectOne(_ r: SpecCompiler.Result, _ kind: Diagnostic.Kind, at pos: (Int, Int), containing words: String,
               sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    let ofKind = r.diagnostics.filter { $0.kind == kind }
    #expect(r.spec == nil, sourceLocation: sourceLocation)
    #expect(ofKind.count >= 1, "no \(kind) diagnostic among: \(r.diagnostics.map(\.rendered))", sourceLocation: sourceLocation)
    guard let d = ofKind.first else { return }
    #expect(d.location?.line == pos.0 && d.location?.column == pos.1, "at \(String(describing: d.location)), expected \(pos)\n\(d.rendered)", sourceLocation: sourceLocation)
    #expect(d.message.contains(words), "message: \(d.message)", sourceLocation: sourceLocation)
    // Rendered as file:line:col: error[kind]: message, the source line, and a caret under the column.
    let lines = d.rendered.split(separator: "\n", omittingEmptySubsequences: false)
    #expect(lines[0].hasPrefix("mini.tcpspec:\(pos.0):\(pos.1): error[\(kind.rawValue)]: "), sourceLocation: sourceLocation)
    if lines.count >= 3 {
        #expect(lines[2].firstIndex(of: "^").map { lines[2].distance(from: lines[2].startIndex, to: $0) } == 4 + pos.1 - 1, sourceLocation: sourceLocation)
    }
}

@Suite("Compiler: one test per error kind")
struct CompilerErrorTests {
    @Test("the mini spec itself compiles")
    func miniCompiles() {
        let r = compileText(miniSpec)
        #expect(r.diagnostics.isEmpty, "\(r.diagnostics.map(\.rendered))")
        #expect(r.spec?.states.count == 2)
    }

    @Test("timing declarations: windows, open bounds and factors compile; bad ones are errors at file:line:col")
    func timings() throws {
        let good = miniSpec + """
            timing rto.initial 1s to 3s
              cite RFC 6298 §2.1 SHOULD "the sender SHOULD set RTO <- 1 second"
            timing rto.min at-least 200ms
              cite RFC 6298 §2.4
            timing rto.max at-most 1.5m
              cite RFC 6298 §2.5
            timing rto.backoff 2
              cite RFC 6298 §5.5 MUST "The host MUST set RTO <- RTO * 2"
            timing time-wait 4m
              cite RFC 9293 §3.6.1 MUST-13 "it MUST linger in the TIME-WAIT state for a time 2xMSL"

            """
        let r = compileText(good)
        #expect(r.diagnostics.isEmpty, "\(r.diagnostics.map(\.rendered))")
        let t = try #require(r.spec?.timings)
        #expect(t[.rtoInitial] == Timing(lower: 1, upper: 3, citation: t[.rtoInitial]!.citation, level: .should))
        #expect(t[.rtoMin]?.lower == 0.2 && t[.rtoMin]?.upper == nil)
        #expect(t[.rtoMax]?.lower == nil && t[.rtoMax]?.upper == 90)
        #expect(t[.rtoBackoff]?.lower == 2 && t[.rtoBackoff]?.upper == 2)
        #expect(t[.timeWait]?.lower == 240 && t[.timeWait]?.requirements.map(\.description) == ["MUST-13"])
        #expect(t[.rtoInitial]?.text == "1 s to 3 s" && t[.rtoMin]?.text == "at least 200 ms")

        let unknown = miniSpec + "timing rto.start 1s\n  cite RFC 6298 §2.1\n"
        expectOne(compileText(unknown), .unknownName, at: position(of: "rto.start", in: unknown), containing: "timings are rto.initial")
        let unit = miniSpec + "timing rto.initial 1sec\n  cite RFC 6298 §2.1\n"
        expectOne(compileText(unit), .syntax, at: right(position(of: "1sec", in: unit), 1), containing: "unknown unit of time 'sec'")
        let factor = miniSpec + "timing rto.backoff 2s\n  cite RFC 6298 §5.5\n"
        expectOne(compileText(factor), .type, at: position(of: "rto.backoff", in: factor), containing: "is a factor")
        let uncited = miniSpec + "timing time-wait 60s\n"
        expectOne(compileText(uncited), .citation, at: position(of: "time-wait 60s", in: uncited), containing: "no citation")
        let reversed = miniSpec + "timing rto.initial 3s to 1s\n  cite RFC 6298 §2.1\n"
        expectOne(compileText(reversed), .syntax, at: position(of: "1s\n", in: reversed), containing: "below the lower")
        // Keep-alives are the application's to turn on (MUST-25): a profile may not time them.
        let keepalive = miniSpec + "timing keepalive.idle 2h\n  cite RFC 9293 §3.8.4 MUST-28\n"
        expectOne(compileText(keepalive), .unknownName, at: position(of: "keepalive.idle", in: keepalive), containing: "is an application setting")
    }

    @Test("citation: rfc-gap NAME is a source of its own, and the rule it alone cites is unspecified")
    func citationGap() throws {
        let text = miniSpec.replacingOccurrences(of: "  cite RFC 9293 §3.10.1\n  rule open otherwise", with: "  cite rfc-gap open-order \"the RFC leaves it\"\n  rule open otherwise")
        let r = compileText(text)
        #expect(r.diagnostics.isEmpty, "\(r.diagnostics.map(\.rendered))")
        let rule = try #require(r.spec?.rules.first { $0.id == "open" })
        #expect(rule.isUnspecified)
        let bad = miniSpec.replacingOccurrences(of: "  cite RFC 9293 §3.10.1\n  rule open otherwise", with: "  cite rfc-gap \"no name\"\n  rule open otherwise")
        expectOne(compileText(bad), .citation, at: position(of: "rfc-gap", in: bad), containing: "needs the function")
    }

    @Test("encoding: bytes that are not UTF-8")
    func encoding() {
        var bytes = Array(miniSpec.utf8)
        let at = Array("state LISTEN".utf8)
        let idx = (0...(bytes.count - at.count)).first { Array(bytes[$0..<$0 + at.count]) == at }!
        bytes.insert(0xFF, at: idx + 6)  // inside the state name
        let (ast, diags) = SpecLoader.parse(path: "mini.tcpspec", bytes: bytes)
        var r = SpecCompiler.compile(profile: "mini", files: [ast])
        r.diagnostics = SpecCompiler.attachSourceLines(diags + r.diagnostics, files: [ast])
        r.spec = nil
        expectOne(r, .encoding, at: (3, 7), containing: "UTF-8")
        #expect(SpecLoader.parse(path: "x", bytes: Array(miniSpec.utf8)).1.isEmpty)
    }

    @Test("syntax: an unclosed parenthesis")
    func syntax() {
        let text = miniSpec.replacingOccurrences(of: "rule first.rst when RST", with: "rule first.rst when (RST")
        expectOne(compileText(text), .syntax, at: position(of: "(RST", in: text), containing: "'(' is never closed")
    }

    /// `case V in STATE... if C`: a value that can only occur in some states. Elsewhere its input classes are not
    /// input classes at all (no table cell, no conformance test), and the model never gives it.
    @Test("a classifier case limited to some states: its value exists only there; errors at file:line:col")
    func caseLimitedToStates() throws {
        let decl = """
            classify size on SEGMENT
              cite RFC 9293 §3.10.7
              case big in LISTEN if SEG.DATA > 100
              case small otherwise

            """
        let text = miniSpec.replacingOccurrences(of: "on SEGMENT in CLOSED, LISTEN step first", with: decl + "on SEGMENT in CLOSED, LISTEN step first")
            .replacingOccurrences(of: "  rule first.rst when RST\n    drop\n", with: "  rule first.rst when RST and size is small\n    drop\n  rule first.big when RST and size is big\n    drop\n")
        let r = compileText(text)
        let spec = try #require(r.spec, "\(r.diagnostics)")
        let k = try #require(spec.classifiers.firstIndex { $0.name == "size" })
        for s in spec.states.indices {
            let t = spec.table(state: s, event: .segment)
            let d = try #require(t.dimensions.firstIndex(of: .classifier(k)))
            let bigCells = t.cellChains.indices.filter { t.coordinates(of: $0)[d] == 0 && t.cellChains[$0] != EventTable.impossible }
            #expect(bigCells.isEmpty == (spec.states[s].name == "CLOSED"), "\(spec.states[s].name): \(bigCells.count) cells with size=big")
        }
        // A limited case names states the classifier applies in; 'otherwise' takes no state list.
        let narrow = text.replacingOccurrences(of: "classify size on SEGMENT\n", with: "classify size on SEGMENT in CLOSED\n")
        let n = compileText(narrow).diagnostics.filter { $0.message.contains("does not apply in LISTEN") }
        let at = position(of: "LISTEN if", in: narrow)
        #expect(n.count == 1 && n.first?.kind == .type && n.first?.location?.line == at.0 && n.first?.location?.column == at.1, "\(n)")
        let other = text.replacingOccurrences(of: "case small otherwise", with: "case small in CLOSED otherwise")
        expectOne(compileText(other), .syntax, at: position(of: "CLOSED otherwise", in: other), containing: "'otherwise' holds in every state")
    }

    @Test("unknownName: a state that does not exist")
    func unknownName() {
        let text = miniSpec.replacingOccurrences(of: "enter LISTEN", with: "enter LISTENED")
        expectOne(compileText(text), .unknownName, at: position(of: "LISTENED", in: text), containing: "unknown state 'LISTENED'")
    }

    @Test("unknownName: a declared state RFC 9293 does not have (states are typed across the pipeline)")
    func unknownDeclaredState() {
        let text = miniSpec.replacingOccurrences(of: "state LISTEN\n", with: "state LISTEN\nstate LIMBO\n")
        expectOne(compileText(text), .unknownName, at: position(of: "LIMBO", in: text), containing: "unknown state 'LIMBO': a spec's states are RFC 9293's (CLOSED, LISTEN, SYN-SENT")
    }

    @Test("unknownName: a reply that is neither ok, queued, state nor an RFC 9293 error")
    func unknownReply() {
        let text = miniSpec.replacingOccurrences(of: "reply \"error: connection already exists\"", with: "reply \"error: it broke\"")
        expectOne(compileText(text), .unknownName, at: position(of: "reply \"error: it broke", in: text), containing: "unknown reply 'error: it broke'")
    }

    @Test("duplicate: a state declared twice")
    func duplicate() {
        let text = miniSpec.replacingOccurrences(of: "state LISTEN\n", with: "state LISTEN\nstate LISTEN\n")
        expectOne(compileText(text), .duplicate, at: position(of: "LISTEN", in: text, occurrence: 2), containing: "declared twice")
    }

    @Test("type: a guard that reads a variable")
    func typeError() {
        let text = miniSpec.replacingOccurrences(of: "rule first.rst when RST", with: "rule first.rst when RST and SEG.SEQ = 0")
        expectOne(compileText(text), .type, at: position(of: "SEG.SEQ", in: text), containing: "not fixed by")
    }

    @Test("citation: a rule without one")
    func citation() {
        let text = miniSpec.replacingOccurrences(of: "  cite RFC 9293 §3.10.1\n  rule open otherwise", with: "  rule open otherwise")
        expectOne(compileText(text), .citation, at: position(of: "open otherwise", in: text), containing: "has no citation")
    }

    @Test("citation: RFC 793 without a page")
    func citationPage() {
        let text = miniSpec.replacingOccurrences(of: "cite RFC 9293 §3.10.7\n", with: "cite RFC 793 §3.9\n")
        expectOne(compileText(text), .citation, at: position(of: "RFC 793", in: text), containing: "need a page")
    }

    @Test("profile: extends a profile no file declares")
    func profile() {
        let overlay = "profile extra extends nosuch \"x\"\n"
        let r = compileTexts([("mini.tcpspec", miniSpec), ("extra.tcpspec", overlay)], profile: "extra")
        let d = r.diagnostics.first { $0.kind == .overlayTarget }
        #expect(d?.location == Core.SourceLocation(file: "extra.tcpspec", line: 1, column: 23))
        #expect(d?.message.contains("extends 'nosuch'") == true)
        let missing = compileTexts([("mini.tcpspec", miniSpec)], profile: "absent")
        #expect(missing.diagnostics.contains { $0.kind == .profile && $0.message.contains("no profile named 'absent'; known profiles: mini") })
    }

    @Test("overlayTarget: replaces a rule the base lacks")
    func overlayTarget() {
        let overlay = """
        profile extra extends mini "x"
        on SEGMENT in CLOSED step first
          cite RFC 5961 §3.2
          rule extra.rst when RST replaces no.such.rule
            drop
        """
        let r = compileTexts([("mini.tcpspec", miniSpec), ("extra.tcpspec", overlay)], profile: "extra")
        let d = r.diagnostics.first { $0.kind == .overlayTarget }
        #expect(d?.location == Core.SourceLocation(file: "extra.tcpspec", line: 4, column: 36), "\(r.diagnostics.map(\.rendered))")
        #expect(d?.message.contains("replaces 'no.such.rule'") == true)
    }

    @Test("overlayShadow: an overlay rule deciding inherited inputs without 'replaces'")
    func overlayShadow() {
        let overlay = """
        profile extra extends mini "x"
        on SEGMENT in CLOSED, LISTEN step first
          cite RFC 5961 §3.2
          rule extra.rst when RST
            drop
        """
        let r = compileTexts([("mini.tcpspec", miniSpec), ("extra.tcpspec", overlay)], profile: "extra")
        let d = r.diagnostics.first { $0.kind == .overlayShadow }
        #expect(d?.location == Core.SourceLocation(file: "extra.tcpspec", line: 4, column: 8), "\(r.diagnostics.map(\.rendered))")
        #expect(d?.message.contains("write 'replaces first.rst'") == true)
        // With `replaces` the same overlay compiles.
        let fixed = overlay.replacingOccurrences(of: "when RST", with: "when RST replaces first.rst")
        #expect(compileTexts([("mini.tcpspec", miniSpec), ("extra.tcpspec", fixed)], profile: "extra").diagnostics.isEmpty)
    }

    @Test("partial replacement: 'replaces X in STATE' leaves X its other states")
    func partialReplacement() {
        let overlay = """
        profile extra extends mini "x"
        on SEGMENT in CLOSED step first
          cite RFC 5961 §3.2
          rule extra.rst when RST replaces first.rst in CLOSED
            drop
        """
        let partial = compileTexts([("mini.tcpspec", miniSpec), ("extra.tcpspec", overlay)], profile: "extra")
        #expect(partial.diagnostics.isEmpty, "\(partial.diagnostics.map(\.rendered))")
        // Without `in`, first.rst is gone from LISTEN too and nothing decides a RST there.
        let whole = overlay.replacingOccurrences(of: " in CLOSED\n", with: "\n")
        let r = compileTexts([("mini.tcpspec", miniSpec), ("extra.tcpspec", whole)], profile: "extra")
        #expect(r.spec == nil)
        #expect(r.diagnostics.contains { $0.kind == .incomplete && $0.message.contains("LISTEN") }, "\(r.diagnostics.map(\.rendered))")
        // A state the replaced rule does not apply in is an error at the rule's name.
        let wrong = """
        profile extra extends mini "x"
        on OPEN-PASSIVE in LISTEN
          cite RFC 9293 §3.10.1
          rule extra.open otherwise replaces open in LISTEN
            reply "ok"
        """
        let w = compileTexts([("mini.tcpspec", miniSpec), ("extra.tcpspec", wrong)], profile: "extra")
        let d = w.diagnostics.first { $0.kind == .overlayTarget }
        #expect(d?.location == Core.SourceLocation(file: "extra.tcpspec", line: 4, column: 38), "\(w.diagnostics.map(\.rendered))")
        #expect(d?.message.contains("rule 'open' does not apply in LISTEN; it applies in CLOSED") == true, "\(String(describing: d?.message))")
    }

    /// A base with a classifier for `prepend` to extend: `size` on SEGMENT in CLOSED and LISTEN.
    static let sizedBase = miniSpec.replacingOccurrences(of: "on SEGMENT in CLOSED, LISTEN step second", with: """
    classify size on SEGMENT in CLOSED, LISTEN
      cite RFC 9293 §3.3.1
      case big     if SEG.LEN > 0
      case small   otherwise
    on SEGMENT in CLOSED, LISTEN step second
    """)

    @Test("prepend: an overlay's cases go before the inherited classifier's; unknown, elsewhere or 'otherwise' is an error")
    func prepend() throws {
        func overlay(_ head: String, _ cases: String = "  case huge    if SEG.LEN > 1000\n") -> String {
            "profile extra extends mini \"x\"\n" + head + "\n  cite RFC 7323 §5.3\n" + cases
        }
        let good = compileTexts([("mini.tcpspec", CompilerErrorTests.sizedBase), ("extra.tcpspec", overlay("classify size prepend on SEGMENT in CLOSED, LISTEN"))], profile: "extra")
        #expect(good.diagnostics.isEmpty, "\(good.diagnostics.map(\.rendered))")
        let size = try #require(good.spec?.classifiers.first { $0.name == "size" })
        #expect(size.values == ["huge", "big", "small"], "the prepended value first, the inherited ones after it")
        #expect(size.cases.count == 3)
        let unknown = compileTexts([("mini.tcpspec", CompilerErrorTests.sizedBase), ("extra.tcpspec", overlay("classify nosuch prepend on SEGMENT in CLOSED, LISTEN"))], profile: "extra")
        let u = unknown.diagnostics.first { $0.kind == .overlayTarget }
        #expect(u?.location == Core.SourceLocation(file: "extra.tcpspec", line: 2, column: 10), "\(unknown.diagnostics.map(\.rendered))")
        #expect(u?.message.contains("'prepend' names classifier 'nosuch'") == true)
        let elsewhere = compileTexts([("mini.tcpspec", CompilerErrorTests.sizedBase), ("extra.tcpspec", overlay("classify size prepend on SEGMENT in CLOSED"))], profile: "extra")
        let e = elsewhere.diagnostics.first { $0.kind == .type }
        #expect(e?.location == Core.SourceLocation(file: "extra.tcpspec", line: 2, column: 10), "\(elsewhere.diagnostics.map(\.rendered))")
        #expect(e?.message.contains("must name the events and states classifier 'size' applies to") == true)
        let otherwise = compileTexts([("mini.tcpspec", CompilerErrorTests.sizedBase), ("extra.tcpspec", overlay("classify size prepend on SEGMENT in CLOSED, LISTEN", "  case huge    otherwise\n"))], profile: "extra")
        let o = otherwise.diagnostics.first { $0.kind == .deadRule }
        #expect(o?.location == Core.SourceLocation(file: "extra.tcpspec", line: 4, column: 8), "\(otherwise.diagnostics.map(\.rendered))")
        #expect(o?.message.contains("a prepended case needs a condition") == true)
    }

    @Test("nondeterministic: two rules decide one input")
    func nondeterministic() {
        let text = miniSpec.replacingOccurrences(of: "rule first.other when not RST", with: "rule first.other when not RST or SYN")
        expectOne(compileText(text), .nondeterministic, at: position(of: "first.other", in: text), containing: "both decide the same input")
    }

    @Test("incomplete: an input no rule decides")
    func incomplete() {
        let text = miniSpec.replacingOccurrences(of: "  rule first.other when not RST\n    continue\n", with: "")
        expectOne(compileText(text), .incomplete, at: position(of: "on SEGMENT in CLOSED, LISTEN step first", in: text), containing: "no rule decides SEGMENT in CLOSED at step 'first'")
    }

    @Test("unreachableState: a state nothing enters")
    func unreachable() {
        let text = miniSpec.replacingOccurrences(of: "state LISTEN\n", with: "state LISTEN\nstate CLOSING\n")
            .replacingOccurrences(of: "steps in CLOSED, LISTEN:", with: "steps in CLOSED, LISTEN, CLOSING:")
            .replacingOccurrences(of: "in CLOSED, LISTEN step", with: "in CLOSED, LISTEN, CLOSING step")
            .replacingOccurrences(of: "on OPEN-PASSIVE in LISTEN", with: "on OPEN-PASSIVE in LISTEN, CLOSING")
        expectOne(compileText(text), .unreachableState, at: position(of: "CLOSING", in: text), containing: "state CLOSING is unreachable from CLOSED")
    }

    @Test("deadRule: a guard no input satisfies")
    func deadRule() {
        let text = miniSpec.replacingOccurrences(of: "  rule first.other when not RST\n", with: "  rule first.never when RST and not RST\n    drop\n  rule first.other when not RST\n")
        expectOne(compileText(text), .deadRule, at: position(of: "first.never", in: text), containing: "never applies")
    }

    @Test("shadowedRule: every input it matches is decided earlier")
    func shadowedRule() {
        let text = miniSpec.replacingOccurrences(of: "  rule second.any otherwise\n", with: "  rule second.rst when RST\n    drop\n  rule second.any otherwise\n")
        expectOne(compileText(text), .shadowedRule, at: position(of: "second.rst", in: text), containing: "never reached")
    }

    @Test("control: a segment rule that neither drops nor continues")
    func control() {
        let text = miniSpec.replacingOccurrences(of: "  rule first.rst when RST\n    drop\n", with: "  rule first.rst when RST\n    signal \"reset\"\n")
        expectOne(compileText(text), .control, at: position(of: "signal \"reset\"", in: text), containing: "must end with 'drop', 'return' or 'continue'")
    }

    @Test("io: a spec directory that does not exist")
    func io() {
        let r = SpecLoader.compile(profile: "rfc793", directory: "/nonexistent/spec-dir")
        #expect(r.spec == nil)
        #expect(r.diagnostics.first?.kind == .io)
        #expect(r.diagnostics.first?.message.contains("does not exist") == true)
    }

    @Test("every error of a file is reported in one run")
    func allErrorsAtOnce() {
        let text = miniSpec
            .replacingOccurrences(of: "enter LISTEN", with: "enter LISTENED")
            .replacingOccurrences(of: "rule first.rst when RST", with: "rule first.rst when RST and SEG.ACK > 1")
            .replacingOccurrences(of: "  cite RFC 9293 §3.10.1\n  rule open.again", with: "  rule open.again")
        let kinds = Set(compileText(text).diagnostics.map(\.kind))
        #expect(kinds.isSuperset(of: [.unknownName, .type, .citation]), "\(kinds)")
    }
}

@Suite("Compiler: limits")
struct CompilerLimitTests {
    @Test("an expression deeper than the model's evaluation stack is refused, not run")
    func deepExpression() {
        // 40 nested additions whose left operands are pending: 1+(1+(1+...))
        var e = "SEG.SEQ"
        for _ in 0..<40 { e = "1+(\(e))" }
        let text = miniSpec.replacingOccurrences(of: "    drop\n  rule first.other", with: "    set RCV.NXT <- \(e)\n    drop\n  rule first.other")
        let r = compileText(text)
        #expect(r.spec == nil)
        #expect(r.diagnostics.contains { $0.kind == .type && $0.message.contains("nested too deeply") }, "\(r.diagnostics.map(\.rendered))")
    }
}
