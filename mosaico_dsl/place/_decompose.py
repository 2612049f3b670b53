"""Large programs: the services solved in groups, each on a narrowed model.

One exact model of thousands of services is too large to build, let alone to prove
optimal, in reasonable time and memory. Services interact only through what nodes offer
(capacities) and shared egress queues, so they are split into *groups* — services sharing
an egress queue always in one group, groups filled in program order — and solved one after
another by the same lexicographic search (:func:`._cpsat.optimise`), each within what the
groups before it left of every node. Each group's model is *narrowed*
(:func:`._problem.build` with ``width``): a function may run on its path's switches and on
the few nodes nearest to it per target, not on every node its budget could reach.

Neither restriction can hide a better objective from the report: the levels are compared
with bounds that hold for the whole program — the floors of the latency levels, and a
relaxation that lets every function take its cheapest choice on its own (node costs depend
only on the target, and the narrowed model keeps a node of every target the exact model
offers). When a group cannot be placed within the floors (or what the earlier groups left)
it is retried on its exact model, then with its budgets as the only cap; if it still
cannot, and cannot either alone with whole capacities, it is explained (it is infeasible by
itself); if it can alone, it collides with earlier groups over capacity: those that use
nodes it could use give their capacity back and are placed again together with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from ..ir import _ir as I
from . import resources as R
from ._problem import Choice, Problem, build
from .objective import complete
from .options import Options
from .placement import Level, Placement, Search

__all__ = ["solve_in_groups", "Stuck"]


class Stuck(Exception):
    """A group could not be placed: ``program`` is that group alone, with whole capacities
    (explain it), unless ``collision`` — it fits alone but competes for capacity with
    nothing it could be merged with (solve the whole program exactly)."""

    def __init__(self, program: I.Program, collision: bool) -> None:
        super().__init__(program)
        self.program, self.collision = program, collision


def groups_of(program: I.Program, size: int) -> list[list[I.Service]]:
    """Services in program order, cut into groups of about ``size``; services that share
    an egress queue are never split."""
    index = {s.name: k for k, s in enumerate(program.services)}
    parent = {s.name: s.name for s in program.services}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    first: dict[tuple[str, str], str] = {}
    for svc in program.services:
        q = svc.queueing
        if q is None:
            continue
        a, b = find(svc.name), find(first.setdefault(R.shared_queue_key(svc, q), svc.name))
        if a != b:  # the earlier service's root stays the root
            lo, hi = sorted((a, b), key=index.__getitem__)
            parent[hi] = lo
    members: dict[str, list[I.Service]] = {}
    for svc in program.services:
        members.setdefault(find(svc.name), []).append(svc)
    out: list[list[I.Service]] = []
    current: list[I.Service] = []
    for component in members.values():  # in the order of each component's first service
        if current and len(current) + len(component) > size:
            out.append(current)
            current = []
        current = current + component
    if current:
        out.append(current)
    return out


@dataclass(frozen=True)
class _Placed:
    """A group placed: its services, their placement, what it takes from each node."""

    services: tuple[I.Service, ...]
    placement: Placement
    used: Mapping[tuple[str, str], Mapping[str, int]]
    floors: bool  # placed within the latency floors
    # Placed beyond them, with whole capacities: the least worst budget usage it allows,
    # proven by the search (what the whole program's worst usage can be no lower than).
    usage_bound: int = 0


def solve_in_groups(program: I.Program, problem: Problem, options: Options,
                    known: Mapping[str, int], limits: Mapping[str, int], optimise
                    ) -> Placement:
    """The placement of ``program``, group by group on ``problem`` (narrowed, capped at the
    latency floors ``known``, with route ``limits``); ``optimise`` is the lexicographic
    search. A group that collides with groups placed before it over some node's capacity
    is merged with them and they are placed again as one. Raises :class:`Stuck` when a group
    cannot be placed even alone, or collides with nothing it could be merged with."""
    spaces = {s.name: s for s in problem.services}
    order = {s.name: k for k, s in enumerate(program.services)}
    residual = {key: dict(offered) for key, offered in problem.capacities.items()}
    pending = groups_of(program, options.group_size)
    tie = max(options.tie_break_time / max(len(pending), 1), 0.05)
    batch_options = replace(options, tie_break_time=tie)
    placed: list[_Placed] = []

    def take(used, sign: int) -> None:
        for key, amounts in used.items():
            slot = residual[key]
            for res, amount in amounts.items():
                slot[res] = slot.get(res, 0) - sign * amount

    while pending:
        batch = pending.pop(0)
        sub = replace(program, services=tuple(batch))
        part, held = _place_group(sub, problem, spaces, residual, limits, known,
                                  batch_options, optimise)
        bound = 0
        if part is not None and not held and all(
                residual[key] == problem.capacities[key] for key in residual):
            bound = part.search.levels[0].bound
        if part is None:
            if optimise(build(sub, transits=problem.transits), batch_options, {},
                        report=False) is None:
                raise Stuck(sub, collision=False)  # infeasible even alone: explain it
            # It fits alone: it collides with groups placed before it on nodes it could
            # use. Those groups give their capacity back and are placed again with it.
            wanted = {(svc.topology, c.node) for svc in batch
                      for cs in spaces[svc.name].choices.values() for c in cs}
            merged = [g for g in placed if wanted & set(g.used)]
            together = {s for g in merged for s in g.services} | set(batch)
            if not merged or len(together) == len(program.services):
                raise Stuck(sub, collision=True)  # one group of everything: the exact model
            for g in merged:
                placed.remove(g)
                take(g.used, -1)
            pending.insert(0, sorted(together, key=lambda s: order[s.name]))
            continue
        used = R.usage(program, ((program.instance(a.instance), a.node, a.target)
                                 for a in part.assignments))
        take(used, 1)
        placed.append(_Placed(tuple(batch), part, used, held, bound))
    assignments = {a.instance: a for g in placed for a in g.placement.assignments}
    routes = {(r.service, r.source): r for g in placed for r in g.placement.routes}
    whole = complete(program, Placement(
        tuple(assignments[fi.id] for fi in program.instances() if fi.id in assignments),
        tuple(routes[(s.name, src)] for s in program.services for src in s.sources
              if (s.name, src) in routes)), None)
    levels = _levels(program, problem, whole, known, all(g.floors for g in placed),
                     max((g.usage_bound for g in placed), default=0))
    return replace(whole, search=Search("cp-sat", levels, groups=len(placed)))


def _place_group(sub: I.Program, problem: Problem, spaces, residual, limits, known,
                 options: Options, optimise) -> tuple[Placement | None, bool]:
    """The group's placement within ``residual`` capacities (None if there is none), and
    whether it holds the latency floors: on its narrowed model; on its exact model (the
    narrowed one may have left out the one node that fits); with its budgets as the only
    cap (the floors cannot hold)."""
    names = {s.name for s in sub.services}
    ids = {fi.id for s in sub.services for fi in s.chain}
    caps = {key: dict(v) for key, v in residual.items()}
    part = optimise(Problem(sub, tuple(spaces[s.name] for s in sub.services), caps,
                            tuple(g for g in problem.groups if g.instances[0] in ids),
                            problem.transits, problem.narrowed), options, known,
                    report=False)
    if part is None:
        part = optimise(build(sub, limits={n: limits[n] for n in names if n in limits},
                              transits=problem.transits, capacities=caps),
                        options, known, report=False)
    if part is not None:
        return part, True
    # Reported: its search record bounds the worst budget usage (see solve_in_groups).
    return optimise(build(sub, transits=problem.transits, capacities=caps), options,
                    {}), False


def _levels(program: I.Program, problem: Problem, placement: Placement,
            known: Mapping[str, int], floor_held: bool, usage_bound: int
            ) -> tuple[Level, ...]:
    """Each level's value and a bound that holds for the whole program."""
    from ._cpsat import LEVELS

    o = placement.objective
    values = [get(o) for _, get in LEVELS]
    bounds = [max(known.get(LEVELS[0][0], 0), usage_bound), known.get(LEVELS[1][0], 0)]
    # Levels 3–5: every function (every shared queue once) on its own cheapest choice,
    # lexicographically; a level's bound holds only while the levels above meet theirs.
    cheapest = _relaxation(program, problem) if floor_held else (0, 0, 0)
    above = values[0] <= bounds[0] and values[1] <= bounds[1]
    for k, b in enumerate(cheapest):
        bounds.append(b if above else 0)
        above = above and values[2 + k] <= b
    # The tie-break: every route at its floor (base path, fastest targets, queue target).
    bounds.append(sum(r.delay + s.floor + s.queue_target for s in problem.services
                      for r in s.routes))
    return tuple(Level(name, v, min(b, v)) for (name, _), v, b
                 in zip(LEVELS, values, bounds, strict=True))


def _relaxation(program: I.Program, problem: Problem) -> tuple[int, int, int]:
    """(preferences missed, vCPUs, switch stages) if every instance took its cheapest
    choice regardless of the others, lexicographically per instance."""
    shared: dict[tuple[str, str], tuple[int, int, int]] = {}
    totals = [0, 0, 0]
    for space in problem.services:
        svc = space.service
        for fi in svc.chain:
            costs = [_cost(fi, c) for c in space.choices.get(fi.id, ())]
            if not costs:
                continue
            best = min(costs)
            key = R.shared_queue_key(svc, fi)
            if key is not None:
                shared[key] = min(shared.get(key, best), best)
                continue
            for k in range(3):
                totals[k] += best[k]
    for best in shared.values():
        for k in range(3):
            totals[k] += best[k]
    return totals[0], totals[1], totals[2]


def _cost(fi: I.FunctionInstance, c: Choice) -> tuple[int, int, int]:
    miss = int(fi.prefer is not None and I.target_family(c.target) != fi.prefer)
    return miss, c.demand.get("vcpus", 0), c.demand.get("stages", 0)
