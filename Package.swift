// swift-tools-version:6.0
// tcpspec: a TCP-state specification checker and fuzzer.
// The module layout follows the pipeline: spec → model → (generator → link → target → checker) → report.
import PackageDescription

let package = Package(
    name: "tcpspec",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tcpspec", targets: ["TCPSpecCLI"]),
        .executable(name: "tcpspec-bench", targets: ["TCPSpecBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // core: the small vocabulary every layer shares (control bits, segments, TCP states, socket calls and their
        // results, errno, durations, source locations and diagnostics, the TOML subset) — no logic of its own.
        .target(name: "Core"),
        // spec: the .tcpspec language — lexer, parser, typed AST, static checks, compiler to decision tables.
        .target(name: "Spec", dependencies: ["Core"]),
        // model: the pure, executable TCP endpoint driven by a compiled spec (no I/O).
        // The model and the offline checker run per segment: release builds skip dynamic exclusivity checks
        // (debug builds and the tests keep them).
        .target(name: "Model", dependencies: ["Core", "Spec"], swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        // solver: input classes decided by solving their classifiers' conditions with Z3 (libz3-dev): a class no
        // TCB and no input can give is proven unreachable; for a TCB at hand, a segment of the class.
        .systemLibrary(name: "CZ3", path: "Sources/CZ3"),
        .target(name: "Solver", dependencies: ["Core", "Spec", "Model", "CZ3"]),
        // generator: seeded inputs drawn from the partitions of the model's input classes.
        .target(name: "Generator", dependencies: ["Core", "Spec", "Model", "Solver"]),
        // C shims: the Linux interfaces Swift's Glibc lacks (namespaces, rtnetlink, sock_diag, TUN), and libpcap.
        .target(name: "CNetShim"),
        // libpcap is loaded at run time (dlopen), so tcpspec starts without it; its headers (libpcap-dev) are
        // needed to build.
        .target(name: "CPcap", linkerSettings: [.linkedLibrary("dl")]),
        // wire: Ethernet/IPv4/IPv6/TCP codec with options, checksums and deliberate malformations; notation.
        .target(name: "Wire", dependencies: ["Core"]),
        // link: libpcap injection and capture, network namespaces on their own threads, the veth topology.
        .target(name: "Link", dependencies: ["Core", "CNetShim", "CPcap", "Wire"]),
        // targets: stacks under test behind one interface; the local Linux kernel first.
        .target(name: "Targets", dependencies: ["Core", "CNetShim", "Link", "Wire", "Spec", "Model"]),
        // cases: the human-readable case files (one step per line), parsed with file:line:col errors.
        .target(name: "Cases", dependencies: ["Core"]),
        // checker: runs a case against a target and judges every step, expected beside observed.
        .target(name: "Checker", dependencies: ["Core", "Oracle", "Cases", "Targets", "Link", "Wire", "Spec", "Model"],
                swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        // oracle: the judgement of a step against the model (numbering, retransmissions, windows, comparison),
        // typed mismatches and signatures; pure, so it is tested without privileges.
        .target(name: "Oracle", dependencies: ["Core", "Spec", "Model", "Wire", "Targets"]),
        // fuzzer: model-guided generation, the oracle, minimization and the corpus.
        .target(name: "Fuzzer", dependencies: ["Core", "Oracle", "Spec", "Model", "Solver", "Generator", "Wire", "Link", "Targets", "Cases", "Report"]),
        // report: renderings of specs and results (Markdown tables, Graphviz state diagrams, explanations).
        .target(name: "Report", dependencies: ["Core", "Spec"]),
        .executableTarget(
            name: "TCPSpecCLI",
            dependencies: ["Core", "Spec", "Report", "Cases", "Checker", "Targets", "Link", "Fuzzer", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "TCPSpecBench", dependencies: ["Core", "Spec", "Model", "Solver", "Generator", "Link", "Targets", "Wire", "Fuzzer", "Report", "Checker"]),
        // What the test targets share: the repository's root and Spec/ directory, and its profiles compiled once.
        .target(name: "TestSupport", dependencies: ["Spec", "Core", "Generator"], path: "Tests/TestSupport"),
        .testTarget(name: "SpecTests", dependencies: ["Core", "Spec", "Generator", "Cases", "TestSupport"]),
        .testTarget(name: "ModelTests", dependencies: ["Core", "Spec", "Model", "Solver", "Generator", "TestSupport"]),
        .testTarget(name: "WireTests", dependencies: ["Core", "Wire", "Spec", "Generator"]),
        // Against the real kernel in namespaces the tests make (needs root or a user namespace).
        .testTarget(name: "LinuxTargetTests", dependencies: ["Core", "Targets", "Link", "Wire", "Spec", "Cases", "Checker", "Fuzzer", "TCPSpecCLI", "TestSupport"]),
        // Userspace stacks on a TAP device through their agents (PyTCP, installed into Targets/pytcp/.venv).
        .testTarget(name: "UserspaceTargetTests", dependencies: ["Core", "Targets", "Link", "Wire", "Spec", "Cases", "Checker", "Fuzzer", "Report", "TestSupport"]),
        // The offline checker on hand-made captures and on real Linux traffic captured by tcpdump.
        .testTarget(name: "CaptureCheckerTests", dependencies: ["Core", "Checker", "Link", "Wire", "Spec", "TestSupport"]),
        .testTarget(name: "FuzzerTests", dependencies: ["Core", "Oracle", "Fuzzer", "Targets", "Spec", "Model", "Cases", "Checker", "Report", "TestSupport"]),
        // Runs the built `tcpspec` executable; depends on it so that `swift build --build-tests` builds it first.
        .testTarget(name: "CLITests", dependencies: ["Core", "TCPSpecCLI", "Link", "Wire", "Spec", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
