import Core
import CPcap

/// libpcap, loaded at run time (Sources/CPcap): tcpspec starts without it, and only what captures or injects
/// needs it.
public enum PcapLibrary {
    /// nil when libpcap is loaded; otherwise what the loader said.
    public static let loadError: String? = {
        var err = [CChar](repeating: 0, count: 512)
        return tsp_pcap_load(&err, Int32(err.count)) == 0 ? nil : String(cString: err)
    }()

    /// The message for a machine without libpcap: what failed and how to fix it.
    public static var missingMessage: String? {
        loadError.map { "tcpspec: libpcap is not installed (\($0)); install it with apt-get install libpcap0.8, or run scripts/setup" }
    }

    /// libpcap's own version string, or nil when it cannot be loaded.
    public static var version: String? { loadError == nil ? String(cString: pcap_lib_version()) : nil }

    public static func require() throws(PcapError) {
        if let m = missingMessage { throw PcapError(description: m) }
    }
}
