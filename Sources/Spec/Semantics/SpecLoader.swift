import Core
import Foundation

/// Reads `.tcpspec` files. Every file of a directory is parsed, so that a broken overlay is reported even when
/// another profile is being compiled.
public enum SpecLoader {
    public static let fileExtension = "tcpspec"

    public static func parse(path: String, bytes: [UInt8]) -> (SpecFileAST, [Diagnostic]) {
        Parser.parse(SourceFile(path: path, bytes: bytes))
    }

    public static func parse(path: String, text: String) -> (SpecFileAST, [Diagnostic]) {
        Parser.parse(SourceFile(path: path, text: text))
    }

    /// Parses every `*.tcpspec` in `directory`, in name order.
    public static func loadDirectory(_ directory: String) -> ([SpecFileAST], [Diagnostic]) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            return ([], [Diagnostic(.io, "spec directory '\(directory)' does not exist or is not a directory", at: nil)])
        }
        guard let names = try? fm.contentsOfDirectory(atPath: directory) else {
            return ([], [Diagnostic(.io, "cannot list spec directory '\(directory)'", at: nil)])
        }
        let files = names.filter { $0.hasSuffix("." + fileExtension) }.sorted()
        if files.isEmpty {
            return ([], [Diagnostic(.io, "no .\(fileExtension) files in '\(directory)'", at: nil)])
        }
        var asts: [SpecFileAST] = []
        var diags: [Diagnostic] = []
        for name in files {
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            guard let data = fm.contents(atPath: path) else {
                diags.append(Diagnostic(.io, "cannot read '\(path)'", at: nil))
                continue
            }
            let (ast, d) = parse(path: path, bytes: [UInt8](data))
            asts.append(ast)
            diags.append(contentsOf: d)
        }
        return (asts, diags)
    }

    /// Compiles one profile from a directory of spec files: the entry point of `spec check` and every command
    /// that needs a model.
    public static func compile(profile: String, directory: String) -> SpecCompiler.Result {
        let (asts, parseDiags) = loadDirectory(directory)
        if parseDiags.contains(where: { $0.kind == .io }) { return SpecCompiler.Result(spec: nil, diagnostics: parseDiags) }
        // Requirement IDs are checked against RFC 9293 Appendix B as the directory's catalog lists it.
        var extra: [Diagnostic] = []
        do {
            let catalog = try RequirementCatalog.load(directory: directory)
            extra = catalog.unknownCitations(in: asts)
        } catch {
            extra = [Diagnostic(.io, error.description, at: nil)]
        }
        return compile(profile: profile, asts: asts, parseDiagnostics: parseDiags + extra)
    }

    /// Compiles a profile from sources held in memory (path, text): what tests and tools that generate specs use.
    public static func compile(profile: String, sources: [(path: String, text: String)]) -> SpecCompiler.Result {
        var asts: [SpecFileAST] = []
        var diags: [Diagnostic] = []
        for (path, text) in sources {
            let (ast, d) = parse(path: path, text: text)
            asts.append(ast)
            diags += d
        }
        return compile(profile: profile, asts: asts, parseDiagnostics: diags)
    }

    static func compile(profile: String, asts: [SpecFileAST], parseDiagnostics parseDiags: [Diagnostic]) -> SpecCompiler.Result {
        var result = SpecCompiler.compile(profile: profile, files: asts)
        result.diagnostics = SpecCompiler.attachSourceLines(parseDiags + result.diagnostics, files: asts)
        if !parseDiags.isEmpty { result.spec = nil }
        return result
    }
}
