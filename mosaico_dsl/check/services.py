"""Service declarations → :class:`ir.Service`: chain rules and static requirement checks.

The requirement checks here are necessary conditions that hold for *any* placement — the
shortest path's link delay plus the fastest target of every function plus the queue's
target already over budget, a bottleneck below the bandwidth asked for, ``secure`` with no
mitigation at all. Placement then proves or refutes the rest on concrete nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..diagnostics import Diagnostic, Note, error, warning
from ..ir import _ir as I
from ..ir.graph import Reach, shortest_path
from ..ir.predicate import Cmp, Field, decide
from ..ir.values import NodeRef
from ..lang import _ast as A
from ..units import Bandwidth, Time
from . import types as T
from .evaluate import Evaluator, did_you_mean
from .functions import Expander
from .limits import BANDWIDTH_REQUIREMENT, LATENCY_BUDGET
from .scope import NodeBinding

__all__ = ["REQUIREMENTS", "REPLY_MODES", "check_service", "check_requirements",
           "check_shared_egress", "latency_floor", "node_evaluator"]

Report = Callable[[Diagnostic], None]

# name → (allowed operators, value type); `secure` takes no value.
REQUIREMENTS: dict[str, tuple[tuple[str, ...], T.Type | None]] = {
    "latency": (("<=", "<"), T.TIME),
    "bandwidth": ((">=", ">"), T.BANDWIDTH),
    "secure": ((), None),
}
# `reply MODE` → whether replies are forwarded back to the source (IR ``Service.replies``).
REPLY_MODES: dict[str, bool] = {"forward": True, "drop": False}


def node_scope_names(topology: I.Topology) -> dict[str, NodeBinding]:
    return {n.name: NodeBinding(n.name, n.kind, getattr(n, "ip", None)) for n in topology.nodes}


def node_evaluator(ev: Evaluator, topology: I.Topology) -> Evaluator:
    """``ev`` with the topology's nodes in scope: what a service on it is checked in (one per
    topology — its scope holds every node, so not one per service)."""
    return ev.with_scope(ev.scope.child(node_scope_names(topology)))


def check_service(s: A.ServiceDecl, topology: I.Topology, ev: Evaluator, expander: Expander,
                  report: Report) -> I.Service | None:
    """The service, or None; ``ev`` has the topology's nodes in scope (:func:`node_evaluator`).
    What depends on paths through the topology is checked by :func:`check_requirements`."""
    ok = True
    seen: dict[str, A.Node] = {}
    for st in s.statements:
        key = {A.MatchStmt: "match", A.FromStmt: "from", A.ReplyStmt: "reply",
               A.Chain: "chain"}.get(type(st)) or f"require {st.name}"
        if key in seen:
            report(error("E0605", f"service `{s.name}` has two `{key}` statements", st.span,
                         "combine them into one" if key != "chain" else
                         "a service has one chain; write a second service for other traffic",
                         [Note("first one here", seen[key].span)]))
            ok = False
        else:
            seen[key] = st

    requirements = _requirements(s, ev, report)
    ok &= requirements is not None
    replies = _replies(s, report)
    ok &= replies is not None

    chain_stmt = s.chain
    if chain_stmt is None or not chain_stmt.steps:
        report(error("E0505", f"service `{s.name}` has no chain", s.span,
                     "add `chain { ... -> Forward(to: server) }`"))
        return None
    for step in chain_stmt.steps:
        ok &= expander.expand(step, ev)
    chain = tuple(expander.instances)
    if not ok:
        return None
    ok &= _chain_rules(s, chain, report)

    destination = None
    if chain and chain[-1].kind == "forward":
        to = chain[-1].args.get("to")
        if isinstance(to, NodeRef):
            destination = to.name
    if destination is None:
        if ok:
            report(error("E0608", f"cannot tell where service `{s.name}` delivers traffic",
                         s.span, "end the chain with `Forward(to: <endpoint>)`"))
        return None

    sources = _sources(s, topology, destination, report)
    if sources is None:
        return None

    match_stmt = s.match
    if match_stmt is not None:
        predicate = ev.predicate(match_stmt.predicate)
        if predicate is None:
            return None
        dst = topology.node(destination)
        if decide(predicate, {"ipv4.dst": dst.ip}) is False:
            report(warning("W0601", f"the `match` of `{s.name}` never selects packets to "
                           f"`{destination}` ({dst.ip}), where its chain forwards them",
                           match_stmt.span, f"match `ipv4.dst == {destination}` (or a prefix "
                           "holding it), or forward to the endpoint the match selects"))
    else:  # no `match`: everything addressed to the destination
        dst = topology.node(destination)
        predicate = Cmp(Field("ipv4", "dst", "ipv4", 32), "==", dst.ip)

    if not ok or requirements is None:
        return None
    return I.Service(s.name, topology.name, predicate, sources, destination, requirements,
                     chain, bool(replies), span=s.span)


def _requirements(s: A.ServiceDecl, ev: Evaluator, report: Report) -> I.Requirements | None:
    values: dict[str, object] = {}
    ok = True
    for r in s.requires:
        spec = REQUIREMENTS.get(r.name)
        if spec is None:
            report(error("E0604", f"unknown requirement `{r.name}`", r.span,
                         did_you_mean(r.name, REQUIREMENTS)
                         or f"requirements: {', '.join(REQUIREMENTS)}"))
            ok = False
            continue
        ops, vtype = spec
        if vtype is None:
            if r.op is not None:
                report(error("E0604", f"`require {r.name}` takes no value", r.span,
                             f"write `require {r.name}`"))
                ok = False
                continue
            values[r.name] = True
            continue
        if r.op is None or r.op not in ops:
            report(error("E0604", f"`require {r.name}` needs `{ops[0]}` and a value", r.span,
                         f"e.g. `require {r.name} {ops[0]} "
                         f"{'20ms' if vtype == T.TIME else '10Mbps'}`"))
            ok = False
            continue
        v = ev.value(r.value, vtype)
        if v is None:
            ok = False
            continue
        limit = LATENCY_BUDGET if r.name == "latency" else BANDWIDTH_REQUIREMENT
        if v.value not in limit:
            report(error("E0304", limit.message(f"`require {r.name}`", v.value), r.span))
            ok = False
            continue
        values[r.name] = v.value
    if not ok:
        return None
    return I.Requirements(values.get("latency"), values.get("bandwidth"),
                          bool(values.get("secure", False)))


def _replies(s: A.ServiceDecl, report: Report) -> bool | None:
    stmt = s.reply
    if stmt is None:
        return True
    if stmt.mode not in REPLY_MODES:
        report(error("E0609", f"unknown reply mode `{stmt.mode}`", stmt.span,
                     did_you_mean(stmt.mode, REPLY_MODES)
                     or "write `reply forward` (the default: replies return to their source) "
                        "or `reply drop`"))
        return None
    return REPLY_MODES[stmt.mode]


def _chain_rules(s: A.ServiceDecl, chain: tuple[I.FunctionInstance, ...], report: Report) -> bool:
    ok = True
    last = chain[-1]
    if last.kind != "forward":
        report(error("E0501", f"the chain of `{s.name}` ends with {last.name}, not a forward",
                     last.span, "end it with `-> Forward(to: <endpoint>)`"))
        ok = False
    for fi in chain[:-1]:
        if fi.kind == "forward":
            report(error("E0502", f"{fi.name} forwards the packet before the end of the chain",
                         fi.span, "steps after it would never run; move it last"))
            ok = False
    queues = [fi for fi in chain if fi.kind == "queue"]
    for extra in queues[1:]:
        report(error("E0503", f"`{s.name}` has a second queueing discipline ({extra.name})",
                     extra.span, "one egress has one queue: keep one",
                     [Note(f"first one: {queues[0].name}", queues[0].span)]))
        ok = False
    return ok


def _sources(s: A.ServiceDecl, topology: I.Topology, destination: str,
             report: Report) -> tuple[str, ...] | None:
    stmt = s.sources
    endpoints = [e.name for e in topology.endpoints]
    if stmt is None:
        others = tuple(e for e in endpoints if e != destination)
        if not others:  # else placement would be asked to route nothing
            report(error("E0606", f"service `{s.name}` has no source: `{destination}` is the "
                         f"only endpoint of topology `{topology.name}`", s.span,
                         "add the endpoints its traffic comes from, linked to a switch"))
            return None
        return others
    ok = True
    for name in stmt.sources:
        if name not in endpoints:
            report(error("E0207", f"`from {name}`: no endpoint `{name}` in topology "
                         f"`{topology.name}`", stmt.span, did_you_mean(name, endpoints)))
            ok = False
        elif name == destination:
            report(error("E0606", f"`{name}` is both a source and the destination", stmt.span))
            ok = False
    return tuple(dict.fromkeys(stmt.sources)) if ok else None


def latency_floor(service: I.Service) -> tuple[Time, Time]:
    """(fastest processing over all steps, the queue's target) — shared with placement."""
    processing = Time(sum(min(t.latency.ns for t in fi.targets) for fi in service.chain))
    queue = service.queueing
    return processing, (queue.queue_target if queue and queue.queue_target else Time(0))


def check_requirements(checked: Sequence[tuple[I.Service, I.Topology, A.ServiceDecl]],
                       report: Report) -> set[str]:
    """Requirements checkable without a placement (a mitigation for ``secure``, the latency
    floor of the fastest path, a path wide enough): the names of the services that fail.
    Services are taken by destination, so that each destination costs one search."""
    failed: set[str] = set()
    ordered = sorted(checked, key=lambda c: (c[0].topology, c[0].destination))
    reaches: dict[int, Reach] = {}
    for svc, topology, decl in ordered:
        if id(topology) not in reaches:
            reaches[id(topology)] = Reach(topology, [s.destination for s, t, _ in ordered
                                                     if t is topology])
        if not _static_requirements(svc, topology, decl, report, reaches[id(topology)]):
            failed.add(svc.name)
    return failed


def _static_requirements(service: I.Service, topology: I.Topology, s: A.ServiceDecl,
                         report: Report, reach: Reach) -> bool:
    ok = True
    req = service.requirements
    if req.secure and not any(fi.kind == "filter" for fi in service.chain):
        report(error("E0602", f"`{service.name}` requires `secure` but its chain has no "
                     "mitigation function", s.span,
                     "add a filter such as `Blocklist(...)`, `RateLimit(...)` or `SynGuard()` "
                     "from std.security"))
        ok = False
    processing, queue = latency_floor(service)
    for src in service.sources:
        least = reach.delay(service.destination, src)
        if least is None:
            report(error("E0606", f"no path from `{src}` to `{service.destination}` in "
                         f"topology `{topology.name}`", s.span,
                         "add links, or list the real sources with `from ...`"))
            ok = False
            continue
        if req.latency is not None:
            links = Time(least)
            total = links + processing + queue
            if total > req.latency:
                path = shortest_path(topology, src, service.destination) or (src, "…")
                where = next((r for r in s.requires if r.name == "latency"), s)
                report(error(
                    "E0601",
                    f"`{service.name}`: latency from `{src}` is at least {total} > "
                    f"{req.latency} budget", where.span,
                    "raise the budget, shorten the path, or choose faster functions",
                    [Note(f"links {' → '.join(path)}: {links}"),
                     Note(f"processing, fastest target of each step: {processing}"),
                     Note(f"queueing target: {queue}")]))
                ok = False
        if req.bandwidth is not None:
            widest = Bandwidth(reach.widest(service.destination).get(src, 0))
            if widest < req.bandwidth:
                where = next((r for r in s.requires if r.name == "bandwidth"), s)
                report(error("E0603", f"`{service.name}`: no path from `{src}` carries "
                             f"{req.bandwidth}; the widest has {widest}", where.span,
                             "lower the requirement or add capacity"))
                ok = False
    return ok


def check_shared_egress(services: list[I.Service], report: Report) -> bool:
    """Services delivering to one endpoint share its egress queue: their queues must agree."""
    ok = True
    first: dict[tuple[str, str], I.Service] = {}
    for svc in services:
        q = svc.queueing
        if q is None:
            continue
        key = (svc.topology, svc.destination)
        other = first.setdefault(key, svc)
        oq = other.queueing
        if other is not svc and (oq.function, oq.args) != (q.function, q.args):
            report(error("E0504", f"`{svc.name}` and `{other.name}` both deliver to "
                         f"`{svc.destination}` but configure its egress queue differently",
                         q.span, "use the same queue and parameters in both, or remove one",
                         [Note(f"{other.name} uses {oq.name} here", oq.span)]))
            ok = False
    return ok
