// libFuzzer harness: arbitrary bytes as a .tcpspec file, through the same calls `tcpspec spec check` makes.
//
// Every input is lexed and parsed (SpecLoader.parse), the front end every spec command runs on any text.
// Compiling is the `spec-compile` harness: it costs milliseconds per input (the decision tables cover every
// state and input class), too slow to share a campaign with the parser. Beyond "no crash", the harness checks
// what users rely on: every diagnostic points into the input at a real line:col and renders as file:line:col.
import Foundation
import Spec

let inputPath = "fuzz.tcpspec"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpec(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let (ast, parseDiags) = SpecLoader.parse(path: inputPath, bytes: bytes)
    guard !parseDiags.isEmpty else { return 0 }
    let lines = ast.file.text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
    for d in parseDiags {
        guard let loc = d.location else { fail("parse diagnostic without a location: \(d.message)") }
        require(loc.file == inputPath && loc.line >= 1 && loc.line <= lines.count, "bad location \(loc) (\(lines.count) lines): \(d.message)")
        // One past the end of the line (the newline, or end of file), one more for a CR before it.
        require(loc.column >= 1 && loc.column <= lines[loc.line - 1].count + 2, "bad column \(loc): \(d.message)")
        require(d.rendered.hasPrefix("\(loc): error["), "not file:line:col: \(d.rendered)")
    }
    return 0
}
