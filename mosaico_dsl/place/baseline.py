"""The greedy first-fit baseline the optimiser is measured against.

Services in program order, each chain step on the first location along every route that
still has room: the earliest position on the path, then the shortest detour (so a switch
on the path before a host beside it), then declaration order. It honours every hard rule
the optimiser does — pins, ``place:``, trusted nodes for ``require secure``, queues on the
egress, priority queues, shared egress queues, bandwidth, capacities summed over services —
but never looks at latency budgets, and never revisits a choice.
"""

from __future__ import annotations

from ..diagnostics import error
from ..ir import _ir as I
from . import resources as R
from ._problem import Choice, Kind, Location, ServiceSpace, build
from ._walk import visits
from .objective import complete
from .placement import Assignment, Placement, PlacementError, Route, Search

__all__ = ["first_fit"]

# Latency is what the baseline ignores; capacity it tracks itself, greedily.
_HARD = frozenset(Kind) - {Kind.LATENCY, Kind.CAPACITY}


def first_fit(program: I.Program) -> Placement:
    """The greedy baseline placement (raises :class:`PlacementError` when it gets stuck)."""
    problem = build(program, prune=_HARD)
    state = _State(problem)
    # Queues (and the steps that must follow them on their node) are the most constrained:
    # place every service's first, so that heads do not crowd the egress switches.
    tails = {space.name: state.place(space, _tail(space), {}) for space in problem.services}
    assignments: list[Assignment] = []
    routes: list[Route] = []
    for space in problem.services:
        tail = tails[space.name]
        ceiling = {r.key: min((locs[r.key].position for _, locs in tail.values()),
                              default=len(r.path)) for r in space.routes}
        head = [fi for fi in space.service.chain if fi.id not in tail]
        stops = {**state.place(space, head, ceiling), **tail}
        for fi in space.service.chain:
            choice = stops[fi.id][0]
            assignments.append(Assignment(fi.id, choice.node, choice.target))
        for r in space.routes:
            walk = [(fi.id, stops[fi.id][1][r.key]) for fi in space.service.chain]
            routes.append(Route(space.name, r.source, visits(r.path, walk)))
    return complete(program, Placement(tuple(assignments), tuple(routes)),
                    Search("first-fit"))


def _tail(space: ServiceSpace) -> list[I.FunctionInstance]:
    queue = space.service.queueing
    return list(space.service.chain[queue.index:]) if queue is not None else []


class _State:
    """Capacity used so far and where shared egress queues run."""

    def __init__(self, problem) -> None:
        self.problem = problem
        self.used: dict[tuple[str, str], dict[str, int]] = {}
        self.queues: dict[tuple[str, str], tuple[str, str]] = {}

    def _sharing(self, space: ServiceSpace, key, shared: bool) -> list[ServiceSpace]:
        """The services whose queue tails a queue placed now must make room for."""
        if shared:
            return [space]
        return [sp for sp in self.problem.services if sp.service.queueing is not None
                and R.shared_queue_key(sp.service, sp.service.queueing) == key]

    def place(self, space: ServiceSpace, steps: list[I.FunctionInstance],
              ceiling: dict[tuple[str, str], int]
              ) -> dict[str, tuple[Choice, dict[tuple[str, str], Location]]]:
        """Place ``steps`` in order, each at or after the previous one and at or before
        ``ceiling`` (per route) — the first location that fits."""
        svc = space.service
        topo = svc.topology
        position = {r.key: 0 for r in space.routes}
        placed: dict[str, tuple[Choice, dict[tuple[str, str], Location]]] = {}
        after_queue: tuple[Choice, dict] | None = None
        order = {n: k for k, n in enumerate(n.name for n in (*space.topology.switches,
                                                             *space.topology.hosts))}
        for fi in steps:
            key = R.shared_queue_key(svc, fi)
            shared = key is not None and key in self.queues
            best = None
            for c in space.choices[fi.id]:
                if after_queue is not None and c.node != after_queue[0].node:
                    continue
                if shared and self.queues[key] != (c.node, c.target):
                    continue
                locs = {}
                for r in space.routes:
                    top = ceiling.get(r.key, len(r.path))
                    fits = [loc for loc in r.locations[fi.id] if loc.node == c.node
                            and position[r.key] <= loc.position <= top
                            and (after_queue is None or loc.key == after_queue[1][r.key].key)]
                    if not fits:
                        break
                    locs[r.key] = min(fits, key=lambda loc: (loc.position, loc.delay))
                else:
                    # A queue takes the rest of its chain along to its node, and a shared
                    # egress queue every sharing service's rest: all must fit there.
                    rest = [] if fi.kind != "queue" else \
                        [next((o for o in sp.choices[later.id] if o.node == c.node), None)
                         for sp in self._sharing(space, key, shared)
                         for later in sp.service.chain[sp.service.queueing.index + 1:]]
                    if None in rest or not _fits(self.problem, topo, c, rest, self.used,
                                                 shared=shared):
                        continue
                    rank = (max(loc.position for loc in locs.values()),
                            sum(loc.delay for loc in locs.values()), order[c.node])
                    if best is None or rank < best[0]:
                        best = (rank, c, locs)
            if best is None:
                raise PlacementError([error(
                    "E0810", f"first fit: no node left for {fi.name} of `{svc.name}`",
                    fi.span, "the greedy baseline never revisits a choice; "
                    "`mosaico place` optimises")])
            _, choice, locs = best
            if not shared:
                slot = self.used.setdefault((topo, choice.node), {})
                for res, amount in R.demand(choice.option).items():
                    slot[res] = slot.get(res, 0) + amount
            if key is not None:
                self.queues[key] = (choice.node, choice.target)
            placed[fi.id] = (choice, locs)
            for rk, loc in locs.items():
                position[rk] = loc.position
            if fi.kind == "queue":
                after_queue = (choice, locs)
        return placed


def _fits(problem, topo: str, c: Choice, rest: list[Choice], used, *, shared: bool) -> bool:
    # A shared queue already placed is already counted where it runs.
    need: dict[str, int] = {} if shared else dict(R.demand(c.option))
    for o in rest:
        for res, amount in R.demand(o.option).items():
            need[res] = need.get(res, 0) + amount
    offered = problem.capacities[(topo, c.node)]
    have = used.get((topo, c.node), {})
    return all(have.get(res, 0) + amount <= offered.get(res, 0)
               for res, amount in need.items())
