"""The placement problem as data, derived from the IR and independent of any solver.

For every service and source the traffic follows the lowest-delay *base path* through
switches. Each function instance has *choices* (a node and the target it runs as there)
and, on every route, *locations*: on the base path itself, or on a node reached by a detour
that leaves the path at a switch and comes back to it the same way. Each choice and
location records the user-level :class:`Rule` it would break; the optimiser drops those,
the explainer keeps them behind one switchable literal per rule to find which rules
conflict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from itertools import pairwise

from ..check.services import latency_floor
from ..diagnostics import Diagnostic, Note, error
from ..ir import _ir as I
from . import resources as R
from ._paths import Transit
from .placement import PlacementError

__all__ = ["Kind", "Rule", "Choice", "Location", "RouteSpace", "ServiceSpace", "Group",
           "Problem", "build", "floors", "transits_of"]


class Kind(Enum):
    """The kinds of constraint a user can be told about (one literal each per subject)."""

    CAPACITY = "capacity"
    LATENCY = "latency"
    SECURE = "secure"
    PRIORITY_QUEUES = "priority_queues"
    EGRESS = "egress"
    QUEUE = "queue"
    BANDWIDTH = "bandwidth"
    PLACE = "place"
    PIN = "pin"
    ORDER = "order"  # the chain runs in order along each route


_KIND_ORDER = {k: i for i, k in enumerate(Kind)}


@dataclass(frozen=True, slots=True)
class Rule:
    """One user-level constraint: ``Rule(Kind.LATENCY, ("web_ll",))``.

    Subjects: LATENCY, SECURE, BANDWIDTH, ORDER → (service,); PIN, PLACE, QUEUE →
    (instance,);
    CAPACITY → (topology, node, resource); PRIORITY_QUEUES → (topology, switch);
    EGRESS → (topology, destination).
    """

    kind: Kind
    subject: tuple[str, ...]

    def sort_key(self) -> tuple:
        return (_KIND_ORDER[self.kind], self.subject)


@dataclass(frozen=True, slots=True)
class Choice:
    """Instance on ``node`` as ``target``; ``demand`` is what it takes from the node."""

    node: str
    target: str
    option: I.TargetOption
    forbid: frozenset[Rule]
    demand: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def latency(self) -> int:
        return self.option.latency.ns


@dataclass(frozen=True, slots=True)
class Location:
    """Where on one route an instance runs: on the path, or a detour from ``attach``."""

    node: str
    attach: str | None
    position: int  # index on the base path of the node, or of the switch the detour leaves
    detour: tuple[str, ...]  # attach → … → node; () on the path
    delay: int  # one way along the detour, ns
    forbid: frozenset[Rule]

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.node, self.attach)


@dataclass(frozen=True, slots=True)
class RouteSpace:
    service: str
    source: str
    path: tuple[str, ...]
    delay: int  # ns along the base path
    locations: Mapping[str, tuple[Location, ...]]  # instance id → where it may run

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.source)


@dataclass(frozen=True, slots=True)
class ServiceSpace:
    service: I.Service
    topology: I.Topology
    routes: tuple[RouteSpace, ...]
    choices: Mapping[str, tuple[Choice, ...]]  # instance id → nodes it may run on
    budget: int | None  # ns, the user's latency budget
    limit: int | None  # ns, what every route must stay within (the budget, or tighter)
    queue_target: int  # ns
    floor: int  # ns, fastest processing over the chain

    @property
    def name(self) -> str:
        return self.service.name


@dataclass(frozen=True, slots=True)
class Group:
    """Queueing functions of services sharing one egress queue: one node, counted once."""

    rule: Rule
    instances: tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    program: I.Program
    services: tuple[ServiceSpace, ...]
    capacities: Mapping[tuple[str, str], Mapping[str, int]]  # (topology, node) → offered
    groups: tuple[Group, ...]
    transits: Mapping[str, Transit]
    narrowed: bool = False  # choices were left out by ``width`` (see :func:`build`)

    def instance(self, instance_id: str) -> I.FunctionInstance:
        return self._instances[instance_id]

    def space_of(self, service: str) -> ServiceSpace:
        return self._spaces[service]

    def group_of(self, instance_id: str) -> Group:
        return self._groups_by_instance[instance_id]

    @cached_property
    def _spaces(self) -> dict[str, ServiceSpace]:
        return {s.name: s for s in self.services}

    @cached_property
    def _groups_by_instance(self) -> dict[str, Group]:
        return {i: g for g in self.groups for i in g.instances}

    @cached_property
    def _instances(self) -> dict[str, I.FunctionInstance]:
        return {fi.id: fi for fi in self.program.instances()}


def build(program: I.Program, *, prune: bool | frozenset[Kind] = True,
          limits: Mapping[str, int] | None = None,
          transits: Mapping[str, Transit] | None = None, width: int | None = None,
          capacities: Mapping[tuple[str, str], Mapping[str, int]] | None = None) -> Problem:
    """The problem for ``program``; raises :class:`PlacementError` for what no placement can
    fix (no route through switches, no node able to run a function, a base path too thin).

    With ``prune`` (the optimiser's view) choices and locations that break a rule are left
    out; without (the explainer's view) they are kept, each with the rules it breaks; a set
    of kinds prunes only those. An instance left with no choice by its rules has an empty
    choice tuple. ``limits`` caps the latency of services' routes below their budgets
    (service name → ns).

    ``width`` narrows the model (:attr:`Problem.narrowed`), so that a fabric with hundreds
    of hosts within reach does not give every function hundreds of choices: a function may
    run on its path's switches (a sample of them on a long path) and on the nodes in the
    vicinity of each (the ``width`` nearest hosts, trusted hosts, neighbour switches and
    trusted neighbour switches, by the detour from that switch), at most ``width`` others
    per target, the nearest first; and on a node of every target the exact model offers.

    ``capacities`` replaces what nodes offer (with what earlier groups left of it).
    """
    pruned = frozenset(Kind) if prune is True else frozenset(prune or ())
    diagnostics: list[Diagnostic] = []
    transits = transits or transits_of(program)
    if capacities is None:
        capacities = {(t.name, n.name): R.capacity(n) for t in program.topologies
                      for n in (*t.switches, *t.hosts)}
    _find_bases(program, transits)
    if width is not None:  # every switch on a path may lead a detour to its vicinity
        for t in program.topologies:
            transit = transits[t.name]
            transit.prepare_vicinity(
                (n for svc in program.services if svc.topology == t.name
                 for src in svc.sources for n in (transit.base(src, svc.destination) or ())),
                width)
    services = []
    narrowed = False
    layouts = {t.name: _Layout.of(t) for t in program.topologies}
    for svc in program.services:
        budget = svc.requirements.latency.ns if svc.requirements.latency is not None else None
        limit = (limits or {}).get(svc.name, budget)
        space, cut = _service(svc, program.topology(svc.topology), layouts[svc.topology],
                              transits[svc.topology],
                              capacities, diagnostics, pruned, budget, limit, width)
        narrowed |= cut
        if space is not None:
            services.append(space)
    if diagnostics:
        raise PlacementError(diagnostics)
    return Problem(program, tuple(services), capacities, _groups(program), transits, narrowed)


def _find_bases(program: I.Program, transits: Mapping[str, Transit]) -> None:
    for t in program.topologies:
        transits[t.name].bases((src, svc.destination) for svc in program.services
                               if svc.topology == t.name for src in svc.sources)


def transits_of(program: I.Program) -> dict[str, Transit]:
    return {t.name: Transit(t) for t in program.topologies}


def floors(program: I.Program, transits: Mapping[str, Transit]) -> dict[str, list[int]]:
    """Per service, the least latency each route can have (ns): base path, fastest
    processing, queue target. Routes that do not exist are left out."""
    out: dict[str, list[int]] = {}
    _find_bases(program, transits)
    for svc in program.services:
        processing, queue = latency_floor(svc)
        transit = transits[svc.topology]
        paths = [transit.base(src, svc.destination) for src in svc.sources]
        out[svc.name] = [transit.delay(p) + processing.ns + queue.ns for p in paths if p]
    return out


def _groups(program: I.Program) -> tuple[Group, ...]:
    by_egress: dict[tuple[str, str], list[str]] = {}
    for svc in program.services:
        for fi in svc.chain:
            key = R.shared_queue_key(svc, fi)
            if key is not None:
                by_egress.setdefault(key, []).append(fi.id)
    return tuple(Group(Rule(Kind.EGRESS, key), tuple(ids))
                 for key, ids in by_egress.items() if len(ids) > 1)


def _service(svc: I.Service, topo: I.Topology, layout: _Layout, transit: Transit,
             capacities: Mapping[tuple[str, str], Mapping[str, int]],
             diagnostics: list[Diagnostic], pruned: frozenset[Kind], budget: int | None,
             limit: int | None, width: int | None) -> tuple[ServiceSpace | None, bool]:
    req = svc.requirements
    paths: dict[str, tuple[str, ...]] = {}
    for src in svc.sources:
        path = transit.base(src, svc.destination)
        if path is None:
            diagnostics.append(error(
                "E0811", f"`{svc.name}`: no route from `{src}` to `{svc.destination}` "
                "through switches", svc.span,
                "hosts and endpoints do not forward transit traffic: link both ends to "
                "switches that are connected"))
            continue
        if req.bandwidth is not None:
            thin = _thin_link(topo, path, req.bandwidth.bps)
            if thin is not None:
                lk, label = thin
                diagnostics.append(error(
                    "E0809", f"`{svc.name}`: the lowest-delay route from `{src}` crosses "
                    f"{label} with {lk.bandwidth}, below the {req.bandwidth} required",
                    svc.span, "traffic follows the lowest-delay path: raise that link's "
                    "bandwidth, lower the requirement, or make a wider path faster",
                    [Note(f"route: {' → '.join(path)}"), Note("link declared here", lk.span)]))
        paths[src] = path
    if len(paths) != len(svc.sources):
        return None, False

    processing, queue = latency_floor(svc)
    switch_names = layout.switches
    lasts = {p[-2] if len(p) > 2 else None for p in paths.values()}
    service_rules = _ServiceRules(Rule(Kind.LATENCY, (svc.name,)),
                                  Rule(Kind.BANDWIDTH, (svc.name,)),
                                  Rule(Kind.SECURE, (svc.name,)))
    spots = {src: _Spots(transit, path, switch_names, req.bandwidth, service_rules)
             for src, path in paths.items()}
    base = {src: transit.delay(path) for src, path in paths.items()}
    floor = {src: base[src] + processing.ns + queue.ns for src in paths}
    choices: dict[str, tuple[Choice, ...]] = {}
    locations: dict[str, dict[str, tuple[Location, ...]]] = {src: {} for src in paths}
    nodes = (*topo.switches, *topo.hosts)
    bounded = Kind.LATENCY in pruned and limit is not None
    reach = {src: (limit - floor[src]) // 2 for src in paths} if bounded else {}
    narrowed = width is not None and bounded
    if narrowed:
        near_routes = {src: _Nearby(transit, path, switch_names, req.bandwidth, reach[src],
                                    width) for src, path in paths.items()}
        candidates = _common(near_routes, layout, topo)
    elif bounded:
        # Only nodes a detour within the budget's slack can reach (on every route) can be
        # kept: look at those, not at every node of the topology.
        near = _reachable(transit, paths, spots, reach)
        candidates = [n for n in nodes if n.name in near]
    else:
        candidates = list(nodes)
    for fi in svc.chain:
        fastest = min(t.latency.ns for t in fi.targets)
        demands = {t.target: R.demand(t) for t in fi.targets}

        def consider(node: I.NodeIR, where, fi=fi, fastest=fastest, demands=demands
                     ) -> tuple[Choice, dict] | None:
            target = R.target_on(fi, node)
            if target is None:
                return None
            option = fi.option(target)
            forbid = _choice_rules(svc, topo, fi, node, target, demands[target], lasts,
                                   capacities, service_rules)
            if any(r.kind in pruned for r in forbid):
                return None
            per_route = {}
            for src in paths:
                slack = None if limit is None else \
                    limit - floor[src] - (option.latency.ns - fastest)
                locs = where(src, node.name, slack)
                if not locs:
                    return None
                per_route[src] = locs
            return Choice(node.name, target, option, forbid, demands[target]), per_route

        if narrowed:
            kept = _nearest(fi, layout, candidates, near_routes, width, consider)
            kept = _every_target(fi, kept, layout, topo, consider, lambda src, n, slack:
                                 spots[src].locations(n, slack, pruned),
                                 {src: {t: (limit - floor[src] - (fi.option(t).latency.ns
                                                                 - fastest)) // 2
                                        for t in layout.targets(fi)} for src in paths},
                                 lambda r: _reachable(transit, paths, spots, r))
        else:
            kept = [c for node in candidates if (c := consider(
                node, lambda src, n, slack: spots[src].locations(n, slack, pruned)))]
        if not kept and not any(R.target_on(fi, n) is not None
                                and all(sp.reaches(n.name) for sp in spots.values())
                                for n in nodes):
            diagnostics.append(_no_node(svc, topo, fi, paths))
            continue
        choices[fi.id] = tuple(c for c, _ in kept)
        for src in paths:
            locations[src][fi.id] = tuple(loc for _, per_route in kept
                                          for loc in per_route[src])
    if len(choices) != len(svc.chain):
        return None, narrowed
    routes = tuple(RouteSpace(svc.name, src, path, base[src], locations[src])
                   for src, path in paths.items())
    return ServiceSpace(svc, topo, routes, choices, budget, limit, queue.ns,
                        processing.ns), narrowed


def _reachable(transit: Transit, paths: Mapping[str, tuple[str, ...]],
               spots: Mapping[str, _Spots], reach: Mapping[str, int]) -> set[str]:
    """The nodes of every route's path, and those a detour of at most ``reach[route]`` ns
    (one way) reaches on every route: a superset of where a function can run. A route with
    a negative reach has none."""
    out: set[str] | None = None
    for src, path in paths.items():
        here: set[str] = set()
        if reach[src] >= 0:
            here = set(path[1:-1]) | set(transit.near((n for _, n in spots[src].attach),
                                                      reach[src]))
        out = here if out is None else out & here
    return out or set()


def _every_target(fi: I.FunctionInstance, kept: list[tuple[Choice, dict]], layout: _Layout,
                  topo: I.Topology, consider, exact_where, reach: Mapping[str, Mapping],
                  reachable) -> list[tuple[Choice, dict]]:
    """``kept`` with a node of every target the exact model offers (the first found, by
    the exact model's locations): what a target costs does not depend on the node, so each
    function's cheapest choice — the groups' bound — is the exact model's. ``reach`` is the
    slack per route and target; ``reachable(reach)`` the nodes within it."""
    missing = {t for t in layout.targets(fi)
               if fi.place is None or I.target_family(t) == fi.place}
    missing -= {c.target for c, _ in kept}
    if not missing:
        return kept
    seen = {c.node for c, _ in kept}
    near = reachable({src: max(r[t] for t in missing) for src, r in reach.items()})
    out = list(kept)
    for node in (*topo.switches, *topo.hosts) if fi.pin is None else (topo.node(fi.pin),):
        if node.name in near and node.name not in seen and R.target_on(fi, node) in missing:
            c = consider(node, exact_where)
            if c is not None:
                out.append(c)
                missing.discard(c[0].target)
                if not missing:
                    break
    out.sort(key=lambda c: layout.order[c[0].node])
    return out


def _nearest(fi: I.FunctionInstance, layout: _Layout, candidates: list[I.NodeIR],
             near: Mapping[str, _Nearby], width: int, consider) -> list[tuple[Choice, dict]]:
    """The choices on the paths and, per target, the ``width`` nearest others (nodes come
    nearest first)."""
    def where(src: str, node: str, slack: int | None):
        return near[src].locations(node, slack)

    if fi.pin is not None:  # every other node breaks the pin
        candidates = [n for n in candidates if n.name == fi.pin]
    count: dict[str, int] = {}
    kept: list[tuple[Choice, dict]] = []
    for n in candidates:
        target = R.target_on(fi, n)
        if target is None or count.get(target, 0) >= width:
            continue
        c = consider(n, where)
        if c is None:
            continue
        kept.append(c)
        if any(loc.attach is not None for locs in c[1].values() for loc in locs):
            count[target] = count.get(target, 0) + 1
    kept.sort(key=lambda c: layout.order[c[0].node])
    return kept


def _common(near: Mapping[str, _Nearby], layout: _Layout, topo: I.Topology
            ) -> list[I.NodeIR]:
    """Nodes near every route, nearest first (by their farthest route; then declaration)."""
    spans = [n.reach for n in near.values()]
    common = set(spans[0])
    for r in spans[1:]:
        common &= set(r)
    return [topo.node(name) for name in sorted(
        common, key=lambda n: (max(r[n] for r in spans), layout.order[n]))]


@dataclass(frozen=True)
class _Layout:
    """What every service on one topology looks up about it, computed once."""

    switches: frozenset[str]
    order: dict[str, int]  # node → declaration index (switches, then hosts)
    switch_targets: tuple[str, ...]
    hosts: bool

    @staticmethod
    def of(topo: I.Topology) -> _Layout:
        return _Layout(frozenset(s.name for s in topo.switches),
                       {n.name: k for k, n in enumerate((*topo.switches, *topo.hosts))},
                       tuple(dict.fromkeys(s.p4_target for s in topo.switches)),
                       bool(topo.hosts))

    def targets(self, fi: I.FunctionInstance) -> list[str]:
        """The targets ``fi`` can run as on some node of the topology."""
        out = [t for t in self.switch_targets if fi.option(t) is not None]
        if self.hosts:
            out += [t.target for t in fi.targets if t.family == I.VNF_FAMILY][:1]
        return out


def _narrow(kept: list[tuple[Choice, dict[str, tuple[Location, ...]]]], width: int
            ) -> tuple[list[tuple[Choice, dict[str, tuple[Location, ...]]]], bool]:
    """The choices on every route's path, and the ``width`` nearest others per target
    (by their longest detour over the routes; declaration order breaks ties)."""
    def reach(per_route) -> int:
        return max(min(loc.delay for loc in locs) for locs in per_route.values())

    off = [(reach(pr), k) for k, (_, pr) in enumerate(kept) if reach(pr) > 0]
    by_target: dict[str, list[tuple[int, int]]] = {}
    for r, k in off:
        by_target.setdefault(kept[k][0].target, []).append((r, k))
    dropped = {k for ranked in by_target.values() for _, k in sorted(ranked)[width:]}
    if not dropped:
        return kept, False
    return [c for k, c in enumerate(kept) if k not in dropped], True


class _Nearby:
    """The narrowed model's places on one route: its path's switches, and the nodes in the
    vicinity of each (:meth:`Transit.vicinity` — the nearest hosts and neighbour switches,
    trusted or not), each by the detour from that switch that keeps off the path."""

    def __init__(self, transit: Transit, path: tuple[str, ...], switches: frozenset[str],
                 bandwidth, reach: int, width: int) -> None:
        self.path = path
        self.reach: dict[str, int] = {}  # node → its shortest detour (0 on the path)
        self._spots: dict[str, list[Location]] = {}
        if reach < 0:
            return
        bps = bandwidth.bps if bandwidth is not None else None
        on_path = set(path)
        kept = _spread([k for k, n in enumerate(path) if 0 < k and n in switches], width)
        for k in kept:
            n = path[k]
            if n not in self._spots:
                self._spots[n] = [Location(n, None, k, (), 0, frozenset())]
                self.reach[n] = 0
        attached: set[str] = set()
        for k in kept:
            attach = path[k]
            if attach in attached:
                continue
            attached.add(attach)
            for node, detour, delay in transit.vicinity(attach, width, reach):
                if node in on_path or any(x in on_path for x in detour[1:]):
                    continue
                thin = transit.thinnest(detour)
                if bps is not None and thin is not None and thin[0] < bps:
                    continue
                self._spots.setdefault(node, []).append(
                    Location(node, attach, k, detour, delay, frozenset()))
                self.reach[node] = min(self.reach.get(node, delay), delay)

    def locations(self, node: str, slack: int | None) -> tuple[Location, ...]:
        if slack is not None and slack < 0:
            return ()
        return tuple(loc for loc in self._spots.get(node, ())
                     if slack is None or 2 * loc.delay <= slack)


def _spread(positions: list[int], width: int) -> list[int]:
    """Of a long path's switches: the first and the last ``width`` and ``width`` evenly
    between them (a path across a line of thousands of switches would otherwise offer
    every function thousands of equivalent places)."""
    if len(positions) <= 3 * width:
        return positions
    middle = [positions[i * (len(positions) - 1) // (width + 1)] for i in range(1, width + 1)]
    return sorted({*positions[:width], *middle, *positions[-width:]})


@dataclass(frozen=True, slots=True)
class _ServiceRules:
    latency: Rule
    bandwidth: Rule
    secure: Rule


class _Spots:
    """Where on one base path a node can be reached: on it, or by detours (cached)."""

    def __init__(self, transit: Transit, path: tuple[str, ...], switches: frozenset[str],
                 bandwidth, rules: _ServiceRules) -> None:
        self.transit = transit
        self.path = path
        self.on_path = set(path)
        self.index = {n: k for k, n in reversed(list(enumerate(path)))}
        self.attach = [(k, n) for k, n in enumerate(path) if n in switches and 0 < k]
        self.switches = switches
        self.bps = bandwidth.bps if bandwidth is not None else None
        self.rules = rules
        # node → (how far the detours were looked for, None: everywhere; what was found)
        self._cache: dict[str, tuple[int | None, list]] = {}

    def _spots(self, node: str, within: int | None):
        """(attach, position, detour, delay, wide enough) of every way to reach ``node``;
        with ``within``, only detours of at most that delay (one way)."""
        hit = self._cache.get(node)
        if hit is not None and (hit[0] is None or (within is not None and within <= hit[0])):
            found = hit[1]
            return found if within is None or hit[0] == within else \
                [f for f in found if f[3] <= within]
        if node in self.path[1:-1]:
            found = [(None, self.index[node], (), 0, True)]
        else:
            found = []
            for k, attach in self.attach:
                detour = self.transit.detour(attach, node, within)
                if detour is None or any(n in self.on_path for n in detour[1:]):
                    continue
                if node in self.switches and len(detour) != 2:
                    continue  # P4 off the path: only on a neighbour of the path
                thin = self.transit.thinnest(detour)
                wide = self.bps is None or thin is None or thin[0] >= self.bps
                found.append((attach, k, detour, self.transit.delay(detour), wide))
        self._cache[node] = (within, found)
        return found

    def reaches(self, node: str) -> bool:
        return bool(self._spots(node, None))

    def locations(self, node: str, slack: int | None, pruned: frozenset[Kind]
                  ) -> tuple[Location, ...]:
        """The node's locations; ``slack`` is what the budget leaves for detours."""
        bounded = slack is not None and Kind.LATENCY in pruned
        if bounded and slack < 0:
            return ()  # even on the path the budget is exceeded
        out = []
        for attach, k, detour, delay, wide in self._spots(node, slack // 2 if bounded
                                                          else None):
            late = slack is not None and 2 * delay > slack
            if (late and Kind.LATENCY in pruned) or (not wide and Kind.BANDWIDTH in pruned):
                continue
            rules = frozenset((self.rules.latency,) * late + (self.rules.bandwidth,) * (not wide))
            out.append(Location(node, attach, k, detour, delay, rules))
        return tuple(out)


def _choice_rules(svc: I.Service, topo: I.Topology, fi: I.FunctionInstance, node: I.NodeIR,
                  target: str, demand: Mapping[str, int], lasts: set[str | None],
                  capacities, service_rules: _ServiceRules) -> frozenset[Rule]:
    rules: list[Rule] = []
    if fi.pin is not None and node.name != fi.pin:
        rules.append(Rule(Kind.PIN, (fi.id,)))
    if fi.place is not None and I.target_family(target) != fi.place:
        rules.append(Rule(Kind.PLACE, (fi.id,)))
    if svc.requirements.secure and fi.kind == "filter" and not node.trusted:
        rules.append(service_rules.secure)
    if fi.kind == "queue" and isinstance(node, I.Switch):
        if lasts != {node.name}:
            rules.append(Rule(Kind.QUEUE, (fi.id,)))
        if node.priority_queues < R.queues_needed(fi):
            rules.append(Rule(Kind.PRIORITY_QUEUES, (topo.name, node.name)))
    offered = capacities[(topo.name, node.name)]
    for res in R.over(demand, offered):
        rules.append(Rule(Kind.CAPACITY, (topo.name, node.name, res)))
    return frozenset(rules)


def _thin_link(topo: I.Topology, path: tuple[str, ...], bps: int):
    for a, b in pairwise(path):
        lk = topo.link_between(a, b)
        if lk is not None and lk.bandwidth.bps < bps:
            return lk, f"link {lk.end(a)}--{lk.end(b)}"
    return None


def _no_node(svc: I.Service, topo: I.Topology, fi: I.FunctionInstance,
             paths: Mapping[str, tuple[str, ...]]) -> Diagnostic:
    targets = ", ".join(t.target for t in fi.targets)
    able = [n.name for n in (*topo.switches, *topo.hosts) if R.target_on(fi, n) is not None]
    if not able:
        kinds = sorted({"switches" if t.family == I.P4_FAMILY else "hosts" for t in fi.targets})
        return error("E0810", f"`{svc.name}`: no node of topology `{topo.name}` can run "
                     f"{fi.name} (it runs on {targets})", fi.span,
                     f"add {' or '.join(kinds)} to `{topo.name}`")
    notes = [Note(f"route from `{src}`: {' → '.join(p)}") for src, p in paths.items()]
    shown = [f"`{n}`" for n in able]
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return error("E0810", f"`{svc.name}`: no node that can run {fi.name} ({listed}) is "
                 "on or beside the path of every source", fi.span,
                 "detours leave the path at a switch and reach the node through switches "
                 "only; link that node to a switch on the path", notes)
