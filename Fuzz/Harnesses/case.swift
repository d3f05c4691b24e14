// libFuzzer harness: arbitrary bytes as a .case file, through the parser `tcpspec run` and the fuzzer's corpus
// use (CaseParser.parse), then, for a file that parses, the packetdrill export of it.
//
// Beyond "no crash": every diagnostic points at a real line:col of the input and renders as file:line:col, and
// every parsed step's line number is a line of the input.
import Foundation
import Cases
import Spec

let inputPath = "fuzz.case"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCase(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // As the CLI reads a case file: bytes decoded as UTF-8, invalid sequences replaced (and reported).
    let text = size == 0 ? "" : String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let (file, diags) = CaseParser.parse(path: inputPath, text: text)
    let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
    for d in diags {
        guard let loc = d.location else { fail("case diagnostic without a location: \(d.message)") }
        require(loc.file == inputPath && loc.line >= 1 && loc.line <= lines.count, "bad location \(loc) (\(lines.count) lines): \(d.message)")
        // One past the end of the line (where a missing word is expected), one more for a CR before the newline.
        require(loc.column >= 1 && loc.column <= lines[loc.line - 1].count + 2, "bad column \(loc): \(d.message)")
        require(d.rendered.hasPrefix("\(loc): error["), "not file:line:col: \(d.rendered)")
    }
    for l in file.lines { require(l.line >= 1 && l.line <= lines.count, "step at line \(l.line) of \(lines.count)") }
    if diags.isEmpty { _ = PacketdrillExport.script(file, originalText: text) }
    return 0
}
