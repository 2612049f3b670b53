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
are the service's *replies* (``reply forward``): they return along the reply path — the
route reversed, detours cut (``Route.reply_nodes``) — with its propagation and
serialisation delays, unqueued and through no function. A service with ``reply drop``
returns none, so a TCP flow there never completes its handshake (:class:`UnansweredConnect`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from ..aqm.dualq import DualQConstants
from ..diagnostics import Diagnostic, warning
from ..ir import _ir as I
from ..place import Placement
from .binding import FlowBinding, bind_traffic, header_fields
from .engine import Engine
from .filters import Classifier, Filter, PassThrough, build_filter
from .packet import ACK_SIZE, IP_TCP_HEADER, IP_UDP_HEADER, SYN_SIZE, Packet
from .ports import DualQPort, FifoPort, Port
from .sources import DatagramSink, OpenLoopSource
from .tcp import TcpReceiver, TcpSender, UnansweredConnect
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
        self.fields = header_fields(proto, dst, sport, dport)
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


def build(program: I.Program, placement: Placement, specs: Sequence[FlowSpec], *,
          duration: int, seed: int, bin_ns: int, sources: dict[str, str] | None = None
          ) -> Network:
    """Bind the traffic to the program and build the network; raises CompileError."""
    bindings, warnings = bind_traffic(program, placement, specs, duration_ns=duration,
                                      sources=sources)
    b = _Builder(program, placement, seed, bin_ns, duration)
    topologies = {t.name: t for t in program.topologies}
    unmatched = iter(warnings)  # one W1101 per flow no service matches, in flow order
    flows = []
    for fb in bindings:
        if not fb.matched:
            b.diags.append(next(unmatched))
        flows.append(_flow(b, fb, topologies[fb.topology]))
    return Network(program, placement, tuple(specs), duration, seed, bin_ns, b.engine, flows,
                   b.ports, b.queue_ports, b.filters, b.drops, b.diags)


def _flow(b: _Builder, fb: FlowBinding, topo: I.Topology) -> Flow:
    """The simulated flow of a binding: its path through ports and filters, its sender and
    its receiver."""
    flow = Flow(fb.index, fb.name, fb.spec, fb.source, fb.service, fb.klass, int(fb.src_ip),
                int(fb.dst_ip), fb.proto, fb.sport, fb.dport, fb.start_ns, fb.stop_ns)
    flow.matched = fb.matched
    classifier: Filter | None = None
    first_switch = fb.route.visits[1].node
    svc = next(s for s in b.program.services if s.name == fb.service)
    if not fb.matched:
        classifier = Classifier(first_switch, None, fb.service)
    elif fb.classify_per_packet:
        classifier = Classifier(first_switch, svc.match, fb.service)
    flow.path = b.path(flow, topo, fb.route.visits, classifier)
    ack_delay = 0
    for x, y in itertools.pairwise(fb.route.reply_nodes):
        lk = _link(topo, x, y)
        ack_delay += lk.delay.ns + (ACK_SIZE * 8 * _NS + lk.bandwidth.bps - 1) // lk.bandwidth.bps
    e = b.engine
    if fb.is_tcp and not svc.replies:
        b.diags.append(warning(
            "W1103", f"{fb.name} ({fb.kind} from {fb.source}) is TCP, but service "
            f"{fb.service} drops its replies (`reply drop`): the handshake never completes, "
            "only SYNs are sent", fb.spec.span, f"remove `reply drop` from service "
            f"{fb.service}, or simulate open-loop traffic (cbr, onoff) on it"))
        flow.sender = UnansweredConnect(e, flow, ecn=fb.ecn, stop=fb.stop_ns)
        flow.receiver = DatagramSink(b.bin_ns, SYN_SIZE, b.duration)
    elif fb.is_tcp:
        flow.sender = TcpSender(e, flow, fb.kind, ecn=fb.ecn, pacing=fb.pacing, size=fb.size,
                                limit=fb.limit, stop=fb.stop_ns)
        flow.receiver = TcpReceiver(e, flow, flow.sender, ack_delay, b.bin_ns, b.duration)
        if fb.stop_ns < b.duration:
            e.at(fb.stop_ns, flow.sender.stop)
    else:
        spec = fb.spec
        span = None
        if fb.spoof is not None:
            span = (int(fb.spoof.network_address), fb.spoof.num_addresses)
        flow.sender = OpenLoopSource(
            e, flow, size=fb.size, interval=fb.interval_ns or 1, ecn=fb.ecn,
            burst=spec.burst or 1, rng=_rng(b.seed, f"flow/{fb.index}"),
            on=(spec.on.ns if spec.on else _NS) if fb.kind == "onoff" else None,
            off=(spec.off.ns if spec.off else _NS) if fb.kind == "onoff" else None,
            spoof=span, syn=fb.kind == "syn", stop=fb.stop_ns)
        flow.receiver = DatagramSink(b.bin_ns, IP_TCP_HEADER if fb.proto == 6 else IP_UDP_HEADER,
                                     b.duration)
    if not isinstance(flow.path[-1], NodeStage):  # else the classifier drops everything
        flow.path.append(flow.receiver)
    if fb.start_ns < b.duration:
        e.at(fb.start_ns, flow.sender.start)
    return flow
