"""The CP-SAT encoding of a :class:`~._problem.Problem` and its lexicographic solve.

Variables: ``x[i, n]`` — instance ``i`` runs on node ``n``; per route, one Boolean per
location of ``i`` (on the base path, or a detour from one of its switches) that sums to the
``x`` of its node — when a node has a single location on a route the two are the same
variable. Positions along the base path must not decrease along the chain; a detour adds
its round trip once per *excursion* (consecutive instances on the same detour share it).
A route's latency is therefore linear: base path + processing + queue target + detours.

The objective is lexicographic and solved goal by goal — levels whose ranges fit one
weighted sum exactly are solved together — each goal's optimum becoming a constraint of
the next. With ``explain=True`` every user rule is guarded by its own literal instead of
pruned (see :mod:`.explain`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from ..ir import _ir as I
from ._decompose import solve_in_groups
from ._problem import (
    Choice,
    Kind,
    Location,
    Problem,
    Rule,
    build,
    floors,
    transits_of,
)
from ._walk import visits
from .objective import PPM, complete
from .options import Options, _SearchLimit
from .placement import Assignment, Level, Placement, Route, Search

__all__ = ["Encoding", "solve", "optimise", "LEVELS"]

#: Objective levels, most important first: (name, field of Objective it reports).
LEVELS = (
    ("worst budget usage (ppm)", lambda o: o.worst_usage_ppm),
    ("worst latency without budget (ns)", lambda o: o.worst_unbudgeted.ns),
    ("preferences missed", lambda o: o.preference_misses),
    ("vCPUs", lambda o: o.vcpus),
    ("switch stages", lambda o: o.stages),
    ("total latency (ns)", lambda o: o.total_latency.ns),
)


# Levels solved together, as one weighted sum that orders them exactly: each weight is
# larger than everything the levels below it can add up to.
_GOALS = ((LEVELS[0][0], LEVELS[1][0]), (LEVELS[2][0], LEVELS[3][0], LEVELS[4][0]),
          (LEVELS[5][0],))
_MAX_WEIGHTED = 1 << 60


@dataclass
class _Route:
    key: tuple[str, str]
    path: tuple[str, ...]
    budget: int | None
    latency: cp_model.LinearExpr
    upper: int  # no placement makes this route slower
    entries: dict[str, list[tuple[Location, cp_model.IntVar]]] = field(default_factory=dict)


class Encoding:
    """The model; ``feasible`` is False when pruning left an instance nowhere to run."""

    def __init__(self, problem: Problem, *, explain: bool) -> None:
        self.problem = problem
        self.explain = explain
        self.model = cp_model.CpModel()
        self.literals: dict[Rule, cp_model.IntVar] = {}
        self.x: dict[str, dict[str, cp_model.IntVar]] = {}
        self.choices: dict[str, dict[str, Choice]] = {}
        self.routes: dict[tuple[str, str], _Route] = {}
        self.usage: dict[tuple[str, str, str], cp_model.LinearExpr] = {}
        self.feasible = True
        self._decisions: list[cp_model.IntVar] = []
        self._topology_of: dict[str, str] = {}
        for space in problem.services:
            self._service(space)
            if not self.feasible and not explain:
                return
        self._groups()
        self._capacities()

    # ------------------------------------------------------------------ building blocks

    def literal(self, rule: Rule) -> cp_model.IntVar:
        if rule not in self.literals:
            self.literals[rule] = self.model.new_bool_var(f"rule[{rule.kind.value}:"
                                                          f"{'/'.join(rule.subject)}]")
        return self.literals[rule]

    def _enforce(self, constraint: cp_model.Constraint, rule: Rule) -> None:
        if self.explain:
            constraint.only_enforce_if(self.literal(rule))

    def _forbid(self, var: cp_model.IntVar, rules: Iterable[Rule]) -> None:
        for rule in sorted(rules, key=Rule.sort_key):
            self.model.add_implication(self.literal(rule), var.Not())

    def _bool(self) -> cp_model.IntVar:
        v = self.model.new_bool_var("")
        self._decisions.append(v)
        return v

    # ------------------------------------------------------------------ services

    def _service(self, space) -> None:
        m = self.model
        svc = space.service
        allowed: dict[tuple[str, str], dict[str, list[Location]]] = {}
        for r in space.routes:
            allowed[r.key] = {fi_id: [loc for loc in locs if self.explain or not loc.forbid]
                              for fi_id, locs in r.locations.items()}
        processing = []
        slowest = 0
        for fi in svc.chain:
            self._topology_of[fi.id] = svc.topology
            xs: dict[str, cp_model.IntVar] = {}
            chosen: dict[str, Choice] = {}
            for c in space.choices[fi.id]:
                if not self.explain and c.forbid:
                    continue
                if any(all(loc.node != c.node for loc in allowed[r.key][fi.id])
                       for r in space.routes):
                    continue
                xs[c.node] = self._bool()
                chosen[c.node] = c
                if self.explain:
                    self._forbid(xs[c.node], c.forbid)
            self.x[fi.id], self.choices[fi.id] = xs, chosen
            if not xs:
                self.feasible = False
                if not self.explain:
                    return
                continue
            m.add_exactly_one(xs.values())
            processing.extend((xs[n], c.latency) for n, c in chosen.items())
            slowest += max(c.latency for c in chosen.values())
        if not self.feasible:
            return
        proc_expr = cp_model.LinearExpr.weighted_sum([v for v, _ in processing],
                                                     [w for _, w in processing])
        for r in space.routes:
            route = _Route(r.key, r.path, space.budget, 0, 0)
            self.routes[r.key] = route
            detour_vars, detour_weights = [], []
            upper = r.delay + space.queue_target + slowest
            previous: dict[tuple, cp_model.IntVar] = {}
            prev_pos = None
            for fi in svc.chain:
                entries = self._entries(fi.id, r.key, allowed[r.key][fi.id])
                route.entries[fi.id] = entries
                pos = cp_model.LinearExpr.weighted_sum([v for _, v in entries],
                                                       [loc.position for loc, _ in entries])
                if prev_pos is not None:
                    self._enforce(m.add(prev_pos <= pos), Rule(Kind.ORDER, (svc.name,)))
                prev_pos = pos
                here = {}
                longest = 0
                for loc, v in entries:
                    here[loc.key] = v
                    if loc.attach is None:
                        continue
                    longest = max(longest, 2 * loc.delay)
                    if loc.key in previous:  # same detour as the previous step: shared
                        start = self._bool()
                        m.add(start >= v - previous[loc.key])
                        detour_vars.append(start)
                    else:
                        detour_vars.append(v)
                    detour_weights.append(2 * loc.delay)
                previous = here
                upper += longest
            route.latency = (proc_expr + cp_model.LinearExpr.weighted_sum(detour_vars,
                                                                          detour_weights)
                             + r.delay + space.queue_target)
            route.upper = upper
            if space.limit is not None:
                self._enforce(m.add(route.latency <= space.limit),
                              Rule(Kind.LATENCY, (svc.name,)))
        queue = svc.queueing
        if queue is not None:
            self._queue_last(svc, queue)

    def _entries(self, fi_id: str, route_key, locs: list[Location]
                 ) -> list[tuple[Location, cp_model.IntVar]]:
        xs = self.x[fi_id]
        by_node: dict[str, list[Location]] = {}
        for loc in locs:
            if loc.node in xs:
                by_node.setdefault(loc.node, []).append(loc)
        entries = []
        for node, group in by_node.items():
            if len(group) == 1:
                entries.append((group[0], xs[node]))
            else:
                vs = [self._bool() for loc in group]
                self.model.add(sum(vs) == xs[node])
                entries.extend(zip(group, vs, strict=True))
        if self.explain:
            for loc, v in entries:
                self._forbid(v, loc.forbid)
        return entries

    def _queue_last(self, svc: I.Service, queue: I.FunctionInstance) -> None:
        """Every step after the queue runs where the queue does, on the same visit."""
        rule = Rule(Kind.QUEUE, (queue.id,))
        for key, route in self.routes.items():
            if key[0] != svc.name:
                continue
            for fi in svc.chain[queue.index + 1:]:
                later = {loc.key: v for loc, v in route.entries.get(fi.id, [])}
                for loc, v in route.entries.get(queue.id, []):
                    if loc.key in later:
                        self._enforce(self.model.add_implication(v, later[loc.key]), rule)
                    else:
                        self._enforce(self.model.add_implication(v, v.Not()), rule)

    # ------------------------------------------------------------------ shared resources

    def _groups(self) -> None:
        self._group_var: dict[str, dict[str, cp_model.IntVar]] = {}
        for group in self.problem.groups:
            members = [i for i in group.instances if self.x.get(i)]
            if len(members) < 2:
                continue
            nodes = sorted({n for i in members for n in self.x[i]})
            first = members[0]
            for other in members[1:]:
                for n in nodes:
                    a, b = self.x[first].get(n), self.x[other].get(n)
                    if a is not None and b is not None:
                        self._enforce(self.model.add(a == b), group.rule)
                    elif a is not None or b is not None:
                        self._enforce(self.model.add((a if a is not None else b) == 0),
                                      group.rule)
            shared: dict[str, cp_model.IntVar] = {}
            for n in nodes:
                present = [self.x[i][n] for i in members if n in self.x[i]]
                if len(present) == 1:
                    shared[n] = present[0]
                else:
                    g = self._bool()
                    self.model.add_max_equality(g, present)
                    shared[n] = g
            self._group_var[first] = shared
            for other in members[1:]:
                self._group_var[other] = {}

    def _contributions(self) -> dict[tuple[str, str], list[tuple[cp_model.IntVar, dict]]]:
        out: dict[tuple[str, str], list[tuple[cp_model.IntVar, dict]]] = {}
        for fi_id, xs in self.x.items():
            topo = self._topology_of[fi_id]
            cells = self._group_var.get(fi_id, xs)
            for node, var in cells.items():
                choice = self.choices[fi_id].get(node) or self._group_choice(fi_id, node)
                out.setdefault((topo, node), []).append((var, choice.demand))
        return out

    def _group_choice(self, fi_id: str, node: str) -> Choice:
        group = self.problem.group_of(fi_id)
        return next(self.choices[i][node] for i in group.instances
                    if node in self.choices.get(i, {}))

    def _capacities(self) -> None:
        self._contrib = self._contributions()
        for (topo, node), terms in sorted(self._contrib.items()):
            offered = self.problem.capacities[(topo, node)]
            for res, cap in offered.items():
                used = [(v, d[res]) for v, d in terms if d.get(res)]
                if not used:
                    continue
                expr = cp_model.LinearExpr.weighted_sum([v for v, _ in used],
                                                         [a for _, a in used])
                self.usage[(topo, node, res)] = expr
                if sum(a for _, a in used) > cap:
                    self._enforce(self.model.add(expr <= cap),
                                  Rule(Kind.CAPACITY, (topo, node, res)))

    # ------------------------------------------------------------------ objective

    def goals(self) -> list[list[tuple[str, cp_model.LinearExpr, int]]]:
        """The objective as solves: each a list of (level name, expression, upper bound),
        most important first. Levels held constant by the model are left out."""
        m = self.model
        parts: dict[str, tuple[cp_model.LinearExpr, int]] = {}
        budgeted = [r for r in self.routes.values() if r.budget]
        if budgeted:
            top = max(-(-PPM * r.upper // r.budget) for r in budgeted)
            u = m.new_int_var(0, top, "worst_usage")
            for r in budgeted:
                m.add(r.budget * u >= PPM * r.latency)
            parts[LEVELS[0][0]] = (u, top)
        free = [r for r in self.routes.values() if not r.budget]
        if free:
            top = max(r.upper for r in free)
            worst = m.new_int_var(0, top, "worst_unbudgeted")
            for r in free:
                m.add(worst >= r.latency)
            parts[LEVELS[1][0]] = (worst, top)
        instances = {fi.id: fi for fi in self.problem.program.instances()}
        misses = [v for i, xs in self.x.items() if instances[i].prefer is not None
                  for n, v in xs.items()
                  if I.target_family(self.choices[i][n].target) != instances[i].prefer]
        if misses:
            preferring = sum(1 for i in self.x if instances[i].prefer is not None)
            parts[LEVELS[2][0]] = (sum(misses), preferring)
        for name, res in ((LEVELS[3][0], "vcpus"), (LEVELS[4][0], "stages")):
            used = [self.usage[key] for key in sorted(k for k in self.usage if k[2] == res)]
            if used:
                top = sum(max(c.demand.get(res, 0) for c in chosen.values())
                          for chosen in self.choices.values() if chosen)
                parts[name] = (sum(used), top)
        if self.routes:
            parts[LEVELS[5][0]] = (sum(r.latency for r in self.routes.values()),
                                   sum(r.upper for r in self.routes.values()))
        out = []
        for group in _GOALS:
            goal = [(name, *parts[name]) for name in group if name in parts]
            if goal:
                out.append(goal)
        return out

    def worst_latency(self, service: str) -> cp_model.IntVar:
        routes = [r for k, r in self.routes.items() if k[0] == service]
        w = self.model.new_int_var(0, max(r.upper for r in routes), f"worst[{service}]")
        for r in routes:
            self.model.add(w >= r.latency)
        return w

    # ------------------------------------------------------------------ solutions

    def snapshot(self, solver: cp_model.CpSolver) -> dict[cp_model.IntVar, int]:
        return {v: solver.boolean_value(v) for v in self._decisions}

    def placement(self, value: Callable[[cp_model.IntVar], int],
                  services: set[str] | None = None) -> Placement:
        """The placement a solution describes (routes walked from its locations; only
        those of ``services`` if given)."""
        assignments = []
        for fi in self.problem.program.instances():
            xs = self.x.get(fi.id, {})
            node = next((n for n, v in xs.items() if value(v)), None)
            if node is not None:
                c = self.choices[fi.id][node]
                assignments.append(Assignment(fi.id, node, c.target))
        routes = []
        for space in self.problem.services:
            if services is not None and space.name not in services:
                continue
            for r in space.routes:
                route = self.routes[r.key]
                stops = []
                for fi in space.service.chain:
                    loc = next(loc for loc, v in route.entries[fi.id] if value(v))
                    stops.append((fi.id, loc))
                routes.append(Route(space.name, r.source, visits(r.path, stops)))
        return Placement(tuple(assignments), tuple(routes))


def solve(program: I.Program, options: Options, *, exact: bool = False) -> Placement | None:
    """The lexicographically optimal placement (None if there is none).

    The worst budget usage can be no lower than the worst route's floor (base path,
    fastest targets, queue target) allows, and usually is exactly that: so the search
    first caps every route at that bound — a much smaller model — and only if no
    placement fits under it optimises the latency levels on the full model.

    A program larger than ``options.exact_size`` (:func:`size`) is solved in groups
    (:mod:`._decompose`, which may raise :class:`Stuck`) unless ``exact``.
    """
    transits = transits_of(program)
    usage_floor, unbudgeted_floor, limits = _floor_limits(program, floors(program, transits))
    known = {LEVELS[0][0]: usage_floor, LEVELS[1][0]: unbudgeted_floor}
    if not exact and size(program) > options.exact_size:
        narrowed = build(program, limits=limits, transits=transits, width=options.width)
        return solve_in_groups(program, narrowed, options, known, limits, optimise)
    tight = optimise(build(program, limits=limits, transits=transits), options, known)
    if tight is not None:
        return tight
    return optimise(build(program, transits=transits), options, known={})


def size(program: I.Program) -> int:
    """How large the exact model may grow: every service could place its functions on
    every node it can reach, so services × nodes (switches and hosts of its topology)."""
    nodes = {t.name: len(t.switches) + len(t.hosts) for t in program.topologies}
    return sum(nodes.get(s.topology, 0) for s in program.services)


def _floor_limits(program: I.Program, floor: dict[str, list[int]]
                  ) -> tuple[int, int, dict[str, int]]:
    """The lower bounds of the two latency levels and the route limits they imply."""
    usage, unbudgeted = 0, 0
    for svc in program.services:
        budget = svc.requirements.latency
        for f in floor.get(svc.name, ()):
            if budget is not None and budget.ns > 0:
                usage = max(usage, -(-PPM * f // budget.ns))
            else:
                unbudgeted = max(unbudgeted, f)
    limits = {}
    for svc in program.services:
        budget = svc.requirements.latency
        if budget is not None and budget.ns > 0:
            limits[svc.name] = min(budget.ns, usage * budget.ns // PPM)
        else:
            limits[svc.name] = unbudgeted
    return usage, unbudgeted, limits


def optimise(problem: Problem, options: Options, known: Mapping[str, int], *,
             report: bool = True) -> Placement | None:
    """Solve the goals in turn; levels in ``known`` are already optimal at that value.
    Without ``report`` the placement is returned bare — no latencies, objective or search
    record (a group's: the whole program's are computed once, from all of them)."""
    enc = Encoding(problem, explain=False)
    if not enc.feasible:
        return None
    solver = cp_model.CpSolver()
    options.configure(solver)
    best: dict[cp_model.IntVar, int] | None = None
    bounds: dict[str, int] = dict(known)
    goals = [[p for p in goal if p[0] not in known] for goal in enc.goals()]
    goals = [goal for goal in goals if goal]
    stopped = False
    for goal in goals:
        for parts in _solves(goal):
            expr, weights = _weighted(parts)
            enc.model.minimize(expr)
            last = parts[-1][0] == LEVELS[-1][0]
            solver.parameters.relative_gap_limit = options.tie_break_gap if last else 0.0
            solver.parameters.max_deterministic_time = \
                options.tie_break_time if last else options.deterministic_time
            status = solver.solve(enc.model)
            if status == cp_model.INFEASIBLE and best is None:
                return None
            if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                if best is None:
                    raise _SearchLimit()
                # Nothing better than the last solution within the limit; the bound the
                # search proved still says how far from optimal that one may be.
                if len(parts) == 1:
                    bounds[parts[0][0]] = max(0, math.ceil(solver.best_objective_bound - 1e-6))
                stopped = True
                break
            value = round(solver.objective_value)
            enc.model.add(expr <= value)
            best = enc.snapshot(solver)
            # With a gap limit CP-SAT reports OPTIMAL once within it: trust the bound only.
            bound = math.ceil(solver.best_objective_bound - 1e-6)
            values = [solver.value(p) for _, p, _ in parts]
            for (name, _, _), b in zip(parts, _split(bound, weights, values), strict=True):
                bounds[name] = b
        if stopped:
            break
    if best is None:  # nothing to optimise: any solution will do
        status = solver.solve(enc.model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            if status == cp_model.INFEASIBLE:
                return None
            raise _SearchLimit()
        best = enc.snapshot(solver)
    if not report:
        return enc.placement(lambda v: best[v])
    placement = complete(problem.program, enc.placement(lambda v: best[v]), None)
    searched = {name for goal in goals for name, _, _ in goal} | set(known)
    report = []
    for name, get in LEVELS:
        value = get(placement.objective)
        # A level the model holds constant is trivially optimal; one the search never
        # reached (the limit ran out before it) has only the trivial bound 0.
        bound = bounds.get(name, 0) if name in searched else value
        report.append(Level(name, value, min(bound, value)))
    return Placement(placement.assignments, placement.routes, placement.objective,
                     Search("cp-sat", tuple(report)))


def _solves(goal: list[tuple[str, cp_model.LinearExpr, int]]):
    """One weighted solve for the goal if its weights fit in 60 bits, else one per level."""
    total = 0
    for _, _, top in goal:
        total = total * (top + 1) + top
    return [goal] if total < _MAX_WEIGHTED else [[part] for part in goal]


def _weighted(parts) -> tuple[cp_model.LinearExpr, list[int]]:
    weights = []
    w = 1
    for _, _, top in reversed(parts):
        weights.append(w)
        w *= top + 1
    weights.reverse()
    return sum(p * wt for (_, p, _), wt in zip(parts, weights, strict=True)), weights


def _split(bound: int, weights: list[int], values: list[int]) -> list[int]:
    """Per-level lower bounds from a bound on the weighted sum: a level's bound is exact
    only while every level above it has reached its own bound."""
    out = []
    remaining = bound
    for w, v in zip(weights, values, strict=True):
        b = max(0, remaining // w)
        out.append(min(b, v))
        if v != b:
            out.extend(0 for _ in range(len(weights) - len(out)))
            break
        remaining -= b * w
    return out
