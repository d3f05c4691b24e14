import Core
import Cases
import Checker
import Foundation
import Spec
import TestSupport
import Testing
import Targets

/// The real lwIP 2.1.3 (Debian liblwip-dev, its agent built by Targets/lwip/install.sh on first use) on a TAP
/// device in a namespace the target makes.
@Suite("lwIP through the agent interface", .serialized)
struct LwIPTests {
    static var description: TargetDescription { get throws { try TargetDescription.load(Repository.url("Targets/lwip.toml").path) } }

    @Test("the generic examples pass, but for finding 1 (its resets carry ACK) exactly where the RFC's form has none")
    func examples() throws {
        let files = try CaseFolder.names("Corpus/examples")
        #expect(files.count >= 7)
        for f in files {
            let r = try CaseFolder.run("Corpus/examples", f, on: try Self.description) { t in
                #expect(t.capabilities.reportsState && t.capabilities.calls.isSuperset(of: ["listen", "accept", "connect", "send", "recv", "shutdown", "close", "abort"]))
            }
            let text = CaseReport.text(r, color: false)
            if f == "rst-closed-port.case" {
                // `> R 4242:4242(0)` answered with R.: the one mismatch, a flag, nothing else.
                let bad = r.steps.filter { if case .mismatch = $0.verdict { true } else { false } }
                #expect(bad.count == 1 && bad.first?.expected.hasPrefix("> R 4242:4242(0)") == true && bad.first?.observed.hasPrefix("> R. 4242:4242(0)") == true, "\(text)")
            } else {
                #expect(r.passed, "\(f): \(text)")
            }
        }
    }

    @Test("each kept finding of Corpus/lwip still diverges on replay, at its last step")
    func findings() throws {
        let files = try CaseFolder.names("Corpus/lwip/findings")
        #expect(files.count >= 20)
        // A sample across the findings (each replay starts a stack): a reset's form, no simultaneous open,
        // TIME-WAIT's RST to a SYN.
        for f in files where ["000-", "004-", "036-"].contains(where: { f.hasPrefix($0) }) {
            let r = try CaseFolder.run("Corpus/lwip/findings", f, on: try Self.description)
            #expect(!r.passed, "\(f) no longer diverges: \(CaseReport.text(r, color: false))")
            #expect(!r.steps.contains { if case .error = $0.verdict { true } else { false } }, "\(f): \(CaseReport.text(r, color: false))")
        }
    }
}
