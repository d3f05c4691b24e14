import Foundation
import Core
import TestSupport
import Testing
@testable import Targets

@Suite("Target descriptions")
struct TargetDescriptionTests {
    static let good = """
    # a stack
    name = "mystack"
    version = 1

    [start]
    command = ["bin/agent", "--quiet"]   # relative to dir
    dir = "stack"
    env = { LOG = "warn", X = 'a b' }
    ready_timeout_ms = 1500
    install = ["sh", "install.sh"]
    installed = "bin/agent"

    [link]
    type = "tun"
    ip = 6
    mac = "02:00:00:77:00:09"
    barrier = "quiet"
    quiet_ms = 20

    [application]
    user_timeout_ms = 2500
    keepalive_idle_ms = 1500
    keepalive_interval_ms = 250
    keepalive_probes = 4

    [settings]
    "tcp.time_wait.delay_ms" = 100
    mode = "fast"
    sack = true
    """

    @Test("a full description reads into every field, paths relative to the file")
    func reads() throws {
        let d = try TargetDescription.parse(Self.good, file: "/x/Targets/mystack.toml", directory: "/x/Targets")
        #expect(d.name == "mystack")
        #expect(d.command == ["bin/agent", "--quiet"])
        #expect(d.workingDirectory == "/x/Targets/stack")
        #expect(d.environment.map { "\($0.0)=\($0.1)" } == ["LOG=warn", "X=a b"])
        #expect(d.readyTimeout == 1.5)
        #expect(d.callTimeout == 5)
        #expect(d.installed == "/x/Targets/stack/bin/agent")
        #expect(d.link == .tun && d.ip == .v6 && d.barrier == .quiet && d.quietTime == 0.02)
        #expect("\(d.mac)" == "02:00:00:77:00:09")
        #expect(d.userTimeoutMilliseconds == 2500)
        #expect(d.keepalive == KeepaliveSetting(idle: 1.5, interval: 0.25, probes: 4))
        #expect(d.settingsJSON == #"{"tcp.time_wait.delay_ms": 100, "mode": "fast", "sack": true}"#)
        let json = try JSONSerialization.jsonObject(with: Data(d.settingsJSON.utf8)) as? [String: Any]
        #expect(json?["mode"] as? String == "fast")
    }

    @Test("the repository's pytcp description is valid")
    func pytcpFile() throws {
        let d = try TargetDescription.load(Repository.url("Targets/pytcp.toml").path)
        #expect(d.name == "pytcp" && d.link == .tap && d.barrier == .rst)
        #expect(d.workingDirectory.hasSuffix("/Targets/pytcp"))
        // Its application sets R2 on every socket, so PyTCP's user timeout is judged.
        #expect(d.userTimeoutMilliseconds == 3000)
        // And keep-alives, as the Linux suite's --keepalive 1s,1s,3: its KEEPALIVE-TIMEOUT tests are judged.
        #expect(d.keepalive == KeepaliveSetting(idle: 1, interval: 1, probes: 3))
    }

    @Test("each mistake is reported at its line and column", arguments: [
        ("name = \"a\"\n[start]\ncommand = \"agent\"\n", "3:11: error: 'command' is an array of strings, not a string"),
        ("name = \"a\"\n[start]\ncomand = [\"x\"]\n", "3:1: error: unknown key 'comand' in [start]; known: command, dir, env, ready_timeout_ms, call_timeout_ms, install, installed"),
        ("name = \"a\"\n[strat]\n", "2:1: error: unknown table [strat]; a target description has [start], [link], [application] and [settings]"),
        ("name = \"a\"\n[start]\ncommand = [\"x\"]\n[application]\nuser_timeout_ms = 0\n", "5:19: error: 'user_timeout_ms' must be in 1...3600000, not 0"),
        ("name = \"a\"\n[start]\ncommand = [\"x\"]\n[application]\nkeepalive_idle_ms = 1000\nkeepalive_probes = 3\n", "4:1: error: keep-alives need all of keepalive_idle_ms, keepalive_interval_ms and keepalive_probes in [application]; missing: keepalive_interval_ms"),
        ("name = \"a\"\n[start]\ncommand = [\"x\"]\n[application]\nkeepalive_probes = 1\n", "5:20: error: 'keepalive_probes' must be at least 2: giving a connection up after one unanswered probe is what RFC 9293 §3.8.4 MUST-29 forbids, so the tests would judge the setting, not the stack"),
        ("name = \"a\"\n[start]\ncommand = [\"x\"]\n[link]\ntype = \"ethernet\"\n", "5:8: error: 'type' is \"tap\" or \"tun\""),
        ("name = \"a\"\n[start]\ncommand = [\"x\"]\n[link]\nmac = \"01:00:00:00:00:01\"\n", "5:7: error: 'mac' must be a unicast address"),
        ("name = \"a\"\n[start]\ncommand = [\"x\"]\n[link]\nmtu = 100\n", "5:7: error: 'mtu' must be in 576...65535, not 100"),
        ("name = \"a\"\n[start]\ncommand = [\"x\"]\n[link]\nacks = \"lazy\"\n", "5:8: error: 'acks' is \"immediate\" (every reply follows its input) or \"delayed\" (the stack's delayed ACKs, judged against the profile's bound)"),
        ("name = \"a\"\n[start]\ncommand = [\"x\", 3]\n", "3:17: error: 'command' holds strings only, not an integer"),
        ("name = \"a\"\n[start]\ncommand = [\"x\"\n", "3:11: error: arrays are written on one line here: expected ']'"),
        ("name = \"a\"\n[start]\ncommand = [\"x\"] junk\n", "3:17: error: expected the end of the line, found 'j'"),
        ("name = \"a\"\n[start]\nenv = { TCPSPEC_IP = \"1\" }\ncommand = [\"x\"]\n", "3:22: error: TCPSPEC_* variables are set by tcpspec itself"),
        ("name = \"a b\"\n", "1:8: error: a target name is letters, digits, '-', '_' and '.'"),
        ("[start]\ncommand = [\"x\"]\n", "1:1: error: a target description needs name = \"...\" at the top"),
        ("name = \"a\"\n", "1:1: error: a target description needs [start] command = [\"program\", \"arg\", ...]"),
        ("name = \"a\"\nname = \"b\"\n", "2:1: error: key 'name' is set twice"),
        ("name = \"a\n", "1:8: error: unterminated string"),
        ("name = \"a\"\nstart.command = [\"x\"]\n", "2:6: error: dotted keys are not used in this file; quote the key (\"start.…\")"),
        ("name = \"a\"\n[start]\ncommand = [\"x\"]\n[settings]\nlevels = [1]\n", "5:10: error: a setting is a string, an integer or a boolean, not an array"),
        ("version = 2\n", "1:11: error: this tcpspec reads target descriptions of version 1"),
    ])
    func errors(_ text: String, _ message: String) {
        do {
            _ = try TargetDescription.parse(text, file: "t.toml", directory: "/tmp")
            Issue.record("no error for \(text)")
        } catch {
            #expect("\(error)" == "t.toml:\(message)")
        }
    }

    @Test("a missing file is an error naming it")
    func missing() {
        #expect(throws: TargetDescription.Failure.self) { try TargetDescription.load("/nonexistent/tcpspec/x.toml") }
        #expect(TargetDescription.locate("no-such-stack", checkout: "/nonexistent") == nil)
        #expect(TargetDescription.locate("./x.toml", checkout: nil) == "./x.toml")
    }
}
