import Core
import Generator
import Model
import Spec
import TestSupport
import Testing

/// Conformance reaches a class that needs text held beyond RCV.NXT (the linux profile's RST at the end of the highest
/// SACK block) by holding some first: `Planner.heldTextSetup` offers that segment only when the class can then be
/// drawn.
@Suite("Planner: held text set up for a class that needs it")
struct HeldTextSetupTests {
    @Test("a RST at the held text's end is drawn after ten octets held, only with SACK agreed")
    func sackEnd() throws {
        let spec = try Repository.spec("linux")
        let planner = Planner(spec: spec, seed: 1)
        var c = Connection(spec: spec, testerISN: 1000, offered: nil)
        for s in try #require(planner.shortestWay[.established]) { c.apply(s) }
        let st = c.model.state
        #expect(spec.states[st].state == .established)
        // The class: a RST at HELD.END once text is held (found on a copy, as the setup would leave it).
        var m = c.model
        _ = m.adopt(.sackPermitted(true))
        _ = m.apply(.segment(Segment(seq: m[.rcvNxt] &+ 1, ack: m[.sndNxt], ctl: .ack, window: 65535, dataLength: 10)))
        let cell = m.cell(of: .segment(Segment(seq: m.heldEnd, ack: 0, ctl: .rst, window: 0)))
        #expect(spec.describeCell(state: st, event: .segment, cell: cell).contains("seq=sackend"))
        var sampler = InputSampler(seed: 7)
        // Without SACK agreed the class cannot be drawn, held text or not.
        #expect(planner.heldTextSetup(for: c, state: st, cell: cell, sampler: &sampler) == nil)
        _ = c.model.adopt(.sackPermitted(true))
        let setup = try #require(planner.heldTextSetup(for: c, state: st, cell: cell, sampler: &sampler))
        guard case .segment(let s) = setup else { Issue.record("\(setup)"); return }
        #expect(s.dataLength == 10 && s.seq == c.model[.rcvNxt] &+ 1 &- 1000, "\(s)")
        // Asked for a state the lane is not in: nothing.
        #expect(planner.heldTextSetup(for: c, state: st + 1 == spec.states.count ? 0 : st + 1, cell: cell, sampler: &sampler) == nil)
    }
}
