import Core
/// Recursive-descent parser for `.tcpspec` files. It recovers at the end of each line so that one run reports
/// every syntax error of a file.
public struct Parser {
    private let file: SourceFile
    private var tokens: [Token]
    private var i = 0
    private var diags: [Diagnostic] = []
    private var depth = 0
    private static let maxDepth = 64

    private static let actionWords: Set<String> = [
        "send", "set", "enter", "signal", "reply", "drop", "return", "continue", "timer",
    ]

    public static func parse(_ file: SourceFile) -> (SpecFileAST, [Diagnostic]) {
        let (tokens, lexDiags) = Lexer.tokenize(file)
        var p = Parser(file: file, tokens: tokens)
        let ast = p.parseFile()
        return (ast, lexDiags + p.diags)
    }

    private init(file: SourceFile, tokens: [Token]) {
        self.file = file
        self.tokens = tokens
    }

    // MARK: token helpers

    private var tok: Token { tokens[min(i, tokens.count - 1)] }
    private var loc: SourceLocation { file.location(ofOffset: tok.offset) }

    private func isName(_ s: String) -> Bool {
        if case .name(let n) = tok.kind { return n == s }
        return false
    }
    private func isPunct(_ s: String) -> Bool {
        if case .punct(let p) = tok.kind { return p == s }
        return false
    }
    private var atLineEnd: Bool {
        switch tok.kind {
        case .newline, .eof: true
        default: false
        }
    }
    private mutating func advance() { if i < tokens.count - 1 { i += 1 } }

    private func describe(_ t: Token) -> String {
        switch t.kind {
        case .name(let n): "'\(n)'"
        case .number(let n): "number \(n)"
        case .duration(let d): "duration \(d) s"
        case .string(let s): "string \"\(s)\""
        case .punct(let p): "'\(p)'"
        case .citeText: "citation text"
        case .newline: "end of line"
        case .eof: "end of file"
        }
    }

    private struct ParseError: Error {}

    private mutating func fail(_ msg: String, at l: SourceLocation? = nil) -> ParseError {
        diags.append(Diagnostic(.syntax, msg, at: l ?? loc))
        return ParseError()
    }

    private mutating func expectName(_ what: String) throws -> Located<String> {
        if case .name(let n) = tok.kind {
            let l = loc
            advance()
            return Located(n, l)
        }
        throw fail("expected \(what), found \(describe(tok))")
    }

    private mutating func expectKeyword(_ k: String) throws {
        guard isName(k) else { throw fail("expected '\(k)', found \(describe(tok))") }
        advance()
    }

    private mutating func expectPunct(_ p: String) throws {
        guard isPunct(p) else { throw fail("expected '\(p)', found \(describe(tok))") }
        advance()
    }

    private mutating func expectLineEnd() throws {
        guard atLineEnd else { throw fail("expected end of line, found \(describe(tok))") }
    }

    private mutating func skipToLineEnd() {
        while !atLineEnd { advance() }
    }

    private mutating func skipNewlines() {
        while case .newline = tok.kind { advance() }
    }

    // MARK: file structure

    private enum Open {
        case none, steps, classifier, group, rule, acknowledge, option, timing
    }

    private mutating func parseFile() -> SpecFileAST {
        var ast = SpecFileAST(file: file)
        var open = Open.none
        skipNewlines()
        while true {
            if case .eof = tok.kind { break }
            let lineStart = i
            do {
                guard case .name(let kw) = tok.kind else {
                    throw fail("expected a declaration (profile, state, steps, classify, acknowledge, option, timing, on, rule, case, cite or an action), found \(describe(tok))")
                }
                switch kw {
                case "profile":
                    if ast.profile != nil { throw fail("a file declares one profile; this is a second 'profile' line") }
                    ast.profile = try parseProfile()
                    open = .none
                case "state":
                    ast.states.append(try parseState())
                    open = .none
                case "steps":
                    ast.steps.append(try parseSteps())
                    open = .steps
                case "classify":
                    ast.classifiers.append(try parseClassifier())
                    open = .classifier
                case "case":
                    guard open == .classifier, !ast.classifiers.isEmpty else { throw fail("'case' belongs under a 'classify' line") }
                    ast.classifiers[ast.classifiers.count - 1].cases.append(try parseCase())
                case "option":
                    advance()
                    ast.options.append(OptionDecl(name: try expectName("an option name (whole-segments)"), citations: []))
                    open = .option
                case "timing":
                    ast.timings.append(try parseTiming())
                    open = .timing
                case "acknowledge":
                    ast.acknowledges.append(try parseAcknowledge())
                    open = .acknowledge
                case "on":
                    ast.groups.append(try parseGroup())
                    open = .group
                case "rule":
                    guard open == .group || open == .rule, !ast.groups.isEmpty else { throw fail("'rule' belongs under an 'on EVENT in STATES' line") }
                    ast.groups[ast.groups.count - 1].rules.append(try parseRuleHeader())
                    open = .rule
                case "cite":
                    let c = try parseCite()
                    switch open {
                    case .steps: ast.steps[ast.steps.count - 1].citations.append(c)
                    case .classifier: ast.classifiers[ast.classifiers.count - 1].citations.append(c)
                    case .group: ast.groups[ast.groups.count - 1].citations.append(c)
                    case .rule:
                        let g = ast.groups.count - 1
                        ast.groups[g].rules[ast.groups[g].rules.count - 1].citations.append(c)
                    case .acknowledge: ast.acknowledges[ast.acknowledges.count - 1].citations.append(c)
                    case .option: ast.options[ast.options.count - 1].citations.append(c)
                    case .timing: ast.timings[ast.timings.count - 1].citations.append(c)
                    case .none: throw fail("'cite' must follow a steps, classify, acknowledge, option, timing, on or rule line")
                    }
                default:
                    if Parser.actionWords.contains(kw) || Builtin.bySpelling[kw] != nil {
                        guard open == .rule else { throw fail("action '\(kw)' must be inside a rule") }
                        let a = try parseAction()
                        let g = ast.groups.count - 1
                        ast.groups[g].rules[ast.groups[g].rules.count - 1].actions.append(a)
                    } else {
                        throw fail("unknown keyword '\(kw)'; expected profile, state, steps, classify, case, acknowledge, option, timing, on, rule, cite or an action")
                    }
                }
                try expectLineEnd()
            } catch {
                skipToLineEnd()
            }
            if i == lineStart { advance() }  // Guarantee progress whatever the input.
            skipNewlines()
        }
        return ast
    }

    /// `timing rto.initial 1s`, `timing rto.initial 1s to 3s`, `timing rto.max at-least 60s`, `timing rto.backoff 2`.
    private mutating func parseTiming() throws -> TimingDecl {
        advance()
        let name = try expectName("a timing name (\(TimingName.allCases.map(\.spelling).joined(separator: ", ")))")
        var isDuration: Bool?
        func value() throws -> Double {
            let v: Double, d: Bool
            switch tok.kind {
            case .duration(let s): (v, d) = (s, true)
            case .number(let n): (v, d) = (Double(n), false)
            default: throw fail("expected a duration (200ms, 1s, 4m) or a number, found \(describe(tok))")
            }
            if let k = isDuration, k != d { throw fail("both bounds are durations, or both numbers") }
            isDuration = d
            advance()
            return v
        }
        var lower: Double?, upper: Double?
        if isName("at-least") {
            advance()
            lower = try value()
        } else if isName("at-most") {
            advance()
            upper = try value()
        } else {
            lower = try value()
            if isName("to") {
                advance()
                let at = loc
                upper = try value()
                if upper! < lower! { throw fail("the upper bound is below the lower one", at: at) }
            } else {
                upper = lower
            }
        }
        return TimingDecl(name: name, lower: lower, upper: upper, isDuration: isDuration ?? true, citations: [])
    }

    private mutating func parseProfile() throws -> ProfileDecl {
        advance()
        let name = try expectName("a profile name")
        var ext: Located<String>?
        if isName("extends") {
            advance()
            ext = try expectName("the name of the profile this one extends")
        }
        var title: String?
        if case .string(let s) = tok.kind {
            title = s
            advance()
        }
        return ProfileDecl(name: name, extends: ext, title: title)
    }

    private mutating func parseState() throws -> StateDecl {
        advance()
        let name = try expectName("a state name")
        var attrs: [Located<String>] = []
        while !atLineEnd { attrs.append(try expectName("a state attribute (initial, synchronized)")) }
        return StateDecl(name: name, attributes: attrs)
    }

    private mutating func parseStateList(until stops: Set<String>, allowColon: Bool) throws -> [Located<String>] {
        var out: [Located<String>] = []
        while !atLineEnd {
            if case .name(let n) = tok.kind, stops.contains(n) { break }
            if allowColon, isPunct(":") { break }
            if isPunct(",") {
                advance()
                continue
            }
            out.append(try expectName("a state name"))
        }
        if out.isEmpty { throw fail("expected at least one state name (or 'any')") }
        return out
    }

    private mutating func parseSteps() throws -> StepsDecl {
        let l = loc
        advance()
        try expectKeyword("in")
        let states = try parseStateList(until: [], allowColon: true)
        try expectPunct(":")
        var steps: [Located<String>] = [try expectName("a step name")]
        while isPunct(",") {
            advance()
            steps.append(try expectName("a step name"))
        }
        return StepsDecl(states: states, steps: steps, citations: [], loc: l)
    }

    /// `acknowledge in STATE, ... from EXPR`
    private mutating func parseAcknowledge() throws -> AcknowledgeDecl {
        let l = loc
        advance()
        try expectKeyword("in")
        let states = try parseStateList(until: ["from"], allowColon: false)
        try expectKeyword("from")
        let e = try parseExpr()
        return AcknowledgeDecl(states: states, seq: e, citations: [], loc: l)
    }

    private mutating func parseClassifier() throws -> ClassifierDecl {
        let l = loc
        advance()
        let name = try expectName("a classifier name")
        var isOverride = false, isPrepend = false
        if isName("override") {
            isOverride = true
            advance()
        } else if isName("prepend") {
            isPrepend = true
            advance()
        }
        try expectKeyword("on")
        var events = [try expectName("an event (SEGMENT, SEND, RECEIVE, ...)")]
        while isPunct(",") {
            advance()
            events.append(try expectName("an event"))
        }
        var states: [Located<String>] = []
        if isName("in") {
            advance()
            states = try parseStateList(until: [], allowColon: false)
        }
        return ClassifierDecl(name: name, events: events, states: states, cases: [], citations: [], isOverride: isOverride, isPrepend: isPrepend, loc: l)
    }

    private mutating func parseCase() throws -> ClassifierCase {
        advance()
        let v = try expectName("a class value name")
        var states: [Located<String>] = []
        if isName("in") {
            advance()
            states = try parseStateList(until: ["if", "otherwise"], allowColon: false)
        }
        if isName("otherwise") {
            advance()
            if let s = states.first { throw fail("'otherwise' holds in every state: a state list belongs on an 'if' case", at: s.loc) }
            return ClassifierCase(value: v, condition: nil)
        }
        try expectKeyword("if")
        return ClassifierCase(value: v, condition: try parseExpr(), states: states)
    }

    private mutating func parseGroup() throws -> GroupDecl {
        let l = loc
        advance()
        var events = [try expectName("an event (SEGMENT, OPEN-ACTIVE, OPEN-PASSIVE, SEND, RECEIVE, CLOSE, ABORT, STATUS, SHUTDOWN, USER-TIMEOUT, RETRANSMISSION-TIMEOUT, TIME-WAIT-TIMEOUT, KEEPALIVE-TIMEOUT)")]
        while isPunct(",") {
            advance()
            events.append(try expectName("an event"))
        }
        try expectKeyword("in")
        let states = try parseStateList(until: ["step"], allowColon: false)
        var step: Located<String>?
        if isName("step") {
            advance()
            step = try expectName("a step name")
        }
        return GroupDecl(events: events, states: states, step: step, citations: [], rules: [], loc: l)
    }

    private mutating func parseRuleHeader() throws -> RuleDecl {
        advance()
        let id = try expectName("a rule name")
        var guardExpr: Expr?
        if isName("otherwise") {
            advance()
        } else if isName("when") {
            advance()
            guardExpr = try parseExpr()
        } else {
            throw fail("expected 'when GUARD' or 'otherwise' after the rule name, found \(describe(tok))")
        }
        var replaces: [Located<String>] = []
        if isName("replaces") {
            advance()
            replaces.append(try expectName("the name of a rule to replace"))
            while isPunct(",") {
                advance()
                replaces.append(try expectName("the name of a rule to replace"))
            }
        }
        var replacesIn: [Located<String>] = []
        if !replaces.isEmpty, isName("in") {
            advance()
            replacesIn = try parseStateList(until: [], allowColon: false)
        }
        return RuleDecl(id: id, guardExpr: guardExpr, replaces: replaces, replacesIn: replacesIn, actions: [], citations: [])
    }

    private mutating func parseCite() throws -> Citation {
        let l = loc
        advance()
        guard case .citeText(let text) = tok.kind else { throw fail("expected citation text after 'cite'") }
        let textLoc = loc
        advance()
        switch CitationParser.parse(text) {
        case .success(let refs):
            return Citation(refs: refs, loc: l)
        case .failure(let e):
            let at = SourceLocation(file: textLoc.file, line: textLoc.line, column: textLoc.column + e.offset)
            diags.append(Diagnostic(.citation, e.message, at: at))
            return Citation(refs: [], loc: l)
        }
    }

    // MARK: actions

    private mutating func optionalCondition() throws -> Expr? {
        guard isName("if") else { return nil }
        advance()
        return try parseExpr()
    }

    private mutating func parseAction() throws -> Located<Action> {
        let l = loc
        guard case .name(let kw) = tok.kind else { throw fail("expected an action") }
        advance()
        switch kw {
        case "send":
            let t = try parseTemplate(l)
            return Located(.send(t, condition: try optionalCondition()), l)
        case "set":
            var assignments: [(Located<String>, Expr)] = []
            repeat {
                if isPunct(",") { advance() }
                let reg = try expectName("a variable to set")
                guard isPunct("<-") else { throw fail("expected '<-' (the RFC's assignment), found \(describe(tok))") }
                advance()
                assignments.append((reg, try parseSum()))
            } while isPunct(",")
            return Located(.set(assignments, condition: try optionalCondition()), l)
        case "enter":
            return Located(.enter(try expectName("a state name")), l)
        case "signal":
            guard case .string(let s) = tok.kind else { throw fail("expected a quoted signal, e.g. signal \"connection reset\"") }
            advance()
            return Located(.signal(s, condition: try optionalCondition()), l)
        case "reply":
            guard case .string(let s) = tok.kind else { throw fail("expected a quoted reply, e.g. reply \"ok\"") }
            advance()
            return Located(.reply(s), l)
        case "drop": return Located(.drop, l)
        case "return": return Located(.ret, l)
        case "continue":
            if isName("at") {
                advance()
                return Located(.continue(at: try expectName("a step name")), l)
            }
            return Located(.continue(at: nil), l)
        case "timer":
            let name = try expectName("a timer (time-wait, retransmission, user)")
            let op = try expectName("start or stop")
            switch op.value {
            case "start", "restart": return Located(.timer(name, .start), l)
            case "stop": return Located(.timer(name, .stop), l)
            default: throw fail("expected 'start' or 'stop', found '\(op.value)'", at: op.loc)
            }
        default:
            return Located(.builtin(Located(kw, l), condition: try optionalCondition()), l)
        }
    }

    private mutating func parseTemplate(_ l: SourceLocation) throws -> SegmentTemplate {
        var seq: Expr?
        var ack: Expr?
        var ctl = ControlBits()
        var data: Expr?
        var wnd: Expr?
        var seen: Set<String> = []
        guard isPunct("<") else { throw fail("expected a segment like <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>") }
        while isPunct("<") {
            advance()
            let field = try expectName("a segment field (SEQ, ACK, CTL, DATA, WND)")
            if seen.contains(field.value) { throw fail("field \(field.value) appears twice", at: field.loc) }
            seen.insert(field.value)
            try expectPunct("=")
            switch field.value {
            case "SEQ": seq = try parseSum()
            case "ACK": ack = try parseSum()
            case "DATA": data = try parseSum()
            case "WND": wnd = try parseSum()
            case "CTL":
                repeat {
                    if isPunct(",") { advance() }
                    let f = try expectName("a control bit")
                    guard let bit = ControlBits.named(f.value) else { throw fail("unknown control bit '\(f.value)'", at: f.loc) }
                    ctl.insert(bit)
                } while isPunct(",")
            default:
                throw fail("unknown segment field '\(field.value)'; use SEQ, ACK, CTL, DATA or WND", at: field.loc)
            }
            try expectPunct(">")
        }
        guard let seq else { throw fail("a segment to send needs <SEQ=...>", at: l) }
        if ack != nil, !ctl.contains(.ack) { throw fail("<ACK=...> is given but CTL lacks ACK", at: l) }
        if ack == nil, ctl.contains(.ack) { throw fail("CTL has ACK but no <ACK=...> field", at: l) }
        return SegmentTemplate(seq: seq, ack: ack, ctl: ctl, data: data, wnd: wnd, loc: l)
    }

    // MARK: expressions

    private mutating func nest() throws {
        depth += 1
        if depth > Parser.maxDepth { throw fail("expression nested more than \(Parser.maxDepth) levels deep") }
    }

    mutating func parseExpr() throws -> Expr {
        try nest()
        defer { depth -= 1 }
        var lhs = try parseAnd()
        while isName("or") {
            let l = loc
            advance()
            lhs = .or(lhs, try parseAnd(), l)
        }
        return lhs
    }

    private mutating func parseAnd() throws -> Expr {
        var lhs = try parseNot()
        while isName("and") {
            let l = loc
            advance()
            lhs = .and(lhs, try parseNot(), l)
        }
        return lhs
    }

    private mutating func parseNot() throws -> Expr {
        if isName("not") {
            let l = loc
            advance()
            try nest()
            defer { depth -= 1 }
            return .not(try parseNot(), l)
        }
        return try parseComparison()
    }

    private mutating func parseComparison() throws -> Expr {
        let first = try parseSum()
        if case .name(let n, let l) = first, isName("is") || isName("in") {
            if isName("is") {
                advance()
                var negated = false
                if isName("not") {
                    negated = true
                    advance()
                }
                return .classIs(n, [try expectName("a class value")], negated: negated, l)
            }
            advance()
            try expectPunct("{")
            var values = [try expectName("a class value")]
            while isPunct(",") {
                advance()
                values.append(try expectName("a class value"))
            }
            try expectPunct("}")
            return .classIs(n, values, negated: false, l)
        }
        var operands = [first]
        var ops: [CompareOp] = []
        while case .punct(let p) = tok.kind, let op = CompareOp(rawValue: p) {
            advance()
            ops.append(op)
            operands.append(try parseSum())
        }
        return ops.isEmpty ? first : .compare(operands, ops, first.loc)
    }

    private mutating func parseSum() throws -> Expr {
        var lhs = try parseAtom()
        while isPunct("+") || isPunct("-") {
            let plus = isPunct("+")
            let l = loc
            advance()
            let rhs = try parseAtom()
            lhs = plus ? .add(lhs, rhs, l) : .sub(lhs, rhs, l)
        }
        return lhs
    }

    private mutating func parseAtom() throws -> Expr {
        let l = loc
        switch tok.kind {
        case .number(let n):
            advance()
            return .number(n, l)
        case .name(let n):
            advance()
            if isPunct("(") {
                advance()
                try nest()
                defer { depth -= 1 }
                var args: [Expr] = []
                if !isPunct(")") {
                    // Any expression: choose's first argument is a condition (the types are checked later).
                    args.append(try parseExpr())
                    while isPunct(",") {
                        advance()
                        args.append(try parseExpr())
                    }
                }
                try expectPunct(")")
                return .call(n, args, l)
            }
            return .name(n, l)
        case .punct("("):
            advance()
            let e = try parseExpr()
            try expectPunct(")")
            return e
        default:
            throw fail("expected a number, a variable or '(', found \(describe(tok))")
        }
    }
}
