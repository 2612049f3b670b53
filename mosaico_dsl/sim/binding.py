"""Which packets a traffic specification sends: each flow bound to a service, a source
endpoint, addresses, ports, codepoint, size and active interval.

The simulator (:mod:`.network`) and the live experiment (:mod:`mosaico_dsl.experiment`)
both start from these bindings, so ``prague:1,cubic:1`` means the same flows to both.
Without ``from=``, flows take the services' sources in turn — legitimate kinds the trusted
endpoints, attacks the untrusted ones; the destination port is the first one the service's
``match`` accepts.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ..diagnostics import CompileError, Diagnostic, error, warning
from ..ir import _ir as I
from ..ir.predicate import evaluate, fields_of, to_dnf
from ..ir.values import ValueRange, ValueSet
from ..place import Placement
from ..place.placement import Route
from .packet import ECT1, IP_TCP_HEADER, SYN_SIZE
from .traffic import FlowSpec

__all__ = ["FlowBinding", "bind_traffic", "header_fields", "packet_header", "packets_at_most",
           "send_interval", "DEFAULT_FLOOD_PPS"]

DEFAULT_FLOOD_PPS = 10_000  # floods without a rate
_NS = 1_000_000_000
_SPORT_BASE = 10000


def header_fields(proto: int, dst: int, sport: int, dport: int) -> dict[str, Any]:
    """The header fields that stay fixed within a flow, as predicates name them."""
    l4 = "tcp" if proto == 6 else "udp"
    return {"ipv4.dst": IPv4Address(dst), "ipv4.proto": proto, "ipv4.dscp": 0,
            "ipv4.ttl": 64, f"{l4}.sport": sport, f"{l4}.dport": dport}


def packet_header(fields: Mapping[str, Any], proto: int, src: int, ecn: int, syn: bool
                  ) -> dict[str, Any]:
    """``fields`` plus what varies per packet: source address, ECN, TCP flags."""
    out = dict(fields)
    out["ipv4.src"] = IPv4Address(src)
    out["ipv4.ecn"] = ecn
    if proto == 6:
        out["tcp.flags"] = 0x02 if syn else 0x10
    return out


@dataclass(frozen=True, slots=True)
class FlowBinding:
    """One flow of the specification, bound to the placed program (``count`` copies of a
    group are separate bindings)."""

    index: int
    name: str  # kind#N, N counting every flow from 1
    spec: FlowSpec
    topology: str
    source: str  # the sending endpoint
    service: str
    destination: str  # the service's destination endpoint
    route: Route
    klass: str  # "L" (ECT(1) at the sender) or "C"
    src_ip: IPv4Address
    dst_ip: IPv4Address
    proto: int  # 6 or 17
    sport: int
    dport: int
    ecn: int  # codepoint the sender sets
    size: int  # bytes on the wire per packet
    start_ns: int
    stop_ns: int
    matched: bool  # the service's match accepts the flow's packets
    spoof: IPv4Network | None = None  # attacks: source addresses drawn from this prefix
    classify_per_packet: bool = False  # the match reads ipv4.src and sources are spoofed
    interval_ns: int | None = None  # open-loop kinds: time between packets
    pacing: bool = False  # TCP kinds
    limit: int | None = None  # TCP kinds: segments to send (None: as many as it can)

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def is_tcp(self) -> bool:
        return self.spec.is_tcp

    @property
    def is_attack(self) -> bool:
        return self.spec.is_attack

    @property
    def fields(self) -> dict[str, Any]:
        return header_fields(self.proto, int(self.dst_ip), self.sport, self.dport)


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


def _default_size(spec: FlowSpec) -> int:
    if spec.size is not None:
        return spec.size.bytes
    return {"flood": 64, "syn": SYN_SIZE, "cbr": 1200, "onoff": 1200}.get(spec.kind, 1500)


def _default_ecn(spec: FlowSpec) -> int:
    if spec.kind == "prague":
        return ECT1
    return spec.ecn if spec.ecn is not None else 0


def send_interval(spec: FlowSpec, size: int) -> int:
    """ns between an open-loop source's packets (as it paces them: at least 1 ns)."""
    if spec.rate_pps is not None:
        interval = _NS // spec.rate_pps.pps
    else:
        bps = spec.rate_bps.bps if spec.rate_bps is not None else \
            {"cbr": 1_000_000, "onoff": 2_000_000}.get(spec.kind, 0)
        interval = size * 8 * _NS // bps if bps else _NS // DEFAULT_FLOOD_PPS
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


def bind_traffic(program: I.Program, placement: Placement, specs: Sequence[FlowSpec], *,
                 duration_ns: int, sources: dict[str, str] | None = None
                 ) -> tuple[tuple[FlowBinding, ...], tuple[Diagnostic, ...]]:
    """Bind every flow; returns the bindings and warnings (W1101: a flow no service
    matches). Mistakes (unknown endpoint or service, no route) raise :class:`CompileError`,
    all of them at once."""
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
    flows: list[FlowBinding] = []
    errors: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    for spec in specs:
        for _copy in range(spec.count):
            before = len(errors)
            flow = _bind(program, placement, duration_ns, spec, pool, endpoint, rr, len(flows),
                         errors, warnings)
            if len(errors) > before:
                break  # the same mistake for every copy: report it once
            if flow is not None:
                flows.append(flow)
    if errors:
        raise CompileError(errors, sources)
    return tuple(flows), tuple(warnings)


def _source(program: I.Program, spec: FlowSpec, pool, endpoint, rr, errors: list
            ) -> tuple[I.Service, str] | None:
    """Which service and which source endpoint carry the flow."""
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
        return candidates[0]
    trusted = [(s, src) for s, src in candidates if endpoint[src][1].trusted]
    untrusted = [(s, src) for s, src in candidates if not endpoint[src][1].trusted]
    group = "attack" if spec.is_attack else "legit"
    mine = (untrusted if spec.is_attack else trusted) or candidates
    if not mine:
        errors.append(error("E1105", f"no service carries traffic for {spec.kind}", spec.span))
        return None
    # distinct sources in turn: the first legit flow from the first trusted source, ...
    names = list(dict.fromkeys(src for _, src in mine))
    src_name = names[rr[group] % len(names)]
    rr[group] += 1
    return next((s, src) for s, src in mine if src == src_name)


def _bind(program: I.Program, placement: Placement, duration: int, spec: FlowSpec, pool,
          endpoint, rr, fid: int, errors: list, warnings: list) -> FlowBinding | None:
    chosen = _source(program, spec, pool, endpoint, rr, errors)
    if chosen is None:
        return None
    svc, src_name = chosen
    topo, ep = endpoint[src_name]
    route = next((r for r in placement.routes_of(svc.name) if r.source == src_name), None)
    if route is None or len(route.visits) < 2:
        errors.append(error("E1105", f"the placement has no route for service {svc.name} from "
                            f"{src_name}", spec.span, "check the service's chain placement"))
        return None
    dst_ep = topo.node(svc.destination)
    assert isinstance(dst_ep, I.Endpoint)
    proto = 6 if spec.is_tcp or spec.kind == "syn" or (spec.kind == "flood"
                                                        and spec.proto != "udp") else 17
    l4 = "tcp" if proto == 6 else "udp"
    ecn = _default_ecn(spec)
    stop = min(duration, spec.stop.ns) if spec.stop is not None else duration
    name = f"{spec.kind}#{fid + 1}"
    spoof = spec.spoof
    if spoof is None and spec.is_attack:
        spoof = IPv4Network(f"{ep.ip}/24", strict=False)  # a subnet's worth of bots
    sport = _SPORT_BASE + fid

    def matches(dport: int) -> bool:
        fields = header_fields(proto, int(dst_ep.ip), sport, dport)
        return bool(evaluate(svc.match, packet_header(fields, proto, int(ep.ip), ecn,
                                                      spec.kind == "syn")))

    if spec.dport is not None:
        dport = spec.dport
    else:
        dport = 0
        for port in _dport_candidates(svc.match, l4):
            dport = port
            if matches(port):
                break
    matched = matches(dport)
    if not matched:
        warnings.append(warning(
            "W1101", f"{name} ({spec.kind} from {src_name}, {l4} port {dport}) matches no "
            f"service: its packets are dropped at the first switch", spec.span,
            f"service {svc.name} matches `{svc.match}`"))
    size = _default_size(spec)
    limit = None
    if spec.is_tcp and spec.transfer is not None:
        limit = -(-spec.transfer.bytes // (size - IP_TCP_HEADER))
    return FlowBinding(
        index=fid, name=name, spec=spec, topology=topo.name, source=src_name, service=svc.name,
        destination=svc.destination, route=route, klass="L" if ecn & 1 else "C",
        src_ip=IPv4Address(ep.ip), dst_ip=IPv4Address(dst_ep.ip), proto=proto, sport=sport,
        dport=dport, ecn=ecn, size=size, start_ns=spec.start.ns, stop_ns=stop, matched=matched,
        spoof=spoof,
        classify_per_packet=matched and spoof is not None and any(
            f.path == "ipv4.src" for f in fields_of(svc.match)),
        interval_ns=None if spec.is_tcp else send_interval(spec, size),
        pacing=(spec.pacing if spec.pacing is not None else spec.kind == "prague")
        if spec.is_tcp else False,
        limit=limit)
