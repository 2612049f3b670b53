"""ETSI OSM descriptors (SOL006): a VNFD per VNF, a PNFD per switch, an NSD per service.

Written against the ``etsi-nfv-descriptors`` YANG module of ETSI NFV-SOL006 (revision
2019-04-25), in the form OSM's information model (``osm/IM``) reads it: VNFD files are
``vnfd: {...}``, NSD files ``nsd: {nsd: [...]}``, and the forwarding path uses OSM's
``constituent-profile-elements`` (order, ingress/egress CPD) and ``match-attributes``
(one protocol, address and port per rule) — the latter come from the service's ``match``
through :mod:`.classifier`. The P4 switch the chain is entered from appears as a PNF: a
PNFD with one external CPD per switch port, a ``pnf-profile`` in the NSD's deployment
flavour, and the classifier's anchor (``constituent-base-element-id``) in the match rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ...ir import _ir as I
from ._templates import render
from .classifier import FlowRule, classify
from .heat import HostStack, cloud_config, destinations
from .model import Segment
from .vnfconfig import VnfConfig

__all__ = ["MatchAttributes", "render_vnfd", "render_pnfd", "render_nsd", "pnfd_id",
           "vnfd_path", "pnfd_path", "nsd_path", "MAX_PORTS_PER_RULE"]

# A port range in a match rule becomes one rule per port, up to this many ports; a wider
# range is left out (the rule then over-approximates, which the VNF ruleset corrects).
MAX_PORTS_PER_RULE = 16


@dataclass(frozen=True, slots=True)
class MatchAttributes:
    id: str
    ip_proto: int | None
    source_ip: str | None
    destination_ip: str | None
    source_port: int | None
    destination_port: int | None


def vnfd_path(host: str, vnf_name: str) -> str:
    return f"{host}/vnfd-{vnf_name}.yaml"


def pnfd_path(host: str, switch: str) -> str:
    return f"{host}/pnfd-{switch}.yaml"


def nsd_path(host: str, service: str) -> str:
    return f"{host}/nsd-{service}.yaml"


def pnfd_id(topology: I.Topology, switch: str) -> str:
    return f"mosaico-{topology.name}-{switch}"


def _gb(size_bytes: int) -> str:
    """SOL006 sizes are decimal64 gigabytes (OSM: GB = 2^30 bytes)."""
    f = Fraction(size_bytes, 2**30)
    text = f"{float(f):.6f}".rstrip("0").rstrip(".")
    return text if Fraction(text) == f else f"{float(f):.9f}"


def render_vnfd(stack: HostStack, cfg: VnfConfig, tc_script: str | None) -> str:
    hv = next(v for v in stack.vnfs if v.vnf == cfg.vnf)
    svc = next(s for s in stack.host.services if s.name == cfg.vnf.service)
    user_data = cloud_config(cfg, tc_script, hv.data_ip, hv.transit.prefixlen,
                             hv.transit.uplink_ip, destinations(stack.host.topology, svc), "")
    cost = cfg.vnf.cost
    return render("osm/vnfd.yaml.j2", v=hv, vnf=cfg.vnf, cost=cost,
                  ram_gb=_gb(cost.ram.bytes), user_data=user_data)


def render_pnfd(topology: I.Topology, switch: I.Switch) -> str:
    numbered = sorted({lk.end(switch.name).port for lk in topology.links_of(switch.name)
                       if lk.end(switch.name).port is not None})
    ports = [f"port{p}" for p in numbered]
    if any(lk.end(switch.name).port is None for lk in topology.links_of(switch.name)):
        ports.append("port")
    return render("osm/pnfd.yaml.j2", id=pnfd_id(topology, switch.name), switch=switch,
                  ports=ports)


def match_attributes(rules: tuple[FlowRule, ...], prefix: str) -> tuple[MatchAttributes, ...]:
    out: list[MatchAttributes] = []
    for r in rules:
        sports = _ports(r.source_ports)
        dports = _ports(r.destination_ports)
        for sp in sports:
            for dp in dports:
                out.append(MatchAttributes(
                    f"{prefix}{len(out)}", r.protocol,
                    _addr(r.source), _addr(r.destination), sp, dp))
    return tuple(out)


def _ports(rng: tuple[int, int] | None) -> list[int | None]:
    if rng is None or rng[1] - rng[0] + 1 > MAX_PORTS_PER_RULE:
        return [None]
    return list(range(max(rng[0], 1), rng[1] + 1)) or [None]


def _addr(prefix: str | None) -> str | None:
    if prefix is None:
        return None
    return prefix[:-3] if prefix.endswith("/32") else prefix


def render_nsd(stack: HostStack, service: I.Service) -> str:
    host = stack.host
    topo = host.topology
    segments = [s for s in host.segments if s.service == service.name]
    vnfs = [v for v in stack.vnfs if v.vnf.service == service.name]
    switches = sorted({s.entry for s in segments if isinstance(topo.node(s.entry), I.Switch)}
                      | {v.transit.switch for v in vnfs})
    cls = classify(service.match)
    paths = [_path(seg, stack, cls.rules) for seg in segments]
    return render("osm/nsd.yaml.j2", host=host, service=service, vnfs=vnfs,
                  switches=[(sw, pnfd_id(topo, sw), stack.transit_of(sw)) for sw in switches],
                  paths=paths, exact=cls.exact,
                  nsd_id=f"mosaico-{topo.name}-{service.name}-{host.name}")


@dataclass(frozen=True, slots=True)
class _Path:
    segment: Segment
    ident: str
    entry_cpd: str
    matches: tuple[MatchAttributes, ...]


def _path(seg: Segment, stack: HostStack, rules: tuple[FlowRule, ...]) -> _Path:
    transit = stack.transit_of(seg.entry)
    port = transit.port if transit is not None else None
    cpd = f"port{port}" if port is not None else "port"
    ident = f"{seg.service}-{seg.entry}-{seg.vnfs[0].instance.index}"
    return _Path(seg, ident, cpd, match_attributes(rules, f"{ident}-rule"))
