import Core
import ArgumentParser
import Foundation
import Link

/// What tcpspec refuses unless told otherwise (README "Safety"): injecting on an interface it did not create,
/// and sending from or to addresses outside the documentation ranges.
struct SafetyOptions: ParsableArguments {
    @Option(name: .customLong("allow-foreign-interface"), help: ArgumentHelp("Allow injecting on this existing interface, which tcpspec did not create (repeatable): e.g. the device a target description names with [link] device.", valueName: "name"))
    var foreignInterfaces: [String] = []
    @Flag(name: .customLong("allow-non-documentation-addresses"), help: "Allow addresses outside 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32 (in a target description's [link] address/peer_address, and in injected frames).")
    var nonDocumentationAddresses = false

    /// Hands the user's permissions to the injection seam.
    func apply() {
        InjectionGuard.allowForeign(foreignInterfaces)
        InjectionGuard.allowsNonDocumentationAddresses = nonDocumentationAddresses
    }
}

/// Commands that capture or inject need libpcap, loaded at run time: without it they stop here, saying so.
func requireLibpcap() throws {
    if let m = PcapLibrary.missingMessage {
        printError(m)
        throw ExitCode(3)
    }
}
