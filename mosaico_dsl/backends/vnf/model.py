"""Which VNFs run where: the VNF backends' view of a placed program.

A *VNF* is one function instance the placement put on a Linux target: one VM in OpenStack,
one VNFD in OSM, one namespace in the local target, one nftables ruleset. A *segment* is a
run of VNFs that one route visits back to back on one host, entered from one neighbour (the
switch that detours the traffic there): it becomes one networking-sfc port chain and one
OSM forwarding path. Everything here is read from :class:`~mosaico_dsl.place.Placement`
(assignments and routes), never recomputed, so any placement strategy works.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...ir import _ir as I
from ...place import Placement

__all__ = ["Vnf", "Segment", "VnfHost", "vnf_hosts", "instance_index", "LINUX"]

LINUX = "linux"


@dataclass(frozen=True, slots=True)
class Vnf:
    """One function instance running as a VNF on ``host``."""

    instance: I.FunctionInstance
    host: str

    @property
    def name(self) -> str:
        """``web_ll-0-blocklist``: service, chain position, function — unique per program."""
        fi = self.instance
        return f"{fi.service}-{fi.index}-{fi.name.lower()}"

    @property
    def ident(self) -> str:
        """The name as an identifier (nftables tables, Heat resources)."""
        return self.name.replace("-", "_")

    @property
    def service(self) -> str:
        return self.instance.service

    @property
    def cost(self) -> I.VnfCost:
        option = self.instance.option(LINUX)
        cost = option.cost if option is not None else None
        return cost if isinstance(cost, I.VnfCost) else I.VnfCost()


@dataclass(frozen=True, slots=True)
class Segment:
    """VNFs one route runs back to back on ``host``, entered from ``entry`` and left to
    ``exit`` (both the neighbouring node, usually the same switch)."""

    service: str
    host: str
    entry: str
    exit: str
    vnfs: tuple[Vnf, ...]
    sources: tuple[str, ...]

    @property
    def ident(self) -> str:
        first = self.vnfs[0].instance.index
        return f"{self.service}_{self.entry}_{first}"


@dataclass(frozen=True, slots=True)
class VnfHost:
    host: I.Host
    topology: I.Topology
    vnfs: tuple[Vnf, ...]
    segments: tuple[Segment, ...]
    services: tuple[I.Service, ...]

    @property
    def name(self) -> str:
        return self.host.name


def instance_index(program: I.Program) -> dict[str, I.FunctionInstance]:
    return {fi.id: fi for fi in program.instances()}


def vnf_hosts(program: I.Program, placement: Placement) -> tuple[VnfHost, ...]:
    """Every host that runs at least one VNF, in topology order (deterministic)."""
    index = instance_index(program)
    out: list[VnfHost] = []
    for topo in program.topologies:
        names = {s.name for s in program.services if s.topology == topo.name}
        for host in topo.hosts:
            vnfs = tuple(Vnf(index[a.instance], host.name) for a in placement.assignments
                         if a.node == host.name and a.target == LINUX and a.instance in index
                         and index[a.instance].service in names)
            if not vnfs:
                continue
            services = tuple(s for s in program.services
                             if any(v.service == s.name for v in vnfs))
            out.append(VnfHost(host, topo, vnfs, _segments(host.name, vnfs, placement),
                               services))
    return tuple(out)


def _segments(host: str, vnfs: tuple[Vnf, ...], placement: Placement) -> tuple[Segment, ...]:
    by_id = {v.instance.id: v for v in vnfs}
    found: dict[tuple, list[str]] = {}
    for route in placement.routes:
        visits = route.visits
        for i, visit in enumerate(visits):
            if visit.node != host or not visit.instances:
                continue
            entry = visits[i - 1].node if i > 0 else host
            exit_ = visits[i + 1].node if i + 1 < len(visits) else host
            key = (route.service, entry, exit_, visit.instances)
            found.setdefault(key, []).append(route.source)
    segments = []
    for (service, entry, exit_, instances), sources in found.items():
        chain = tuple(by_id[i] for i in instances if i in by_id)
        if chain:
            segments.append(Segment(service, host, entry, exit_, chain,
                                    tuple(dict.fromkeys(sources))))
    return tuple(segments)
