"""Transmitters: switch egress ports (DualQ, FIFO) and host NICs.

A port serves one packet at a time at its rate and hands each packet, after the link's
propagation delay, to the next stage of the packet's path. The queueing discipline decides
which packet leaves next and what happens to it:

* :class:`DualQPort` — the L and Classic queues of one link, served by DualPI2's
  conditional priority (:class:`~mosaico_dsl.aqm.dualq.Scheduler`: L first, Classic at
  least 10 % while both wait), and the DualQ Coupled AQM of :mod:`mosaico_dsl.aqm.dualq`
  run per packet exactly as the P4 program does: :func:`~mosaico_dsl.aqm.dualq.classic_arrival`
  when a Classic packet arrives (ingress), :func:`~mosaico_dsl.aqm.dualq.dequeue` at
  dequeue with the queue delay ``deq_timedelta`` (µs), the queue length ``deq_qdepth`` (the
  packets left in the packet's own queue, as BMv2 reports it per priority) and 32-bit
  random draws;
* :class:`FifoPort` — one tail-drop queue (``std.l4s.Fifo``, unconfigured switch ports,
  host NICs).

Dequeue happens when the packet starts transmission; so the queue delay excludes the
packet's own serialisation, as ``deq_timedelta`` does on a rate-limited BMv2 queue.
"""

from __future__ import annotations

from collections import deque
from heapq import heappush
from random import Random
from typing import Any

from ..aqm.dualq import (
    DualQConstants,
    DualQState,
    Scheduler,
    Verdict,
    classic_arrival,
    dequeue,
    is_l4s,
)
from .engine import Engine

__all__ = ["Port", "FifoPort", "DualQPort", "PASS", "MARK", "AQM_DROP", "OVERFLOW", "QUEUED",
           "VERDICT_NAMES"]

PASS, MARK, AQM_DROP, OVERFLOW, QUEUED = 0, 1, 2, 3, 4
VERDICT_NAMES = ("pass", "mark", "drop", "overflow", "queued")
_BITS_PER_BYTE_NS = 8 * 1_000_000_000


class Port:
    """Common transmitter behaviour; subclasses hold the queues and pick the next packet.

    ``records`` (when ``record`` is set) gets one tuple per packet that reached the queue:
    ``(t_enq, t_deq or -1, flow, seq, class, size, ecn_in, verdict, occupancy, p')``, where
    occupancy is the length of the packet's class queue just after it arrived (itself
    included) and class is 1 for the L queue, 0 for Classic.
    """

    latency = 0  # a port acts on arrival; node processing time is on the node stage
    terminal = False  # see TcpReceiver.terminal
    discipline = "fifo"

    def __init__(self, engine: Engine, name: str, rate_bps: int, prop_ns: int, drops: Any,
                 *, record: bool = False) -> None:
        if rate_bps <= 0:
            raise ValueError(f"port {name} has no rate")
        self.engine = engine
        self.name = name
        self.rate_bps = rate_bps
        self.prop_ns = prop_ns
        self.drops = drops
        self.record = record
        self.records: list[tuple] = []
        self.free_at = 0  # when the packet in transmission has left
        self.pending = False  # a _done event is scheduled
        self.sent_bytes = 0
        self.sent_packets = 0
        self.overflow_drops = 0

    # ------------------------------------------------------------------ stage protocol
    def arrive(self, t: int, pkt: Any) -> None:
        if not self._admit(t, pkt):
            self.overflow_drops += 1
            if self.record:
                self.records.append((t, -1, pkt.flow.id, pkt.seq, pkt.ecn & 1, pkt.size,
                                     pkt.ecn, OVERFLOW, 0, self.p_prime()))
            self.drops.drop(t, pkt, self.name, "overflow")
            return
        if not self.pending:
            if t >= self.free_at:
                self._serve(t)
            else:
                self.pending = True
                e = self.engine
                heappush(e.heap, (self.free_at, next(e.counter), self._done, None))

    def _done(self, t: int, _: Any) -> None:
        self.pending = False
        self._serve(t)

    def _serve(self, t: int) -> None:
        pkt = self._pop(t)
        if pkt is None:
            return
        size = pkt.size
        done = t + (size * _BITS_PER_BYTE_NS + self.rate_bps - 1) // self.rate_bps
        self.free_at = done
        self.sent_bytes += size
        self.sent_packets += 1
        pkt.hop += 1
        nxt = pkt.flow.path[pkt.hop]
        e = self.engine
        if nxt.terminal:  # a receiver keeps only its own state: hand it over now, time-stamped
            nxt.arrive(done + self.prop_ns, pkt)
        else:
            heappush(e.heap, (done + self.prop_ns + nxt.latency, next(e.counter), nxt.arrive,
                              pkt))
        if self._backlog():
            self.pending = True
            heappush(e.heap, (done, next(e.counter), self._done, None))

    # ------------------------------------------------------------------ disciplines
    def _admit(self, t: int, pkt: Any) -> bool:
        raise NotImplementedError

    def _pop(self, t: int) -> Any:
        raise NotImplementedError

    def _backlog(self) -> int:
        raise NotImplementedError

    def p_prime(self) -> int:
        return 0

    def queued(self) -> list[tuple[Any, int]]:
        """Packets still waiting, with their class (1 for the L queue): a run's end."""
        raise NotImplementedError


class FifoPort(Port):
    """One FIFO with tail drop at ``limit_packets`` or ``limit_bytes`` (either optional)."""

    def __init__(self, engine: Engine, name: str, rate_bps: int, prop_ns: int, drops: Any, *,
                 limit_packets: int | None = None, limit_bytes: int | None = None,
                 record: bool = False, discipline: str = "fifo") -> None:
        super().__init__(engine, name, rate_bps, prop_ns, drops, record=record)
        self.q: deque = deque()
        self.bytes = 0
        self.limit_packets = limit_packets
        self.limit_bytes = limit_bytes
        self.discipline = discipline

    def _admit(self, t: int, pkt: Any) -> bool:
        q = self.q
        if self.limit_packets is not None and len(q) >= self.limit_packets:
            return False
        if self.limit_bytes is not None and self.bytes + pkt.size > self.limit_bytes:
            return False
        pkt.enq = t
        q.append(pkt)
        self.bytes += pkt.size
        pkt.occ = len(q)
        return True

    def _pop(self, t: int) -> Any:
        if not self.q:
            return None
        pkt = self.q.popleft()
        self.bytes -= pkt.size
        if self.record:
            self.records.append((pkt.enq, t, pkt.flow.id, pkt.seq, pkt.ecn & 1, pkt.size,
                                 pkt.ecn, PASS, pkt.occ, 0))
        return pkt

    def _backlog(self) -> int:
        return len(self.q)

    def queued(self) -> list[tuple[Any, int]]:
        return [(pkt, pkt.ecn & 1) for pkt in self.q]


class DualQPort(Port):
    """The L and Classic queues of one link and the integer DualQ Coupled AQM, per packet.

    The buffer limit is RFC 9332's: a packet is refused when both queues together would
    exceed ``buffer`` worth of bytes at the port rate (``limit_packets`` additionally caps
    each queue, as BMv2's per-queue depth does when the switch sets ``queue_depth``).
    """

    discipline = "dualq"

    def __init__(self, engine: Engine, name: str, rate_bps: int, prop_ns: int, drops: Any, *,
                 constants: DualQConstants, rng: Random, limit_packets: int | None = None,
                 record: bool = True, scheduler: Scheduler | None = None) -> None:
        super().__init__(engine, name, rate_bps, prop_ns, drops, record=record)
        self.c = constants
        self.state = DualQState()
        self.rng = rng
        self.lq: deque = deque()
        self.cq: deque = deque()
        self.lbytes = 0
        self.cbytes = 0
        self.limit_bytes = constants.buffer_us * rate_bps // 8_000_000
        self.limit_packets = limit_packets
        self.scheduler = scheduler or Scheduler()
        self.credit = self.scheduler.initial_credit
        self.p_trace: list[tuple[int, int]] = [(0, 0)]  # (t, p') after every PI update

    def p_prime(self) -> int:
        return self.state.p

    def _admit(self, t: int, pkt: Any) -> bool:
        if self.lbytes + self.cbytes + pkt.size > self.limit_bytes:
            return False
        pkt.enq = t
        if is_l4s(pkt.ecn):  # ECT(1) or CE: the L queue
            q = self.lq
            self.lbytes += pkt.size
        else:
            q = self.cq
            self.cbytes += pkt.size
        if self.limit_packets is not None and len(q) >= self.limit_packets:
            if q is self.lq:
                self.lbytes -= pkt.size
            else:
                self.cbytes -= pkt.size
            return False
        if q is self.cq and not self.state.c_arrival_us:  # ingress stamps it (P4: too)
            self.state = classic_arrival(self.state, t // 1000)
        q.append(pkt)
        pkt.occ = len(q)
        return True

    def _backlog(self) -> int:
        return len(self.lq) + len(self.cq)

    def queued(self) -> list[tuple[Any, int]]:
        return [*((pkt, 1) for pkt in self.lq), *((pkt, 0) for pkt in self.cq)]

    def _pop(self, t: int) -> Any:
        c = self.c
        now_us = t // 1000
        bits = self.rng.getrandbits
        lq, cq, sched = self.lq, self.cq, self.scheduler
        while True:
            if not lq and not cq:
                self.credit = sched.initial_credit
                return None
            if sched.serve_l(self.credit, len(lq), len(cq)):
                pkt = lq.popleft()
                self.lbytes -= pkt.size
                is_l, qlen, other = 1, len(lq), len(cq)
            else:
                pkt = cq.popleft()
                self.cbytes -= pkt.size
                is_l, qlen, other = 0, len(cq), len(lq)
            qdelay = now_us - pkt.enq // 1000  # deq_timedelta: µs timestamps, truncated
            before = self.state
            ecn_in = pkt.ecn
            self.state, v = dequeue(c, before, now_us=now_us, l4s=bool(is_l), qdelay_us=qdelay,
                                    ecn=ecn_in, qlen=qlen, r1=bits(32), r2=bits(32),
                                    r3=bits(32))
            p = self.state.p
            if self.state.last_update_us != before.last_update_us:
                self.p_trace.append((t, p))
            if v is Verdict.PASS:
                code = PASS
            elif v is Verdict.MARK:
                code = MARK
                pkt.ecn = 3
            else:
                code = AQM_DROP
            if self.record:
                self.records.append((pkt.enq, t, pkt.flow.id, pkt.seq, is_l, pkt.size, ecn_in,
                                     code, pkt.occ, p))
            if code == AQM_DROP:
                self.drops.drop(t, pkt, self.name, "aqm")
                continue
            self.credit = sched.credit_after(self.credit, bool(is_l), pkt.size, other)
            return pkt
