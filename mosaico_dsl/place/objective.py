"""The objective a placement achieves, computed from the placement itself.

The optimiser, the greedy baseline, the benchmark and the tests all score placements with
:func:`evaluate`, so "better" means the same thing everywhere — and a solver encoding that
disagrees with it shows up as a failing test, not as a silently worse placement.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..ir import _ir as I
from ..units import Time
from . import resources as R
from .latency import breakdown
from .placement import Assignment, Objective, Placement, Route, Search

__all__ = ["PPM", "evaluate", "route_latency", "complete"]

PPM = 1_000_000


def route_latency(program: I.Program, placement: Placement, route: Route,
                  runs: Mapping[str, str] | None = None) -> Time:
    """``runs`` (instance → target) may be given when scoring many routes of one placement."""
    svc = program.service(route.service)
    if runs is None:
        runs = {a.instance: a.target for a in placement.assignments}
    return breakdown(program.topology(svc.topology), svc, route.visits, runs).total


def evaluate(program: I.Program, placement: Placement) -> Objective:
    usage = 0
    unbudgeted = 0
    total = 0
    runs = {a.instance: a.target for a in placement.assignments}
    for route in placement.routes:
        svc = program.service(route.service)
        lat = route_latency(program, placement, route, runs).ns
        total += lat
        budget = svc.requirements.latency
        if budget is not None and budget.ns > 0:
            usage = max(usage, -(-PPM * lat // budget.ns))
        else:
            unbudgeted = max(unbudgeted, lat)
    instances = {fi.id: fi for fi in program.instances()}
    misses = sum(1 for a in placement.assignments
                 if instances[a.instance].prefer is not None
                 and I.target_family(a.target) != instances[a.instance].prefer)
    used = R.usage(program, ((instances[a.instance], a.node, a.target)
                             for a in placement.assignments))
    vcpus = sum(u.get("vcpus", 0) for u in used.values())
    stages = sum(u.get("stages", 0) for u in used.values())
    return Objective(usage, Time(unbudgeted), misses, vcpus, stages, Time(total))


def complete(program: I.Program, placement: Placement, search: Search | None) -> Placement:
    """``placement`` with per-assignment latency and cost, route latencies and objective."""
    instances = {fi.id: fi for fi in program.instances()}
    assignments = []
    for a in placement.assignments:
        option = instances[a.instance].option(a.target)
        assignments.append(Assignment(a.instance, a.node, a.target,
                                      option.latency if option else None,
                                      option.cost if option else None))
    bare = Placement(tuple(assignments), placement.routes)
    runs = {a.instance: a.target for a in assignments}
    routes = tuple(Route(r.service, r.source, r.visits, route_latency(program, bare, r, runs))
                   for r in placement.routes)
    done = Placement(tuple(assignments), routes)
    return Placement(done.assignments, done.routes, evaluate(program, done), search)
