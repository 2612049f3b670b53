"""Open-loop sources: UDP constant bit rate and on/off, attack floods, SYN floods.

They do not react to congestion. ``cbr`` paces packets evenly, or sends them in bursts of
``burst`` back to back at the same average rate; ``onoff`` alternates exponentially
distributed on and off periods (means ``on`` and ``off``), sending at ``rate`` while on;
``flood`` and ``syn`` send at ``rate`` from source addresses drawn uniformly from the
``spoof`` prefix, one per packet (``syn`` packets carry the SYN flag).
"""

from __future__ import annotations

from heapq import heappush
from random import Random
from typing import Any

from .engine import Engine
from .packet import Packet

__all__ = ["OpenLoopSource", "DatagramSink"]

NS = 1_000_000_000


class OpenLoopSource:
    """Sends ``size``-byte packets every ``interval`` ns (``burst`` at a time) until ``stop``."""

    def __init__(self, engine: Engine, flow: Any, *, size: int, interval: int, ecn: int,
                 burst: int = 1, rng: Random | None = None, on: int | None = None,
                 off: int | None = None, spoof: tuple[int, int] | None = None,
                 syn: bool = False, stop: int) -> None:
        self.engine = engine
        self.flow = flow
        self.size = size
        self.interval = max(1, interval)
        self.ecn = ecn
        self.burst = burst
        self.rng = rng or Random(0)
        self.on = on
        self.off = off
        self.spoof = spoof  # (network address, number of addresses)
        self.syn = syn
        self.stop_at = stop
        self.seq = 0
        self.sent = 0
        self.on_until = -1

    def start(self, t: int, _: Any = None) -> None:
        if self.on is not None:
            self.on_until = t + self._exp(self.on)
        self._tick(t, None)

    def _exp(self, mean: int) -> int:
        return max(1, int(self.rng.expovariate(1.0) * mean))

    def _tick(self, t: int, _: Any) -> None:
        if t >= self.stop_at:
            return
        e = self.engine
        if self.on is not None and t >= self.on_until:  # an off period, then the next on
            resume = t + self._exp(self.off or 1)
            self.on_until = resume + self._exp(self.on)
            heappush(e.heap, (resume, next(e.counter), self._tick, None))
            return
        flow = self.flow
        first = flow.path[0]
        spoof = self.spoof
        for _i in range(self.burst):
            src = flow.src_ip if spoof is None else spoof[0] + self.rng.randrange(spoof[1])
            pkt = Packet(flow, self.seq, self.size, self.ecn, src, t, self.syn)
            self.seq += 1
            self.sent += 1
            first.arrive(t, pkt)
        heappush(e.heap, (t + self.interval * self.burst, next(e.counter), self._tick, None))


class DatagramSink:
    """The destination of an open-loop flow: counts what arrives, per time bin.

    ``terminal`` like :class:`~mosaico_dsl.sim.tcp.TcpReceiver`: handed packets early,
    stamped with their arrival time; arrivals after ``horizon`` are not counted.
    """

    latency = 0
    terminal = True

    def __init__(self, bin_ns: int, header: int, horizon: int) -> None:
        self.bin_ns = bin_ns
        self.horizon = horizon
        self.header = header
        self.received = 0
        self.ce = 0
        self.goodput: dict[int, int] = {}

    def arrive(self, t: int, pkt: Packet) -> None:
        if t > self.horizon:
            return
        self.received += 1
        if pkt.ecn == 3:
            self.ce += 1
        b = t // self.bin_ns
        payload = pkt.size - self.header  # a flood's bare headers carry nothing
        if payload > 0:
            self.goodput[b] = self.goodput.get(b, 0) + payload
