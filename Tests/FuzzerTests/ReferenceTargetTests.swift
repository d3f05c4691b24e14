import Core
import Foundation
import Spec
import Targets
import TestSupport
import Testing

@Suite("Reference target")
struct ReferenceTargetTests {
    @Test("every seeded fault compiles as an overlay and changes the compiled spec", arguments: ReferenceFault.all.map(\.name))
    func faultCompiles(name: String) throws {
        let fault = try #require(ReferenceFault.named(name))
        let t = try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory, fault: fault)
        #expect(t.spec.lineage == ["rfc793", "rfc9293", "fault-\(name)"])
        // A fault breaks a rule, or a timing, or delays ACKs (the stack's timers run on the reference target's virtual clock).
        let base = try Repository.spec("rfc9293")
        #expect(t.spec.rules.contains { $0.profile == "fault-\(name)" } || t.spec.timings != base.timings || t.ackDelay != nil || fault.dropsUnknownOptions)
    }

    @Test("at least ten distinct faults")
    func count() {
        #expect(Set(ReferenceFault.all.map(\.name)).count >= 10)
    }
}
