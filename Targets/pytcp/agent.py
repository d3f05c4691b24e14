#!/usr/bin/env python3
"""tcpspec agent for PyTCP (PyPI pmd-pytcp 0.3.8): runs the stack in-process on the TAP/TUN device tcpspec made
and serves docs/agent-protocol.md (JSON lines: requests on stdin, responses on stdout, logs on stderr).

PyTCP facts this file relies on (read from its source, checked by selftest.py):
- the whole stack runs on this process's asyncio loop; socket connect/accept/send/recv are coroutines, the rest
  are plain calls;
- the FSM defers most output to a per-session 1 ms "tx_pump" tick: the SYN-ACK after a SYN, the FIN after close(),
  data after send(). `flush()` runs those pending ticks at once, so that (1) a call's answer comes after its
  segments, and (2) the RST PyTCP sends for a segment to a closed port (tcpspec's barrier probe) comes after
  what earlier frames made the stack send. Both only move a tick that was due within ~1 ms a little earlier;
- the ACK for in-order data (ESTABLISHED, CLOSE-WAIT) waits for the "delayed_ack" timer, at least 1 ms
  ('tcp.delayed_ack.delay_ms' refuses 0, and a 0 ms timer would still wait for the 1 ms service tick). flush()
  fires that timer early too when it is due within 1 ms, so the ACK also comes before the barrier's RST;
- a session lives (in the socket table, with its timers) until it reaches CLOSED, whether or not the application
  still holds its socket: `release` makes sure that every session of a finished case does.
"""
from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import struct
import sys
import time

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
from pmd_pytcp import __version__ as PYTCP_VERSION  # noqa: E402
from pmd_pytcp import stack  # noqa: E402
from pmd_pytcp import socket as psock  # noqa: E402
from pmd_pytcp.protocols.tcp.tcp__enums import ConnError, FsmState  # noqa: E402
from pmd_pytcp.protocols.tcp.session import TcpSession  # noqa: E402
from pmd_pytcp.protocols.tcp.tcp__seq import gt32  # noqa: E402
from pmd_pytcp.runtime.packet_handler.packet_handler__tcp__rx import TcpRxHandler  # noqa: E402
from pmd_pytcp.socket.socket_id import SocketId  # noqa: E402
from pmd_pytcp.socket.tcp__socket import TcpSocket  # noqa: E402

V6 = ":" in env("TCPSPEC_IP")
FAMILY = psock.AddressFamily.INET6 if V6 else psock.AddressFamily.INET4
ADDR = Ip6Address if V6 else Ip4Address
MY_IP, PEER_IP = env("TCPSPEC_IP"), env("TCPSPEC_PEER_IP")
ME, THEM = ADDR(MY_IP), ADDR(PEER_IP)
USER_TIMEOUT_MS = int(os.environ.get("TCPSPEC_USER_TIMEOUT_MS") or 0)
# The application's keep-alives ([application] keepalive_*), all three or none. PyTCP takes TCP_KEEPIDLE and
# TCP_KEEPINTVL in milliseconds: its socket/__init__.py says seconds, but the session arms its keep-alive timer with
# the value as given, in ms (KeepaliveState.idle_timeout → _arm_timer). Linux takes seconds.
KEEPALIVE = tuple(int(os.environ[k]) for k in ("TCPSPEC_KEEPALIVE_IDLE_MS", "TCPSPEC_KEEPALIVE_INTERVAL_MS",
                                               "TCPSPEC_KEEPALIVE_PROBES")) if "TCPSPEC_KEEPALIVE_PROBES" in os.environ else None
# 0: ignore them and leave "keepalive" out of the hello, as an agent that cannot set them (tests tcpspec's refusal;
# set it as TCPSPEC_PYTCP_STATE below).
KEEPALIVE_CONFIRMED = os.environ.get("TCPSPEC_PYTCP_KEEPALIVE", "1") != "0"
if not KEEPALIVE_CONFIRMED:
    KEEPALIVE = None
# setsockopt names → (level, optname); SO_LINGER is special-cased. Not SO_RCVBUF/SO_SNDBUF: PyTCP stores them but
# neither its window nor its send buffer looks at them, so they answer ENOPROTOOPT (tests needing them: unreachable).
OPTIONS = {"TCP_NODELAY": (psock.IPPROTO_TCP, psock.TCP_NODELAY), "TCP_MAXSEG": (psock.IPPROTO_TCP, psock.TCP_MAXSEG),
           "SO_KEEPALIVE": (psock.SOL_SOCKET, psock.SO_KEEPALIVE)}


# ---- settling: run deferred FSM ticks now, then wait until the TX ring has written everything to the device ----

# Sessions stirred (segment, syscall, ICMP) since flush() last ran them to rest: only their pending tick can hold
# deferred output. Others tick only while something of theirs is in flight, doing what their timers say; running
# those early as well (flush() once ran every session's tick) took a quarter of the agent's time with 16 lanes.
dirty: dict = {}  # an ordered set
_orig_tcp_fsm = TcpSession.tcp_fsm


def _tcp_fsm(self, packet_rx_md=None, syscall=None, timer=None, icmp=None) -> None:
    """TcpSession.tcp_fsm, every caller's entry to the FSM (segments, syscalls, ICMP, the timers): notes stirs."""
    if not timer:
        dirty[self] = None  # before the call: a listener's session object becomes the new child in it
    _orig_tcp_fsm(self, packet_rx_md, syscall, timer, icmp)


def _pumped(ses) -> bool:
    """A pending 1 ms pump tick (in a state that has a timer handler: not LISTEN/CLOSED)."""
    return ses._timers._service_handle is not None and "tx_pump" in ses._timers._deadlines


# Delayed ACKs. RFC 9293 §3.8.6.3 (RFC 1122 §4.2.3.2) lets a receiver delay the ACK for in-order data; PyTCP holds it
# on its "delayed_ack" timer, at least 1 ms ('tcp.delayed_ack.delay_ms' >= 1, and the timer service has a 1 ms floor),
# so with the target description's 1 ms it still came just after the barrier's RST: a data segment's round saw no
# ACK, and the next round an unexplained one. tcpspec asks for immediate ACKs (for Linux it sets quickack on the
# route) so that every reply is caused by the input just before it; PyTCP has no knob for 0, so flush() fires the
# timer early, in the same tick as the pump. Only when it is due within 1 ms (always, at the 1 ms setting): a longer
# configured delay is left to PyTCP.
ACK_TIMER_STATES = (FsmState.ESTABLISHED, FsmState.CLOSE_WAIT)  # where PyTCP services "delayed_ack"


def _ack_held(ses) -> bool:
    """An ACK for received data that PyTCP's delayed-ACK timer holds and would send within 1 ms."""
    due = ses._timers.deadline("delayed_ack")
    return due is not None and ses._state in ACK_TIMER_STATES and due - stack.timer.now_ms <= 1 \
        and gt32(ses._rcv_seq.nxt, ses._rcv_seq.una)  # RCV.NXT ahead of what the last ACK said: PyTCP's own test


def _snap(ses) -> tuple:
    return (ses._state, ses._snd_seq.nxt, ses._snd_seq.max, ses._snd_seq.fin_sent, len(ses._tx.buffer))


def flush(also=None, rounds: int = 64) -> None:
    """Run the pending pump ticks of the stirred sessions (and `also`) now, again while that changes something
    (a close() takes two ticks: state, then FIN; a send larger than one MSS takes a tick per segment), and send the
    ACKs their delayed-ACK timers hold (see _ack_held). Bounded: a window-limited send stops changing."""
    if also is not None:
        dirty[also] = None
    todo = list(dirty)
    dirty.clear()
    for _ in range(rounds):
        more = []
        for ses in todo:
            ack = _ack_held(ses)
            if ack or _pumped(ses):
                if ack:  # expired now: the tick's delayed-ACK check sends it (and retires the timer)
                    ses._timers._deadlines["delayed_ack"] = stack.timer.now_ms
                before = _snap(ses)
                ses.tcp_fsm(timer=True)  # the same call the timer would make ~1 ms later; it re-arms itself
                if _snap(ses) != before:
                    more.append(ses)
        if not more:
            return
        todo = more


FLUSH = os.environ.get("TCPSPEC_PYTCP_FLUSH", "1") != "0"  # 0: PyTCP's own timing (diagnostics only)
# 0: say "state": false in the hello and refuse the state op, to test tcpspec's segments-only mode with this stack.
# tcpspec passes on no TCPSPEC_* variable (of its environment, or a description's env): set it in a copy of
# pytcp.toml as command = ["env", "TCPSPEC_PYTCP_STATE=0", ".venv/bin/python", "-u", "agent.py"].
STATE_REPORTS = os.environ.get("TCPSPEC_PYTCP_STATE", "1") != "0"


def drain() -> bool:
    """Write what the TX rings hold now, not on their pending call_soon (a no-op then). False: the device said
    EAGAIN and a ring waits for writability."""
    done = True
    for h in stack.interfaces.values():
        ring = h._tx_ring
        if ring.qsize:
            ring._drain()
            done &= ring.qsize == 0
    return done


async def settle(sock: TcpSocket | None = None) -> None:
    """After a call on `sock`: its segments are on the device and its state has moved (bounded to ~50 ms)."""
    if FLUSH:
        flush(sock._tcp_session if sock is not None else None)  # send() and setsockopt() bypass tcp_fsm
    else:
        await asyncio.sleep(0.003)  # two pump ticks
    end = time.monotonic() + 0.05
    while not drain():
        if time.monotonic() > end:
            log.warning("TX ring did not drain within 50 ms")
            return
        await asyncio.sleep(0.0005)


_orig_phrx_tcp = TcpRxHandler._phrx_tcp


def _phrx_tcp_in_order(self, packet_rx) -> None:
    """PyTCP answers a segment to a closed port with a RST at once, but sends e.g. the SYN-ACK for a SYN that came
    just before it on the next 1 ms tick: the RST would overtake it. Flush pending ticks just before such a RST."""
    iface = self._if
    stats = iface._packet_stats_rx
    before = stats.tcp__no_socket_match__respond_rst
    real_marshal = iface._marshal_tx
    pending = [True]

    def marshal(run):  # every TX of this segment's handling passes here, the ticks' own TX too: flush once
        if pending[0] and stats.tcp__no_socket_match__respond_rst != before:
            pending[0] = False
            flush()
        return real_marshal(run)

    iface._marshal_tx = marshal  # instance attribute shadows the method for this one segment
    try:
        _orig_phrx_tcp(self, packet_rx)
    finally:
        del iface._marshal_tx
    if not pending[0]:
        drain()  # the RST (a barrier answer) out now, not after another turn of the loop


# ---- the connections tcpspec names by (port, peer) ----

class Conn:
    """One (port, peer), from its first call to its release (kept after close: release still has to clean up)."""
    __slots__ = ("lsock", "sock", "task", "listeners")

    def __init__(self) -> None:
        self.lsock: TcpSocket | None = None  # listener
        self.sock: TcpSocket | None = None  # connected (connect) or accepted socket
        self.task: asyncio.Task | None = None  # the pending connect() coroutine
        self.listeners: list[TcpSocket] = []  # every listener it had: release finds their children by parent


conns: dict[tuple[int, int], Conn] = {}


def new_socket(port: int) -> TcpSocket:
    """Non-blocking, SO_REUSEADDR and Nagle off, bound to our address: as the Linux target does."""
    s = TcpSocket(family=FAMILY)
    s.setblocking(False)
    s.setsockopt(psock.SOL_SOCKET, psock.SO_REUSEADDR, 1)
    s.setsockopt(psock.IPPROTO_TCP, psock.TCP_NODELAY, 1)
    # The application's R2 ([application] user_timeout_ms): an accepted connection inherits its listener's.
    if USER_TIMEOUT_MS:
        s.setsockopt(psock.IPPROTO_TCP, psock.TCP_USER_TIMEOUT, USER_TIMEOUT_MS)
    # Keep-alives: set before connect()/listen(), which copy them into the session (a listener's children inherit).
    if KEEPALIVE:
        idle, interval, probes = KEEPALIVE
        s.setsockopt(psock.SOL_SOCKET, psock.SO_KEEPALIVE, 1)
        s.setsockopt(psock.IPPROTO_TCP, psock.TCP_KEEPIDLE, idle)
        s.setsockopt(psock.IPPROTO_TCP, psock.TCP_KEEPINTVL, interval)
        s.setsockopt(psock.IPPROTO_TCP, psock.TCP_KEEPCNT, probes)
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


def drop(ses) -> None:
    """PyTCP's TcpSession.abort() without its RST: CLOSED, socket unregistered, every timer cancelled, waiters
    woken. For what the application no longer holds (see release); PyTCP has no public call for it."""
    ses._connection_error = ConnError.CANCELED
    ses._event__rx_buffer.set()
    ses._event__connect.release()
    ses._change_state(FsmState.CLOSED)


def release(port: int, peer: int, c: Conn) -> None:
    """End of a case. What the application holds goes as it would on Linux: the listener is closed (its queued
    ESTABLISHED children are reset), the connection aborted (RST if synchronized). Then every other session of
    this connection is dropped without a word: a connection the application closed (FIN-WAIT-*, CLOSING,
    LAST-ACK, TIME-WAIT) and listener children still in SYN-RECEIVED (PyTCP does not reset those with the
    listener; they would retransmit SYN,ACKs for a minute) or ESTABLISHED after their listener closed. Left in
    the stack (as they once were: ~30 more a second), those with something in flight tick PyTCP's 1 ms pump
    until they time out, and a SYN to a listener scans them all (PyTCP counts embryonic children that way)."""
    ls, s, c.lsock, c.sock = c.lsock, c.sock, None, None
    if ls is not None:
        ls.close()
    if s is not None:
        abort(s)
    owned = c.listeners
    for sock in stack.sockets.values():
        ses = getattr(sock, "_tcp_session", None)
        if ses is not None and sock._local_port == port and ses._state is not FsmState.CLOSED and (
                peer != 0 and sock._remote_port == peer or any(sock._parent_socket is l for l in owned)):
            drop(ses)


def state_of(port: int, peer: int) -> str:
    """From the stack's socket table (children not yet accepted and closed-by-app TIME-WAITs are in it too)."""
    sid = SocketId(address_family=FAMILY, socket_type=psock.SocketType.STREAM, local_address=ME, local_port=port,
                   remote_address=THEM, remote_port=peer)
    sock = stack.sockets.get(sid)
    if sock is not None:
        return STATE.get(sock.state.name, sock.state.name)
    for local in (ME, ME.unspecified):
        sid = SocketId(address_family=FAMILY, socket_type=psock.SocketType.STREAM, local_address=local,
                       local_port=port, remote_address=THEM.unspecified, remote_port=0)
        sock = stack.sockets.get(sid)
        if sock is not None and sock.state.name == "LISTEN":
            return "LISTEN"
    return "CLOSED"


async def handle(req: dict):
    op = req.get("op")
    if op == "state":
        if not STATE_REPORTS:
            raise AgentError("no state reports")
        return {"states": [state_of(int(p), int(q)) for p, q in req["conns"]]}
    if op == "quit":
        return 0
    key = (int(req["port"]), int(req["peer"]))
    if op == "release":
        release(*key, conns.pop(key, None) or Conn())
        await settle()
        return 0
    c = conns.get(key)
    if c is None:
        c = conns[key] = Conn()
    return await call(op, req, key, c)


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
        c.listeners.append(s)
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
        # is not touched. (A child still in SYN-RECEIVED is not tracked by the listener: release drops it.)
        c.lsock.close()
        c.lsock = None
        await settle()
        return 0
    if op in ("close", "abort"):
        which = c.sock if c.sock is not None else c.lsock
        if which is None:
            raise Errno("EBADF")
        listener = which is not c.sock
        if listener:
            c.lsock = None
        else:
            c.sock = None
        if op == "abort" and not listener:
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
        await settle(s)  # TCP_NODELAY 1 may release a held partial segment
        return 0
    if c.sock is None:
        raise Errno("EBADF") if op in ("send", "recv", "shutdown") else AgentError(f"unknown op {op!r}")
    s = c.sock
    if op == "send":
        n = await s.send(b"a" * int(req["n"]))  # PyTCP's send buffer is unbounded: always takes all n
        await settle(s)
        return n
    if op == "recv":
        data = await s.recv(int(req["n"]))  # b"" at end of stream (and, PyTCP quirk, after a refused connect)
        return len(data)  # no settle: PyTCP sends nothing when the application reads (no window update)
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
    write_line(out)


def write_line(obj: dict) -> None:
    data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
    while data:  # stdout is blocking: a short write only when the reader is slow
        data = data[os.write(1, data):]


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


# Refused at 0 by PyTCP's validator (>= 1), but handled: a 0 ms challenge-ACK window is never armed, so no limit.
# 1 ms is not "no limit": on PyTCP's 1 ms clock it drops a second challenge ACK in the same millisecond, which
# back-to-back rounds reach, and findings would depend on how fast the agent is.
ZERO_IS_OFF = {"tcp.challenge_ack.rate_limit_ms"}


# The agent's own settings (not PyTCP's tunables). "agent.tail_loss_probe" = false: no RFC 8985 tail loss probe,
# as tcpspec turns off Linux's (net.ipv4.tcp_early_retrans=0). RFC 8985 lets a sender probe 2*SRTT after its last
# segment, long before the RTO; a probe the tester did not cause and no profile times would be judged as an early
# retransmission. PyTCP has no knob for it: a probe timeout of 0 is never armed (TcpSessionTx's "if pto_ms > 0").
def apply_agent_setting(key: str, value) -> None:
    if key == "agent.tail_loss_probe":
        if value is False:
            import pmd_pytcp.protocols.tcp.session.tcp__session__tx as tx
            tx.tlp_calc_pto = lambda **_: 0
        elif value is not True:
            log.warning("ignoring setting %r: true or false", key)
    else:
        log.warning("ignoring unknown agent setting %r", key)


def apply_settings() -> None:
    from pmd_pytcp.stack import sysctl
    try:
        settings = json.loads(os.environ.get("TCPSPEC_SETTINGS") or "{}")
    except ValueError as e:
        raise SystemExit(f"pytcp-agent: TCPSPEC_SETTINGS is not JSON: {e}")
    for key, value in settings.items():
        if key.startswith("agent."):
            apply_agent_setting(key, value)
            continue
        try:
            if key in ZERO_IS_OFF and value == 0:
                knob = sysctl._resolve(key)
                setattr(sys.modules[knob.module_name], knob.attr, 0)
                continue
            sysctl.set(key, value)
        except KeyError:
            log.warning("ignoring unknown PyTCP setting %r", key)
        except ValueError as e:
            log.warning("ignoring setting %r: %s", key, e)
    sysctl.finalize_validators()


def read_requests(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue) -> None:
    """Request lines into `lines`, then None at end of input. Read on the event loop itself: a reader thread (as
    once) has to win the GIL from the busy loop, up to the 5 ms switch interval, for every request."""
    fd, buf = sys.stdin.fileno(), bytearray()

    def readable() -> None:
        chunk = os.read(fd, 65536)  # the fd is readable: returns at once, with what there is
        buf.extend(chunk or b"\n")  # at end of input, a last line without its newline still counts
        *done, buf[:] = buf.split(b"\n")
        for line in done:
            lines.put_nowait(line)
        if not chunk:
            loop.remove_reader(fd)
            lines.put_nowait(None)

    try:
        loop.add_reader(fd, readable)  # a pipe (tcpspec, selftest) or a tty
    except PermissionError:  # a file or /dev/null, which epoll refuses: all of it now
        for line in sys.stdin.buffer:
            lines.put_nowait(line)
        lines.put_nowait(None)


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
        stack.neighbor.interface(ifindex).add(ip=THEM, mac=MacAddress(env("TCPSPEC_PEER_MAC")))
    if FLUSH:
        TcpRxHandler._phrx_tcp = _phrx_tcp_in_order
        TcpSession.tcp_fsm = _tcp_fsm
    await stack.start()

    loop = asyncio.get_running_loop()
    lines: asyncio.Queue = asyncio.Queue()
    read_requests(loop, lines)
    if os.environ.get("TCPSPEC_AGENT_VERSION", "1") != "1":
        log.warning("speaking agent protocol version 1, asked for %s", os.environ["TCPSPEC_AGENT_VERSION"])
    answer_hello = {"agent": "tcpspec", "version": 1, "stack": f"pytcp {PYTCP_VERSION}", "calls": CALLS,
                    "state": STATE_REPORTS}
    if KEEPALIVE_CONFIRMED:
        answer_hello["keepalive"] = True
    write_line(answer_hello)
    await serve(lines)


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)
