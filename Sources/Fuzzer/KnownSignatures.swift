import Foundation
import Oracle

/// The signatures a run has already kept: its own, and those of the cases already in its corpus directory (read
/// from their `# signature:` lines), so that a divergence found again is not written twice. A signature's text
/// is its stable key on disk.
struct KnownSignatures {
    private var texts: Set<String> = []

    init() {}

    /// Every case below `dir`: the findings and those kept apart as timing-dependent (`timing-dependent/`), which
    /// a restarted run would otherwise find, minimize and replay again in its first seconds.
    init(corpus dir: String) {
        for name in (try? FileManager.default.subpathsOfDirectory(atPath: dir)) ?? [] where name.hasSuffix(".case") {
            guard let text = try? String(contentsOfFile: (dir as NSString).appendingPathComponent(name), encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") where line.hasPrefix(CorpusWriter.signaturePrefix) {
                texts.insert(String(line.dropFirst(CorpusWriter.signaturePrefix.count)))
            }
        }
    }

    func contains(_ s: Signature) -> Bool { texts.contains(s.description) }
    mutating func insert(_ s: Signature) { texts.insert(s.description) }
    mutating func remove(_ s: Signature) { texts.remove(s.description) }
}
