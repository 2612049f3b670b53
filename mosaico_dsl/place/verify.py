"""Check a placement against the program, independently of how it was found.

The verifier walks the placed topology — every route visit by visit — and re-checks what
the placement promises: every instance placed once on a node that can run it, pins and
``place:`` honoured, routes that really connect source to destination through linked nodes
and run the chain in order, capacities summed over all services, priority queues, latency
budgets recomputed from link delays and processing latencies, the security path property,
queues on the egress towards the destination and shared egress queues on one node, and
link bandwidths. It shares no code with the solver's encoding; :func:`place` runs it on
every placement and the compiler refuses to emit artifacts if it fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from itertools import pairwise

from ..diagnostics import Diagnostic, Span, error
from ..ir import _ir as I
from . import resources as R
from .latency import breakdown, format_time
from .placement import Placement

__all__ = ["Check", "Violation", "verify"]


class Check(Enum):
    ASSIGNMENT = "assignment"
    PIN = "pin"
    PLACE = "place"
    ROUTE = "route"
    ORDER = "order"
    CAPACITY = "capacity"
    PRIORITY_QUEUES = "priority queues"
    LATENCY = "latency"
    SECURE = "secure"
    QUEUE = "queue"
    EGRESS = "egress"
    BANDWIDTH = "bandwidth"


@dataclass(frozen=True, slots=True)
class Violation:
    check: Check
    message: str
    span: Span | None = None

    def diagnostic(self) -> Diagnostic:
        return error("E0812", f"placement fails verification ({self.check.value}): "
                     f"{self.message}", self.span,
                     "this is a bug in mosaico's placement, not in your program: please "
                     "report it with the program")


def verify(program: I.Program, placement: Placement) -> tuple[Violation, ...]:
    """Every way ``placement`` breaks ``program``'s rules (empty if it is sound)."""
    out: list[Violation] = []
    report = out.append
    instances = {fi.id: fi for fi in program.instances()}
    services = {s.name: s for s in program.services}
    placed = _assignments(program, placement, instances, services, report)
    for svc in program.services:
        _routes(program, svc, placement, placed, report)
    _capacities(program, placed, instances, report)
    _egress(program, placed, report)
    return tuple(out)


def _assignments(program, placement, instances, services, report):
    placed: dict[str, tuple[str, str]] = {}
    for a in placement.assignments:
        fi = instances.get(a.instance)
        if fi is None:
            report(Violation(Check.ASSIGNMENT, f"unknown instance `{a.instance}`"))
            continue
        if a.instance in placed:
            report(Violation(Check.ASSIGNMENT, f"{fi.id} ({fi.name}) is placed twice", fi.span))
            continue
        topo = program.topology(services[fi.service].topology)
        if not topo.has_node(a.node):
            report(Violation(Check.ASSIGNMENT, f"{fi.id} ({fi.name}) is placed on `{a.node}`, "
                             f"not a node of `{topo.name}`", fi.span))
            continue
        node = topo.node(a.node)
        option = fi.option(a.target)
        if option is None:
            report(Violation(Check.ASSIGNMENT, f"{fi.id} ({fi.name}) cannot run as "
                             f"{a.target}", fi.span))
            continue
        if R.target_on(fi, node) != a.target:
            report(Violation(Check.ASSIGNMENT, f"{fi.id} ({fi.name}) runs as {a.target} on "
                             f"{node.kind} `{node.name}`, which cannot run it", fi.span))
            continue
        if (a.latency is not None and a.latency != option.latency) or \
                (a.cost is not None and a.cost != option.cost):
            report(Violation(Check.ASSIGNMENT, f"{fi.id} ({fi.name}): recorded latency or "
                             f"cost differ from its {a.target} cost model", fi.span))
        placed[a.instance] = (a.node, a.target)
        if fi.pin is not None and a.node != fi.pin:
            report(Violation(Check.PIN, f"{fi.name} is pinned to `{fi.pin}` but runs on "
                             f"`{a.node}`", fi.span))
        if fi.place is not None and I.target_family(a.target) != fi.place:
            report(Violation(Check.PLACE, f"{fi.name} has `place: {fi.place}` but runs as "
                             f"{a.target}", fi.span))
        if services[fi.service].requirements.secure and fi.kind == "filter" \
                and not node.trusted:
            report(Violation(Check.SECURE, f"`{fi.service}` requires `secure` but {fi.name} "
                             f"runs on `{node.name}`, which is not trusted", fi.span))
        if fi.kind == "queue" and isinstance(node, I.Switch) \
                and node.priority_queues < R.queues_needed(fi):
            report(Violation(Check.PRIORITY_QUEUES, f"{fi.name} needs "
                             f"{R.queues_needed(fi)} priority queues but `{node.name}` has "
                             f"{node.priority_queues}", fi.span))
    for fi in instances.values():
        if fi.id not in placed and not any(a.instance == fi.id for a in placement.assignments):
            report(Violation(Check.ASSIGNMENT, f"{fi.id} ({fi.name}) is not placed", fi.span))
    return placed


def _routes(program, svc: I.Service, placement: Placement, placed, report) -> None:
    topo = program.topology(svc.topology)
    routes = placement.routes_of(svc.name)
    for src in svc.sources:
        mine = [r for r in routes if r.source == src]
        if len(mine) != 1:
            report(Violation(Check.ROUTE, f"`{svc.name}` has {len(mine)} routes from "
                             f"`{src}`, not one", svc.span))
            if not mine and svc.requirements.secure and not _trusted(topo, src):
                report(Violation(Check.SECURE, f"traffic of `{svc.name}` from untrusted "
                                 f"`{src}` has no route through its mitigations", svc.span))
    for r in routes:
        if r.source not in svc.sources:
            report(Violation(Check.ROUTE, f"`{svc.name}` has a route from `{r.source}`, "
                             "which is not one of its sources", svc.span))
            continue
        _route(program, topo, svc, r, placed, report)


def _trusted(topo: I.Topology, name: str) -> bool:
    return topo.has_node(name) and topo.node(name).trusted


def _route(program, topo: I.Topology, svc: I.Service, route, placed, report) -> None:
    where = f"`{svc.name}` from `{route.source}`"
    nodes = route.nodes
    if not nodes or nodes[0] != route.source or nodes[-1] != svc.destination:
        report(Violation(Check.ROUTE, f"{where}: the route must start at `{route.source}` and "
                         f"end at `{svc.destination}`, not {' → '.join(nodes) or 'nothing'}",
                         svc.span))
        return
    unknown = [n for n in nodes if not topo.has_node(n)]
    if unknown:
        report(Violation(Check.ROUTE, f"{where}: unknown node `{unknown[0]}` on the route",
                         svc.span))
        return
    linked = True
    for a, b in pairwise(nodes):
        if topo.link_between(a, b) is None:
            report(Violation(Check.ROUTE, f"{where}: `{a}` → `{b}` is not a link", svc.span))
            linked = False
    for v in route.visits[1:-1]:
        node = topo.node(v.node)
        if isinstance(node, I.Endpoint) or (isinstance(node, I.Host) and not v.instances):
            report(Violation(Check.ROUTE, f"{where}: traffic transits {node.kind} "
                             f"`{node.name}`, which does not forward", svc.span))
    if route.visits[0].instances or route.visits[-1].instances or \
            svc.destination in nodes[:-1]:
        report(Violation(Check.ROUTE, f"{where}: functions must run between the source and "
                         "the destination, which is reached only at the end", svc.span))

    # Where each instance runs on this route: (visit index, rank within the visit).
    seen: dict[str, tuple[int, int]] = {}
    chain_ids = {fi.id for fi in svc.chain}
    for k, v in enumerate(route.visits):
        for rank, fi_id in enumerate(v.instances):
            if fi_id not in chain_ids:
                report(Violation(Check.ROUTE, f"{where}: `{fi_id}` is not a step of "
                                 f"`{svc.name}`", svc.span))
            elif fi_id in seen:
                report(Violation(Check.ROUTE, f"{where}: {fi_id} runs twice", svc.span))
            else:
                seen[fi_id] = (k, rank)
                if fi_id in placed and placed[fi_id][0] != v.node:
                    report(Violation(Check.ROUTE, f"{where}: {fi_id} is placed on "
                                     f"`{placed[fi_id][0]}` but the route runs it on "
                                     f"`{v.node}`", svc.span))
    for fi in svc.chain:
        if fi.id not in seen:
            report(Violation(Check.ROUTE, f"{where}: {fi.name} ({fi.id}) never runs",
                             fi.span))
    order = [seen[fi.id] for fi in svc.chain if fi.id in seen]
    if order != sorted(order) or len(set(order)) != len(order):
        ran = sorted((pos, fi.name) for fi in svc.chain if (pos := seen.get(fi.id)))
        report(Violation(Check.ORDER, f"{where}: the chain runs out of order: "
                         f"{' → '.join(n for _, n in ran)}", svc.span))

    dst_at = len(route.visits) - 1
    if svc.requirements.secure and not _trusted(topo, route.source):
        for fi in svc.chain:
            if fi.kind == "filter" and (fi.id not in seen or seen[fi.id][0] >= dst_at):
                report(Violation(Check.SECURE, f"{where}: traffic from untrusted "
                                 f"`{route.source}` reaches `{svc.destination}` without "
                                 f"crossing {fi.name}", fi.span))

    queue = svc.queueing
    if queue is not None and queue.id in seen:
        k, _ = seen[queue.id]
        later = [fi for fi in svc.chain[queue.index + 1:] if fi.id in seen]
        strays = [fi.name for fi in later if seen[fi.id][0] != k]
        if strays:
            report(Violation(Check.QUEUE, f"{where}: {', '.join(strays)} run after "
                             f"{queue.name} on another visit; the queue must be the last "
                             "place the traffic is held", queue.span))
        node = topo.node(route.visits[k].node)
        if isinstance(node, I.Switch) and k + 1 != dst_at:
            report(Violation(Check.QUEUE, f"{where}: {queue.name} runs on `{node.name}`, "
                             f"whose next hop is `{nodes[k + 1]}`, not `{svc.destination}`: "
                             "it must shape the egress towards the destination", queue.span))

    bw = svc.requirements.bandwidth
    if bw is not None and linked:
        for a, b in pairwise(nodes):
            lk = topo.link_between(a, b)
            if lk.bandwidth < bw:
                report(Violation(Check.BANDWIDTH, f"{where}: link {lk.end(a)}--{lk.end(b)} "
                                 f"carries {lk.bandwidth}, below the {bw} required",
                                 svc.span))
                break

    if linked:
        runs = {i: placed[i][1] for i in seen if i in placed}
        total = breakdown(topo, svc, route.visits, runs).total
        if route.latency is not None and route.latency != total:
            report(Violation(Check.LATENCY, f"{where}: the route claims "
                             f"{format_time(route.latency)} but adds up to "
                             f"{format_time(total)}", svc.span))
        budget = svc.requirements.latency
        if budget is not None and total > budget:
            report(Violation(Check.LATENCY, f"{where}: latency {format_time(total)} exceeds "
                             f"the {format_time(budget)} budget", svc.span))


def _capacities(program, placed, instances, report) -> None:
    triples = [(instances[i], node, target) for i, (node, target) in placed.items()]
    for (topo_name, node_name), used in sorted(R.usage(program, triples).items()):
        node = program.topology(topo_name).node(node_name)
        offered = R.capacity(node)
        for res in R.over(used, offered):
            report(Violation(Check.CAPACITY, f"`{node_name}` offers "
                             f"{R.amount(offered.get(res, 0), res)} but its functions take "
                             f"{R.amount(used[res], res)}", node.span))


def _egress(program, placed, report) -> None:
    where: dict[tuple[str, str], set[tuple[str, str]]] = {}
    spans: dict[tuple[str, str], Span | None] = {}
    for svc in program.services:
        for fi in svc.chain:
            key = R.shared_queue_key(svc, fi)
            if key is not None and fi.id in placed:
                where.setdefault(key, set()).add(placed[fi.id])
                spans.setdefault(key, fi.span)
    for (topo, dst), spots in sorted(where.items()):
        if len(spots) > 1:
            shown = ", ".join(f"{n} ({t})" for n, t in sorted(spots))
            report(Violation(Check.EGRESS, f"services delivering to `{dst}` share its egress "
                             f"queue, but their queues run on {shown}", spans[(topo, dst)]))
