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
cannot, the group alone is explained (it is infeasible by itself), or — when it only
collides with earlier groups over capacity — the whole program goes to the exact model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ..ir import _ir as I
from . import resources as R
from ._problem import Choice, Problem, build
from .objective import complete
from .options import Options
from .placement import Assignment, Level, Placement, Route, Search

__all__ = ["solve_in_groups", "Stuck"]


class Stuck(Exception):
    """A group could not be placed: ``program`` is that group alone, with whole capacities
    (explain it), unless ``collision`` — it fits alone, so it competes with earlier groups
    for capacity (solve the whole program exactly)."""

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


def solve_in_groups(program: I.Program, problem: Problem, options: Options,
                    known: Mapping[str, int], limits: Mapping[str, int], optimise
                    ) -> Placement:
    """The placement of ``program``, group by group on ``problem`` (narrowed, capped at the
    latency floors ``known``, with route ``limits``); ``optimise`` is the lexicographic
    search. Raises :class:`Stuck` when a group cannot be placed."""
    spaces = {s.name: s for s in problem.services}
    residual = {key: dict(offered) for key, offered in problem.capacities.items()}
    batches = groups_of(program, options.group_size)
    tie = max(options.tie_break_time / max(len(batches), 1), 0.05)
    batch_options = replace(options, tie_break_time=tie)
    assignments: dict[str, Assignment] = {}
    routes: dict[tuple[str, str], Route] = {}
    floor_held = True
    for batch in batches:
        sub = replace(program, services=tuple(batch))
        names = {s.name for s in batch}
        ids = {fi.id for s in batch for fi in s.chain}
        caps = {key: dict(v) for key, v in residual.items()}
        part = optimise(Problem(sub, tuple(spaces[s.name] for s in batch), caps,
                                tuple(g for g in problem.groups if g.instances[0] in ids),
                                problem.transits, problem.narrowed), batch_options, known,
                        report=False)
        if part is None:  # the narrowed model may have left out the one node that fits
            part = optimise(build(sub, limits={n: limits[n] for n in names if n in limits},
                                  transits=problem.transits, capacities=caps),
                            batch_options, known, report=False)
        if part is None:  # the floors cannot hold: the group's budgets are its only cap
            floor_held = False
            part = optimise(build(sub, transits=problem.transits, capacities=caps),
                            batch_options, {}, report=False)
        if part is None:
            alone = optimise(build(sub, transits=problem.transits), batch_options, {},
                             report=False)
            raise Stuck(sub, collision=alone is not None)
        for a in part.assignments:
            assignments[a.instance] = a
        for r in part.routes:
            routes[(r.service, r.source)] = r
        used = R.usage(program, ((program.instance(a.instance), a.node, a.target)
                                 for a in part.assignments))
        for key, amounts in used.items():
            slot = residual[key]
            for res, amount in amounts.items():
                slot[res] = slot.get(res, 0) - amount
    whole = complete(program, Placement(
        tuple(assignments[fi.id] for fi in program.instances() if fi.id in assignments),
        tuple(routes[(s.name, src)] for s in program.services for src in s.sources
              if (s.name, src) in routes)), None)
    levels = _levels(program, problem, whole, known, floor_held)
    return replace(whole, search=Search("cp-sat", levels, groups=len(batches)))


def _levels(program: I.Program, problem: Problem, placement: Placement,
            known: Mapping[str, int], floor_held: bool) -> tuple[Level, ...]:
    """Each level's value and a bound that holds for the whole program."""
    from ._cpsat import LEVELS

    o = placement.objective
    values = [get(o) for _, get in LEVELS]
    bounds = [known.get(LEVELS[0][0], 0), known.get(LEVELS[1][0], 0)]
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
