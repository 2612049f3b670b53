"""Function declarations and invocations.

An invocation is checked against its declaration — unknown, missing and duplicate
arguments, types, units, ranges, the declaration's ``assert``s — and becomes one
:class:`ir.FunctionInstance` per primitive step: composite functions are expanded in place,
their parameters bound as values in the body's scope. Cost models and latencies are
evaluated for the actual arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..diagnostics import Diagnostic, Note, error
from ..ir import _ir as I
from ..ir.values import format_value
from ..lang import _ast as A
from ..lang.printer import format_expr
from ..units import Time
from . import types as T
from .evaluate import Evaluator, did_you_mean
from .limits import COST, PROCESSING_LATENCY
from .modules import Loader
from .scope import FunctionBinding, NodeBinding, ValueBinding

__all__ = ["QUEUEING", "KNOWN_TARGETS", "P4_COST_ATTRS", "VNF_COST_ATTRS", "META_ARGS", "Expander",
           "validate_declaration"]

Report = Callable[[Diagnostic], None]

KNOWN_TARGETS = ("p4.v1model", "linux")
# A `latency` entry that is not a target: the queueing delay a queue function aims for.
QUEUEING = "queueing"
P4_COST_ATTRS = ("tables", "entries", "registers", "register_bits", "counters", "meters",
                 "stages")
VNF_COST_ATTRS = {"vcpu": T.INT, "ram": T.SIZE}
META_ARGS = ("place", "prefer")
_FAMILIES = ("p4", "vnf")


def validate_declaration(fb: FunctionBinding, loader: Loader, report: Report) -> bool:
    """Shape checks of a declaration that do not need arguments (run once per function)."""
    d = fb.decl
    ok = True
    seen: set[str] = set()
    for p in d.params:
        if p.name in seen:
            report(error("E0204", f"parameter `{p.name}` is declared twice", p.span))
            ok = False
        if p.name in META_ARGS:
            report(error("E0405", f"`{p.name}` is reserved for placement", p.span,
                         "choose another parameter name"))
            ok = False
        seen.add(p.name)
        if loader.type_of(p.type) is None:
            ok = False
    if d.body is None:
        if d.kind is None:
            report(error("E0405", f"function `{d.name}` needs a kind", d.span,
                         f"e.g. `function {d.name}(...) : filter {{ ... }}`"))
            ok = False
        if not d.targets:
            report(error("E0405", f"function `{d.name}` has neither `targets` nor a `chain`",
                         d.span, "a primitive lists the targets that run it; a composite "
                                 "function has a `chain { ... }` of other functions"))
            ok = False
        declared = {".".join(t.target) for t in d.targets}
        for t in d.targets:
            name = ".".join(t.target)
            if name not in KNOWN_TARGETS:
                report(error("E0405", f"unknown target `{name}`", t.span,
                             did_you_mean(name, KNOWN_TARGETS)
                             or f"targets: {', '.join(KNOWN_TARGETS)}"))
                ok = False
        for lat in d.latency:
            if ".".join(lat.target) not in declared | {QUEUEING}:
                report(error("E0405", f"latency for `{'.'.join(lat.target)}`, which is not "
                             "among the targets", lat.span))
                ok = False
        if any(".".join(lat.target) == QUEUEING for lat in d.latency) and d.kind != "queue":
            report(error("E0405", f"only `queue` functions declare `{QUEUEING}`", d.span))
            ok = False
        for name in sorted(declared - {".".join(lat.target) for lat in d.latency}):
            report(error("E0405", f"function `{d.name}` gives no latency for `{name}`", d.span,
                         f"add `latency {{ {name}: 1us }}`"))
            ok = False
    elif d.targets or d.latency:
        report(error("E0405", f"composite function `{d.name}` cannot declare targets", d.span,
                     "its steps' targets and latencies apply"))
        ok = False
    return ok


@dataclass(frozen=True)
class _Bound:
    """A function's parameters bound to values, with its evaluated targets (primitives)."""

    params: dict[str, ValueBinding]
    values: tuple[tuple[str, object], ...]
    targets: tuple[I.TargetOption, ...]
    queue_target: Time | None


@dataclass(frozen=True)
class _Call:
    """A resolved invocation on the expansion stack (for recursion errors)."""

    qualname: str
    span: object


class Expander:
    """Turns the invocations of one service chain into function instances."""

    def __init__(self, loader: Loader, report: Report, service: str,
                 topology: I.Topology | None, validated: dict[str, bool],
                 memo: dict[tuple, _Bound], expanded: set[str] | None = None) -> None:
        self.loader = loader
        self.report = report
        self.service = service
        self.topology = topology
        self.validated = validated
        self.memo = memo
        self.expanded = expanded if expanded is not None else set()  # composites seen
        self.instances: list[I.FunctionInstance] = []

    def expand(self, inv: A.Invocation, ev: Evaluator, stack: tuple[_Call, ...] = (),
               pin: str | None = None, place: str | None = None, prefer: str | None = None,
               outer_span=None) -> bool:
        b = ev.resolve(inv.func, inv, what="function")
        if b is None:
            return False
        if not isinstance(b, FunctionBinding):
            ev._err("E0205", f"`{'.'.join(inv.func)}` is not a function", inv)
            return False
        if b.qualname not in self.validated:
            self.validated[b.qualname] = validate_declaration(b, self.loader, self.report)
        if not self.validated[b.qualname]:
            return False
        if any(c.qualname == b.qualname for c in stack):
            chain = " → ".join(c.qualname for c in [*stack, _Call(b.qualname, None)])
            self.report(error("E0406", f"composite function calls itself: {chain}", inv.span,
                              "a chain must be finite"))
            return False
        meta = self._meta(inv, ev)
        if meta is None:
            return False
        pin = inv.pin or pin
        place = meta.get("place", place)
        prefer = meta.get("prefer", prefer)
        bound = self._bind(b, inv, ev)
        if bound is None:
            return False
        decl = b.decl
        span = outer_span or inv.span
        if decl.body is not None:
            self.expanded.add(b.qualname)
            inner = Evaluator(self.report, b.module.scope.child(
                {**bound.params, **self._node_bindings()}))
            ok = True
            for step in decl.body.steps:
                ok &= self.expand(step, inner, (*stack, _Call(b.qualname, inv.span)), pin,
                                  place, prefer, span)
            return ok
        if not self._placement_ok(b, bound.targets, pin, place, prefer, inv):
            return False
        index = len(self.instances)
        self.instances.append(I.FunctionInstance(
            id=f"{self.service}/{index}", service=self.service, index=index,
            function=b.qualname, kind=decl.kind or "", args=I.Args(bound.values),
            targets=bound.targets, pin=pin, place=place, prefer=prefer,
            queue_target=bound.queue_target,
            origin=tuple(c.qualname for c in stack), span=span))
        return True

    def _node_bindings(self) -> dict[str, NodeBinding]:
        if self.topology is None:
            return {}
        return {n.name: NodeBinding(n.name, n.kind, getattr(n, "ip", None))
                for n in self.topology.nodes}

    def _meta(self, inv: A.Invocation, ev: Evaluator) -> dict[str, str] | None:
        out = {}
        for a in inv.args:
            if a.name not in META_ARGS:
                continue
            value = a.value.id if isinstance(a.value, A.Name) else (
                a.value.value if isinstance(a.value, A.StringLit) else None)
            if value not in _FAMILIES:
                ev._err("E0407", f"`{a.name}` takes `p4` or `vnf`", a.value,
                        f"e.g. `{a.name}: p4`")
                return None
            out[a.name] = value
        return out

    def _bind(self, b: FunctionBinding, inv: A.Invocation, ev: Evaluator) -> _Bound | None:
        """Arguments → parameter values (defaults, ranges, asserts), targets and costs.

        The part after evaluating the caller's arguments depends only on their values, so it
        is memoised per program: a thousand services calling DualQ alike evaluate its
        defaults and cost model once.
        """
        decl = b.decl
        params = {p.name: p for p in decl.params}
        given: dict[str, A.Arg] = {}
        ok = True
        for a in inv.args:
            if a.name in META_ARGS:
                continue
            if a.name not in params:
                ev._err("E0401", f"{decl.name}() has no parameter `{a.name}`", a,
                        did_you_mean(a.name, params)
                        or f"its parameters: {', '.join(params) or 'none'}")
                ok = False
            elif a.name in given:
                ev._err("E0403", f"argument `{a.name}` is given twice", a,
                        notes=[Note("first given here", given[a.name].span)])
                ok = False
            else:
                given[a.name] = a
        types = {}
        for p in decl.params:
            ptype = self.loader.type_of(p.type)
            if ptype is None:
                return None
            types[p.name] = ptype
        supplied: dict[str, object] = {}
        for p in decl.params:
            if p.name in given:
                v = ev.value(given[p.name].value, types[p.name])
                if v is None:
                    ok = False
                else:
                    supplied[p.name] = v.value
            elif p.default is None:
                ev._err("E0402", f"{decl.name}() needs `{p.name}`", inv,
                        f"add `{p.name}: ...` ({T.describe(types[p.name])})",
                        [Note(f"`{p.name}` is declared here", p.span)])
                ok = False
        if not ok:
            return None
        key = (b.qualname, tuple(supplied.items()))
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        bound: dict[str, ValueBinding] = {}
        fn_scope = b.module.scope
        for p in decl.params:
            if not ok and p.name not in supplied:
                # A default may be computed from the parameter that just failed; checking
                # it would report the user's one mistake again, inside the stdlib.
                continue
            local = Evaluator(self.report, fn_scope.child(bound))
            if p.name in supplied:
                value, where = supplied[p.name], given[p.name].value
            else:
                v = local.value(p.default, types[p.name])
                if v is None:
                    return None
                value, where = v.value, inv
            if p.constraint is not None:
                allowed = local.value(p.constraint)
                if allowed is None:
                    return None
                if value not in allowed.value:
                    ev._err("E0304", f"{decl.name}(): `{p.name}` = "
                            f"{format_value(value)} is outside {format_value(allowed.value)}",
                            where,
                            f"allowed: {format_value(allowed.value)}",
                            [Note("range declared here", p.constraint.span)])
                    ok = False
                    continue
            bound[p.name] = ValueBinding(types[p.name], value, p.span)
        if not ok:
            return None
        local = Evaluator(self.report, fn_scope.child(bound))
        for a in decl.asserts:
            holds = local.condition(a.condition)
            if holds is None:
                return None
            if not holds:
                shown = ", ".join(f"{n} = {format_value(bound[n].value)}"
                                  for n in _names_in(a.condition) if n in bound)
                ev._err("E0404", f"{decl.name}(): {a.message}", inv,
                        f"here {shown}" if shown else None,
                        [Note(f"rule: {format_expr(a.condition)}", a.span)])
                return None
        targets: tuple[I.TargetOption, ...] = ()
        queue_target = None
        if decl.body is None:
            found = self._targets(b, bound)
            if found is None:
                return None
            targets, queue_target = found, self._queue_target(b, bound)
        result = _Bound(bound, tuple((n, v.value) for n, v in bound.items()), targets,
                        queue_target)
        self.memo[key] = result
        return result

    def _targets(self, b: FunctionBinding, params: dict[str, ValueBinding]
                 ) -> tuple[I.TargetOption, ...] | None:
        local = Evaluator(self.report, b.module.scope.child(params))
        latency = {".".join(e.target): e for e in b.decl.latency}
        out = []
        for t in b.decl.targets:
            name = ".".join(t.target)
            lat = local.value(latency[name].value, T.TIME)
            if lat is None:
                return None
            if lat.value not in PROCESSING_LATENCY:
                local._err("E0405", PROCESSING_LATENCY.message(f"the latency on `{name}`",
                                                               lat.value), latency[name])
                return None
            if name.startswith("p4."):
                vals = {}
                for a in t.attrs:
                    if a.name not in P4_COST_ATTRS:
                        local._err("E0405", f"unknown P4 cost `{a.name}`", a,
                                   did_you_mean(a.name, P4_COST_ATTRS)
                                   or f"P4 costs: {', '.join(P4_COST_ATTRS)}")
                        return None
                    v = local.value(a.value, T.INT)
                    if v is None or not _cost_ok(local, a, v.value):
                        return None
                    vals[a.name] = v.value
                cost: I.P4Cost | I.VnfCost = I.P4Cost(**vals)
            else:
                vals = {}
                for a in t.attrs:
                    if a.name not in VNF_COST_ATTRS:
                        local._err("E0405", f"unknown VNF cost `{a.name}`", a,
                                   did_you_mean(a.name, VNF_COST_ATTRS)
                                   or f"VNF costs: {', '.join(VNF_COST_ATTRS)}")
                        return None
                    v = local.value(a.value, VNF_COST_ATTRS[a.name])
                    if v is None or not _cost_ok(local, a, getattr(v.value, "bytes", v.value)):
                        return None
                    vals[a.name] = v.value
                cost = I.VnfCost(**vals)
            out.append(I.TargetOption(name, cost, lat.value))
        return tuple(out)

    def _queue_target(self, b: FunctionBinding, params: dict[str, ValueBinding]) -> Time | None:
        entry = next((e for e in b.decl.latency if ".".join(e.target) == QUEUEING), None)
        if entry is None:
            return None
        local = Evaluator(self.report, b.module.scope.child(params))
        v = local.value(entry.value, T.TIME)
        if v is not None and v.value not in PROCESSING_LATENCY:
            local._err("E0405", PROCESSING_LATENCY.message("the queueing target", v.value),
                       entry)
            return None
        return None if v is None else v.value

    def _placement_ok(self, b: FunctionBinding, targets, pin, place, prefer, inv) -> bool:
        families = {t.family for t in targets}
        for label, fam in (("place", place), ("prefer", prefer)):
            if fam is not None and fam not in families:
                self.report(error("E0407", f"{b.decl.name} cannot run as {fam.upper()} "
                                  f"(`{label}: {fam}`)", inv.span,
                                  f"it runs on: {', '.join(t.target for t in targets)}"))
                return False
        if pin is None or self.topology is None:
            return True
        if not self.topology.has_node(pin):
            self.report(error("E0207", f"`@ {pin}`: no node `{pin}` in topology "
                              f"`{self.topology.name}`", inv.span,
                              did_you_mean(pin, [n.name for n in self.topology.nodes])))
            return False
        node = self.topology.node(pin)
        want = {"switch": "p4", "host": "vnf"}.get(node.kind)
        if want is None or want not in families or (place is not None and place != want):
            self.report(error("E0407", f"{b.decl.name} cannot run on {node.kind} `{pin}`",
                              inv.span, f"it runs on: {', '.join(t.target for t in targets)}; "
                                        "pin it to a switch (P4) or a host (VNF)"))
            return False
        return True


def _cost_ok(ev: Evaluator, attr: A.Attr, value: int) -> bool:
    if value in COST:
        return True
    ev._err("E0405", COST.message(f"the cost `{attr.name}`", value), attr)
    return False


def _names_in(e: A.Expr) -> list[str]:
    out: list[str] = []

    def walk(x) -> None:
        if isinstance(x, A.Name):
            out.append(x.id)
        elif isinstance(x, A.Node):
            for slot in type(x).__slots__:
                walk(getattr(x, slot, None))
        elif isinstance(x, tuple):
            for i in x:
                walk(i)

    walk(e)
    return list(dict.fromkeys(out))


def check_unexpanded_composite(fb: FunctionBinding, report: Report,
                               cycles: set[frozenset[str]]) -> None:
    """Name resolution and recursion of a composite function no service calls.

    Expansion checks a composite's chain with its arguments; one that is never called would
    otherwise go unchecked, unknown names and infinite recursion included (E0406, once
    per cycle: ``cycles`` holds those reported).
    """

    def visit(b: FunctionBinding, stack: tuple[str, ...], seen: set[str]) -> None:
        ev = Evaluator(report, b.module.scope)
        for step in b.decl.body.steps:
            callee = ev.resolve(step.func, step, what="function")
            if not isinstance(callee, FunctionBinding) or callee.decl.body is None:
                continue
            if callee.qualname in stack:
                cycle = stack[stack.index(callee.qualname):]
                if frozenset(cycle) in cycles:  # found already, from another of its members
                    continue
                cycles.add(frozenset(cycle))
                chain = " → ".join([*cycle, callee.qualname])
                report(error("E0406", f"composite function calls itself: {chain}", step.span,
                             "a chain must be finite"))
            elif callee.qualname not in seen:
                seen.add(callee.qualname)
                visit(callee, (*stack, callee.qualname), seen)

    visit(fb, (fb.qualname,), {fb.qualname})
