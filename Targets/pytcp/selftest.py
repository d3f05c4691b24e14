#!/usr/bin/env python3
"""Self-test of the PyTCP agent (stdlib only, run as root): a throwaway network namespace with a TAP in it, the
agent on the TAP, and this script as the tester on the same TAP through an AF_PACKET socket, checking what
docs/agent-protocol.md promises (barrier RST and its order, call answers after their segments, states, errnos),
ACKs for data before the barrier's RST (delayed ACKs fired early), and TCPSPEC_PYTCP_STATE=0 (no state reports).

    sudo python3 selftest.py [--python PATH] [--probes N] [--no-flush]

--no-flush runs the agent with its in-order shim off (TCPSPEC_PYTCP_FLUSH=0) to show PyTCP's own behaviour.
Only 192.0.2.0/24 and 02:00:00:77:00:xx are used; the root namespace's links are never touched.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NS = f"tcpspec-selftest-{os.getpid()}"
IFACE = "tcpspec-tap"
ME_IP, PEER_IP = "192.0.2.1", "192.0.2.2"  # the tester is 192.0.2.1, the stack 192.0.2.2
ME_MAC, PEER_MAC = bytes.fromhex("020000770001"), bytes.fromhex("020000770002")
FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16
PROBE_SPORT, PROBE_DPORT = 1, 9
results: list[tuple[bool, str]] = []


def check(ok: bool, what: str) -> bool:
    results.append((bool(ok), what))
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    return bool(ok)


def sh(*args: str) -> None:
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(sport: int, dport: int, seq: int, ack: int, flags: int, data: bytes = b"", win: int = 65535,
          mss: int | None = None) -> bytes:
    """Ethernet + IPv4 + TCP from the tester to the stack, checksums computed."""
    opts = struct.pack("!BBH", 2, 4, mss) if mss else b""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (5 + len(opts) // 4) << 4,
                      flags, win, 0, 0) + opts + data
    src, dst = socket.inet_aton(ME_IP), socket.inet_aton(PEER_IP)
    tcp = tcp[:16] + struct.pack("!H", csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return PEER_MAC + ME_MAC + b"\x08\x00" + ip + tcp


class Seg:
    def __init__(self, raw: bytes) -> None:
        ihl = (raw[14] & 15) * 4
        t = raw[14 + ihl:]
        self.sport, self.dport, self.seq, self.ack, off, self.flags, self.win = struct.unpack("!HHIIBBH", t[:16])
        total = struct.unpack("!H", raw[16:18])[0]
        self.data = t[(off >> 4) * 4: total - ihl]
        self.ok_csum = csum(raw[26:34] + struct.pack("!BBH", 0, 6, total - ihl) + t[:total - ihl]) == 0 \
            and csum(raw[14:14 + ihl]) == 0
        self.t = time.monotonic()

    def is_(self, flags: int, mask: int = FIN | SYN | RST | ACK) -> bool:
        return self.flags & mask == flags

    def __repr__(self) -> str:
        f = "".join(c for c, b in zip("FSRPA", (FIN, SYN, RST, PSH, ACK)) if self.flags & b)
        return f"<{self.sport}>{self.dport} {f} seq={self.seq} ack={self.ack} win={self.win} len={len(self.data)}>"


class Wire:
    """The tester's side of the TAP: frames written here reach the stack; what the stack writes is read here."""

    def __init__(self) -> None:
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        self.s.bind((IFACE, 0))
        self.s.setblocking(False)
        self.probe_seq = 1000
        self.other: list[bytes] = []  # non-TCP frames the stack sent (should stay empty)

    def send(self, *frames: bytes) -> None:
        for f in frames:
            self.s.send(f)

    def read(self, timeout: float) -> list[Seg]:
        """Frames from the stack: those queued, else the first burst within timeout (0: only those queued)."""
        out, end = [], time.monotonic() + timeout
        while True:
            try:
                raw, addr = self.s.recvfrom(65535)
            except BlockingIOError:
                left = end - time.monotonic()
                if out or left <= 0 or not select.select([self.s], [], [], left)[0]:
                    return out
                continue
            if addr[2] == socket.PACKET_OUTGOING:
                continue  # our own injections
            if raw[12:14] == b"\x08\x00" and raw[23] == 6 and raw[26:30] == socket.inet_aton(PEER_IP):
                out.append(Seg(raw))
            else:
                self.other.append(raw)

    def probe(self, before: tuple[bytes, ...] = (), timeout: float = 2.0) -> tuple[list[Seg], Seg | None, float]:
        """tcpspec's barrier: frames, then SYN 1→9; returns (segments before the RST, the RST, RTT of the probe)."""
        self.probe_seq += 7
        seq = self.probe_seq
        self.send(*before)
        t0 = time.monotonic()
        self.send(frame(PROBE_SPORT, PROBE_DPORT, seq, 0, SYN))
        got, end = [], t0 + timeout
        while time.monotonic() < end:
            for sg in self.read(end - time.monotonic()):
                if sg.sport == PROBE_DPORT and sg.dport == PROBE_SPORT:
                    if sg.ack == seq + 1:
                        return got, sg, sg.t - t0
                    continue
                got.append(sg)
        return got, None, float("inf")


class Agent:
    def __init__(self, python: str, flush: bool, **extra: str) -> None:
        # The settings of ../pytcp.toml, and one PyTCP does not have (ignored with a warning).
        env = dict(os.environ, TCPSPEC_AGENT_VERSION="1", TCPSPEC_IFACE=IFACE, TCPSPEC_LINK="tap",
                   TCPSPEC_MAC="02:00:00:77:00:02", TCPSPEC_IP=PEER_IP, TCPSPEC_PREFIX="24", TCPSPEC_PEER_IP=ME_IP,
                   TCPSPEC_PEER_MAC="02:00:00:77:00:01", PYTHONDONTWRITEBYTECODE="1",
                   TCPSPEC_SETTINGS=json.dumps({"tcp.delayed_ack.delay_ms": 1, "tcp.time_wait.delay_ms": 30000,
                                                 "tcp.challenge_ack.rate_limit_ms": 0, "no.such.knob": 1}), **extra)
        if not flush:
            env["TCPSPEC_PYTCP_FLUSH"] = "0"
        self.p = subprocess.Popen([python, "-u", os.path.join(HERE, "agent.py")], cwd=HERE, env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.id = 0
        t0 = time.monotonic()
        self.hello = json.loads(self.line(30))
        self.start_s = time.monotonic() - t0

    def line(self, timeout: float) -> str:
        if not select.select([self.p.stdout], [], [], timeout)[0]:
            raise TimeoutError("agent did not answer")
        s = self.p.stdout.readline()
        if not s:
            raise EOFError(f"agent exited ({self.p.poll()})")
        return s

    def __call__(self, op: str, **kw) -> dict:
        self.id += 1
        self.p.stdin.write(json.dumps({"id": self.id, "op": op, **kw}) + "\n")
        self.p.stdin.flush()
        r = json.loads(self.line(5))
        assert r.get("id") == self.id, f"answer out of order: {r}"
        return r

    def state(self, port: int, peer: int) -> str | None:
        return self("state", conns=[[port, peer]])["states"][0]

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)  # our own child, by its handle
            self.p.wait()


def wait_state(a: Agent, port: int, peer: int, want: str, limit: float = 0.2) -> str | None:
    end = time.monotonic() + limit
    while True:
        s = a.state(port, peer)
        if s == want or time.monotonic() > end:
            return s
        time.sleep(0.002)


def run(a: Agent, w: Wire, probes: int) -> None:
    check(a.hello.get("agent") == "tcpspec" and a.hello.get("version") == 1 and a.hello.get("state") is True,
          f"hello {a.hello} after {a.start_s:.2f} s")
    time.sleep(0.3)
    w.read(0)
    check(not w.other, f"no unsolicited non-TCP frames after start ({len(w.other)})")

    # (a) barrier probe: RST,ACK for a SYN to a closed port, and how fast
    rtts = []
    for _ in range(probes):
        got, rst, rtt = w.probe()
        if rst is None or got:
            break
        rtts.append(rtt)
    ok = len(rtts) == probes and rst is not None and rst.is_(RST | ACK) and rst.seq == 0 and rst.ok_csum
    check(ok, f"probe SYN 1→9 answered by RST,ACK seq=0 ack=seq+1 ({len(rtts)}/{probes})")
    if rtts:
        rtts.sort()
        print(f"     probe RTT: median {statistics.median(rtts) * 1e6:.0f} us, p99 {rtts[int(len(rtts) * .99) - 1] * 1e6:.0f}"
              f" us, max {rtts[-1] * 1e6:.0f} us, {len(rtts) / sum(rtts):.0f} probes/s sequential", flush=True)

    # (b) passive open: listen, SYN → SYN-ACK before the probe's RST, SYN-RECEIVED, ACK → ESTABLISHED, accept
    P, Q = 40000, 50000
    check(a("listen", port=P, peer=Q, backlog=8) == {"id": a.id, "ok": 0}, "listen 40000 → ok 0")
    check(a.state(P, Q) == "LISTEN", "state LISTEN")
    check(a("accept", port=P, peer=Q).get("errno") == "EAGAIN", "accept with nothing queued → EAGAIN")
    got, rst, _ = w.probe((frame(Q, P, 1000, 0, SYN, mss=1460),))
    sa = got[0] if got else None
    check(sa is not None and sa.is_(SYN | ACK) and sa.ack == 1001 and sa.ok_csum,
          f"SYN → SYN,ACK ack=1001 in order before the probe RST {got}")
    iss = sa.seq if sa else 0
    check(a.state(P, Q) == "SYN-RECEIVED", "unaccepted child reported SYN-RECEIVED")
    got, _, _ = w.probe((frame(Q, P, 1001, iss + 1, ACK),))
    check(got == [], f"ACK of SYN,ACK → no reply {got}")
    check(a.state(P, Q) == "ESTABLISHED", "state ESTABLISHED (not yet accepted)")
    check(a("accept", port=P, peer=Q).get("ok") == 0, "accept → ok 0 (listener then closed)")
    check(a.state(P, Q) == "ESTABLISHED", "accepted child still ESTABLISHED after the listener closed")
    check(a.state(P, 50099) == "CLOSED", "listener gone: other peer → CLOSED")
    got, _, _ = w.probe((frame(50099, P, 5000, 0, SYN),))
    check(len(got) == 1 and got[0].is_(RST | ACK), f"SYN to the closed listener's port → RST {got}")
    got, _, _ = w.probe((frame(Q, P, 1001, iss + 1, ACK),))
    check(got == [], f"child still there after listener close (a duplicate ACK draws nothing) {got}")

    # send: data on the wire before the answer
    r = a("send", port=P, peer=Q, n=5)
    seen = w.read(0)
    check(r.get("ok") == 5 and len(seen) == 1 and seen[0].data == b"aaaaa" and seen[0].seq == iss + 1,
          f"send 5 → ok 5, data segment already on the wire at the answer {r} {seen}")
    got, _, _ = w.probe((frame(Q, P, 1001, iss + 6, ACK),))
    # recv
    check(a("recv", port=P, peer=Q, n=100).get("errno") == "EAGAIN", "recv with nothing → EAGAIN")
    got, _, _ = w.probe((frame(Q, P, 1001, iss + 6, ACK | PSH, b"hello"),))
    late = w.read(0.3)
    check(len(got) == 1 and got[0].is_(ACK) and got[0].ack == 1006 and late == [],
          f"data → its ACK before the probe RST (delayed ACK fired early), nothing later {got} {late}")
    check(a("recv", port=P, peer=Q, n=100).get("ok") == 5, "recv → 5")
    # active close: FIN on the wire before the answer, FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT after the app closed
    r = a("close", port=P, peer=Q)
    seen = w.read(0)
    check(r.get("ok") == 0 and len(seen) == 1 and seen[0].is_(FIN | ACK) and seen[0].seq == iss + 6,
          f"close → FIN already on the wire at the answer {seen}")
    check(a.state(P, Q) == "FIN-WAIT-1", "state FIN-WAIT-1")
    check(a("send", port=P, peer=Q, n=1).get("errno") == "EBADF", "send after close → EBADF")
    got, _, _ = w.probe((frame(Q, P, 1006, iss + 7, ACK),))
    check(got == [] and a.state(P, Q) == "FIN-WAIT-2", f"ACK of FIN → FIN-WAIT-2 {got}")
    got, _, _ = w.probe((frame(Q, P, 1006, iss + 7, FIN | ACK),))
    check(len(got) == 1 and got[0].is_(ACK) and got[0].ack == 1007, f"peer FIN → ACK in order before the RST {got}")
    check(a.state(P, Q) == "TIME-WAIT", "TIME-WAIT reported after the app closed the socket")

    # (c) active open: SYN on the wire before the EINPROGRESS answer
    P, Q = 40001, 50001
    r = a("connect", port=P, peer=Q)
    seen = w.read(0)
    check(r.get("errno") == "EINPROGRESS" and len(seen) == 1 and seen[0].is_(SYN) and seen[0].dport == Q,
          f"connect → EINPROGRESS with the SYN already on the wire {r} {seen}")
    check(a.state(P, Q) == "SYN-SENT", "state SYN-SENT")
    iss = seen[0].seq if seen else 0
    r = a("send", port=P, peer=Q, n=3)
    check("errno" in r, f"send in SYN-SENT → an errno {r}")
    got, _, _ = w.probe((frame(Q, P, 7000, iss + 1, SYN | ACK, mss=1460),))
    check(len(got) >= 1 and got[0].is_(ACK) and got[0].ack == 7001, f"SYN,ACK → ACK before the probe RST {got}")
    check(wait_state(a, P, Q, "ESTABLISHED") == "ESTABLISHED", "state ESTABLISHED")
    acks, _, _ = w.probe((frame(Q, P, 7001 + 100000, iss + 1, ACK),) * 2)
    check(len(acks) == 2 and all(s.is_(ACK) and s.ack == 7001 for s in acks),
          f"two out-of-window segments at once → two ACKs (challenge-ACK limit 0 = off) {acks}")
    check(a("setsockopt", port=P, peer=Q, name="TCP_NODELAY", value=1).get("ok") == 0, "setsockopt TCP_NODELAY → 0")
    check(a("setsockopt", port=P, peer=Q, name="IP_BOGUS", value=1).get("errno") == "ENOPROTOOPT",
          "setsockopt unknown → ENOPROTOOPT")
    # (d) abort: RST on the wire before the answer, CLOSED
    r = a("abort", port=P, peer=Q)
    seen = w.read(0)
    check(r.get("ok") == 0 and len(seen) == 1 and seen[0].is_(RST | ACK) and seen[0].seq ==
          iss + 1 + len([s for s in got if s.data]), f"abort → RST already on the wire {seen}")
    check(a.state(P, Q) == "CLOSED", "state CLOSED after abort")
    check(a("recv", port=P, peer=Q, n=1).get("errno") == "EBADF", "recv with no socket → EBADF")

    # passive close: CLOSE-WAIT, LAST-ACK
    P, Q = 40002, 50002
    a("listen", port=P, peer=Q, backlog=8)
    got, _, _ = w.probe((frame(Q, P, 100, 0, SYN, mss=1460),))
    iss = got[0].seq
    w.probe((frame(Q, P, 101, iss + 1, ACK),))
    a("accept", port=P, peer=Q)
    got, _, _ = w.probe((frame(Q, P, 101, iss + 1, FIN | ACK),))
    check(len(got) == 1 and got[0].ack == 102 and a.state(P, Q) == "CLOSE-WAIT", f"peer FIN → ACK, CLOSE-WAIT {got}")
    check(a("recv", port=P, peer=Q, n=10).get("ok") == 0, "recv at end of stream → 0")
    r = a("shutdown", port=P, peer=Q, how="wr")
    seen = w.read(0)
    check(r.get("ok") == 0 and len(seen) == 1 and seen[0].is_(FIN | ACK) and a.state(P, Q) == "LAST-ACK",
          f"shutdown wr in CLOSE-WAIT → FIN at the answer, LAST-ACK {seen}")
    w.probe((frame(Q, P, 102, iss + 2, ACK),))
    check(a.state(P, Q) == "CLOSED", "ACK of FIN → CLOSED")
    check(a("close", port=P, peer=Q).get("ok") == 0, "close after LAST-ACK done → ok")

    # peer RST: errnos afterwards
    P, Q = 40003, 50003
    a("connect", port=P, peer=Q)
    syn = w.read(0)[0]
    w.probe((frame(Q, P, 300, syn.seq + 1, SYN | ACK, mss=1460),))
    got, _, _ = w.probe((frame(Q, P, 301, 0, RST),))
    check(got == [] and a.state(P, Q) == "CLOSED", f"RST → CLOSED {got}")
    e_recv, e_send = a("recv", port=P, peer=Q, n=1), a("send", port=P, peer=Q, n=1)
    print(f"     after a peer RST: recv → {e_recv}, send → {e_send}", flush=True)
    check(e_recv.get("errno") == "ECONNRESET", "recv after RST → ECONNRESET")
    a("release", port=P, peer=Q)

    # connect refused: RST,ACK to the SYN
    P, Q = 40004, 50004
    a("connect", port=P, peer=Q)
    syn = w.read(0)[0]
    got, _, _ = w.probe((frame(Q, P, 0, syn.seq + 1, RST | ACK),))
    check(got == [] and a.state(P, Q) == "CLOSED", "RST,ACK to the SYN → CLOSED")
    print(f"     after refused connect: recv → {a('recv', port=P, peer=Q, n=1)}, "
          f"send → {a('send', port=P, peer=Q, n=1)}", flush=True)
    a("release", port=P, peer=Q)

    # FIN held back while data is unacknowledged (PyTCP waits for the ACK before its FIN)
    P, Q = 40005, 50005
    a("listen", port=P, peer=Q, backlog=8)
    iss = w.probe((frame(Q, P, 100, 0, SYN, mss=1460),))[0][0].seq
    w.probe((frame(Q, P, 101, iss + 1, ACK),))
    a("accept", port=P, peer=Q)
    a("send", port=P, peer=Q, n=10)
    w.read(0)
    r = a("close", port=P, peer=Q)
    seen = w.read(0)
    st = a.state(P, Q)
    print(f"     close with 10 bytes unacked: on the wire at the answer {seen}, state {st}", flush=True)
    got, _, _ = w.probe((frame(Q, P, 101, iss + 11, ACK),))
    print(f"     after the ACK of the data: {got}, state {a.state(P, Q)}", flush=True)
    check(any(s.flags & FIN for s in seen + got), "a FIN follows close (at once or after the data is ACKed)")
    st = a.state(P, Q)
    r = a("release", port=P, peer=Q)
    seen = w.read(0.05)
    check(r.get("ok") == 0 and seen == [] and a.state(P, Q) == "CLOSED",
          f"release of a connection the app closed ({st}) → dropped quietly, CLOSED {seen}")

    # release of an established connection: RST; unaccepted ESTABLISHED child when the listener closes
    P, Q = 40006, 50006
    a("listen", port=P, peer=Q, backlog=8)
    iss = w.probe((frame(Q, P, 100, 0, SYN, mss=1460),))[0][0].seq
    w.probe((frame(Q, P, 101, iss + 1, ACK),))
    r = a("close", port=P, peer=Q)  # closes the listener: its queued child?
    seen = w.read(0)
    print(f"     closing a listener with an unaccepted ESTABLISHED child → {seen}, child {a.state(P, Q)}", flush=True)
    P, Q = 40007, 50007
    a("listen", port=P, peer=Q, backlog=8)
    iss = w.probe((frame(Q, P, 100, 0, SYN, mss=1460),))[0][0].seq
    a("close", port=P, peer=Q)
    seen = w.read(0)
    print(f"     closing a listener with a SYN-RECEIVED child → {seen}, child {a.state(P, Q)}", flush=True)
    r = a("release", port=P, peer=Q)
    seen = w.read(0.05)
    check(r.get("ok") == 0 and seen == [] and a.state(P, Q) == "CLOSED",
          f"release drops the orphaned SYN-RECEIVED child quietly {seen}")
    P, Q = 40008, 50008
    a("listen", port=P, peer=Q, backlog=8)
    iss = w.probe((frame(Q, P, 100, 0, SYN, mss=1460),))[0][0].seq
    w.probe((frame(Q, P, 101, iss + 1, ACK),))
    a("accept", port=P, peer=Q)
    r = a("release", port=P, peer=Q)
    seen = w.read(0)
    check(r.get("ok") == 0 and len(seen) == 1 and seen[0].flags & RST, f"release → RST at the answer {seen}")
    check(a.state(P, Q) == "CLOSED", "CLOSED after release")

    # delayed ACKs: every in-order data segment's ACK before the probe's RST, 50 times in a row
    P, Q = 40009, 50009
    a("listen", port=P, peer=Q, backlog=8)
    iss = w.probe((frame(Q, P, 100, 0, SYN, mss=1460),))[0][0].seq
    w.probe((frame(Q, P, 101, iss + 1, ACK),))
    a("accept", port=P, peer=Q)
    seq, n, bad = 101, 0, None
    for n in range(50):
        got, rst, _ = w.probe((frame(Q, P, seq, iss + 1, ACK | PSH, b"x" * 10),))
        seq += 10
        if rst is None or len(got) != 1 or not got[0].is_(ACK) or got[0].ack != seq or got[0].data:
            bad = got
            break
    late = w.read(0.05)
    check(bad is None and late == [], f"data segment → its ACK before the probe RST, 50 in a row "
          f"({n + (bad is None)}/50{f', then {bad}' if bad is not None else ''}), nothing later {late}")
    check(a("recv", port=P, peer=Q, n=1000).get("ok") == 500, "recv → the 500 octets")
    a("release", port=P, peer=Q)
    w.read(0.05)

    # barrier order under a burst: 20 SYNs to a listener, then the probe
    P = 40010
    a("listen", port=P, peer=0, backlog=64)
    got, rst, _ = w.probe(tuple(frame(51000 + i, P, 100, 0, SYN, mss=1460) for i in range(20)))
    check(len(got) == 20 and all(s.is_(SYN | ACK) for s in got), f"20 SYNs: all 20 SYN,ACKs before the probe RST "
          f"({len(got)})")
    states = a("state", conns=[[P, 51000 + i] for i in range(20)] + [[P, 1]])["states"]
    check(states == ["SYN-RECEIVED"] * 20 + ["LISTEN"], "state of 20 children + the listener in one request")
    r = a("release", port=P, peer=0)
    seen = w.read(1.5)  # PyTCP would retransmit a SYN,ACK after ~1 s for a child left behind
    states = a("state", conns=[[P, 51000 + i] for i in range(20)])["states"]
    check(r.get("ok") == 0 and seen == [] and states == ["CLOSED"] * 20,
          f"release of the listener drops its 20 SYN-RECEIVED children quietly, nothing within 1.5 s {seen}")

    r = a("frobnicate", port=1, peer=2)
    check("error" in r, f"unknown op → error {r}")
    check("error" in a("listen"), "request without a port → error")
    a.p.stdin.write("this is not json\n")
    a.p.stdin.flush()
    r = json.loads(a.line(5))
    check(r.get("id") is None and "error" in r, f"a line that is not JSON → error {r}")
    check(a.state(40000, 50000) == "TIME-WAIT", "still serving; TIME-WAIT still there")
    r = a("release", port=40000, peer=50000)
    seen = w.read(0.05)
    check(r.get("ok") == 0 and seen == [] and a.state(40000, 50000) == "CLOSED", f"release drops TIME-WAIT quietly {seen}")
    r = a("quit")
    check(r.get("ok") == 0, "quit → ok 0")
    try:
        a.p.wait(timeout=3)
    except subprocess.TimeoutExpired:
        pass
    check(a.p.returncode == 0, f"agent exited 0 after quit ({a.p.returncode})")
    check(not w.other, f"no non-TCP frames from the stack during the test ({len(w.other)})")


def run_no_state(a: Agent, w: Wire) -> None:
    """TCPSPEC_PYTCP_STATE=0, for tcpspec's segments-only mode: no state reports, everything else as before."""
    check(a.hello.get("state") is False, f"TCPSPEC_PYTCP_STATE=0: hello says \"state\": false {a.hello}")
    r = a("state", conns=[[40020, 50020]])
    check(r == {"id": a.id, "error": "no state reports"}, f"state op refused {r}")
    check(a("listen", port=40020, peer=50020).get("ok") == 0, "listen still works")
    got, _, _ = w.probe((frame(50020, 40020, 100, 0, SYN, mss=1460),))
    check(len(got) == 1 and got[0].is_(SYN | ACK), f"SYN → SYN,ACK before the probe RST {got}")
    check(a("quit").get("ok") == 0, "quit → ok 0")


def main() -> int:
    ap = argparse.ArgumentParser()
    default_py = next((p for p in (os.path.join(HERE, ".venv/bin/python"), "/tmp/pyv/bin/python") if os.path.exists(p)),
                      sys.executable)
    ap.add_argument("--python", default=default_py)
    ap.add_argument("--probes", type=int, default=1000)
    ap.add_argument("--no-flush", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("selftest: needs root (network namespace, TAP, AF_PACKET)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the clean-up below on kill/timeout too
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    agent = None
    sh("ip", "netns", "add", NS)
    try:
        fd = os.open(f"/run/netns/{NS}", os.O_RDONLY)
        if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET: this (only) thread and its children from now on
            raise OSError(ctypes.get_errno(), "setns")
        os.close(fd)
        sh("ip", "tuntap", "add", IFACE, "mode", "tap")
        sh("sysctl", "-qw", f"net.ipv6.conf.{IFACE}.disable_ipv6=1")
        sh("ip", "link", "set", IFACE, "up")
        wire = Wire()
        agent = Agent(args.python, flush=not args.no_flush)
        run(agent, wire, args.probes)
        agent.kill()
        agent = Agent(args.python, flush=not args.no_flush, TCPSPEC_PYTCP_STATE="0")
        run_no_state(agent, wire)
    except Exception as e:  # report, then clean up
        import traceback
        traceback.print_exc()
        check(False, f"test aborted: {type(e).__name__}: {e}")
    finally:
        if agent is not None:
            agent.kill()
        libc.setns(home, 0x40000000)
        subprocess.run(["ip", "netns", "del", NS], check=False)
    bad = [w for ok, w in results if not ok]
    print(f"{len(results) - len(bad)}/{len(results)} checks passed" + (f"; failed: {bad}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
