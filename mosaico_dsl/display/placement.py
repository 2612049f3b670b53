"""A placement, seen: where each function runs and what each service's latency is made of.

:class:`PlacementView` shows the topology coloured by where functions run (the links the
routes take in bold), the chains with each step in its node's colour, the assignments,
and a latency-budget waterfall per service — the items of its slowest route, read by
:func:`mosaico_dsl.place.latency.breakdown` (the same numbers the verifier checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from ..ir import _ir as I
from ..place import Placement, Route
from ..place.latency import Breakdown, ItemKind, breakdown, describe, format_time
from ..units import Time
from . import _media
from .graphs import chain_graph, chain_text, topology_graph

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PlacementView", "PlacementTable", "ServiceLatency", "latencies",
           "latency_waterfall"]

_ITEM_COLOURS = {ItemKind.LINK: "#4c72b0", ItemKind.DETOUR: "#dd8452",
                 ItemKind.PROCESSING: "#55a868", ItemKind.QUEUEING: "#8172b3"}
_ITEM_NAMES = {ItemKind.LINK: "link", ItemKind.DETOUR: "detour to a VNF host",
               ItemKind.PROCESSING: "processing", ItemKind.QUEUEING: "queueing target"}


@dataclass(frozen=True)
class ServiceLatency:
    """A service's slowest route, its latency items, and its budget (if it has one)."""

    service: str
    route: Route
    breakdown: Breakdown
    budget: Time | None
    routes: int  # how many routes (sources) the service has

    @property
    def usage(self) -> float | None:
        """Share of the budget the slowest route uses (1.0 = all of it)."""
        return self.breakdown.total.ns / self.budget.ns if self.budget else None


def latencies(program: I.Program, placement: Placement) -> list[ServiceLatency]:
    """Per service, the latency breakdown of its slowest route."""
    runs = {a.instance: a.target for a in placement.assignments}
    out = []
    for s in program.services:
        topology = program.topology(s.topology)
        routes = placement.routes_of(s.name)
        if not routes:
            continue
        worst = max(((r, breakdown(topology, s, r.visits, runs)) for r in routes),
                    key=lambda rb: (rb[1].total.ns, rb[0].source))
        out.append(ServiceLatency(s.name, worst[0], worst[1], s.requirements.latency,
                                  len(routes)))
    return out


def latency_waterfall(program: I.Program, placement: Placement) -> Figure:
    """One waterfall per service: each item of its slowest route as a floating bar from
    where the previous one ended, the total, and the budget line."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = latencies(program, placement)
    heights = [0.32 * (len(r.breakdown.items) + 1) + 1.1 for r in rows] or [1.5]
    fig = Figure(figsize=(9, sum(heights)))
    axes = fig.subplots(max(1, len(rows)), 1, squeeze=False,
                        gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, row in zip(axes, rows, strict=False):  # no rows: one empty axes
        items = row.breakdown.items
        labels, starts, widths, colours = [], [], [], []
        at = 0.0
        for item in items:
            ms = item.delay.ns / 1e6
            labels.append(item.label)
            starts.append(at)
            widths.append(ms)
            colours.append(_ITEM_COLOURS[item.kind])
            at += ms
        labels.append("total")
        starts.append(0.0)
        widths.append(at)
        colours.append("#333333")
        ys = list(range(len(labels)))
        ax.barh(ys, widths, left=starts, color=colours, height=0.6)
        scale = max(at, row.budget.ns / 1e6 if row.budget else 0.0) or 1.0
        for y, start, width, item in zip(ys, starts, widths, [*items, None], strict=True):
            text = format_time(item.delay) if item is not None else \
                format_time(row.breakdown.total)
            ax.text(start + width + scale * 0.01, y, text, va="center", fontsize=8)
        if row.budget is not None:
            budget = row.budget.ns / 1e6
            ax.axvline(budget, color="#c0392b", ls="--", lw=1.2)
            ax.text(budget, -0.9, f" budget {format_time(row.budget)}", color="#c0392b",
                    fontsize=8, va="bottom")
        ax.set_yticks(ys, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, scale * 1.18)
        ax.set_xlabel("ms")
        ax.grid(True, axis="x", alpha=0.3)
        title = f"{row.service}: slowest route from {row.route.source}"
        if row.usage is not None:
            title += f" — {row.usage:.0%} of the budget"
        if row.routes > 1:
            title += f" ({row.routes} routes)"
        ax.set_title(title, fontsize=10, loc="left")
    if not rows:
        axes[0].set_axis_off()
        axes[0].text(0.5, 0.5, "no routes", ha="center", va="center")
    kinds = sorted({i.kind for r in rows for i in r.breakdown.items}, key=list(ItemKind).index)
    if kinds:
        fig.legend(handles=[Patch(color=_ITEM_COLOURS[k], label=_ITEM_NAMES[k]) for k in kinds],
                   loc="lower right", fontsize=8, ncol=len(kinds), frameon=False)
    fig.tight_layout(rect=(0, 0.04 if kinds else 0, 1, 1))
    return fig


def _resources(a) -> str:
    cost = a.cost
    if isinstance(cost, I.P4Cost):
        return f"{cost.stages} stages, {cost.tables} tables, {cost.entries} entries"
    if isinstance(cost, I.VnfCost):
        return f"{cost.vcpu} vCPU, {cost.ram}"
    return ""


class PlacementView:
    """Where each function of ``program`` runs (``placement``), as diagrams and a table."""

    def __init__(self, program: I.Program, placement: Placement) -> None:
        self.program, self.placement = program, placement

    def __repr__(self) -> str:
        return (f"<PlacementView: {len(self.placement.assignments)} functions on "
                f"{len(self.placement.nodes_used())} nodes>")

    @cached_property
    def latencies(self) -> list[ServiceLatency]:
        return latencies(self.program, self.placement)

    def waterfall(self) -> Figure:
        return latency_waterfall(self.program, self.placement)

    def _summary(self) -> str:
        parts = []
        s = self.placement.search
        if s is not None:
            parts.append(f"{s.method}{', optimal' if s.optimal else ''}")
        o = self.placement.objective
        if o is not None:
            parts.append(f"worst latency-budget use {o.worst_usage_ppm / 1e4:.1f}%")
            parts.append(f"{o.vcpus} vCPUs")
            parts.append(f"{o.stages} switch stages")
        nodes = ", ".join(self.placement.nodes_used())
        return f"placement ({'; '.join(parts)}) on {nodes}" if parts else f"placement on {nodes}"

    def text(self) -> str:
        names = {fi.id: fi.name for fi in self.program.instances()}
        lines = [self._summary()]
        width = max((len(a.instance) for a in self.placement.assignments), default=0)
        for a in self.placement.assignments:
            latency = format_time(a.latency) if a.latency is not None else ""
            lines.append(f"  {a.instance:<{width}}  {names.get(a.instance, ''):<10} "
                         f"{a.node:<8} {a.target:<11} {latency:>7}  {_resources(a)}")
        for row in self.latencies:
            budget = f" of {format_time(row.budget)} ({row.usage:.0%})" if row.budget else ""
            lines.append(f"service {row.service}: {format_time(row.breakdown.total)}{budget}"
                         f" on the route from {row.route.source}")
            lines.append(f"  {describe(row.breakdown)}")
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle: bool) -> None:
        p.text(self.text())

    def _table(self) -> str:
        esc = _media.esc
        names = {fi.id: fi.name for fi in self.program.instances()}
        rows = []
        for a in self.placement.assignments:
            latency = format_time(a.latency) if a.latency is not None else ""
            rows.append("<tr>" + "".join(f"<td>{esc(x)}</td>" for x in (
                a.instance, names.get(a.instance, ""), a.node, a.target, latency,
                _resources(a))) + "</tr>")
        head = "".join(f"<th>{h}</th>" for h in ("instance", "function", "node", "target",
                                                 "latency", "resources"))
        return f'<table class="mosaico-assignments"><tr>{head}</tr>{"".join(rows)}</table>'

    def _repr_html_(self) -> str:
        esc = _media.esc
        parts = [f'<div class="mosaico-view mosaico-placement"><p><b>'
                 f"{esc(self._summary())}</b></p>"]
        for t in self.program.topologies:
            svg = _media.svg(lambda t=t: topology_graph(t, self.placement, self.program))
            parts.append(_media.svg_block(svg, "mosaico-topology", self.text()))
        svg = _media.svg(lambda: chain_graph(self.program, self.placement))
        parts.append(_media.svg_block(svg, "mosaico-chain",
                                      chain_text(self.program, self.placement)))
        parts.append(self._table())
        if self.latencies:
            parts.append("<p><b>latency budget per service</b> (slowest route)</p>")
            parts.append(_media.img_tag(_media.png(self.waterfall()),
                                        "latency waterfall per service", "mosaico-waterfall"))
        parts.append("</div>")
        return "".join(parts)


class PlacementTable:
    """A placement on its own (without its program): the assignments and the routes.
    ``view(program, placement)`` draws it on the topology, with the latency budgets."""

    def __init__(self, placement: Placement) -> None:
        self.placement = placement

    def _rows(self) -> list[tuple[str, ...]]:
        return [(a.instance, a.node, a.target,
                 format_time(a.latency) if a.latency is not None else "", _resources(a))
                for a in self.placement.assignments]

    def _routes(self) -> list[tuple[str, str, str, str]]:
        return [(r.service, r.source, " → ".join(r.nodes),
                 format_time(r.latency) if r.latency is not None else "")
                for r in self.placement.routes]

    def text(self) -> str:
        lines = ["assignments:"]
        lines += ["  " + "  ".join(row) for row in self._rows()]
        lines.append("routes:")
        lines += [f"  {s} from {src}: {path}  {lat}" for s, src, path, lat in self._routes()]
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle: bool) -> None:
        p.text(self.text())

    def _repr_html_(self) -> str:
        esc = _media.esc

        def table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
            return ("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
                    + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>"
                              for r in rows) + "</table>")

        return ('<div class="mosaico-view mosaico-placement-table"><p><b>placement</b> '
                "(<code>mosaico_dsl.display.view(program, placement)</code> draws it)</p>"
                + table(("instance", "node", "target", "latency", "resources"), self._rows())
                + table(("service", "source", "route", "latency"), self._routes())
                + "</div>")
