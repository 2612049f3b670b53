"""The simulated network of a placed program: flows bound to routes, nodes, ports, filters.

:func:`build` turns the IR, the :class:`~mosaico_dsl.place.Placement` and the traffic
specification into a :class:`Network` ready to run. Each flow follows the route the
placement gives its service and source, visit by visit (VNF detours included):

* leaving a node, the packet is transmitted by that node's port towards the next node — a
  host or endpoint NIC, or a switch egress port whose discipline is the chain's queue
  function placed at that visit (``std.l4s.DualQ`` → :class:`DualQPort`, ``std.l4s.Fifo``
  → a tail-drop FIFO; other switch ports are FIFOs of ``queue_depth`` packets, BMv2's 64 by
  default); the port rate is the link bandwidth, capped by the switch's ``queue_rate``;
* arriving at a node, the instances the visit lists run in chain order (filters may drop),
  after the sum of their latencies on the target they are placed on;
* at the destination the flow's receiver takes it.

Packets that no service matches are dropped at the first switch (a classifier miss). ACKs
return along the shortest path with its propagation and serialisation delays, unqueued.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from random import Random
from typing import Any

from ..aqm.dualq import DualQConstants
from ..diagnostics import CompileError, Diagnostic, error, warning
from ..ir import _ir as I
from ..ir.graph import shortest_path
from ..ir.predicate import evaluate, fields_of, to_dnf
from ..ir.values import ValueRange, ValueSet
from ..place import Placement
from .engine import Engine
from .filters import Classifier, Filter, PassThrough, build_filter, packet_fields
from .packet import ACK_SIZE, ECT1, IP_TCP_HEADER, IP_UDP_HEADER, SYN_SIZE, Packet
from .ports import DualQPort, FifoPort, Port
from .sources import DatagramSink, OpenLoopSource
from .tcp import TcpReceiver, TcpSender
from .traffic import FlowSpec

__all__ = ["Network", "Flow", "NodeStage", "DropLog", "build", "BMV2_QUEUE_DEPTH",
           "NIC_QUEUE"]

BMV2_QUEUE_DEPTH = 64  # simple_switch's default queue depth (packets)
NIC_QUEUE = 1000  # Linux txqueuelen default (packets)
_NS = 1_000_000_000


class Flow:
    """One simulated flow: its identity, header fields, path, endpoints and counters."""

    def __init__(self, fid: int, name: str, spec: FlowSpec, source: str, service: str,
                 klass: str, src_ip: int, dst: int, proto: int, sport: int, dport: int,
                 start: int, stop: int) -> None:
        self.id = fid
        self.name = name
        self.spec = spec
        self.kind = spec.kind
        self.source = source
        self.service = service
        self.klass = klass  # "L" (ECT(1) at the sender) or "C"
        self.src_ip = src_ip
        self.dst = dst
        self.proto = proto
        self.sport = sport
        self.dport = dport
        self.start = start
        self.stop = stop
        self.matched = True
        l4 = "tcp" if proto == 6 else "udp"
        self.fields = {"ipv4.dst": IPv4Address(dst), "ipv4.proto": proto, "ipv4.dscp": 0,
                       "ipv4.ttl": 64, f"{l4}.sport": sport, f"{l4}.dport": dport}
        self.path: list[Any] = []
        self.sender: Any = None
        self.receiver: Any = None
        self.drops: dict[tuple[str, str], int] = {}


class NodeStage:
    """A visit of a route to a node: run the instances placed there, then go on."""

    terminal = False

    def __init__(self, node: str, filters: Sequence[Filter], latency: int, drops: DropLog
                 ) -> None:
        self.node = node
        self.filters = tuple(filters)
        self.latency = latency
        self.drops = drops

    def arrive(self, t: int, pkt: Packet) -> None:
        for f in self.filters:
            if not f.admit(t, pkt):
                self.drops.drop(t, pkt, f.instance, "filter")
                return
        pkt.hop += 1
        pkt.flow.path[pkt.hop].arrive(t, pkt)


class DropLog:
    """Every drop, wherever it happens: ``(t, flow, seq, where, reason)``."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int, str, str]] = []

    def drop(self, t: int, pkt: Packet, where: str, reason: str) -> None:
        self.rows.append((t, pkt.flow.id, pkt.seq, where, reason))
        key = (where, reason)
        d = pkt.flow.drops
        d[key] = d.get(key, 0) + 1


@dataclass
class Network:
    """Everything one run needs; :meth:`run` advances it."""

    program: I.Program
    placement: Placement
    specs: tuple[FlowSpec, ...]
    duration: int  # ns
    seed: int
    bin_ns: int
    engine: Engine
    flows: list[Flow]
    ports: dict[str, Port]
    queue_ports: dict[str, str]  # port -> the chain's queue function that governs it
    filters: dict[str, Filter]
    drops: DropLog
    warnings: list[Diagnostic]

    def run(self, until: int | None = None) -> None:
        self.engine.run(self.duration if until is None else min(until, self.duration))


# ---------------------------------------------------------------------------- building

def _rng(seed: int, purpose: str) -> Random:
    return Random(f"mosaico-sim/{seed}/{purpose}")  # str seeds hash with SHA-512: stable


def _link(topo: I.Topology, a: str, b: str) -> I.Link:
    lk = topo.link_between(a, b)
    if lk is None:  # pragma: no cover - routes only use existing links
        raise ValueError(f"route uses {a}–{b} but the topology has no such link")
    return lk


class _Builder:
    def __init__(self, program: I.Program, placement: Placement, seed: int, bin_ns: int,
                 duration: int) -> None:
        self.program = program
        self.placement = placement
        self.seed = seed
        self.bin_ns = bin_ns
        self.duration = duration
        self.engine = Engine()
        self.drops = DropLog()
        self.ports: dict[str, Port] = {}
        self.queue_ports: dict[str, str] = {}
        self.filters: dict[str, Filter] = {}
        self.instances = {fi.id: fi for fi in program.instances()}
        self.diags: list[Diagnostic] = []
        self.multi = len(program.topologies) > 1
        self._unmodelled: set[str] = set()

    # --------------------------------------------------------------- ports and nodes
    def _port_name(self, topo: I.Topology, a: str, b: str) -> str:
        return f"{topo.name}:{a}->{b}" if self.multi else f"{a}->{b}"

    def port(self, topo: I.Topology, a: str, b: str, queue: I.FunctionInstance | None) -> Port:
        name = self._port_name(topo, a, b)
        if name in self.ports:
            return self.ports[name]
        node = topo.node(a)
        lk = _link(topo, a, b)
        rate = lk.bandwidth.bps
        depth: int | None = None
        if isinstance(node, I.Switch):
            if node.queue_rate is not None:
                rate = min(rate, node.queue_rate.bps)
            depth = node.queue_depth
        e, prop = self.engine, lk.delay.ns
        port: Port
        if queue is not None and queue.function == "std.l4s.DualQ":
            port = DualQPort(e, name, rate, prop, self.drops,
                             constants=DualQConstants.from_args(queue.args),
                             rng=_rng(self.seed, f"aqm/{name}"), limit_packets=depth)
        elif queue is not None:
            if queue.function != "std.l4s.Fifo":
                self._unmodelled_warning(queue, "it is simulated as a tail-drop FIFO")
            buffer = queue.args.get("buffer")
            limit = buffer.ns * rate // (8 * _NS) if isinstance(buffer, I.Time) else None
            port = FifoPort(e, name, rate, prop, self.drops, limit_bytes=limit,
                            limit_packets=depth, record=True, discipline="fifo")
        elif isinstance(node, I.Switch):
            port = FifoPort(e, name, rate, prop, self.drops,
                            limit_packets=depth or BMV2_QUEUE_DEPTH, record=True,
                            discipline="switch")
        else:
            port = FifoPort(e, name, rate, prop, self.drops, limit_packets=NIC_QUEUE,
                            discipline="nic")
        if queue is not None:
            self.queue_ports[name] = queue.function
        self.ports[name] = port
        return port

    def _unmodelled_warning(self, fi: I.FunctionInstance, what: str) -> None:
        if fi.function in self._unmodelled:
            return
        self._unmodelled.add(fi.function)
        self.diags.append(warning("W1102", f"the simulator has no model of {fi.function}: "
                                  f"{what}", fi.span))

    def filter(self, fi: I.FunctionInstance, node: str) -> Filter | None:
        if fi.id not in self.filters:
            f = build_filter(fi, node)
            if f is None:
                return None
            if isinstance(f, PassThrough):
                self._unmodelled_warning(fi, "its packets pass unchanged, after its latency")
            self.filters[fi.id] = f
        return self.filters[fi.id]

    def latency(self, fi: I.FunctionInstance) -> int:
        a = self.placement.assignment(fi.id)
        opt = fi.option(a.target)
        return opt.latency.ns if opt is not None else 0

    # --------------------------------------------------------------- flows
    def path(self, flow: Flow, topo: I.Topology, visits: Sequence, classifier: Filter | None
             ) -> list[Any]:
        """Stages for the route's visits; ``classifier`` goes first at the first switch."""
        stages: list[Any] = []
        nodes = [v.node for v in visits]
        for i, v in enumerate(visits):
            if i > 0:
                if i == len(visits) - 1:
                    break  # the destination: the receiver is appended by the caller
                fis = [self.instances[x] for x in v.instances if x in self.instances]
                filters = [f for f in (self.filter(fi, v.node) for fi in fis) if f is not None]
                if classifier is not None and isinstance(topo.node(v.node), I.Switch):
                    filters.insert(0, classifier)
                    classifier = None
                    if not flow.matched:  # nothing passes: the rest of the path is unused
                        stages.append(NodeStage(v.node, filters, 0, self.drops))
                        return stages
                lat = sum(self.latency(fi) for fi in fis)
                if filters or lat:
                    stages.append(NodeStage(v.node, filters, lat, self.drops))
            queue = next((self.instances[x] for x in v.instances
                          if x in self.instances and self.instances[x].kind == "queue"), None)
            stages.append(self.port(topo, v.node, nodes[i + 1], queue))
        return stages


def _dport_candidates(match: I.Predicate, l4: str) -> list[int]:
    """Ports the ``match`` names for ``l4.dport`` (positive literals first), then common ones."""
    out: list[int] = []

    def add(v: Any) -> None:
        if isinstance(v, bool):
            return
        if isinstance(v, int):
            out.append(v)
        elif isinstance(v, ValueRange) and isinstance(v.lo, int):
            out.append(v.lo)
        elif isinstance(v, (ValueSet, tuple)):
            for x in v:
                add(x)

    for clause in to_dnf(match):
        for cmp, holds in clause:
            if holds and cmp.field.path == f"{l4}.dport" and cmp.op in ("==", "in", ">="):
                add(cmp.value)
    return [*dict.fromkeys(out), 80, 443, 5201]


def send_interval(spec: FlowSpec, size: int) -> int:
    """ns between an open-loop source's packets (as it paces them: at least 1 ns)."""
    if spec.rate_pps is not None:
        interval = _NS // spec.rate_pps.pps
    else:
        bps = spec.rate_bps.bps if spec.rate_bps is not None else \
            {"cbr": 1_000_000, "onoff": 2_000_000}.get(spec.kind, 0)
        # floods: 10 kpps unless told
        interval = size * 8 * _NS // bps if bps else _NS // 10_000
    return max(1, interval)


def packets_at_most(spec: FlowSpec, duration: int, fastest_bps: int) -> int:
    """How many packets ``spec`` can send in a run of ``duration`` ns at most: an open-loop
    source its paced rate, a TCP flow what its fastest possible access link (``fastest_bps``)
    carries, or its transfer."""
    stop = min(duration, spec.stop.ns) if spec.stop is not None else duration
    window = max(0, stop - spec.start.ns)
    size = _default_size(spec)
    if spec.is_tcp:
        packets = -(-window * fastest_bps // (size * 8 * _NS))
        if spec.transfer is not None:
            packets = min(packets, -(-spec.transfer.bytes // (size - IP_TCP_HEADER)) + 1)
    else:
        packets = -(-window // send_interval(spec, size))
    return spec.count * packets


def _default_size(spec: FlowSpec) -> int:
    if spec.size is not None:
        return spec.size.bytes
    return {"flood": 64, "syn": SYN_SIZE, "cbr": 1200, "onoff": 1200}.get(spec.kind, 1500)


def _default_ecn(spec: FlowSpec) -> int:
    if spec.kind == "prague":
        return ECT1
    return spec.ecn if spec.ecn is not None else 0


def build(program: I.Program, placement: Placement, specs: Sequence[FlowSpec], *,
          duration: int, seed: int, bin_ns: int, sources: dict[str, str] | None = None
          ) -> Network:
    """Bind the traffic to the program and build the network; raises CompileError."""
    b = _Builder(program, placement, seed, bin_ns, duration)
    if not program.services:
        raise CompileError([error("E1107", "the program has no service to simulate", None,
                                  "add a `service` whose chain carries the traffic")],
                           sources)
    pool: list[tuple[I.Service, str]] = []
    for svc in program.services:
        for src in svc.sources:
            if (svc, src) not in pool:
                pool.append((svc, src))
    endpoint = {e.name: (t, e) for t in program.topologies for e in t.endpoints}
    rr = {"legit": 0, "attack": 0}
    flows: list[Flow] = []
    errors: list[Diagnostic] = []
    for spec in specs:
        for _copy in range(spec.count):
            before = len(errors)
            flow = _bind(b, spec, pool, endpoint, rr, len(flows), errors)
            if len(errors) > before:
                break  # the same mistake for every copy: report it once
            if flow is not None:
                flows.append(flow)
    if errors:
        raise CompileError(errors, sources)
    return Network(program, placement, tuple(specs), duration, seed, bin_ns, b.engine, flows,
                   b.ports, b.queue_ports, b.filters, b.drops, b.diags)


def _bind(b: _Builder, spec: FlowSpec, pool, endpoint, rr, fid: int, errors: list
          ) -> Flow | None:
    program = b.program
    # --- which service and source
    services = {s.name: s for s in program.services}
    if spec.service is not None and spec.service not in services:
        near = difflib.get_close_matches(spec.service, services, 1)
        errors.append(error("E1105", f"no service named {spec.service!r}", spec.span,
                            f"did you mean {near[0]!r}?" if near else
                            f"services are {', '.join(services)}"))
        return None
    candidates = [(s, src) for s, src in pool
                  if spec.service is None or s.name == spec.service]
    if spec.source is not None:
        if spec.source not in endpoint:
            near = difflib.get_close_matches(spec.source, endpoint, 1)
            errors.append(error("E1105", f"no endpoint named {spec.source!r}", spec.span,
                                f"did you mean {near[0]!r}?" if near else
                                f"endpoints are {', '.join(endpoint)}"))
            return None
        candidates = [(s, src) for s, src in candidates if src == spec.source]
        if not candidates:
            errors.append(error("E1105", f"{spec.source} is not a source of "
                                f"{'service ' + spec.service if spec.service else 'any service'}",
                                spec.span, "a service carries the traffic of the endpoints its "
                                "`match` and topology route to its destination"))
            return None
    else:
        trusted = [(s, src) for s, src in candidates if endpoint[src][1].trusted]
        untrusted = [(s, src) for s, src in candidates if not endpoint[src][1].trusted]
        group = "attack" if spec.is_attack else "legit"
        mine = (untrusted if spec.is_attack else trusted) or candidates
        if not mine:
            errors.append(error("E1105", f"no service carries traffic for {spec.kind}",
                                spec.span))
            return None
        # distinct sources in turn: the first legit flow from the first trusted source, ...
        sources = list(dict.fromkeys(src for _, src in mine))
        src_name = sources[rr[group] % len(sources)]
        rr[group] += 1
        candidates = [(s, src) for s, src in mine if src == src_name]
    svc, src_name = candidates[0]
    topo, ep = endpoint[src_name]
    route = next((r for r in b.placement.routes_of(svc.name) if r.source == src_name), None)
    if route is None or len(route.visits) < 2:
        errors.append(error("E1105", f"the placement has no route for service {svc.name} from "
                            f"{src_name}", spec.span, "check the service's chain placement"))
        return None
    dst_ep = topo.node(svc.destination)
    assert isinstance(dst_ep, I.Endpoint)
    # --- header fields
    proto = 6 if spec.is_tcp or spec.kind == "syn" or (spec.kind == "flood"
                                                        and spec.proto != "udp") else 17
    l4 = "tcp" if proto == 6 else "udp"
    ecn = _default_ecn(spec)
    klass = "L" if ecn & 1 else "C"
    start = spec.start.ns
    stop = min(b.duration, spec.stop.ns) if spec.stop is not None else b.duration
    name = f"{spec.kind}#{fid + 1}"
    spoof = spec.spoof
    if spoof is None and spec.is_attack:
        spoof = IPv4Network(f"{ep.ip}/24", strict=False)  # a subnet's worth of bots
    flow = Flow(fid, name, spec, src_name, svc.name, klass, int(ep.ip), int(dst_ep.ip), proto,
                10000 + fid, 0, start, stop)
    probe = Packet(flow, 0, 0, ecn, int(ep.ip), 0, spec.kind == "syn")
    if spec.dport is not None:
        flow.dport = spec.dport
    else:
        for port in _dport_candidates(svc.match, l4):
            flow.dport = port
            flow.fields[f"{l4}.dport"] = port
            if evaluate(svc.match, packet_fields(probe)):
                break
    flow.fields[f"{l4}.dport"] = flow.dport
    flow.matched = evaluate(svc.match, packet_fields(probe))
    classifier: Filter | None = None
    if not flow.matched:
        b.diags.append(warning(
            "W1101", f"{name} ({spec.kind} from {src_name}, {l4} port {flow.dport}) matches no "
            f"service: its packets are dropped at the first switch", spec.span,
            f"service {svc.name} matches `{svc.match}`"))
        classifier = Classifier(route.visits[1].node, None, svc.name)
    elif spoof is not None and any(f.path == "ipv4.src" for f in fields_of(svc.match)):
        classifier = Classifier(route.visits[1].node, svc.match, svc.name)
    # --- path and endpoints
    flow.path = b.path(flow, topo, route.visits, classifier)
    back = shortest_path(topo, svc.destination, src_name) or \
        tuple(reversed([v.node for v in route.visits]))
    ack_delay = 0
    for x, y in itertools.pairwise(back):
        lk = _link(topo, x, y)
        ack_delay += lk.delay.ns + (ACK_SIZE * 8 * _NS + lk.bandwidth.bps - 1) // lk.bandwidth.bps
    size = _default_size(spec)
    e = b.engine
    if spec.is_tcp:
        limit = None
        if spec.transfer is not None:
            payload = size - IP_TCP_HEADER
            limit = -(-spec.transfer.bytes // payload)
        pacing = spec.pacing if spec.pacing is not None else spec.kind == "prague"
        flow.sender = TcpSender(e, flow, spec.kind, ecn=ecn, pacing=pacing, size=size,
                                limit=limit, stop=stop)
        flow.receiver = TcpReceiver(e, flow, flow.sender, ack_delay, b.bin_ns, b.duration)
        if stop < b.duration:
            e.at(stop, flow.sender.stop)
    else:
        interval = send_interval(spec, size)
        span = None
        if spoof is not None:
            span = (int(spoof.network_address), spoof.num_addresses)
        flow.sender = OpenLoopSource(
            e, flow, size=size, interval=interval, ecn=ecn, burst=spec.burst or 1,
            rng=_rng(b.seed, f"flow/{fid}"),
            on=(spec.on.ns if spec.on else _NS) if spec.kind == "onoff" else None,
            off=(spec.off.ns if spec.off else _NS) if spec.kind == "onoff" else None,
            spoof=span, syn=spec.kind == "syn", stop=stop)
        flow.receiver = DatagramSink(b.bin_ns, IP_TCP_HEADER if proto == 6 else IP_UDP_HEADER,
                                     b.duration)
    if not isinstance(flow.path[-1], NodeStage):  # else the classifier drops everything
        flow.path.append(flow.receiver)
    if start < b.duration:
        e.at(start, flow.sender.start)
    return flow
