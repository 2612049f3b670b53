"""Where every function instance runs and which way each service's traffic goes.

A :class:`Placement` is the placement pass's output and what the backends, the simulator
and the runtime read: an :class:`Assignment` per function instance (node and target) and,
per service and source, the :class:`Route` its packets take — nodes in order, detours to VNF
hosts included (``s1 → nfvi1 → s1``), each visit listing the instances that run there.

:func:`first_fit` is the simple baseline: P4-capable functions on the first switch every
source's path shares, queues on the egress switch, the rest on the nearest host.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import _ir as I
from ..ir.graph import shortest_path

__all__ = ["Assignment", "Visit", "Route", "Placement", "first_fit", "PlacementError"]


@dataclass(frozen=True, slots=True)
class Assignment:
    instance: str  # FunctionInstance.id
    node: str
    target: str  # "p4.v1model" | "linux"


@dataclass(frozen=True, slots=True)
class Visit:
    node: str
    instances: tuple[str, ...] = ()  # run here, in chain order


@dataclass(frozen=True, slots=True)
class Route:
    service: str
    source: str
    visits: tuple[Visit, ...]

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(v.node for v in self.visits)


@dataclass(frozen=True, slots=True)
class Placement:
    assignments: tuple[Assignment, ...]
    routes: tuple[Route, ...]

    def assignment(self, instance_id: str) -> Assignment:
        for a in self.assignments:
            if a.instance == instance_id:
                return a
        raise KeyError(instance_id)

    def on_node(self, node: str) -> tuple[Assignment, ...]:
        return tuple(a for a in self.assignments if a.node == node)

    def routes_of(self, service: str) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.service == service)

    def nodes_used(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.node for a in self.assignments))

    def to_json(self) -> dict:
        return {
            "assignments": [{"instance": a.instance, "node": a.node, "target": a.target}
                            for a in self.assignments],
            "routes": [{"service": r.service, "source": r.source,
                        "visits": [{"node": v.node, "instances": list(v.instances)}
                                   for v in r.visits]} for r in self.routes],
        }


class PlacementError(Exception):
    """No placement exists; ``diagnostics`` say why in user terms."""

    def __init__(self, diagnostics) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics))


def _target_for(fi: I.FunctionInstance, node: I.NodeIR) -> str | None:
    if isinstance(node, I.Switch):
        want = node.p4_target
        return want if fi.option(want) is not None and fi.place != "vnf" else None
    if isinstance(node, I.Host):
        return "linux" if fi.option("linux") is not None and fi.place != "p4" else None
    return None


def first_fit(program: I.Program) -> Placement:
    """The baseline placement (no capacities or budgets considered: the optimiser's job)."""
    assignments: list[Assignment] = []
    routes: list[Route] = []
    for svc in program.services:
        topo = program.topology(svc.topology)
        paths = {src: shortest_path(topo, src, svc.destination) for src in svc.sources}
        paths = {s: p for s, p in paths.items() if p is not None}
        if not paths:
            continue
        common = [n for n in next(iter(paths.values()))
                  if all(n in p for p in paths.values())
                  and isinstance(topo.node(n), I.Switch)]
        first_switch = common[0] if common else None
        egress = common[-1] if common else None
        chosen: dict[str, tuple[str, str]] = {}
        for fi in svc.chain:
            node_name = fi.pin
            if node_name is None:
                candidates = [egress] if fi.kind == "queue" else [first_switch]
                candidates = [c for c in candidates if c is not None]
                if not any(_target_for(fi, topo.node(c)) for c in candidates):
                    candidates = [h.name for h in sorted(
                        topo.hosts, key=lambda h: _distance(topo, first_switch, h.name))
                        if not (svc.requirements.secure and fi.kind == "filter"
                                and not h.trusted)]
                node_name = next((c for c in candidates if _target_for(fi, topo.node(c))),
                                 None)
            if node_name is None:
                continue
            target = _target_for(fi, topo.node(node_name))
            if target is None:
                continue
            chosen[fi.id] = (node_name, target)
            assignments.append(Assignment(fi.id, node_name, target))
        for src, path in paths.items():
            routes.append(Route(svc.name, src, _visits(topo, path, svc.chain, chosen)))
    return Placement(tuple(assignments), tuple(routes))


def _distance(topo: I.Topology, a: str | None, b: str) -> int:
    if a is None:
        return 0
    p = shortest_path(topo, a, b)
    return len(p) if p else 1 << 30


def _visits(topo: I.Topology, path: tuple[str, ...], chain, chosen) -> tuple[Visit, ...]:
    """Walk the path; leave it for a host (and come back) when the next function is there."""
    visits: list[Visit] = []
    pending = [fi for fi in chain if fi.id in chosen]
    for i, node in enumerate(path):
        here: list[str] = []
        while pending and chosen[pending[0].id][0] == node:
            here.append(pending.pop(0).id)
        visits.append(Visit(node, tuple(here)))
        # Detour to hosts for the functions that run there, then return to this node.
        while pending and isinstance(topo.node(node), I.Switch) and \
                chosen[pending[0].id][0] not in path[i:]:
            host = chosen[pending[0].id][0]
            detour = shortest_path(topo, node, host) or (node, host)
            for hop in detour[1:-1]:
                visits.append(Visit(hop))
            ran: list[str] = []
            while pending and chosen[pending[0].id][0] == host:
                ran.append(pending.pop(0).id)
            visits.append(Visit(host, tuple(ran)))
            for hop in reversed(detour[1:-1]):
                visits.append(Visit(hop))
            more: list[str] = []
            while pending and chosen[pending[0].id][0] == node:
                more.append(pending.pop(0).id)
            visits.append(Visit(node, tuple(more)))
    return tuple(visits)
