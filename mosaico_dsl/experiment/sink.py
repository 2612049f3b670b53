"""The destination's agent: accept the TCP flows, answer the L4S flows, capture everything.

One process in the destination endpoint's namespace, one thread, one ``selectors`` loop:

* a listening socket on every destination port the flows use — kernel TCP connects to it,
  and its presence keeps the kernel from resetting the L4S transport's segments (see
  :mod:`.wire`);
* what each TCP connection delivers to the application, per read (goodput: in order);
* every IPv4 packet arriving at the device (:class:`.capture.Capture`), with its kernel
  timestamp, ECN field, IP id and sequence number — the receiving half of every one-way
  delay, loss and CE mark the experiment reports;
* the L4S flows' feedback, sent for every second data packet or after 0.5 ms, listing each
  packet received with its CE bit (a delayed ACK carrying Accurate ECN's information).
"""

from __future__ import annotations

import selectors
import socket
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from . import wire
from .capture import Capture
from .records import Table
from .tasks import AgentTask

__all__ = ["run_sink", "HOLD_NS", "ACK_EVERY"]

HOLD_NS = 500_000  # the longest a received L4S packet waits to be reported
ACK_EVERY = 2
_IDLE = 0.02


@dataclass
class _Pending:
    """Feedback owed to one L4S flow."""

    src: IPv4Address
    sport: int
    dport: int
    records: list[tuple[int, bool]] = field(default_factory=list)
    first: int = 0  # when the oldest unreported packet arrived
    echo: int = 0  # sender clock of the newest packet
    number: int = 0


class _Sink:
    def __init__(self, task: AgentTask, t0: int) -> None:
        self.task = task
        self.t0 = t0
        self.me = IPv4Address(task.address)
        self.rx = Table("t_ns", "src", "sport", "dport", "proto", "ident", "seq", "length",
                        "ecn", "kind", "clock_ns", "flags")
        self.app = Table("t_ns", "src", "sport", "bytes")
        self.sent_feedback = 0
        self.sel = selectors.DefaultSelector()
        self.listeners: list[socket.socket] = []
        for port in sorted({f.dport for f in task.flows if f.proto == 6}):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((task.address, port))
            s.listen(64)
            s.setblocking(False)
            self.listeners.append(s)
            self.sel.register(s, selectors.EVENT_READ, self._accept)
        self.capture = Capture(task.interface, outgoing=False)
        self.sel.register(self.capture, selectors.EVENT_READ, self._packets)
        self.raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.l4s: dict[tuple[int, int, int], _Pending] = {
            (int(IPv4Address(f.src_ip)), f.sport, f.dport):
                _Pending(IPv4Address(f.src_ip), f.sport, f.dport)
            for f in task.flows if f.kind == "prague"}
        self.buffer = bytearray(1 << 18)

    # ------------------------------------------------------------------ events
    def _accept(self, s: socket.socket) -> None:
        try:
            conn, peer = s.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self.sel.register(conn, selectors.EVENT_READ, lambda c, p=peer: self._read(c, p))

    def _read(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        try:
            n = conn.recv_into(self.buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            n = 0
        if n == 0:
            self.sel.unregister(conn)
            conn.close()
            return
        self.app.add(time.time_ns() - self.t0, int(IPv4Address(peer[0])), peer[1], n)

    def _packets(self, _: Capture) -> None:
        t0 = self.t0
        for ts, pkt in self.capture.drain():
            p = wire.parse(pkt)
            if p is None:
                continue
            clock = p.clock_ns - t0 if p.clock_ns else 0
            self.rx.add(ts - t0, p.src, p.sport, p.dport, p.proto, p.ident, p.seq, p.length,
                        p.ecn, p.kind, clock, p.flags)
            if p.kind == wire.DATA and p.proto == 6:
                pend = self.l4s.get((p.src, p.sport, p.dport))
                if pend is not None:
                    if not pend.records:
                        pend.first = ts
                    pend.records.append((p.seq, p.ecn == 3))
                    pend.echo = p.clock_ns
                    if len(pend.records) >= ACK_EVERY:
                        self._feedback(pend)

    def _feedback(self, pend: _Pending) -> None:
        while pend.records:
            batch = pend.records[:wire.MAX_FEEDBACK]
            del pend.records[:wire.MAX_FEEDBACK]
            seg = wire.feedback_segment(self.me, pend.src, pend.dport, pend.sport,
                                        pend.number, pend.echo, batch)
            pkt = wire.ip_header(self.me, pend.src, 6, 0, wire.IPV4.size + len(seg),
                                 ident=pend.number) + seg
            pend.number += 1
            try:
                self.raw.sendto(pkt, (str(pend.src), 0))
                self.sent_feedback += 1
            except OSError:
                pass  # a full device queue: the sender's RTO covers a lost feedback

    # ------------------------------------------------------------------ loop
    def run(self) -> None:
        end = self.t0 + self.task.end_ns
        while True:
            now = time.time_ns()
            if now >= end:
                break
            due = [p.first + HOLD_NS for p in self.l4s.values() if p.records]
            wait = min([_IDLE, (end - now) / 1e9] + [max(0.0, (d - now) / 1e9) for d in due])
            for key, _ in self.sel.select(wait):
                key.data(key.fileobj)
            now = time.time_ns()
            for p in self.l4s.values():
                if p.records and now - p.first >= HOLD_NS:
                    self._feedback(p)
        self.capture.statistics()

    def close(self) -> None:
        for key in list(self.sel.get_map().values()):
            if isinstance(key.fileobj, socket.socket):
                key.fileobj.close()
        self.sel.close()
        self.capture.close()
        self.raw.close()


def run_sink(task: AgentTask, ready, wait_for_start) -> tuple[dict[str, Table], dict]:
    """Set up, report ready, wait for time zero, run until the end; the records."""
    t0 = 0
    sink = _Sink(task, t0)
    ready()
    sink.t0 = wait_for_start()
    try:
        sink.run()
    finally:
        sink.close()
    meta = {"capture_packets": sink.capture.packets, "capture_dropped": sink.capture.dropped,
            "feedback_sent": sink.sent_feedback}
    return {"rx": sink.rx, "app": sink.app}, meta
