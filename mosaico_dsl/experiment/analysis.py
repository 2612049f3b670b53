"""From what the agents and the switches recorded to the simulator's result types.

The live run is described with :class:`~mosaico_dsl.sim.metrics.SimResult`, so it has the
simulator's ``metrics.json`` schema, traces and plots, and compares figure by figure:

* **per packet**, for every flow the experiment can follow — its own L4S transport and
  UDP flows carry their number and send time, and the L4S sender and kernel TCP segments
  are captured leaving the sender's device — the departure time (the capture's where
  there is one), the arrival time at the receiver's device (or none: lost) and the ECN
  field on arrival. One clock (CLOCK_REALTIME) for every namespace;
* **queue delay** of a packet: its one-way delay less the smallest one-way delay seen on
  the path through the same DualQ port — the path's latency with empty queues (host
  stacks, veths, BMv2's pipelines), so what is left is waiting. The switch's own
  ``deq_timedelta`` samples (its delay registers, sampled during the run) are reported
  beside it;
* **occupancy** at arrival: the queue delay times the queue's packet rate, plus the packet
  itself — exact for BMv2, which serves a queue one packet per 1/rate;
* **marks and drops** per class: the DualQ's own counters (the difference over the run);
  packets lost between the captures that the DualQ did not drop count as overflow;
* **goodput**: for kernel TCP what the receiving application read (in order), for the
  other flows the payload of the packets that arrived, both per time bin and over the
  flow's active interval, as the simulator counts them;
* attack packets: counted as sent by the attacker, and as received when the destination's
  capture saw a packet from the attack's prefix to its port.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

import numpy as np

from ..diagnostics import Diagnostic
from ..sim.binding import FlowBinding
from ..sim.metrics import (
    ClassStats,
    Distribution,
    FilterStats,
    FlowStats,
    PortStats,
    SimResult,
    Traces,
    _max_stall,
    _queue_series,
    _time_mean,
)
from ..sim.packet import CE, IP_TCP_HEADER, IP_UDP_HEADER
from ..sim.ports import AQM_DROP, MARK, PASS
from .sampling import SwitchSamples
from .testbed import DualQPort, Testbed

__all__ = ["FlowPackets", "Recorded", "LiveResult", "flow_packets", "analyse", "DATA_KINDS"]

_NS = 1_000_000_000
DATA_KINDS = ("prague", "cbr", "onoff")  # flows whose packets carry number and send time
_ETHERNET = 14  # BMv2 counts bytes with the Ethernet header


@dataclass(frozen=True)
class Recorded:
    """What one run produced, as read back from the agents and the samplers."""

    bindings: tuple[FlowBinding, ...]
    duration_ns: int
    sources: Mapping[str, tuple[dict, dict]]  # flow name -> (meta, tables)
    sinks: Mapping[str, tuple[dict, dict]]  # destination endpoint -> (meta, tables)
    switches: Mapping[str, SwitchSamples]
    testbed: Testbed
    host: Mapping[str, Any] = field(default_factory=dict)  # cores, load before and after


@dataclass(frozen=True)
class FlowPackets:
    """One flow's packets as both ends saw them (attacks: counts only)."""

    binding: FlowBinding
    t_send: np.ndarray  # ns from time zero
    t_recv: np.ndarray  # -1: it never arrived
    seq: np.ndarray
    size: np.ndarray  # bytes on the wire
    ecn_out: np.ndarray
    ecn_in: np.ndarray  # at the receiver; -1 if lost
    sent: int
    received: int
    ce_received: int
    goodput: np.ndarray  # payload bytes per time bin
    extra: dict = field(default_factory=dict)

    @property
    def owd_ns(self) -> np.ndarray:
        ok = self.t_recv >= 0
        return self.t_recv[ok] - self.t_send[ok]

    @property
    def lost(self) -> int:
        return int((self.t_recv < 0).sum())


def _bins(t: np.ndarray, weights: np.ndarray, bin_ns: int, nbins: int) -> np.ndarray:
    keep = (t >= 0) & (t < bin_ns * nbins)
    return np.bincount((t[keep] // bin_ns).astype(np.int64), weights=weights[keep],
                       minlength=nbins)[:nbins].astype(np.int64)


def _match(rx: np.ndarray, fb: FlowBinding) -> np.ndarray:
    return rx[(rx["src"] == int(fb.src_ip)) & (rx["sport"] == fb.sport)
              & (rx["dport"] == fb.dport) & (rx["proto"] == fb.proto)]


def _pair(keys_out: np.ndarray, t_out: np.ndarray, rx: np.ndarray, keys_in: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each sent packet: arrival time, ECN on arrival, and length (-1 if lost)."""
    keys_in, first = np.unique(keys_in, return_index=True)
    rx = rx[first]
    at = np.searchsorted(keys_in, keys_out)
    at = np.minimum(at, max(0, len(keys_in) - 1))
    hit = (keys_in[at] == keys_out) if len(keys_in) else np.zeros(len(keys_out), bool)
    t_recv = np.where(hit, rx["t_ns"][at] if len(rx) else 0, -1)
    ecn = np.where(hit, rx["ecn"][at] if len(rx) else 0, -1)
    length = np.where(hit, rx["length"][at] if len(rx) else 0, -1)
    return t_recv, ecn, length


def flow_packets(fb: FlowBinding, source: tuple[dict, dict], sink: tuple[dict, dict],
                 bin_ns: int, nbins: int) -> FlowPackets:
    meta, tables = source
    rx_all = sink[1]["rx"]
    header = IP_TCP_HEADER if fb.proto == 6 else IP_UDP_HEADER
    if fb.kind in DATA_KINDS:
        sent = tables["sent"]
        rx = _match(rx_all, fb)
        rx = rx[rx["kind"] == 1]
        t_recv, ecn, _ = _pair(sent["seq"], sent["t_ns"], rx, rx["seq"])
        t_send = sent["t_ns"]
        if "wire" in tables and len(tables["wire"]):  # left the device: the kernel's time
            w = tables["wire"]
            w_seq, first = np.unique(w["seq"], return_index=True)
            at = np.clip(np.searchsorted(w_seq, sent["seq"]), 0, len(w_seq) - 1)
            t_send = np.where(w_seq[at] == sent["seq"], w["t_ns"][first][at], t_send)
        size = np.full(len(sent), fb.size, np.int64)
        got = t_recv >= 0
        goodput = _bins(t_recv[got], (size[got] - header), bin_ns, nbins)
        return FlowPackets(fb, t_send, t_recv, sent["seq"], size,
                           np.full(len(sent), fb.ecn, np.int64), ecn, len(sent), int(got.sum()),
                           int((ecn == CE).sum()), goodput, dict(meta))
    if fb.is_tcp:  # kernel TCP: data segments captured at both ends, paired by (IP id, seq)
        tx = tables["tx"]
        tx = tx[tx["length"] > IP_TCP_HEADER]
        rx = _match(rx_all, fb)
        rx = rx[rx["length"] > IP_TCP_HEADER]
        key_out = (tx["ident"] << 32) | tx["seq"]
        key_in = (rx["ident"] << 32) | rx["seq"]
        t_recv, ecn, _ = _pair(key_out, tx["t_ns"], rx, key_in)
        app = sink[1]["app"]
        app = app[(app["src"] == int(fb.src_ip)) & (app["sport"] == fb.sport)]
        goodput = _bins(app["t_ns"], app["bytes"], bin_ns, nbins)
        info = tables["info"]
        return FlowPackets(fb, tx["t_ns"], t_recv, tx["seq"], tx["length"].astype(np.int64),
                           tx["ecn"], ecn, len(tx), int((t_recv >= 0).sum()),
                           int((ecn == CE).sum()), goodput,
                           {**meta, "srtt_us": info["rtt_us"][info["rtt_us"] > 0],
                            "min_rtt_us": info["min_rtt_us"][info["min_rtt_us"] > 0],
                            "cwnd": np.stack([info["t_ns"], info["cwnd"]], axis=1)})
    # an attack (or any open-loop flow without the experiment's header): counts only
    net = fb.spoof or IPv4Network(f"{fb.src_ip}/32")
    lo, n = int(net.network_address), net.num_addresses
    rx = rx_all[(rx_all["src"] >= lo) & (rx_all["src"] < lo + n) & (rx_all["dport"] == fb.dport)
                & (rx_all["proto"] == fb.proto) & (rx_all["kind"] == 0)]
    if fb.kind == "syn":
        rx = rx[(rx["flags"] & 0x12) == 0x02]
    elif fb.proto == 6:
        rx = rx[(rx["flags"] & 0x02) == 0]
    sent = tables["sent"]
    goodput = _bins(rx["t_ns"], rx["length"] - header, bin_ns, nbins)
    empty = np.zeros(0, np.int64)
    return FlowPackets(fb, sent["t_ns"], np.full(len(sent), -2, np.int64), sent["seq"],
                       np.full(len(sent), fb.size, np.int64), np.full(len(sent), fb.ecn),
                       np.full(len(sent), -2, np.int64), len(sent), len(rx),
                       int((rx["ecn"] == CE).sum()), goodput,
                       {**meta, "received_t_ns": rx["t_ns"] if len(rx) else empty})


@dataclass(frozen=True)
class LiveResult:
    """The live run as a :class:`SimResult`, and what only a live run has."""

    result: SimResult
    packets: tuple[FlowPackets, ...]
    base_owd_ns: Mapping[str, int]  # DualQ port -> the path's latency with empty queues
    switch_delay_ms: Mapping[str, Mapping[str, np.ndarray]]  # port -> class -> samples
    samples: Mapping[str, SwitchSamples]  # switch -> its counters and registers over time
    extras: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        doc = self.result.to_json()
        doc["experiment"] = self.extras
        return doc


def _through(fb: FlowBinding, port: DualQPort) -> bool:
    return any(a == port.switch and b == port.neighbour
               for a, b in itertools.pairwise(fb.route.nodes))


def analyse(rec: Recorded, *, program: str, traffic: str, seed: int, bin_ns: int,
            warnings: Sequence[Diagnostic] = ()) -> LiveResult:
    duration = rec.duration_ns
    nbins = -(-duration // bin_ns)
    flows = []
    for fb in rec.bindings:
        flows.append(flow_packets(fb, rec.sources[fb.name], rec.sinks[fb.destination],
                                  bin_ns, nbins))
    klass = {fp.binding.name: "l4s" if fp.binding.klass == "L" else "classic" for fp in flows}
    by_class = {c: sum(float(fp.goodput.sum()) * 8 * _NS / _active(fp.binding, duration)
                       for fp in flows if klass[fp.binding.name] == c and not fp.binding.is_attack)
                for c in ("l4s", "classic")}

    ports: list[PortStats] = []
    queue: dict[str, np.ndarray] = {}
    p_prime: dict[str, np.ndarray] = {}
    base: dict[str, int] = {}
    switch_delay: dict[str, dict[str, np.ndarray]] = {}
    for port in rec.testbed.dualq_ports:
        samples = rec.switches.get(port.switch)
        mine = [fp for fp in flows if _through(fp.binding, port) and len(fp.t_recv)
                and fp.binding.kind in (*DATA_KINDS, "reno", "cubic")]
        owds = [fp.owd_ns for fp in mine if len(fp.owd_ns)]
        base[port.name] = int(min(o.min() for o in owds)) if owds else 0
        rows, pt = _records(port, mine, flows, base[port.name], samples)
        queue[port.name] = rows
        p_prime[port.name] = pt
        classes, delays = [], {}
        for name, cls in (("l4s", 1), ("classic", 0)):
            classes.append(_class(name, cls, rows, samples, port, duration, by_class[name],
                                  [fp for fp in mine if klass[fp.binding.name] == name]))
            if samples is not None:
                delays[name] = _register_delays(samples, port.port, name, duration)
        switch_delay[port.name] = delays
        departed = (_counter(samples, "packets", port.port)
                    - _counter(samples, "drops", port.port))
        departed_bytes = (_counter(samples, "packets", port.port, of_bytes=True)
                          - _counter(samples, "drops", port.port, of_bytes=True)
                          - _ETHERNET * departed)
        util = departed_bytes * 8 * _NS / (port.rate_bps * duration) if duration else 0.0
        p_mean = _time_mean(pt[:, 0], pt[:, 1] / 2**32, duration) if len(pt) else None
        ports.append(PortStats(port.name, "dualq", "std.l4s.DualQ", port.rate_bps, util,
                               sum(c.departed for c in classes),
                               sum(c.overflow_drops for c in classes), tuple(classes), p_mean))

    flow_stats = tuple(_flow_stats(fp, duration, port_names=[p.name for p in
                                                             rec.testbed.dualq_ports
                                                             if _through(fp.binding, p)])
                       for fp in flows)
    filters = _filters(rec, flows)
    goodput = np.stack([fp.goodput for fp in flows]) if flows else np.zeros((0, nbins), np.int64)
    tcp = [fp for fp in flows if fp.binding.is_tcp]
    cwnd = np.full((len(tcp), nbins), np.nan)
    for i, fp in enumerate(tcp):
        if fp.binding.kind == "prague":
            st = rec.sources[fp.binding.name][1]["state"]
            t, w = st["t_ns"], st["cwnd_milli"] / 1000
        else:
            t, w = fp.extra["cwnd"][:, 0], fp.extra["cwnd"][:, 1].astype(float)
        keep = (t >= 0) & (t < duration)
        cwnd[i, (t[keep] // bin_ns).astype(np.int64)] = w[keep]
    drops = sorted((int(fp.t_send[j]), i, int(fp.seq[j]), _lost_where(fp, rec), "lost")
                   for i, fp in enumerate(flows) if fp.binding.kind in (*DATA_KINDS, "reno",
                                                                         "cubic")
                   for j in np.flatnonzero(fp.t_recv == -1))
    traces = Traces(bin_ns, duration, tuple(fp.binding.name for fp in flows),
                    tuple(klass[fp.binding.name] for fp in flows), queue, p_prime, drops,
                    goodput, cwnd)
    events = int(sum(len(fp.t_send) + fp.received for fp in flows))
    result = SimResult(program=program, duration_s=duration / _NS, seed=seed, traffic=traffic,
                       events=events, ports=tuple(ports), flows=flow_stats, filters=filters,
                       warnings=tuple(warnings), traces=traces)
    extras = _extras(rec, flows, base, switch_delay)
    return LiveResult(result, tuple(flows), base, switch_delay, rec.switches, extras)


def _register_delays(samples: SwitchSamples, port: int, klass: str, duration: int
                     ) -> np.ndarray:
    """The class's delay register (ms) at each sample taken during the run in which its
    packet counter moved: the register then holds the delay of a packet dequeued since the
    previous sample, not a value left from before."""
    cols = samples.find("qdelay", port, klass)
    pkts = samples.find("packets", port, klass)
    if not cols:
        return np.zeros(0)
    keep = (samples.t_ns >= 0) & (samples.t_ns <= duration) & samples.fresh[:, cols[0]]
    if pkts:
        moved = np.diff(samples.values[:, pkts].sum(axis=1), prepend=0) > 0
        keep &= moved & samples.fresh[:, pkts[0]]
    return samples.values[keep][:, cols].max(axis=1) / 1e3


def _active(fb: FlowBinding, duration: int) -> int:
    return max(1, min(fb.stop_ns, duration) - fb.start_ns)


def _counter(samples: SwitchSamples | None, metric: str, port: int,
             traffic_class: str | None = None, *, of_bytes: bool = False) -> int:
    if samples is None:
        return 0
    return samples.total(samples.find(metric, port, traffic_class), of_bytes=of_bytes)


def _lost_where(fp: FlowPackets, rec: Recorded) -> str:
    names = [p.name for p in rec.testbed.dualq_ports if _through(fp.binding, p)]
    return names[0] if names else fp.binding.destination


def _records(port: DualQPort, mine: list[FlowPackets], flows: list[FlowPackets], base: int,
             samples: SwitchSamples | None) -> tuple[np.ndarray, np.ndarray]:
    """Queue records in the simulator's layout (``sim.ports``): one row per packet of the
    flows through the port, enqueue time = send time + the path's base latency."""
    pt = np.zeros((0, 2), np.int64)
    if samples is not None:
        cols = samples.find("p_prime", port.port)
        if cols:
            pt = np.stack([samples.t_ns, samples.values[:, cols[0]]], axis=1).astype(np.int64)
    parts = []
    index = {fp.binding.name: i for i, fp in enumerate(flows)}
    for fp in mine:
        n = len(fp.t_send)
        t_enq = fp.t_send + base
        lost = fp.t_recv < 0
        t_deq = np.where(lost, t_enq, np.maximum(fp.t_recv, t_enq))
        cls = 1 if fp.binding.klass == "L" else 0
        verdict = np.where(lost, AQM_DROP,
                           np.where((fp.ecn_in == CE) & (fp.ecn_out != CE), MARK, PASS))
        occ = np.where(lost, 0, (t_deq - t_enq) * max(1, port.rate_pps) // _NS + 1)
        if len(pt):
            at = np.clip(np.searchsorted(pt[:, 0], t_deq, side="right") - 1, 0, len(pt) - 1)
            p = pt[at, 1]
        else:
            p = np.zeros(n, np.int64)
        parts.append(np.stack([t_enq, t_deq, np.full(n, index[fp.binding.name]), fp.seq,
                               np.full(n, cls), fp.size, fp.ecn_out, verdict, occ, p],
                              axis=1).astype(np.int64))
    rows = np.concatenate(parts) if parts else np.zeros((0, 10), np.int64)
    return rows[np.argsort(rows[:, 0], kind="stable")], pt


def _class(name: str, cls: int, rows: np.ndarray, samples: SwitchSamples | None,
           port: DualQPort, duration: int, goodput: float, flows: list[FlowPackets]
           ) -> ClassStats:
    mine = rows[rows[:, 4] == cls] if len(rows) else rows
    arrived_ok = mine[mine[:, 7] != AQM_DROP] if len(mine) else mine
    inside = arrived_ok[(arrived_ok[:, 1] >= 0) & (arrived_ok[:, 1] <= duration)]
    delays = (inside[:, 1] - inside[:, 0]) / 1e6 if len(inside) else np.zeros(0)
    marks = _counter(samples, "marks", port.port, name)
    aqm = _counter(samples, "drops", port.port, name)
    packets = _counter(samples, "packets", port.port, name)
    lost = sum(fp.lost for fp in flows)
    overflow = max(0, lost - aqm)
    t, q = _queue_series(rows, cls) if len(rows) else (np.zeros(0), np.zeros(0))
    return ClassStats(
        name=name, arrived=packets + overflow, departed=packets - aqm, queued=0, marks=marks,
        aqm_drops=aqm, overflow_drops=overflow, delay_ms=Distribution.of(delays),
        occupancy=Distribution.of(inside[:, 8] if len(inside) else np.zeros(0)),
        mean_queue=_time_mean(t, q, duration), goodput_bps=goodput,
        max_stall_ms=_max_stall(inside[np.argsort(inside[:, 1], kind="stable")],
                                duration) / 1e6)


def _flow_stats(fp: FlowPackets, duration: int, port_names: list[str]) -> FlowStats:
    fb = fp.binding
    ex = fp.extra
    lost = fp.sent - fp.received if fb.is_attack else fp.lost
    where = port_names[0] if port_names and not fb.is_attack else "path"
    if fb.kind == "prague":
        rtt = ex["rtt_sum_ns"] / ex["rtt_samples"] / 1e6 if ex.get("rtt_samples") else None
        min_rtt = ex["min_rtt_ns"] / 1e6 if ex.get("rtt_samples") else None
        retx, timeouts = 0, int(ex.get("timeouts", 0))
    elif fb.is_tcp:
        srtt = ex.get("srtt_us", np.zeros(0))
        rtt = float(np.mean(srtt)) / 1e3 if len(srtt) else None
        seen = ex.get("min_rtt_us", np.zeros(0))  # the kernel's own windowed minimum
        min_rtt = float(np.min(seen)) / 1e3 if len(seen) else None
        retx, timeouts = int(ex.get("last_total_retrans", 0)), 0
    else:
        rtt, min_rtt, retx, timeouts = None, None, 0, 0
    return FlowStats(
        name=fb.name, kind=fb.kind, klass="l4s" if fb.klass == "L" else "classic",
        source=fb.source, service=fb.service, dport=fb.dport, start_s=fb.start_ns / _NS,
        stop_s=min(fb.stop_ns, duration) / _NS, sent=fp.sent, received=fp.received,
        retransmits=retx, timeouts=timeouts, ce_received=fp.ce_received,
        drops=((where, "lost", lost),) if lost else (),
        goodput_bps=float(fp.goodput.sum()) * 8 * _NS / _active(fb, duration),
        mean_rtt_ms=rtt, min_rtt_ms=min_rtt)


def _filters(rec: Recorded, flows: list[FlowPackets]) -> tuple[FilterStats, ...]:
    """Drops from the switches' counters; passed = packets the flows through the instance
    sent, less the drops of the instance and of those before it in the chain."""
    out = []
    for sw, samples in sorted(rec.switches.items()):
        metrics = rec.testbed.switches[sw].metrics
        for svc in metrics.services:
            arrivals = sum(fp.sent for fp in flows if fp.binding.service == svc.service
                           and sw in fp.binding.route.nodes)
            before = 0
            for inst in svc.instances:
                cols = [i for i, r in enumerate(samples.roles)
                        if r.metric == "filter_drops" and r.instance == inst.instance]
                if not cols:
                    continue
                dropped = samples.total(cols)
                out.append(FilterStats(inst.instance, inst.function, sw,
                                       max(0, arrivals - before - dropped), dropped))
                before += dropped
    return tuple(sorted(out, key=lambda f: f.instance))


def _extras(rec: Recorded, flows: list[FlowPackets], base: Mapping[str, int],
            switch_delay: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """What a live run adds to the simulator's schema (``metrics.json``, key
    ``experiment``)."""
    out: dict[str, Any] = {
        "base_owd_us": {p: round(v / 1e3, 3) for p, v in sorted(base.items())},
        "switch_qdelay_ms": {p: {c: Distribution.of(v).to_json() for c, v in sorted(d.items())}
                             for p, d in sorted(switch_delay.items())},
        "queue_rate_pps": {p.name: p.rate_pps for p in rec.testbed.dualq_ports},
        "capture": {name: {"packets": m.get("capture_packets", 0),
                           "dropped": m.get("capture_dropped", 0)}
                    for name, (m, _) in sorted(rec.sinks.items())},
        "switch_sample_errors": {sw: list(s.errors[:5]) for sw, s in sorted(rec.switches.items())
                                 if s.errors},
        "host": dict(rec.host),
        "flows": {},
    }
    for fp in flows:
        fb = fp.binding
        active = _active(fb, rec.duration_ns) / _NS
        doc: dict[str, Any] = {"sent_pps": round(fp.sent / active, 3)}
        if fb.interval_ns:
            doc["planned_pps"] = round(_NS / fb.interval_ns, 3)
            doc["planned"] = int(fp.extra.get("planned", 0))
        if fb.kind == "prague":
            doc.update({k: fp.extra.get(k) for k in ("alpha", "reductions", "timeouts",
                                                      "send_errors")})
        out["flows"][fb.name] = doc
    return out
