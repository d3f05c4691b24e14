// libFuzzer harness: arbitrary bytes as a capture file, end to end through `tcpspec check`'s path: libpcap's
// own pcap/pcapng readers (PcapFile(bytes:), fmemopen, no file per input), then every frame through the
// offline checker (CaptureChecker.check(file:spec:)) with the linux profile compiled once from Spec/.
//
// Beyond "no crash": what libpcap cannot read is a PcapFile.Failure naming the input, and a report's frame
// numbers (connections, violations) are frames of the file.
import Checker
import Foundation
import Link
import Spec

let inputName = "fuzz.pcap"

let spec: CompiledSpec = {
    let dir = ProcessInfo.processInfo.environment["TCPSPEC_SPEC_DIR"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Spec").path
    let r = SpecLoader.compile(profile: "linux", directory: dir)
    guard let s = r.spec else { fail("the shipped linux profile must compile: \(r.diagnostics)") }
    return s
}()

/// Compiles the spec before the first input: compiling the linux profile under ASan takes longer than one
/// input's timeout, which would then blame the first input for it.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    _ = spec
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPcap(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let report: CaptureReport
    do {
        report = try CaptureChecker.check(file: PcapFile(bytes: bytes, name: inputName), spec: spec, jobs: 1)
    } catch let f as PcapFile.Failure {
        require(f.description.hasPrefix(inputName + ": "), "a failure that does not name the input: \(f)")
        return 0
    } catch {
        fail("an error that is not a PcapFile.Failure: \(error)")
    }
    for c in report.connections {
        require(1 <= c.firstFrame && c.firstFrame <= c.lastFrame && c.lastFrame <= report.frames,
                     "connection frames \(c.firstFrame)–\(c.lastFrame) of \(report.frames)")
        for v in c.violations { require(1 <= v.frame && v.frame <= report.frames, "violation at frame \(v.frame) of \(report.frames)") }
    }
    return 0
}
