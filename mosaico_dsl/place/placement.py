"""Where every function instance runs and which way each service's traffic goes.

A :class:`Placement` is the placement pass's output and what the backends, the simulator
and the runtime read: an :class:`Assignment` per function instance (node and target) and,
per service and source, the :class:`Route` its packets take — nodes in order, detours to VNF
hosts included (``s1 → nfvi1 → s1``), each visit listing the instances that run there.

The optimiser (:func:`mosaico_dsl.place.place`) also records the :class:`Objective` the
placement achieves and how far its :class:`Search` got; the greedy baseline it is measured
against (:func:`mosaico_dsl.place.baseline.first_fit`) produces the same type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import _ir as I
from ..units import Time

__all__ = ["Assignment", "Visit", "Route", "Objective", "Level", "Search", "Placement",
           "PlacementError"]


@dataclass(frozen=True, slots=True)
class Assignment:
    instance: str  # FunctionInstance.id
    node: str
    target: str  # "p4.v1model" | "linux"
    latency: Time | None = None  # processing latency of the function on this target
    cost: I.P4Cost | I.VnfCost | None = None  # what it takes from the node


@dataclass(frozen=True, slots=True)
class Visit:
    node: str
    instances: tuple[str, ...] = ()  # run here, in chain order


@dataclass(frozen=True, slots=True)
class Route:
    service: str
    source: str
    visits: tuple[Visit, ...]
    latency: Time | None = None  # links + detours + processing + the queue's target

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(v.node for v in self.visits)

    @property
    def reply_nodes(self) -> tuple[str, ...]:
        """The way replies return, destination first: the route reversed with every loop
        cut out — a detour ``s1 → nfvi1 → s1`` exists to run functions, and a reply runs
        none, so it goes from ``s1`` straight on towards the source."""
        out: list[str] = []
        for node in reversed(self.nodes):
            if node in out:
                del out[out.index(node) + 1:]
            else:
                out.append(node)
        return tuple(out)


@dataclass(frozen=True, slots=True, order=True)
class Objective:
    """What the optimiser minimises, most important first (compared lexicographically).

    ``worst_usage_ppm`` is the largest latency / budget over every route of a service with
    a latency budget, in parts per million (rounded up); services without a budget count in
    ``worst_unbudgeted`` (their largest latency) instead. ``preference_misses`` counts
    ``prefer:`` options not honoured. Shared egress queues count once.
    """

    worst_usage_ppm: int
    worst_unbudgeted: Time
    preference_misses: int
    vcpus: int
    stages: int
    total_latency: Time  # summed over all routes: the final tie-break

    def to_json(self) -> dict:
        return {"worst_budget_usage_ppm": self.worst_usage_ppm,
                "worst_unbudgeted_latency_ns": self.worst_unbudgeted.ns,
                "preference_misses": self.preference_misses,
                "vcpus": self.vcpus, "stages": self.stages,
                "total_latency_ns": self.total_latency.ns}


@dataclass(frozen=True, slots=True)
class Level:
    """One level of the lexicographic objective: the value reached and the proven bound."""

    name: str
    value: int
    bound: int

    @property
    def optimal(self) -> bool:
        return self.value <= self.bound

    @property
    def gap(self) -> float:
        """Relative distance to the bound (0.0 when proven optimal)."""
        if self.optimal:
            return 0.0
        return (self.value - self.bound) / max(abs(self.value), 1)


@dataclass(frozen=True, slots=True)
class Search:
    """How the placement was found: the method and, per objective level, value and bound."""

    method: str  # "cp-sat" | "first-fit"
    levels: tuple[Level, ...] = ()
    # Large programs are solved in groups of services (see docs/placement.md): how many.
    groups: int = 1

    @property
    def optimal(self) -> bool:
        return self.method == "cp-sat" and all(lv.optimal for lv in self.levels)

    def to_json(self) -> dict:
        doc = {"method": self.method, "optimal": self.optimal,
               "levels": [{"name": lv.name, "value": lv.value, "bound": lv.bound}
                          for lv in self.levels]}
        if self.groups > 1:
            doc["groups"] = self.groups
        return doc


@dataclass(frozen=True, slots=True)
class Placement:
    assignments: tuple[Assignment, ...]
    routes: tuple[Route, ...]
    objective: Objective | None = None
    search: Search | None = None
    # Lookups by instance, service and node, built on first use: the backends ask once per
    # service and switch, which on thousands of them must not be a scan each.
    _index: _PlacementIndex | None = field(default=None, init=False, compare=False,
                                           repr=False, hash=False)

    def __repr__(self) -> str:
        nodes = len({a.node for a in self.assignments})
        how = "" if self.search is None else \
            f", {self.search.method}{' optimal' if self.search.optimal else ''}"
        return (f"<Placement: {len(self.assignments)} functions on {nodes} "
                f"node{'s' * (nodes != 1)}, {len(self.routes)} routes{how}>")

    def assignment(self, instance_id: str) -> Assignment:
        return self._lookup().by_instance[instance_id]

    def on_node(self, node: str) -> tuple[Assignment, ...]:
        return self._lookup().by_node.get(node, ())

    def routes_of(self, service: str) -> tuple[Route, ...]:
        return self._lookup().by_service.get(service, ())

    def _lookup(self) -> _PlacementIndex:
        if self._index is None:
            object.__setattr__(self, "_index", _PlacementIndex.of(self))
        return self._index

    def nodes_used(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.node for a in self.assignments))

    def to_json(self) -> dict:
        """The ``placement.json`` document (``mosaico place -o`` and ``mosaico compile``)."""
        doc: dict = {
            "assignments": [_assignment_json(a) for a in self.assignments],
            "routes": [_route_json(r) for r in self.routes],
        }
        if self.objective is not None:
            doc["objective"] = self.objective.to_json()
        if self.search is not None:
            doc["search"] = self.search.to_json()
        return doc


@dataclass(frozen=True, slots=True)
class _PlacementIndex:
    by_instance: dict[str, Assignment]  # the first assignment of each instance
    by_node: dict[str, tuple[Assignment, ...]]
    by_service: dict[str, tuple[Route, ...]]

    @staticmethod
    def of(p: Placement) -> _PlacementIndex:
        by_instance: dict[str, Assignment] = {}
        by_node: dict[str, list[Assignment]] = {}
        for a in p.assignments:
            by_instance.setdefault(a.instance, a)
            by_node.setdefault(a.node, []).append(a)
        by_service: dict[str, list[Route]] = {}
        for r in p.routes:
            by_service.setdefault(r.service, []).append(r)
        return _PlacementIndex(by_instance, {k: tuple(v) for k, v in by_node.items()},
                               {k: tuple(v) for k, v in by_service.items()})


def _assignment_json(a: Assignment) -> dict:
    out: dict = {"instance": a.instance, "node": a.node, "target": a.target}
    if a.latency is not None:
        out["latency_ns"] = a.latency.ns
    if isinstance(a.cost, I.P4Cost):
        out["resources"] = {"stages": a.cost.stages, "tables": a.cost.tables,
                            "table_entries": a.cost.entries, "registers": a.cost.registers,
                            "register_bits": a.cost.register_bits,
                            "counters": a.cost.counters, "meters": a.cost.meters}
    elif isinstance(a.cost, I.VnfCost):
        out["resources"] = {"vcpus": a.cost.vcpu, "ram_bytes": a.cost.ram.bytes}
    return out


def _route_json(r: Route) -> dict:
    out: dict = {"service": r.service, "source": r.source,
                 "visits": [{"node": v.node, "instances": list(v.instances)} for v in r.visits]}
    if r.latency is not None:
        out["latency_ns"] = r.latency.ns
    return out


class PlacementError(Exception):
    """No placement exists; ``diagnostics`` say why in user terms."""

    def __init__(self, diagnostics) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics))

