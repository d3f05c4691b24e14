#!/usr/bin/env python3
"""tcpspec agent for PyTCP (PyPI pmd-pytcp 0.3.8): runs the stack in-process on the TAP/TUN device tcpspec made
and serves docs/agent-protocol.md (JSON lines: requests on stdin, responses on stdout, logs on stderr).

PyTCP facts this file relies on (read from its source, checked by selftest.py):
- the whole stack runs on this process's asyncio loop; socket connect/accept/send/recv are coroutines, the rest
  are plain calls;
- the FSM defers most output to a per-session 1 ms "tx_pump" tick: the SYN-ACK after a SYN, the FIN after close(),
  data after send(). `flush()` runs those pending ticks at once, so that (1) a call's answer comes after its
  segments, and (2) the RST PyTCP sends for a segment to a closed port (tcpspec's barrier probe) comes after
  what earlier frames made the stack send. Both only move a tick that was due within ~1 ms a little earlier.
"""
from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import struct
import sys
import threading

log = logging.getLogger("tcpspec-agent")
STATE = {"CLOSED": "CLOSED", "LISTEN": "LISTEN", "SYN_SENT": "SYN-SENT", "SYN_RCVD": "SYN-RECEIVED",
         "ESTABLISHED": "ESTABLISHED", "FIN_WAIT_1": "FIN-WAIT-1", "FIN_WAIT_2": "FIN-WAIT-2",
         "CLOSE_WAIT": "CLOSE-WAIT", "CLOSING": "CLOSING", "LAST_ACK": "LAST-ACK", "TIME_WAIT": "TIME-WAIT"}
CALLS = ["listen", "accept", "connect", "send", "recv", "shutdown", "close", "abort", "release", "setsockopt"]


class AgentError(Exception):
    """A request the agent could not carry out (answered as {"error": ...}, not as an errno of the stack)."""


class Errno(Exception):
    """A POSIX errno the agent answers itself (no such socket, unknown option)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise SystemExit(f"pytcp-agent: missing environment variable {name}")
    return value


# Imports after logging is configured: PyTCP logs through the 'pmd_pytcp' logger at DEBUG only, and checks the
# level once at init (its hot paths then skip even formatting). Keep it at WARNING.
logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="pytcp-agent: %(levelname)s %(message)s")
logging.getLogger("pmd_pytcp").setLevel(logging.WARNING)
from pmd_net_addr import Ip4Address, Ip4IfAddr, Ip6Address, Ip6IfAddr, MacAddress  # noqa: E402
from pmd_pytcp import stack  # noqa: E402
from pmd_pytcp import socket as psock  # noqa: E402
from pmd_pytcp.runtime.packet_handler.packet_handler__tcp__rx import TcpRxHandler  # noqa: E402
from pmd_pytcp.socket.socket_id import SocketId  # noqa: E402
from pmd_pytcp.socket.tcp__socket import TcpSocket  # noqa: E402

V6 = ":" in env("TCPSPEC_IP")
FAMILY = psock.AddressFamily.INET6 if V6 else psock.AddressFamily.INET4
ADDR = Ip6Address if V6 else Ip4Address
MY_IP, PEER_IP = env("TCPSPEC_IP"), env("TCPSPEC_PEER_IP")
OPTIONS = {  # setsockopt names tcpspec may ask for → (level, optname); SO_LINGER is special-cased
    "TCP_NODELAY": (psock.IPPROTO_TCP, psock.TCP_NODELAY), "TCP_MAXSEG": (psock.IPPROTO_TCP, psock.TCP_MAXSEG),
    "SO_RCVBUF": (psock.SOL_SOCKET, psock.SO_RCVBUF), "SO_SNDBUF": (psock.SOL_SOCKET, psock.SO_SNDBUF),
    "SO_KEEPALIVE": (psock.SOL_SOCKET, psock.SO_KEEPALIVE)}


# ---- settling: run deferred FSM ticks now, then wait until the TX ring has written everything to the device ----

def _pumped_sessions() -> list:
    """Sessions with a pending 1 ms pump tick (and a state that has a timer handler: not LISTEN/CLOSED)."""
    out = []
    for sock in stack.sockets.values():
        ses = getattr(sock, "_tcp_session", None)
        if ses is not None and ses._timers._service_handle is not None and "tx_pump" in ses._timers._deadlines:
            out.append(ses)
    return out


def _snap(ses) -> tuple:
    return (ses._state, ses._snd_seq.nxt, ses._snd_seq.max, ses._snd_seq.fin_sent, len(ses._tx.buffer))


def flush(rounds: int = 64) -> None:
    """Run every pending pump tick now, again while that changes something (a close() takes two ticks: state,
    then FIN; a send larger than one MSS takes a tick per segment). Bounded: a window-limited send stops changing."""
    for _ in range(rounds):
        changed = False
        for ses in _pumped_sessions():
            before = _snap(ses)
            ses.tcp_fsm(timer=True)  # the same call the timer would make ~1 ms later; it re-arms itself
            changed |= _snap(ses) != before
        if not changed:
            return


FLUSH = os.environ.get("TCPSPEC_PYTCP_FLUSH", "1") != "0"  # 0: PyTCP's own timing (diagnostics only)


async def settle() -> None:
    """After a call: its segments are on the device and its state has moved (bounded to ~50 ms)."""
    if FLUSH:
        flush()
    else:
        await asyncio.sleep(0.003)  # two pump ticks
    for i in range(60):
        if all(h._tx_ring.qsize == 0 and not h._tx_ring._drain_scheduled for h in stack.interfaces.values()):
            return
        await asyncio.sleep(0 if i < 10 else 0.001)  # the drain is a call_soon; EAGAIN re-arms on writability
    log.warning("TX ring did not drain within 50 ms")


_orig_phrx_tcp = TcpRxHandler._phrx_tcp


def _phrx_tcp_in_order(self, packet_rx) -> None:
    """PyTCP answers a segment to a closed port with a RST at once, but sends e.g. the SYN-ACK for a SYN that came
    just before it on the next 1 ms tick: the RST would overtake it. Flush pending ticks just before such a RST."""
    iface = self._if
    stats = iface._packet_stats_rx
    before = stats.tcp__no_socket_match__respond_rst
    real_marshal = iface._marshal_tx

    def marshal(run):
        if stats.tcp__no_socket_match__respond_rst != before:
            flush()
        return real_marshal(run)

    iface._marshal_tx = marshal  # instance attribute shadows the method for this one segment
    try:
        _orig_phrx_tcp(self, packet_rx)
    finally:
        del iface._marshal_tx


# ---- the connections tcpspec names by (port, peer) ----

class Conn:
    __slots__ = ("lsock", "sock", "task")

    def __init__(self) -> None:
        self.lsock: TcpSocket | None = None  # listener
        self.sock: TcpSocket | None = None  # connected (connect) or accepted socket
        self.task: asyncio.Task | None = None  # the pending connect() coroutine


conns: dict[tuple[int, int], Conn] = {}


def new_socket(port: int) -> TcpSocket:
    """Non-blocking, SO_REUSEADDR and Nagle off, bound to our address: as the Linux target does."""
    s = TcpSocket(family=FAMILY)
    s.setblocking(False)
    s.setsockopt(psock.SOL_SOCKET, psock.SO_REUSEADDR, 1)
    s.setsockopt(psock.IPPROTO_TCP, psock.TCP_NODELAY, 1)
    try:
        s.bind((MY_IP, port))
    except BaseException:
        s.close()
        raise
    return s


def abort(s: TcpSocket) -> None:
    """Abortive close (SO_LINGER {1, 0}): PyTCP sends RST in synchronized states, then drops the TCB."""
    s.setsockopt(psock.SOL_SOCKET, psock.SO_LINGER, struct.pack("@ii", 1, 0))
    s.close()


def state_of(port: int, peer: int) -> str:
    """From the stack's socket table (children not yet accepted and closed-by-app TIME-WAITs are in it too)."""
    me, them = ADDR(MY_IP), ADDR(PEER_IP)
    sid = SocketId(address_family=FAMILY, socket_type=psock.SocketType.STREAM, local_address=me, local_port=port,
                   remote_address=them, remote_port=peer)
    sock = stack.sockets.get(sid)
    if sock is not None:
        return STATE.get(sock.state.name, sock.state.name)
    for local in (me, me.unspecified):
        sid = SocketId(address_family=FAMILY, socket_type=psock.SocketType.STREAM, local_address=local,
                       local_port=port, remote_address=them.unspecified, remote_port=0)
        sock = stack.sockets.get(sid)
        if sock is not None and sock.state.name == "LISTEN":
            return "LISTEN"
    return "CLOSED"


async def handle(req: dict):
    op = req.get("op")
    if op == "state":
        return {"states": [state_of(int(p), int(q)) for p, q in req["conns"]]}
    if op == "quit":
        return 0
    key = (int(req["port"]), int(req["peer"]))
    c = conns.setdefault(key, Conn())
    try:
        return await call(op, req, key, c)
    finally:
        if c.lsock is None and c.sock is None:
            conns.pop(key, None)


async def call(op: str, req: dict, key: tuple[int, int], c: Conn):
    port, peer = key
    if op == "listen":
        s = new_socket(port)
        try:
            s.listen(backlog=max(1, int(req.get("backlog", 8))))
        except BaseException:
            s.close()
            raise
        if c.lsock is not None:
            c.lsock.close()
        c.lsock = s
        return 0
    if op == "connect":
        s = new_socket(port)
        c.sock, c.task = s, asyncio.ensure_future(s.connect((PEER_IP, peer)))
        c.task.add_done_callback(_connect_done)
        await asyncio.sleep(0)  # run the coroutine up to its wait: CONNECT syscall, SYN_SENT
        if c.task.done() and c.task.exception() is not None:
            c.sock = None  # failed before the SYN (PyTCP already tore it down)
            raise c.task.exception()
        await settle()  # the SYN is written
        raise Errno("EINPROGRESS")
    if op == "release":  # end of a case: listener closed (no wire), connection aborted (RST if synchronized)
        ls, s, c.lsock, c.sock = c.lsock, c.sock, None, None
        if ls is not None:
            ls.close()
        if s is not None:
            abort(s)
        await settle()
        return 0
    if op == "accept":
        if c.lsock is None:
            raise Errno("EBADF")
        child, _ = await c.lsock.accept()  # non-blocking: BlockingIOError(EAGAIN) when nothing is queued
        child.setblocking(False)
        if c.sock is not None:
            c.sock.close()
        c.sock = child
        # One connection per listener. Checked: closing a PyTCP listener resets only the ESTABLISHED children
        # still in its accept queue (Linux does the same); the accepted child has its own session and socket and
        # is not touched. (A child still in SYN-RECEIVED is not tracked by the listener and lives on.)
        c.lsock.close()
        c.lsock = None
        await settle()
        return 0
    if op in ("close", "abort"):
        which = c.sock if c.sock is not None else c.lsock
        if which is None:
            raise Errno("EBADF")
        if which is c.sock:
            c.sock = None
        else:
            c.lsock = None
        if op == "abort":
            abort(which)
        else:
            which.close()
        await settle()
        return 0
    if op == "setsockopt":
        s = c.sock if c.sock is not None else c.lsock
        if s is None:
            raise Errno("EBADF")
        name, value = req["name"], int(req["value"])
        if name == "SO_LINGER":
            s.setsockopt(psock.SOL_SOCKET, psock.SO_LINGER, struct.pack("@ii", 1, value))
        elif name in OPTIONS:
            s.setsockopt(*OPTIONS[name], value)
        else:
            raise Errno("ENOPROTOOPT")
        await settle()  # TCP_NODELAY 1 may release a held partial segment
        return 0
    if c.sock is None:
        raise Errno("EBADF") if op in ("send", "recv", "shutdown") else AgentError(f"unknown op {op!r}")
    s = c.sock
    if op == "send":
        n = await s.send(b"a" * int(req["n"]))
        await settle()
        return n
    if op == "recv":
        data = await s.recv(int(req["n"]))
        await settle()  # reading may open the window: a window update
        return len(data)
    if op == "shutdown":
        how = {"rd": psock.SHUT_RD, "wr": psock.SHUT_WR, "rdwr": psock.SHUT_RDWR}[req.get("how", "wr")]
        s.shutdown(int(how))
        await settle()
        return 0
    raise AgentError(f"unknown op {op!r}")


def _connect_done(task: asyncio.Task) -> None:
    """The connect coroutine ends when the handshake completes or fails; PyTCP already closed the session on
    failure. Read the exception so asyncio does not log it (tcpspec sees the outcome on the wire and in states)."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("connect ended: %r", task.exception())


def answer(rid, body) -> None:
    out = {"id": rid}
    if isinstance(body, dict):
        out.update(body)
    else:
        out["ok"] = body
    sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def serve(lines: asyncio.Queue) -> None:
    while True:
        line = await lines.get()
        if line is None:  # stdin closed: nobody to answer
            return
        if not line.strip():
            continue
        rid = op = None
        try:
            req = json.loads(line)
            rid, op = req.get("id"), req.get("op")
            body = await handle(req)
        except Errno as e:
            body = {"errno": e.name}
        except AgentError as e:
            body = {"error": str(e)}
        except OSError as e:  # PyTCP raises OSError subclasses carrying the errno (EAGAIN, EPIPE, ECONNRESET …)
            body = {"errno": errno.errorcode[e.errno]} if isinstance(e.errno, int) and e.errno in errno.errorcode \
                else {"error": f"{type(e).__name__}: {e}"}
        except OverflowError as e:  # PyTCP's port range check
            body = {"errno": "EINVAL"} if "port" in str(e) else {"error": f"OverflowError: {e}"}
        except Exception as e:  # a bug here or in PyTCP for this request: say so, keep serving
            log.exception("request %s failed", rid)
            body = {"error": f"{type(e).__name__}: {e}"}
        answer(rid, body)
        if op == "quit":
            sys.stderr.flush()
            os._exit(0)  # no stack.stop(): it would RST every open connection onto the device on the way out


def apply_settings() -> None:
    from pmd_pytcp.stack import sysctl
    try:
        settings = json.loads(os.environ.get("TCPSPEC_SETTINGS") or "{}")
    except ValueError as e:
        raise SystemExit(f"pytcp-agent: TCPSPEC_SETTINGS is not JSON: {e}")
    for key, value in settings.items():
        try:
            sysctl.set(key, value)
        except KeyError:
            log.warning("ignoring unknown PyTCP setting %r", key)
        except ValueError as e:
            log.warning("ignoring setting %r: %s", key, e)
    sysctl.finalize_validators()


async def main() -> None:
    link, iface = env("TCPSPEC_LINK", "tap"), env("TCPSPEC_IFACE", "tcpspec-tap")
    if not os.path.exists("/dev/net/tun"):
        raise SystemExit("pytcp-agent: /dev/net/tun is missing")
    stack.init()  # no boot interface: tunables first, then the device (DHCP, SLAAC, ACD all off)
    apply_settings()
    if link == "tap":
        dev = stack.initialize_interface__tap(iface, mac_address=MacAddress(env("TCPSPEC_MAC")))
    elif link == "tun":  # PyTCP opens TUN with the 4-byte packet-info header; invisible on the device itself
        dev = stack.initialize_interface__tun(iface)
    else:
        raise SystemExit(f"pytcp-agent: TCPSPEC_LINK must be tap or tun, not {link!r}")
    ifindex = stack.add_interface(**dev, ip4_support=not V6, ip4_dhcp=False, ip6_support=V6,
                                  ip6_gua_autoconfig=False, ip6_lla_autoconfig=False)
    # The address through the Address API, not init(ip4_host=…): that runs ACD and delays it by seconds.
    ifaddr = (Ip6IfAddr if V6 else Ip4IfAddr)(f"{MY_IP}/{env('TCPSPEC_PREFIX', '64' if V6 else '24')}")
    stack.address.interface(ifindex).add(ifaddr=ifaddr)
    if link == "tap":  # static neighbour: no ARP/ND on the wire
        stack.neighbor.interface(ifindex).add(ip=ADDR(PEER_IP), mac=MacAddress(env("TCPSPEC_PEER_MAC")))
    if FLUSH:
        TcpRxHandler._phrx_tcp = _phrx_tcp_in_order
    await stack.start()

    loop = asyncio.get_running_loop()
    lines: asyncio.Queue = asyncio.Queue()

    def reader() -> None:  # a thread: stdin may be a pipe, file or tty
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=reader, name="stdin", daemon=True).start()
    answer_hello = {"agent": "tcpspec", "version": 1, "stack": "pytcp 0.3.8", "calls": CALLS, "state": True}
    sys.stdout.write(json.dumps(answer_hello, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    await serve(lines)


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)
