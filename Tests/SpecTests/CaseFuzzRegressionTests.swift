import Core
import Cases
import Foundation
import Spec
import TestSupport
import Testing

/// Inputs the `case` fuzz harness (Fuzz/Harnesses/case.swift) crashed on, run through the same call it makes:
/// CaseParser.parse on the bytes decoded as UTF-8. Fuzz/regressions/case/ holds them.
@Suite("Fuzz regressions: case parser")
struct CaseFuzzRegressionTests {
    static let directory = Repository.url("Fuzz/regressions/case")

    static var files: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".case") }.sorted()
    }

    static func text(_ name: String) throws -> String {
        String(decoding: try Data(contentsOf: directory.appendingPathComponent(name)), as: UTF8.self)
    }

    static func located(_ diags: [Diagnostic]) -> [String] { diags.map { "\($0.location.map { "\($0)" } ?? "-"): \($0.message)" } }

    @Test("the regression inputs are there")
    func present() {
        #expect(Self.files.contains("crlf-lines.case") && Self.files.contains("crlf-small.case"))
    }

    /// The fuzzer's input: a mutated corpus case with CRLF line ends in it. Split on the Character "\n" (which
    /// "\r\n" is not) the parser saw one line where there were several, and reported a column past its end.
    @Test("CRLF line ends read as LF ones: same steps, same diagnostics at the same line:col", arguments: files)
    func crlfLikeLF(name: String) throws {
        let text = try Self.text(name)
        let (file, diags) = CaseParser.parse(path: name, text: text)
        let (lfFile, lfDiags) = CaseParser.parse(path: name, text: text.replacingOccurrences(of: "\r\n", with: "\n"))
        #expect(Self.located(diags) == Self.located(lfDiags))
        #expect(file.lines.map(\.line) == lfFile.lines.map(\.line))
        #expect(file.lines.map(\.text) == lfFile.lines.map(\.text))
        // What the harness checks: every diagnostic at a real line:col of the input, rendered file:line:col.
        let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
        for d in diags {
            let loc = try #require(d.location)
            #expect(loc.line >= 1 && loc.line <= lines.count)
            #expect(loc.column >= 1 && loc.column <= lines[loc.line - 1].count + 2, "\(d.rendered)")
            #expect(d.rendered.hasPrefix("\(name):\(loc.line):\(loc.column): error["))
        }
    }

    @Test("a small CRLF case file parses into its steps, each on its own line")
    func crlfSmall() throws {
        let (file, diags) = CaseParser.parse(path: "crlf-small.case", text: try Self.text("crlf-small.case"))
        #expect(diags.isEmpty, "\(diags)")
        #expect(file.lines.map(\.line) == [2, 3])
        #expect(file.lines.map(\.text) == ["listen", "state LISTEN"])
    }

    /// The fuzzer's input: `option sysctl net.ipv<<<=`, a sysctl with nothing after its `=`. Reading the value
    /// trapped (index out of range) instead of reporting the option's error.
    @Test("a sysctl option without a value is an error at the value, not a trap")
    func sysctlWithoutValue() throws {
        let (_, diags) = CaseParser.parse(path: "sysctl-empty-value.case", text: try Self.text("sysctl-empty-value.case"))
        #expect(Self.located(diags).contains("sysctl-empty-value.case:5:15: option sysctl is net.KEY=VALUE"), "\(Self.located(diags))")
        for bad in ["option sysctl net.ipv4.tcp_rmem=", "option sysctl net.=1", "option sysctl =1", "option sysctl net.ipv4.tcp_rmem"] {
            let (_, d) = CaseParser.parse(path: "x.case", text: bad + "\n")
            #expect(Self.located(d) == ["x.case:1:15: option sysctl is net.KEY=VALUE"], "\(bad): \(Self.located(d))")
        }
        let (ok, d) = CaseParser.parse(path: "x.case", text: "option sysctl net.ipv4.tcp_rmem=4096 32768 32768\n")
        #expect(d.isEmpty)
        #expect(ok.options["sysctl net.ipv4.tcp_rmem"] == "4096 32768 32768")
    }

    @Test("the fuzzer's CRLF input: its errors are on the lines they are on")
    func crlfFuzzInput() throws {
        let text = try Self.text("crlf-lines.case")
        let (_, diags) = CaseParser.parse(path: "crlf-lines.case", text: text)
        // Before the fix the first error was at 7:31, a column past the end of line 7 (27 characters).
        #expect(!diags.isEmpty)
        #expect(!diags.contains { $0.location?.line == 7 && $0.location?.column == 31 })
        #expect(diags.allSatisfy { $0.sourceLine.map { !$0.contains("\r") && !$0.contains("\n") } ?? false })
    }
}
