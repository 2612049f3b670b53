"""The checker's entry point: a parsed module (plus what it imports) → IR program.

Checking and lowering are one pass here: to check a program is to evaluate it — names,
types, units, ranges, cost models — and the evaluated form *is* the IR. Every error in the
program is reported in one run; the IR is returned only when there are none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._perf import gc_paused
from .._resources import stdlib_dir
from ..diagnostics import Diagnostic, error, has_errors
from ..ir import _ir as I
from ..lang import _ast as A
from .evaluate import Evaluator, did_you_mean
from .functions import Expander, check_unexpanded_composite, validate_declaration
from .modules import Loader
from .scope import FunctionBinding, TopologyBinding
from .services import check_requirements, check_service, check_shared_egress, node_evaluator
from .topology import check_topology

__all__ = ["CheckResult", "check_module"]


@dataclass(frozen=True)
class CheckResult:
    program: I.Program | None
    diagnostics: tuple[Diagnostic, ...]
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.program is not None


def check_module(module: A.Module, *, search_paths: Sequence[Path] = (),
                 sources: dict[str, str] | None = None) -> CheckResult:
    """Check ``module`` and everything it imports; every error is reported in one run."""
    with gc_paused():
        return _check_module(module, search_paths, sources)


def _check_module(module: A.Module, search_paths: Sequence[Path],
                  sources: dict[str, str] | None) -> CheckResult:
    diagnostics: list[Diagnostic] = []
    report = diagnostics.append
    sources = dict(sources or {})
    loader = Loader(stdlib_dir(), search_paths, report, sources)
    main = loader.load(module, ("__main__",), module.path)
    ev = Evaluator(report, main.scope)

    topologies: dict[int, I.Topology | None] = {}
    scoped: dict[int, Evaluator] = {}  # per topology: the evaluator its services see

    def topology_of(b: TopologyBinding) -> I.Topology | None:
        key = id(b.decl)
        if key not in topologies:
            tev = Evaluator(report, b.module.scope)
            topologies[key] = check_topology(b.decl, tev, report)
        return topologies[key]

    validated: dict[str, bool] = {}
    memo: dict = {}  # function instantiations by argument values, shared by all services
    expanded: set[str] = set()  # composite functions some service called
    declared: list[I.Topology] = []
    checked: list[tuple[I.Service, I.Topology, A.ServiceDecl]] = []
    names: dict[str, A.ServiceDecl] = {}
    for item in module.items:
        if isinstance(item, A.TopologyDecl):
            b = main.scope.lookup(item.name)
            if isinstance(b, TopologyBinding) and b.decl is item:
                t = topology_of(b)
                if t is not None:
                    declared.append(t)
        elif isinstance(item, A.FunctionDecl):
            b = main.scope.lookup(item.name)
            if isinstance(b, FunctionBinding) and b.decl is item:
                validated[b.qualname] = validate_declaration(b, loader, report)
        elif isinstance(item, A.ServiceDecl):
            if item.name in names:
                report(error("E0204", f"service `{item.name}` is defined twice", item.span))
                continue
            names[item.name] = item
            b = main.scope.lookup(item.topology)
            if not isinstance(b, TopologyBinding):
                known = [n for n in main.scope.visible()
                         if isinstance(main.scope.lookup(n), TopologyBinding)]
                report(error("E0206", f"service `{item.name}` runs on unknown topology "
                             f"`{item.topology}`", item.span,
                             did_you_mean(item.topology, known)
                             or (f"topologies: {', '.join(known)}" if known
                                 else "declare one with `topology NAME { ... }`")))
                continue
            topo = topology_of(b)
            if topo is None:
                continue
            expander = Expander(loader, report, item.name, topo, validated, memo, expanded)
            if id(topo) not in scoped:
                scoped[id(topo)] = node_evaluator(ev, topo)
            svc = check_service(item, topo, scoped[id(topo)], expander, report)
            if svc is not None:
                checked.append((svc, topo, item))
                if topo not in declared:
                    declared.append(topo)
    failed = check_requirements(checked, report)
    services = [svc for svc, _, _ in checked if svc.name not in failed]
    check_shared_egress(services, report)
    cycles: set[frozenset[str]] = set()
    for item in module.items:
        if isinstance(item, A.FunctionDecl) and item.body is not None:
            b = main.scope.lookup(item.name)
            if isinstance(b, FunctionBinding) and b.decl is item and \
                    validated.get(b.qualname) and b.qualname not in expanded:
                check_unexpanded_composite(b, report, cycles)
    ordered = tuple(sorted(diagnostics, key=_position))
    if has_errors(ordered):
        return CheckResult(None, ordered, sources)
    return CheckResult(I.Program(tuple(declared), tuple(services), span=module.span), ordered,
                       sources)


def _position(d: Diagnostic):
    s = d.span
    return (s.file, s.line, s.col) if s else ("", 0, 0)
