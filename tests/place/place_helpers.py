"""Shared by the placement tests: building programs through the real front end, reading
placements compactly, and an exhaustive search independent of the CP-SAT encoding."""

from __future__ import annotations

import itertools
from itertools import pairwise

import mosaico_dsl as mo
from mosaico_dsl.ir import _ir as I
from mosaico_dsl.place import Assignment, Placement, Route, Visit, evaluate, verify
from mosaico_dsl.place._paths import Transit
from mosaico_dsl.place.objective import complete
from mosaico_dsl.place.resources import target_on

HEADER = "import std.l4s\nimport std.security as sec\nfrom std.fwd import Forward, Mirror\n"


def check(text: str) -> I.Program:
    """A program through the real front end (parser and checker)."""
    return mo.check(HEADER + text)


def where(placement: Placement) -> dict[str, tuple[str, str]]:
    """instance id → (node, target)."""
    return {a.instance: (a.node, a.target) for a in placement.assignments}


def walk(placement: Placement, service: str, source: str) -> list[str]:
    """``client s1 [web/0 web/1] nfvi1 [web/2] s1 server`` as a list of tokens."""
    route = next(r for r in placement.routes if r.service == service and r.source == source)
    out = []
    for v in route.visits:
        out.append(v.node)
        if v.instances:
            out.append("[" + " ".join(v.instances) + "]")
    return out


# ------------------------------------------------------------------ exhaustive search


def exhaustive(program: I.Program):
    """(best objective, a placement achieving it) over every placement the model allows,
    or None: every assignment of nodes, every way of reaching them from each route (on
    the base path, or a detour from any switch on it), kept if :func:`verify` accepts it.

    Shares no code with the solver's encoding: only the path rules (base path and detour
    shapes, from ``Transit``), the verifier and the objective.
    """
    services = program.services
    transits = {t.name: Transit(t) for t in program.topologies}
    per_instance = []
    for svc in services:
        topo = program.topology(svc.topology)
        for fi in svc.chain:
            per_instance.append([(fi, n.name, t) for n in (*topo.switches, *topo.hosts)
                                 if (t := target_on(fi, n)) is not None])
    best = None
    for combo in itertools.product(*per_instance):
        node_of = {fi.id: (node, target) for fi, node, target in combo}
        route_options = []
        for svc in services:
            transit = transits[svc.topology]
            for src in svc.sources:
                options = _routes(transit, svc, src, node_of)
                if not options:
                    break
                route_options.append(options)
            else:
                continue
            break
        else:
            assignments = tuple(Assignment(i, n, t) for i, (n, t) in node_of.items())
            for routes in itertools.product(*route_options):
                candidate = Placement(assignments, tuple(routes))
                if verify(program, candidate):
                    continue
                objective = evaluate(program, candidate)
                if best is None or objective < best[0]:
                    best = (objective, complete(program, candidate, None))
    return best


def _routes(transit: Transit, svc: I.Service, src: str, node_of) -> list[Route]:
    path = transit.base(src, svc.destination)
    if path is None:
        return []
    switches = {s.name for s in transit.topology.switches}
    on = set(path)
    per_step = []
    for fi in svc.chain:
        node = node_of[fi.id][0]
        if node in path[1:-1]:
            per_step.append([(path.index(node), node, None, ())])
            continue
        options = []
        for k, attach in enumerate(path):
            if attach not in switches:
                continue
            detour = transit.detour(attach, node)
            if detour is None or any(n in on for n in detour[1:]):
                continue
            if node in switches and len(detour) != 2:
                continue
            options.append((k, node, attach, detour))
        if not options:
            return []
        per_step.append(options)
    out = []
    for stops in itertools.product(*per_step):
        if any(a[0] > b[0] for a, b in pairwise(stops)):
            continue
        out.append(Route(svc.name, src, _visits(path, list(zip(svc.chain, stops, strict=True)))))
    return out


def _visits(path, stops) -> tuple[Visit, ...]:
    visits: list[list] = [[path[0], []]]
    at = 0
    i = 0
    while i < len(stops):
        k, node, attach, detour = stops[i][1]
        block = []
        while i < len(stops) and stops[i][1][1:3] == (node, attach):
            block.append(stops[i][0].id)
            i += 1
        while at < k:
            at += 1
            visits.append([path[at], []])
        if attach is None:
            visits[-1][1].extend(block)
            continue
        for hop in detour[1:-1]:
            visits.append([hop, []])
        visits.append([node, block])
        for hop in reversed(detour[1:-1]):
            visits.append([hop, []])
        visits.append([attach, []])
    while at < len(path) - 1:
        at += 1
        visits.append([path[at], []])
    return tuple(Visit(n, tuple(ids)) for n, ids in visits)
