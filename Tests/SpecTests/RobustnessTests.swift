import Core
import Foundation
import Generator
import Spec
import TestSupport
import Testing

/// "Never a crash, whatever the input bytes": random bytes and mutations of the real spec files go through the
/// lexer, parser and compiler; each run ends in diagnostics or a spec, never a trap.
@Suite("Spec front end robustness")
struct RobustnessTests {
    static func realSpecBytes() throws -> [UInt8] {
        try [UInt8](Data(contentsOf: Repository.url("Spec/rfc793.tcpspec")))
    }

    @Test("random byte strings parse to diagnostics")
    func randomBytes() {
        var rng = SplitMix64(seed: 1)
        for n in 0..<3000 {
            let len = Int(rng.next() % 400)
            let bytes = (0..<len).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let (_, diags) = SpecLoader.parse(path: "random-\(n)", bytes: bytes)
            // Bytes that are not UTF-8 are always reported, comments and strings included.
            if String(decoding: bytes, as: UTF8.self).unicodeScalars.contains("\u{FFFD}") {
                #expect(diags.contains { $0.kind == .encoding })
            }
        }
    }

    @Test("mutated spec files never crash the parser, and a sample never crashes the compiler")
    func mutations() throws {
        let original = try Self.realSpecBytes()
        var rng = SplitMix64(seed: 2)
        let alphabet = Array("()<>=,:#\"-.+ \n\tSYNACKRSTFIN§pseqiscase rule when on in step".utf8)
        var compiled = 0, rejected = 0
        for n in 0..<600 {
            var bytes = original
            for _ in 0..<(1 + Int(rng.next() % 8)) {
                let at = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 4 {
                case 0: bytes.remove(at: at)
                case 1: bytes.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)
                case 2: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                default:
                    // Duplicate or drop a whole line: exercises the overlay/duplicate/completeness checks.
                    let end = bytes[at...].firstIndex(of: 10) ?? bytes.count
                    let start = bytes[..<at].lastIndex(of: 10).map { $0 + 1 } ?? 0
                    if rng.next() % 2 == 0 { bytes.removeSubrange(start..<end) } else { bytes.insert(contentsOf: bytes[start..<end] + [10], at: start) }
                }
            }
            let (ast, parseDiags) = SpecLoader.parse(path: "mutant-\(n).tcpspec", bytes: bytes)
            // Compiling is the expensive part (in debug builds): every twentieth mutant goes all the way.
            if n % 20 == 0 {
                let r = SpecCompiler.compile(profile: "rfc793", files: [ast])
                if r.spec != nil && parseDiags.isEmpty { compiled += 1 } else { rejected += 1 }
                for d in r.diagnostics { #expect(d.location == nil || d.location!.line >= 1) }
            }
        }
        // Most mutants break something; the checks must say so.
        #expect(rejected > compiled)
    }
}
