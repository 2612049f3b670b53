"""What a run measured: typed statistics (:class:`SimResult`) and the raw traces behind them.

Queue statistics are per switch egress port (the ports a chain's queue function governs,
``std.l4s.DualQ`` or ``Fifo``, and BMv2's plain FIFOs elsewhere) and per class — L4S
(ECT(1)/CE) and Classic — whatever the discipline, so a single FIFO can be compared with
the DualQ. Delay is the per-packet sojourn ``dequeue − enqueue`` (BMv2's
``deq_timedelta``); a packet still queued when the run ends counts with the time it had
waited by then (so a starved queue shows in the delay, not only in ``queued``); occupancy
is the length of the packet's class queue just after it arrived, itself included.
Throughput is goodput: payload delivered in order at the receiver, over the flow's active
interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..diagnostics import Diagnostic
from .network import Network
from .ports import AQM_DROP, MARK, OVERFLOW, QUEUED, DualQPort
from .traffic import format_traffic

__all__ = ["Distribution", "ClassStats", "PortStats", "FlowStats", "FilterStats",
           "SimResult", "Traces", "collect", "CLASSES"]

CLASSES = ("l4s", "classic")
_NS = 1e9


@dataclass(frozen=True, slots=True)
class Distribution:
    """Summary of a sample: count, mean and percentiles (NaN when empty)."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float

    @classmethod
    def of(cls, values: np.ndarray) -> Distribution:
        if len(values) == 0:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan, nan)
        p = np.percentile(values, [50, 90, 99, 99.9])
        return cls(int(len(values)), float(np.mean(values)), *(float(x) for x in p),
                   float(np.max(values)))

    def to_json(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else
                    round(v, 6) if isinstance(v, float) else v)
                for k, v in ((f, getattr(self, f)) for f in self.__slots__)}


@dataclass(frozen=True, slots=True)
class ClassStats:
    name: str  # "l4s" | "classic"
    arrived: int  # packets that reached the queue
    departed: int
    queued: int  # still waiting when the run ended
    marks: int  # CE marks applied by this port
    aqm_drops: int
    overflow_drops: int
    delay_ms: Distribution
    occupancy: Distribution  # packets in the class queue at arrival, itself included
    mean_queue: float  # time-weighted mean queue length (packets)
    goodput_bps: float  # of the flows of this class
    max_stall_ms: float  # longest time packets waited in this queue while none left it

    def to_json(self) -> dict[str, Any]:
        return {"arrived": self.arrived, "departed": self.departed, "queued": self.queued,
                "marks": self.marks, "max_stall_ms": round(self.max_stall_ms, 6),
                "aqm_drops": self.aqm_drops, "overflow_drops": self.overflow_drops,
                "delay_ms": self.delay_ms.to_json(), "occupancy_pkts": self.occupancy.to_json(),
                "mean_queue_pkts": round(self.mean_queue, 6),
                "goodput_bps": round(self.goodput_bps, 3)}


@dataclass(frozen=True, slots=True)
class PortStats:
    name: str
    discipline: str  # dualq | fifo | switch | nic
    function: str | None  # the chain's queue function governing the port (std.l4s.DualQ)
    rate_bps: int
    utilisation: float  # transmitted bits / (rate × duration)
    sent_packets: int
    overflow_drops: int
    classes: tuple[ClassStats, ...]  # (l4s, classic) for switch egress ports, () for NICs
    p_prime_mean: float | None  # DualQ: time-weighted mean of the base probability p'

    def cls(self, name: str) -> ClassStats:
        return next(c for c in self.classes if c.name == name)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"discipline": self.discipline, "function": self.function,
                               "rate_bps": self.rate_bps,
                               "utilisation": round(self.utilisation, 6),
                               "sent_packets": self.sent_packets,
                               "overflow_drops": self.overflow_drops}
        if self.classes:
            out["classes"] = {c.name: c.to_json() for c in self.classes}
        if self.p_prime_mean is not None:
            out["p_prime_mean"] = round(self.p_prime_mean, 9)
        return out


@dataclass(frozen=True, slots=True)
class FlowStats:
    name: str
    kind: str
    klass: str  # "l4s" | "classic"
    source: str
    service: str
    dport: int
    start_s: float
    stop_s: float
    sent: int
    received: int
    retransmits: int
    timeouts: int
    ce_received: int
    drops: tuple[tuple[str, str, int], ...]  # (where, reason, packets)
    goodput_bps: float
    mean_rtt_ms: float | None
    min_rtt_ms: float | None  # the base RTT the flow saw: propagation, serialisation, nodes

    @property
    def dropped(self) -> int:
        return sum(n for _, _, n in self.drops)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "class": self.klass, "source": self.source,
                "service": self.service, "dport": self.dport, "start_s": self.start_s,
                "stop_s": self.stop_s, "sent": self.sent, "received": self.received,
                "retransmits": self.retransmits, "timeouts": self.timeouts,
                "ce_received": self.ce_received,
                "drops": [{"where": w, "reason": r, "packets": n} for w, r, n in self.drops],
                "goodput_bps": round(self.goodput_bps, 3),
                "mean_rtt_ms": None if self.mean_rtt_ms is None else round(self.mean_rtt_ms, 6),
                "min_rtt_ms": None if self.min_rtt_ms is None else round(self.min_rtt_ms, 6)}


@dataclass(frozen=True, slots=True)
class FilterStats:
    instance: str
    function: str
    node: str
    passed: int
    dropped: int

    def to_json(self) -> dict[str, Any]:
        return {"function": self.function, "node": self.node, "passed": self.passed,
                "dropped": self.dropped}


@dataclass(frozen=True)
class Traces:
    """The raw per-packet and per-bin series (the CSV traces and the plots read these)."""

    bin_ns: int
    duration_ns: int
    flow_names: tuple[str, ...]
    flow_classes: tuple[str, ...]
    queue: dict[str, np.ndarray]  # port -> records (see ports.Port), int64 N×10
    p_prime: dict[str, np.ndarray]  # DualQ port -> (t, p') int64 N×2
    drops: list[tuple[int, int, int, str, str]]
    goodput: np.ndarray  # flows × bins: payload bytes delivered per bin
    cwnd: np.ndarray  # TCP flows × bins: cwnd (segments) at the end of each bin, NaN: none


@dataclass(frozen=True)
class SimResult:
    """Everything a simulation run measured; ``artifacts()`` renders it to files."""

    program: str
    duration_s: float
    seed: int
    traffic: str
    events: int
    ports: tuple[PortStats, ...]
    flows: tuple[FlowStats, ...]
    filters: tuple[FilterStats, ...]
    warnings: tuple[Diagnostic, ...] = ()
    traces: Traces | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ shortcuts
    @property
    def queue_ports(self) -> tuple[PortStats, ...]:
        """Switch egress ports (with per-class statistics), governed ones first."""
        ports = [p for p in self.ports if p.classes]
        return tuple(sorted(ports, key=lambda p: p.function is None))

    @property
    def bottleneck(self) -> PortStats | None:
        """The busiest port a chain's queue function governs (else the busiest switch port)."""
        ports = [p for p in self.queue_ports if p.function] or list(self.queue_ports)
        return max(ports, key=lambda p: (p.utilisation, -ports.index(p))) if ports else None

    @property
    def l4s(self) -> ClassStats | None:
        b = self.bottleneck
        return b.cls("l4s") if b else None

    @property
    def classic(self) -> ClassStats | None:
        b = self.bottleneck
        return b.cls("classic") if b else None

    def goodput_bps(self, klass: str) -> float:
        return sum(f.goodput_bps for f in self.flows
                   if f.klass == klass and f.kind not in ("flood", "syn"))

    @property
    def classic_l4s_ratio(self) -> float | None:
        """Classic goodput / L4S goodput (the coupling aims at about 1)."""
        l4s = self.goodput_bps("l4s")
        return self.goodput_bps("classic") / l4s if l4s else None

    def flow(self, name: str) -> FlowStats:
        return next(f for f in self.flows if f.name == name)

    def to_json(self) -> dict[str, Any]:
        ratio = self.classic_l4s_ratio
        b = self.bottleneck
        return {
            "program": self.program, "duration_s": self.duration_s, "seed": self.seed,
            "traffic": self.traffic, "events": self.events,
            "bottleneck": b.name if b else None,
            "summary": {
                "l4s_goodput_bps": round(self.goodput_bps("l4s"), 3),
                "classic_goodput_bps": round(self.goodput_bps("classic"), 3),
                "classic_l4s_ratio": None if ratio is None else round(ratio, 6),
            },
            "ports": {p.name: p.to_json() for p in self.ports},
            "flows": {f.name: f.to_json() for f in self.flows},
            "filters": {f.instance: f.to_json() for f in self.filters},
            "warnings": [d.to_dict() for d in self.warnings],
        }

    def artifacts(self, *, traces: bool = True, plots: bool = True) -> dict[str, bytes]:
        from .report import artifacts
        return artifacts(self, traces=traces, plots=plots)

    def write(self, out_dir, *, traces: bool = True, plots: bool = True, force: bool = False):
        """Write metrics.json, traces/*.csv, plots/*.png and manifest.json atomically into
        ``out_dir``; an existing directory is replaced only if it is empty or an unchanged
        mosaico simulation output (or if ``force``)."""
        from pathlib import Path

        from .._atomic import write_tree
        out = Path(out_dir)
        write_tree(out, self.artifacts(traces=traces, plots=plots), force=force)
        return out

    def __repr__(self) -> str:
        # One line, not the dataclass's dump of every port and flow: the numbers that
        # answer "what did this chain do?" (the fields stay available as attributes).
        parts = [f"{self.program}: {self.duration_s:g} s, seed {self.seed}, "
                 f"traffic {self.traffic!r}, {len(self.flows)} flows"]
        b = self.bottleneck
        if b is not None:
            parts.append(f"bottleneck {b.name} ({b.discipline}, {b.utilisation:.0%} used)")
            for c in b.classes:
                if c.arrived:
                    parts.append(f"{c.name} delay p50 {c.delay_ms.p50:.3g} ms "
                                 f"p99 {c.delay_ms.p99:.3g} ms")
        ratio = self.classic_l4s_ratio
        if ratio is not None and self.goodput_bps("classic"):
            parts.append(f"Classic/L4S goodput {ratio:.2f}")
        return f"<SimResult {'; '.join(parts)}>"

    def _repr_html_(self) -> str:
        from .report import html_summary
        return html_summary(self)


# ---------------------------------------------------------------------------- collecting

def _queue_series(rec: np.ndarray, cls: int) -> tuple[np.ndarray, np.ndarray]:
    """Queue length of one class over time, from enqueue/dequeue times (step function)."""
    admitted = rec[(rec[:, 4] == cls) & (rec[:, 7] != OVERFLOW)]
    t = np.concatenate([admitted[:, 0], admitted[:, 1][admitted[:, 1] >= 0]])
    d = np.concatenate([np.ones(len(admitted), np.int64),
                        -np.ones(int((admitted[:, 1] >= 0).sum()), np.int64)])
    order = np.lexsort((-d, t))  # at equal times count the arrival first
    return t[order], np.cumsum(d[order])


def _time_mean(t: np.ndarray, v: np.ndarray, end: int) -> float:
    if len(t) == 0 or end <= 0:
        return 0.0
    widths = np.diff(np.append(t, end)).clip(min=0)
    return float((v * widths).sum() / end)


def _max_stall(mine: np.ndarray, duration: int) -> float:
    """The longest head-of-line wait (ns): a queue is FIFO, so the k-th packet to leave was
    its head from max(previous departure, its arrival) until it left; a packet still queued
    at the end, from then until the end. Packets dequeued and dropped by the AQM count as
    served (the queue moved)."""
    if not len(mine):
        return 0.0
    left = mine[mine[:, 1] >= 0]
    d, e = left[:, 1], left[:, 0]
    prev = np.concatenate([[np.iinfo(np.int64).min], d[:-1]])
    worst = float((d - np.maximum(prev, e)).max()) if len(d) else 0.0
    waiting = mine[mine[:, 7] == QUEUED]
    if len(waiting):
        last = int(d[-1]) if len(d) else 0
        worst = max(worst, float(duration - max(last, int(waiting[0, 0]))))
    return worst


def _class_stats(name: str, cls: int, rec: np.ndarray, duration: int, goodput: float
                 ) -> ClassStats:
    mine = rec[rec[:, 4] == cls] if len(rec) else rec
    verdict = mine[:, 7] if len(mine) else np.zeros(0, np.int64)
    left = mine[(mine[:, 1] >= 0) & (verdict != AQM_DROP)] if len(mine) else mine
    waiting = mine[verdict == QUEUED] if len(mine) else mine
    delays = np.concatenate([(left[:, 1] - left[:, 0]) / 1e6 if len(left) else np.zeros(0),
                             (duration - waiting[:, 0]) / 1e6 if len(waiting) else np.zeros(0)])
    admitted = mine[verdict != OVERFLOW] if len(mine) else mine
    t, q = _queue_series(rec, cls) if len(rec) else (np.zeros(0), np.zeros(0))
    return ClassStats(
        name=name, arrived=int(len(mine)), departed=int(len(left)), queued=int(len(waiting)),
        marks=int((verdict == MARK).sum()), aqm_drops=int((verdict == AQM_DROP).sum()),
        overflow_drops=int((verdict == OVERFLOW).sum()), delay_ms=Distribution.of(delays),
        occupancy=Distribution.of(admitted[:, 8] if len(admitted) else np.zeros(0)),
        mean_queue=_time_mean(t, q, duration), goodput_bps=goodput,
        max_stall_ms=_max_stall(admitted, duration) / 1e6)


def collect(net: Network, program_name: str) -> SimResult:
    """Turn a finished run into statistics and traces."""
    duration = net.duration
    bin_ns = net.bin_ns
    nbins = -(-duration // bin_ns)
    flows = net.flows
    goodput = np.zeros((len(flows), nbins), np.int64)
    for i, f in enumerate(flows):
        for b, n in f.receiver.goodput.items():
            if b < nbins:
                goodput[i, b] = n
    tcp = [f for f in flows if f.spec.is_tcp]
    cwnd = np.full((len(tcp), nbins), np.nan)
    for i, f in enumerate(tcp):
        for t, w in f.sender.cwnd_trace:
            if t < duration:
                cwnd[i, t // bin_ns] = w
    flow_stats = []
    for i, f in enumerate(flows):
        active = max(1, min(f.stop, duration) - f.start)
        s = f.sender
        samples = getattr(s, "rtt_samples", 0)
        flow_stats.append(FlowStats(
            name=f.name, kind=f.kind, klass="l4s" if f.klass == "L" else "classic",
            source=f.source, service=f.service, dport=f.dport, start_s=f.start / _NS,
            stop_s=min(f.stop, duration) / _NS, sent=s.sent, received=f.receiver.received,
            retransmits=getattr(s, "retransmits", 0), timeouts=getattr(s, "timeouts", 0),
            ce_received=f.receiver.ce,
            drops=tuple((w, r, n) for (w, r), n in sorted(f.drops.items())),
            goodput_bps=float(goodput[i].sum()) * 8 * _NS / active,
            mean_rtt_ms=(s.rtt_sum / samples / 1e6) if samples else None,
            min_rtt_ms=s.min_rtt / 1e6 if samples else None))
    by_class = {c: sum(fs.goodput_bps for fs in flow_stats
                       if fs.klass == c and fs.kind not in ("flood", "syn")) for c in CLASSES}
    ports, queue, p_prime = [], {}, {}
    for name, port in net.ports.items():
        util = port.sent_bytes * 8 * _NS / (port.rate_bps * duration) if duration else 0.0
        classes: tuple[ClassStats, ...] = ()
        p_mean = None
        if port.record:
            p_now = port.p_prime()
            waiting = [(pkt.enq, -1, pkt.flow.id, pkt.seq, cls, pkt.size, pkt.ecn, QUEUED,
                        pkt.occ, p_now) for pkt, cls in port.queued()]
            rec = np.array(port.records + waiting, dtype=np.int64).reshape(-1, 10)
            queue[name] = rec
            classes = (_class_stats("l4s", 1, rec, duration, by_class["l4s"]),
                       _class_stats("classic", 0, rec, duration, by_class["classic"]))
        if isinstance(port, DualQPort):
            pt = np.array(port.p_trace, dtype=np.int64).reshape(-1, 2)
            p_prime[name] = pt
            p_mean = _time_mean(pt[:, 0], pt[:, 1] / 2**32, duration)
        ports.append(PortStats(name, port.discipline, net.queue_ports.get(name), port.rate_bps,
                               util, port.sent_packets, port.overflow_drops, classes, p_mean))
    filters = tuple(FilterStats(k, f.function, f.node, f.passed, f.dropped)
                    for k, f in sorted(net.filters.items()))
    traces = Traces(bin_ns, duration, tuple(f.name for f in flows),
                    tuple("l4s" if f.klass == "L" else "classic" for f in flows), queue, p_prime,
                    net.drops.rows, goodput, cwnd)
    return SimResult(program=program_name, duration_s=duration / _NS, seed=net.seed,
                     traffic=format_traffic(net.specs), events=net.engine.events,
                     ports=tuple(ports), flows=tuple(flow_stats), filters=filters,
                     warnings=tuple(net.warnings), traces=traces)
