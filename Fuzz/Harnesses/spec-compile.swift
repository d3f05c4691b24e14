// libFuzzer harness: arbitrary bytes as a .tcpspec file, parsed and, when it parses cleanly, compiled as
// `tcpspec spec check` does: name resolution, type checks, the static checks (determinism, completeness,
// reachability, dead and shadowed rules) and the decision tables. A base profile is compiled alone; an overlay
// (`extends`) over the shipped profiles in Spec/, parsed once.
//
// Milliseconds per compile (tens of thousands of cells under ASan), so this is its own, slower campaign; the
// `spec` harness covers the lexer and parser at full speed. Beyond "no crash": a compile returns a spec exactly
// when it reports no error, and every diagnostic's location is in the input or a shipped file.
import Foundation
import Spec

let inputPath = "fuzz.tcpspec"

/// The shipped profiles, parsed once (TCPSPEC_SPEC_DIR, or Spec/ of the checkout this file is in).
let shipped: [SpecFileAST] = {
    let dir = ProcessInfo.processInfo.environment["TCPSPEC_SPEC_DIR"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Spec").path
    let (asts, diags) = SpecLoader.loadDirectory(dir)
    require(diags.isEmpty && !asts.isEmpty, "the shipped specs in \(dir) must parse: \(diags)")
    return asts
}()
let shippedPaths = Set(shipped.map(\.file.path))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpecCompile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let (ast, parseDiags) = SpecLoader.parse(path: inputPath, bytes: bytes)
    guard parseDiags.isEmpty, let profile = ast.profile else { return 0 }
    // An overlay named like a shipped profile replaces it (else the compiler reports the duplicate, rightly).
    let files = profile.extends == nil ? [ast] : shipped.filter { $0.profile?.name.value != profile.name.value } + [ast]
    let result = SpecCompiler.compile(profile: profile.name.value, files: files)
    require((result.spec == nil) == !result.diagnostics.isEmpty, "a spec with errors, or no spec and no error")
    for d in result.diagnostics {
        if let loc = d.location {
            require(loc.file == inputPath || shippedPaths.contains(loc.file), "diagnostic in an unknown file: \(d.rendered)")
            require(loc.line >= 1 && loc.column >= 1, "bad location: \(d.rendered)")
            require(d.rendered.hasPrefix("\(loc): error["), "not file:line:col: \(d.rendered)")
        }
    }
    return 0
}
