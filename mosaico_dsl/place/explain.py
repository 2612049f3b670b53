"""Why no placement exists, in user terms: minimal sets of conflicting constraints.

Every user-level rule (a latency budget, a node's capacity, ``require secure``, a pin, …)
is guarded by its own literal in the explaining model. CP-SAT, asked to satisfy them all
as assumptions, answers with a set of assumptions sufficient for infeasibility; deleting
members one at a time while the rest stays infeasible shrinks it to a *minimal* conflict:
drop any one rule and a placement exists. That rule set is reported as one diagnostic, its
rules relaxed, and the search repeated to report further, independent conflicts.

Each quantitative rule in a conflict is then measured: "with the other rules of this
conflict holding, the best achievable value is V" — the cheapest latency of a service (with
its hop-by-hop breakdown) or the least a node must hold — which by minimality violates the
rule. That is the number a user needs to see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ortools.sat.python import cp_model

from ..diagnostics import Diagnostic, Note, error
from ..ir import _ir as I
from . import resources as R
from ._cpsat import Encoding
from ._problem import Kind, Problem, Rule, build, transits_of
from .latency import Breakdown, breakdown, describe, format_time
from .objective import complete
from .options import Options
from .placement import Placement

__all__ = ["explain", "MAX_CONFLICTS"]

MAX_CONFLICTS = 8

_CODES = {Kind.LATENCY: "E0801", Kind.CAPACITY: "E0802", Kind.SECURE: "E0803",
          Kind.PIN: "E0804", Kind.PLACE: "E0805", Kind.QUEUE: "E0806",
          Kind.PRIORITY_QUEUES: "E0807", Kind.EGRESS: "E0808", Kind.BANDWIDTH: "E0809",
          Kind.ORDER: "E0810"}
# Which rule of a conflict the diagnostic is about: the resource or number that is short
# first, then the requirements, then the user's own placement directives.
_PRIMARY = (Kind.CAPACITY, Kind.LATENCY, Kind.SECURE, Kind.PRIORITY_QUEUES, Kind.EGRESS,
            Kind.QUEUE, Kind.BANDWIDTH, Kind.PLACE, Kind.PIN, Kind.ORDER)
_ATTRIBUTE = {"stages": "stages", "table_entries": "table_entries",
              "register_bits": "register_bits", "meters": "meters", "vcpus": "vcpus",
              "ram": "ram"}


def explain(program: I.Program, options: Options) -> list[Diagnostic]:
    """One diagnostic per independent minimal conflict (at most :data:`MAX_CONFLICTS`).

    Explaining a large program rule by rule would be slow, so the services to look at are
    first located on the optimiser's own (pruned) model, with only the rules that couple
    services switchable; the full explanation then runs on those services alone.
    """
    out: list[Diagnostic] = []
    transits = transits_of(program)
    remaining = list(program.services)
    budget = _Budget(options.explain_time)
    while remaining and len(out) < MAX_CONFLICTS and not (out and budget.spent_out):
        sub = replace(program, services=tuple(remaining))
        stuck, culprits, wide = _locate(sub, transits, options, budget)
        # A service whose own rules leave a function nowhere to run conflicts alone.
        foci = [[{name}] for name in stuck] or [[culprits, wide]]
        done: set[str] = set()
        for attempts in foci:
            for names in attempts:  # the narrow focus first; the wide one if it missed
                if len(out) >= MAX_CONFLICTS or not names:
                    break
                focus = replace(program, services=tuple(s for s in remaining
                                                        if s.name in names))
                if out and budget.spent_out:
                    break
                ex = _Explainer(build(focus, prune=False, transits=transits), options, budget)
                found = ex.run(MAX_CONFLICTS - len(out))
                done |= names
                if found:
                    out.extend(found)
                    break
        if not done:
            break
        remaining = [s for s in remaining if s.name not in done]
    if not out:
        out.append(error("E0812", "the placement model found no placement, but relaxing "
                         "nothing made one appear", program.span,
                         "this is a bug in mosaico's placement: please report it with the "
                         "program"))
    elif remaining and (len(out) >= MAX_CONFLICTS or budget.spent_out):
        last = out[-1]
        out[-1] = replace(last, notes=(*last.notes, Note(
            f"stopped looking for further conflicts after {len(out)}: fix these and run "
            "again")))
    return out


class _Budget:
    """Deterministic solver time spent explaining; further conflicts are only looked for
    while it lasts (the first one is always found)."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.spent = 0.0

    def charge(self, solver: cp_model.CpSolver) -> None:
        self.spent += solver.deterministic_time

    @property
    def spent_out(self) -> bool:
        return self.spent >= self.limit


# The explainer locates conflicts on the optimiser's model with these rules hard (they
# concern one service or node each); latency and capacity, which couple services, stay
# switchable so that the conflict names every service it involves.
_LOCATE_HARD = frozenset(Kind) - {Kind.LATENCY, Kind.CAPACITY}


def _locate(program: I.Program, transits, options: Options, budget: _Budget
            ) -> tuple[list[str], set[str], set[str]]:
    """(services stuck by their own rules, services in one conflict, a wider set sure to
    contain that conflict); all empty if ``program`` can be placed."""
    problem = build(program, prune=_LOCATE_HARD, transits=transits)
    stuck = [space.name for space in problem.services
             if any(not c for c in space.choices.values())]
    if stuck:
        return stuck, set(), set()
    everyone = {s.name for s in program.services}
    enc = Encoding(problem, explain=True)
    solver = _solver(options)
    enc.model.add_assumptions(list(enc.literals.values()))
    status = solver.solve(enc.model)
    budget.charge(solver)
    if status != cp_model.INFEASIBLE:
        found = status not in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        return [], everyone if found else set(), everyone if found else set()
    by_index = {v.index: r for r, v in enc.literals.items()}
    core = [by_index[i] for i in solver.sufficient_assumptions_for_infeasibility()
            if i in by_index]
    named: set[str] = set()
    nodes: set[tuple[str, str]] = set()
    for rule in core:
        if rule.kind is Kind.CAPACITY:
            nodes.add(rule.subject[:2])
        else:
            named |= _services_of(problem, rule)
    sharing = {space.name for space in problem.services
               if any((space.service.topology, c.node) in nodes
                      for cs in space.choices.values() for c in cs)}
    # Services whose own hard rules force a function onto a node of the conflict take
    # part in it without any of their rules being named.
    forced = {space.name for space in problem.services
              if any(cs and all((space.service.topology, c.node) in nodes for c in cs)
                     for cs in space.choices.values())}
    narrow = (named | forced) if named else sharing
    return [], narrow or everyone, (named | sharing) or everyone


def _services_of(problem: Problem, rule: Rule) -> set[str]:
    if rule.kind is Kind.CAPACITY:
        topo, node, _ = rule.subject
        return {space.name for space in problem.services if space.service.topology == topo
                and any(c.node == node for cs in space.choices.values() for c in cs)}
    if rule.kind is Kind.EGRESS:
        group = next(g for g in problem.groups if g.rule == rule)
        return {problem.instance(i).service for i in group.instances}
    if rule.kind is Kind.PRIORITY_QUEUES:
        return set()
    if rule.kind in (Kind.PIN, Kind.PLACE, Kind.QUEUE):
        return {problem.instance(rule.subject[0]).service}
    return {rule.subject[0]}


def _solver(options: Options) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    # Assumption cores need the sequential search: the interleaved portfolio ignores
    # assumptions.
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = options.seed
    solver.parameters.max_deterministic_time = options.deterministic_time
    # Many small feasibility checks of one model: presolving each costs more than it saves.
    solver.parameters.cp_model_presolve = False
    return solver


@dataclass(frozen=True)
class _Best:
    """The best value a quantity reaches with a conflict's other rules holding."""

    value: int
    placement: Placement


class _Explainer:
    def __init__(self, problem: Problem, options: Options, budget: _Budget) -> None:
        self.problem = problem
        self.budget = budget
        self.enc = Encoding(problem, explain=True)
        self.solver = _solver(options)
        self.instances = {fi.id: fi for fi in problem.program.instances()}
        self._by_index = {v.index: r for r, v in self.enc.literals.items()}
        self._worst: dict[str, cp_model.IntVar] = {}

    # ------------------------------------------------------------------ search

    def _status(self, rules: Sequence[Rule], objective=None) -> int:
        m = self.enc.model
        m.clear_assumptions()
        m.add_assumptions([self.enc.literals[r] for r in rules])
        m.clear_objective()
        if objective is not None:
            m.minimize(objective)
        status = self.solver.solve(m)
        self.budget.charge(self.solver)
        return status

    def run(self, limit: int) -> list[Diagnostic]:
        out: list[Diagnostic] = []
        rules = sorted(self.enc.literals, key=Rule.sort_key)
        # Chain order is the background every other rule is judged against; only when it
        # cannot hold by itself is it the conflict.
        self.background = [r for r in rules if r.kind is Kind.ORDER]
        active = [r for r in rules if r.kind is not Kind.ORDER]
        while len(out) < limit and self._status(self.background) == cp_model.INFEASIBLE:
            conflict = self._minimise(self._core(self.background), background=[])
            out.append(self._describe(conflict))
            self.background = [r for r in self.background if r not in conflict]
        while len(out) < limit:
            if self._status(self.background + active) != cp_model.INFEASIBLE:
                break
            conflict = self._minimise(self._core(active), background=self.background)
            out.append(self._describe(conflict))
            active = [r for r in active if r not in conflict]
            if self.budget.spent_out:
                break
        return out

    def _core(self, rules: Sequence[Rule]) -> list[Rule]:
        """The members of ``rules`` in the last infeasible solve's assumption core."""
        found = {self._by_index[i] for i in self.solver.sufficient_assumptions_for_infeasibility()
                 if i in self._by_index}
        return [r for r in rules if r in found] or list(rules)

    def _minimise(self, core: list[Rule], background: list[Rule]) -> list[Rule]:
        """Deletion-based: drop each rule in turn; keep it only if the rest is feasible."""
        conflict = list(core)
        k = 0
        while k < len(conflict):
            trial = conflict[:k] + conflict[k + 1:]
            if trial and self._status(background + trial) == cp_model.INFEASIBLE:
                # Rules already found necessary stay in every smaller core, so keeping the
                # new core's order keeps them before position k.
                conflict = self._core(trial)
            else:
                k += 1
        return conflict

    def _best(self, conflict: Sequence[Rule], rule: Rule, objective) -> _Best | None:
        others = [r for r in conflict if r != rule]
        background = [r for r in self.background if r not in others]
        status = self._status(background + others, objective)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return None
        value = round(self.solver.objective_value)
        ordered = {r.subject[0] for r in background}
        solution = self.enc.placement(lambda v: self.solver.boolean_value(v), ordered)
        return _Best(value, complete(self.problem.program, solution, None))

    def _worst_latency(self, service: str) -> cp_model.IntVar:
        if service not in self._worst:
            self._worst[service] = self.enc.worst_latency(service)
        return self._worst[service]

    # ------------------------------------------------------------------ diagnostics

    def _describe(self, conflict: list[Rule]) -> Diagnostic:
        self._conflict = conflict
        primary = min(conflict, key=lambda r: (_PRIMARY.index(r.kind), r.subject))
        others = [r for r in conflict if r != primary]
        facts = self._facts(conflict)
        headline, alone, span, hint = self._headline(primary, facts)
        if not others:
            message = alone
        elif primary.kind in (Kind.LATENCY, Kind.CAPACITY):
            # A number that is too large *given* the other rules.
            head, _, tail = headline.partition(" (")
            given = _join([self._short(r) for r in others])
            message = f"{head}, given {given}" + (f" ({tail}" if tail else "")
        else:
            message = f"{headline}, which conflicts with " + \
                      _join([self._short(r) for r in others])
        notes = []
        for rule in conflict:
            if rule != primary or rule.kind in (Kind.CAPACITY,):
                notes.extend(self._notes(rule, facts, is_primary=rule == primary))
        notes.extend(self._routes(conflict))
        return error(_CODES[primary.kind], message, span, hint, notes)

    def _facts(self, conflict: list[Rule]) -> dict[Rule, _Best]:
        facts: dict[Rule, _Best] = {}
        for rule in conflict:
            if rule.kind is Kind.LATENCY:
                best = self._best(conflict, rule, self._worst_latency(rule.subject[0]))
            elif rule.kind is Kind.CAPACITY:
                expr = self.enc.usage.get(rule.subject)
                best = self._best(conflict, rule, expr) if expr is not None else None
            else:
                continue
            if best is not None:
                facts[rule] = best
        return facts

    def _service(self, name: str) -> I.Service:
        return self.problem.program.service(name)

    def _node(self, topo: str, name: str) -> I.NodeIR:
        return self.problem.program.topology(topo).node(name)

    def _worst_route(self, service: str, best: _Best) -> tuple[str, Breakdown]:
        svc = self._service(service)
        topo = self.problem.program.topology(svc.topology)
        runs = {a.instance: a.target for a in best.placement.assignments}
        found = [(r.source, breakdown(topo, svc, r.visits, runs))
                 for r in best.placement.routes_of(service)]
        return max(found, key=lambda sb: (sb[1].total, sb[0]))

    def _contributions(self, rule: Rule, best: _Best
                       ) -> list[tuple[I.FunctionInstance, int, list[str]]]:
        """What takes ``rule``'s resource on its node in the least-usage placement: (first
        instance, amount, services needing it); a shared egress queue is one entry."""
        topo, node_name, res = rule.subject
        named = {n for r in self._conflict if r.kind not in (Kind.CAPACITY, Kind.EGRESS)
                 for n in self._services_named(r)}
        out: list[tuple[I.FunctionInstance, int, list[str]]] = []
        shared: dict[tuple, list[str]] = {}
        for a in best.placement.on_node(node_name):
            fi = self.instances[a.instance]
            amount = R.demand(fi.option(a.target)).get(res, 0)
            if self._topology(fi.id) != topo or not amount:
                continue
            key = R.shared_queue_key(self._service(fi.service), fi)
            if key is None:
                out.append((fi, amount, [fi.service]))
            elif (key, a.target) in shared:
                shared[(key, a.target)].append(fi.service)
            else:
                shared[(key, a.target)] = [fi.service]
                out.append((fi, amount, shared[(key, a.target)]))
        # Of the services sharing a queue, those the conflict names are the ones needing it.
        return [(fi, amount, [u for u in users if u in named] or users[:1])
                for fi, amount, users in out]

    def _services_named(self, rule: Rule) -> list[str]:
        if rule.kind in (Kind.PIN, Kind.PLACE, Kind.QUEUE):
            return [self.instances[rule.subject[0]].service]
        if rule.kind is Kind.EGRESS:
            group = next(g for g in self.problem.groups if g.rule == rule)
            return [self.instances[i].service for i in group.instances]
        if rule.kind in (Kind.CAPACITY, Kind.PRIORITY_QUEUES):
            return []
        return [rule.subject[0]]

    def _filters(self, service: str) -> list[I.FunctionInstance]:
        return [fi for fi in self._service(service).chain if fi.kind == "filter"]

    def _headline(self, rule: Rule, facts) -> tuple[str, str, object, str]:
        """(headline when other rules conflict with it, message when alone, span, hint)."""
        k, subj = rule.kind, rule.subject
        if k is Kind.LATENCY:
            svc = self._service(subj[0])
            budget = format_time(svc.requirements.latency)
            hint = "raise the budget, let functions run on faster targets, or shorten the path"
            best = facts.get(rule)
            if best is None:
                text = f"`{svc.name}` cannot meet its {budget} latency budget"
                return text, text, svc.span, hint
            src, b = self._worst_route(svc.name, best)
            text = (f"`{svc.name}`: latency {format_time(b.total)} > {budget} budget even at "
                    f"its cheapest (from `{src}`: {describe(b)})")
            return text, text, svc.span, hint
        if k is Kind.CAPACITY:
            topo, node_name, res = subj
            node = self._node(topo, node_name)
            offered = self.problem.capacities[(topo, node_name)][res]
            best = facts.get(rule)
            hint = (f"raise `{_ATTRIBUTE[res]}` on `{node_name}`, add a node able to run "
                    "these functions, or relax the other constraints listed")
            if best is None:
                text = f"`{node_name}` offers only {R.amount(offered, res)}"
                return text, text, node.span, hint
            users = dict.fromkeys(name for _, _, users in self._contributions(rule, best)
                                  for name in users)
            who = _join([f"`{n}`" for n in users])
            text = (f"`{node_name}` offers {R.amount(offered, res)} but {who} "
                    f"{'needs' if len(users) == 1 else 'need'} at least "
                    f"{R.amount(best.value, res)} there")
            return text, text, node.span, hint
        if k is Kind.SECURE:
            svc = self._service(subj[0])
            names = _join(dict.fromkeys(fi.name for fi in self._filters(svc.name)))
            topo = self.problem.program.topology(svc.topology)
            trusted = [n.name for n in (*topo.switches, *topo.hosts) if n.trusted]
            return (f"`{svc.name}` requires `secure`, so {names} must run on trusted nodes",
                    f"`{svc.name}` requires `secure`, but no trusted node can run {names} "
                    "for it",
                    svc.span,
                    "mark a node that can run them `trusted: true` "
                    f"(trusted now: {', '.join(f'`{t}`' for t in trusted) or 'none'})")
        if k is Kind.PRIORITY_QUEUES:
            topo, sw = subj
            switch = self._node(topo, sw)
            queues = [fi for fi in self.instances.values()
                      if fi.kind == "queue" and R.queues_needed(fi) > switch.priority_queues
                      and self._topology(fi.id) == topo]
            need = max((R.queues_needed(fi) for fi in queues), default=2)
            names = _join(dict.fromkeys(fi.name for fi in queues)) or "its queue"
            text = f"{names} needs {need} priority queues but `{sw}` has " \
                   f"{switch.priority_queues}"
            return (text, f"{text}, and can run nowhere else", switch.span,
                    f"set `priority_queues: {need}` on `{sw}` (BMv2 --priority-queues)")
        if k is Kind.EGRESS:
            topo, dst = subj
            group = next(g for g in self.problem.groups if g.rule == rule)
            fis = [self.instances[i] for i in group.instances]
            services = _join([f"`{fi.service}`" for fi in fis])
            text = (f"{services} share the egress queue towards `{dst}`, so their "
                    f"{_join(dict.fromkeys(fi.name for fi in fis))} must run on one node")
            return (text, f"{text}, and no node can run all of them", fis[0].span,
                    "let the queues run on the same node: drop conflicting pins or `place:`")
        if k is Kind.QUEUE:
            fi = self.instances[subj[0]]
            svc = self._service(fi.service)
            last = sorted({r.path[-2] for r in self.problem.space_of(svc.name).routes
                           if len(r.path) > 2})
            where = f"on the last switch before it (`{last[0]}`) or on a host" \
                if len(last) == 1 else \
                (f"on a host (traffic reaches `{svc.destination}` through "
                 f"{_join(f'`{n}`' for n in last)}: no one switch is its last hop)")
            text = (f"{fi.name} of `{svc.name}` shapes the egress queue towards "
                    f"`{svc.destination}`: it must run {where}, with every later step on "
                    "the same node")
            return (text, f"{text}, and no node allows that", fi.span,
                    "give the last switch room for it, add a host that can run it and the "
                    "steps after it, or move the queue to the end of the chain")
        if k is Kind.BANDWIDTH:
            svc = self._service(subj[0])
            bw = svc.requirements.bandwidth
            text = f"`{svc.name}` requires {bw}, so no detour may cross a thinner link"
            return (text, f"`{svc.name}` requires {bw}, but every node that can run its "
                    "functions off the path is reached over thinner links", svc.span,
                    "raise the bandwidth of the links to the hosts, or lower the requirement")
        if k is Kind.PLACE:
            fi = self.instances[subj[0]]
            kind = "switch" if fi.place == I.P4_FAMILY else "host"
            text = f"{fi.name} of `{fi.service}` has `place: {fi.place}`"
            return (text, f"{text}, but no {kind} can run it there", fi.span,
                    f"remove `place: {fi.place}`, or add a {kind} that can run it")
        if k is Kind.PIN:
            fi = self.instances[subj[0]]
            text = f"{fi.name} of `{fi.service}` is pinned to `{fi.pin}`"
            return (text, f"{text}, which no route of `{fi.service}` can reach", fi.span,
                    "change or remove the pin (`@ node`)")
        svc = self._service(subj[0])  # ORDER
        text = f"`{svc.name}` must run its steps in chain order along each route"
        return (text, f"`{svc.name}`: no route can run its steps in chain order: the nodes "
                "able to run later steps come before those able to run earlier ones",
                svc.span, "let the steps run on more nodes, or reorder the chain")

    def _short(self, rule: Rule) -> str:
        k, subj = rule.kind, rule.subject
        if k is Kind.LATENCY:
            svc = self._service(subj[0])
            return f"`{svc.name}`'s {format_time(svc.requirements.latency)} latency budget"
        if k is Kind.CAPACITY:
            offered = self.problem.capacities[(subj[0], subj[1])][subj[2]]
            return f"the {R.amount(offered, subj[2])} of `{subj[1]}`"
        if k is Kind.SECURE:
            return f"`require secure` of `{subj[0]}`"
        if k is Kind.PRIORITY_QUEUES:
            switch = self._node(*subj)
            return f"the {switch.priority_queues} priority queue(s) of `{subj[1]}`"
        if k is Kind.EGRESS:
            return f"the egress queue towards `{subj[1]}` shared by several services"
        if k is Kind.QUEUE:
            fi = self.instances[subj[0]]
            return f"{fi.name} of `{fi.service}` on the egress towards " \
                   f"`{self._service(fi.service).destination}`"
        if k is Kind.BANDWIDTH:
            svc = self._service(subj[0])
            return f"the {svc.requirements.bandwidth} `{svc.name}` requires"
        if k is Kind.PLACE:
            fi = self.instances[subj[0]]
            return f"`place: {fi.place}` on {fi.name} of `{fi.service}`"
        if k is Kind.PIN:
            fi = self.instances[subj[0]]
            return f"{fi.name} of `{fi.service}` @ {fi.pin}"
        return f"the chain order of `{subj[0]}`"

    def _notes(self, rule: Rule, facts, *, is_primary: bool) -> list[Note]:
        k, subj = rule.kind, rule.subject
        best = facts.get(rule)
        if k is Kind.LATENCY:
            svc = self._service(subj[0])
            budget = format_time(svc.requirements.latency)
            if best is None:
                return [Note(f"`{svc.name}` must arrive within {budget}", svc.span)]
            src, b = self._worst_route(svc.name, best)
            return [Note(f"with the other constraints holding, `{svc.name}` takes at least "
                         f"{format_time(b.total)} > {budget} (from `{src}`: {describe(b)})",
                         svc.span)]
        if k is Kind.CAPACITY:
            topo, node_name, res = subj
            node = self._node(topo, node_name)
            offered = self.problem.capacities[(topo, node_name)][res]
            notes = []
            if not is_primary:
                need = f"; the others need at least {R.amount(best.value, res)}" if best else ""
                notes.append(Note(f"`{node_name}` offers {R.amount(offered, res)}{need}",
                                  node.span))
            if best is not None:
                for fi, amount, users in self._contributions(rule, best):
                    whose = f"`{fi.service}`" if users == [fi.service] else \
                        f"the egress queue towards `{self._service(fi.service).destination}`" \
                        f" ({_join(f'`{u}`' for u in users)})"
                    notes.append(Note(f"{fi.name} of {whose} takes {R.amount(amount, res)} "
                                      f"on `{node_name}`", fi.span))
            return notes
        if k is Kind.SECURE:
            svc = self._service(subj[0])
            return [Note(f"`{svc.name}` requires `secure`: its mitigations run on trusted "
                         "nodes only", svc.span)]
        if k is Kind.PRIORITY_QUEUES:
            switch = self._node(*subj)
            return [Note(f"`{subj[1]}` has {switch.priority_queues} priority queue(s)",
                         switch.span)]
        if k is Kind.PIN or k is Kind.PLACE or k is Kind.QUEUE:
            fi = self.instances[subj[0]]
            return [Note(self._short(rule), fi.span)]
        if k is Kind.EGRESS:
            group = next(g for g in self.problem.groups if g.rule == rule)
            return [Note(f"`{self.instances[i].service}` runs its "
                         f"{self.instances[i].name} towards `{subj[1]}`",
                         self.instances[i].span) for i in group.instances]
        svc = self._service(subj[0])
        return [Note(self._short(rule), svc.span)]

    def _routes(self, conflict: list[Rule]) -> list[Note]:
        """The base paths of the services involved, for orientation."""
        names = [n for rule in conflict for n in self._services_named(rule)]
        notes = []
        for name in dict.fromkeys(names):
            for r in self.problem.space_of(name).routes:
                notes.append(Note(f"`{name}` from `{r.source}` follows "
                                  f"{' → '.join(r.path)}"))
        return notes

    def _topology(self, instance_id: str) -> str:
        return self._service(self.instances[instance_id].service).topology


def _join(items, limit: int = 6) -> str:
    """``a``, ``a and b``, ``a, b and c``; long lists end ``… and 12 more``."""
    items = list(items)
    if len(items) > limit:
        items = [*items[:limit - 1], f"{len(items) - limit + 1} more"]
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
