"""A placement for people: the table ``mosaico place`` prints, and ``placement.json``.

Each function's *latency share* is what it adds to its service's slowest route: its
processing latency on the target it runs as, plus the round trip of the detour that
reaches it when it is the first function of that detour.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group
from rich.table import Table
from rich.text import Text

from .._json import dumps
from ..ir import _ir as I
from ..units import Size, Time
from .latency import ItemKind, breakdown, format_time
from .placement import Placement

__all__ = ["placement_document", "Row", "rows", "render", "primary_optimal"]


def placement_document(placement: Placement) -> bytes:
    """The bytes of ``placement.json`` — one function for ``mosaico place`` and
    ``mosaico compile``, so the two always write the same document."""
    return (dumps(placement.to_json(), 2) + "\n").encode()


@dataclass(frozen=True, slots=True)
class Row:
    service: str
    function: str
    instance: str
    node: str
    target: str
    share: int  # ns
    resources: str


def rows(program: I.Program, placement: Placement) -> list[Row]:
    shares = _shares(program, placement)
    instances = {fi.id: fi for fi in program.instances()}
    out = []
    for a in placement.assignments:
        fi = instances[a.instance]
        option = fi.option(a.target)
        out.append(Row(fi.service, fi.name, fi.id, a.node, a.target,
                       shares.get(fi.id, option.latency.ns if option else 0),
                       _resources(option.cost if option else None)))
    return out


def _shares(program: I.Program, placement: Placement) -> dict[str, int]:
    runs = {a.instance: a.target for a in placement.assignments}
    out: dict[str, int] = {}
    for route in placement.routes:
        svc = program.service(route.service)
        items = breakdown(program.topology(svc.topology), svc, route.visits, runs).items
        pending = 0
        for item in items:
            if item.kind is ItemKind.DETOUR:
                pending += item.delay.ns
            elif item.kind is ItemKind.PROCESSING and item.instance is not None:
                share = item.delay.ns + pending
                pending = 0
                out[item.instance] = max(out.get(item.instance, 0), share)
    return out


def _resources(cost) -> str:
    if isinstance(cost, I.P4Cost):
        parts = [(cost.stages, "stage"), (cost.tables, "table"), (cost.entries, "entry"),
                 (cost.registers, "register"), (cost.meters, "meter")]
        text = ", ".join(f"{n} {w if n == 1 else _plural(w)}" for n, w in parts if n)
        return text or "none"
    if isinstance(cost, I.VnfCost):
        return f"{cost.vcpu} vCPU{'s' if cost.vcpu != 1 else ''}, {Size(cost.ram.bytes)}"
    return ""


def _plural(word: str) -> str:
    return word[:-1] + "ies" if word.endswith("y") else word + "s"


def primary_optimal(placement: Placement) -> bool:
    """Every level but the final tie-break (total latency) proven optimal."""
    levels = placement.search.levels if placement.search else ()
    return bool(levels) and all(lv.optimal for lv in levels[:-1])


def render(program: I.Program, placement: Placement) -> Group:
    """The placement table, one line per route, and how good the placement is."""
    table = Table(title="placement", title_justify="left")
    for name, justify in (("service", "left"), ("#", "right"), ("function", "left"),
                          ("node", "left"),
                          ("target", "left"), ("latency share", "right"),
                          ("resources", "left")):
        table.add_column(name, justify=justify)
    for r in rows(program, placement):
        # `#` is the position in the chain: with the service it names the instance
        # (`web_ll` `0` is web_ll/0), and keeps the table inside 80 columns.
        table.add_row(r.service, r.instance.rpartition("/")[2], r.function, r.node, r.target,
                      format_time(Time(r.share)), r.resources)
    routes = Table(title="routes", title_justify="left")
    for name, justify in (("service", "left"), ("from", "left"), ("path", "left"),
                          ("latency", "right"), ("budget", "right")):
        routes.add_column(name, justify=justify)
    for route in placement.routes:
        svc = program.service(route.service)
        budget = svc.requirements.latency
        used = f" ({route.latency.ns / budget.ns:.0%})" \
            if budget and route.latency is not None and budget.ns else ""
        routes.add_row(route.service, route.source, " → ".join(route.nodes),
                       (format_time(route.latency) if route.latency else "") + used,
                       format_time(budget) if budget else "—")
    parts = [table, routes]
    if placement.search is not None:
        parts.append(Text(_summary(placement)))
    return Group(*parts)


def _summary(placement: Placement) -> str:
    search = placement.search
    o = placement.objective
    why = "search limit" if search.groups == 1 else f"{search.groups} groups"
    head = {"cp-sat": "optimal" if search.optimal else
            ("optimal; total latency within "
             f"{search.levels[-1].gap:.2%} of its bound" if primary_optimal(placement)
             else f"NOT proven optimal ({why})"),
            "first-fit": "greedy first fit"}.get(search.method, search.method)
    if search.groups > 1:
        head += f", in {search.groups} groups"
    if o is None:
        return head
    return (f"{search.method}: {head} — worst budget usage {o.worst_usage_ppm / 1e4:.2f}%, "
            f"{o.vcpus} vCPU(s), {o.stages} switch stage(s), "
            f"{o.preference_misses} preference(s) missed")
