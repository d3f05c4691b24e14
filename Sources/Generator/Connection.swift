import Core
import Model
import Spec

/// A connection as the generator sees it: the model driven by the steps so far and the application's socket.
/// A value: the search and the survey copy it freely.
public struct Connection: Sendable {
    /// The application's socket on the target.
    public enum Socket: Hashable, Sendable {
        /// No call made yet.
        case none
        /// `connect()`ed.
        case active
        /// `listen()`ed; the connection is taken from the listener once synchronized (`accept`).
        case listener(Accept)
        /// Closed or aborted (`wasPassive`, `accept`: what it was before).
        case closed(wasPassive: Bool, accept: Accept)
    }

    public enum Accept: Hashable, Sendable {
        case notTried
        /// Tried; the target had no connection to give.
        case refused
        case taken
    }

    public var model: TCPModel
    public var steps: [FuzzStep] = []
    public var socket: Socket = .none
    /// Seconds each timer has run since its latest (re)start, as the waits so far say (the steps between take no
    /// time on the model): what a `wait` on the model alone expires. Indexed by `TimerName.rawValue`.
    public var timerAges = [Double](repeating: 0, count: TimerName.allCases.count)
    /// The tester's ISN: the model numbers the tester's side absolutely, steps from this.
    public let testerISN: UInt32
    /// The calls the target offers (its agent's capability list); nil: all of them.
    public let offered: Set<String>?

    public init(spec: CompiledSpec, testerISN: UInt32, offered: Set<String>?) {
        model = TCPModel(spec: spec, configuration: .init(receiveWindow: 65535))
        self.testerISN = testerISN
        self.offered = offered
    }

    public var socketOpen: Bool {
        switch socket {
        case .active, .listener: true
        case .none, .closed: false
        }
    }

    public var passive: Bool {
        switch socket {
        case .listener: true
        case .closed(let p, _): p
        case .none, .active: false
        }
    }

    var accept: Accept {
        switch socket {
        case .listener(let a), .closed(_, let a): a
        case .none, .active: .notTried
        }
    }

    public var acceptTried: Bool { accept != .notTried }
    /// The application's listener is open still: `listen()`ed, its connection neither accepted nor closed
    /// (`TCPModel.listenAgain`).
    public var listenerOpen: Bool { if case .listener(let a) = socket { a != .taken } else { false } }
    public var accepted: Bool { accept == .taken }

    /// What tells one way into a state from another for the search: the state and the socket.
    var wayKey: String { "\(model.spec.states[model.state].name)|\(socketOpen)|\(passive)|\(accepted)" }

    /// The socket after a step; `acceptSucceeded`: whether an accept returned a connection (on the model it does).
    public mutating func track(_ step: FuzzStep, acceptSucceeded: Bool = true) {
        switch (step, socket) {
        case (.call(.openPassive), _): socket = .listener(accept)
        case (.call(.openActive), _): socket = .active
        case (.call(.close), _), (.call(.abort), _): socket = .closed(wasPassive: passive, accept: accept)
        case (.accept, .listener(let a)): socket = .listener(a == .taken || acceptSucceeded ? .taken : .refused)
        case (.accept, .closed(let p, let a)): socket = .closed(wasPassive: p, accept: a == .taken || acceptSucceeded ? .taken : .refused)
        default: break
        }
    }

    /// Marks the connection taken from the listener (the search takes it as soon as it is synchronized).
    mutating func taken() {
        if case .listener = socket { socket = .listener(.taken) }
    }

    /// The model numbers the tester's side absolutely (so that rules comparing with an unset variable, such as
    /// RFC 9293's SYN-SENT RST check against RCV.NXT, see what a stack sees) and the target's side from its ISN;
    /// steps and case files number both sides from their ISNs.
    public func modelInput(_ step: FuzzStep) -> Input? {
        guard case .segment(var s) = step else { return step.input }
        s.seq &+= testerISN
        return .segment(s)
    }

    /// A segment drawn against the model, as a step.
    public func step(fromModel s: Segment) -> FuzzStep {
        var s = Connection.fitLink(s)
        s.seq &-= testerISN
        return .segment(s)
    }

    /// Text that fits one 1500-octet IPv4 or IPv6 packet (60 octets of headers over IPv6) with the most options the
    /// tester sends: on a SYN, MSS, SACK-Permitted, Timestamps and Window Scale (20 octets); on any other segment,
    /// Timestamps (12).
    public static func fitLink(_ s: Segment) -> Segment {
        var s = s
        let room: UInt32 = s.ctl.contains(.syn) ? 1420 : 1428
        if s.dataLength > room { s.dataLength = room }
        return s
    }

    /// Drives the model and the socket by one step, on the model alone. A wait expires each timer at its latest
    /// (the bound a stack must meet); the driver judging a real stack times them from what it captured instead.
    public mutating func apply(_ step: FuzzStep) {
        if case .wait(let d) = step {
            pass(d)
        } else if let input = modelInput(step) {
            restartAges(model.apply(input).timersStarted)
        }
        track(step)
        model.listenAgain(listenerOpen: listenerOpen)
        steps.append(step)
    }

    mutating func restartAges(_ started: UInt8) {
        for t in TimerName.allCases where started & (1 << t.rawValue) != 0 { timerAges[Int(t.rawValue)] = 0 }
    }

    /// Lets `seconds` pass on the model: the timers due meanwhile expire, in order, each at its latest bound.
    mutating func pass(_ seconds: Double) {
        var left = seconds
        for _ in 0..<64 {
            guard let (t, w) = model.nextExpiry(since: { [timerAges] in -timerAges[Int($0.rawValue)] }), let at = w.upper else { break }
            let due = max(0, at - timerAges[Int(t.rawValue)])
            guard due <= left else { break }
            left -= due
            for i in timerAges.indices { timerAges[i] += due }
            restartAges(model.apply(.timeout(Timeout(t))).timersStarted)
            model.listenAgain(listenerOpen: listenerOpen)
        }
        for i in timerAges.indices { timerAges[i] += left }
    }

    /// How long a wait lets `t` expire at its latest (plus `slack`), from what the waits so far left of it; nil
    /// when it does not run or no bound says when it must expire.
    public func waitPast(_ t: TimerName, slack: Double) -> Double? {
        guard let w = model.expiry(t), let at = w.upper else { return nil }
        return max(0, at - timerAges[Int(t.rawValue)]) + slack
    }

    /// Calls the application can still make (a closed socket takes none; a passive connection none before it
    /// has been taken from the listener).
    public func callAllowed(_ c: UserCall) -> Bool {
        if let o = offered, let name = FuzzStep.call(c).socketCall?.name, !o.contains(name) { return false }
        switch c {
        case .openActive, .openPassive: return !socketOpen && steps.isEmpty
        case .status: return false
        case .send, .receive, .close, .abort, .shutdown:
            guard socketOpen else { return false }
            if passive && !accepted { return model.spec.states[model.state].state == .listen && (c == .close || c == .abort) }
            return true
        }
    }
}
