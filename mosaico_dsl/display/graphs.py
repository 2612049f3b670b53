"""Graphviz descriptions of topologies and service chains (layout is left to ``dot``).

:func:`topology_graph` draws nodes and links; given a placement it colours each node that
runs functions, lists them on it, and draws the links the routes use in bold.
:func:`chain_graph` draws each service as a cluster — sources, the chain's steps in order,
the destination — with the steps coloured by kind, or by the node they run on once placed.
:func:`chain_text` is the same information as text, for terminals and machines without dot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from html import escape
from itertools import pairwise
from typing import TYPE_CHECKING

from ..ir import _ir as I
from ..ir.values import format_value

if TYPE_CHECKING:
    import graphviz

    from ..place import Placement

__all__ = ["topology_graph", "chain_graph", "chain_text", "node_colours", "KIND_COLOURS",
           "shown_args"]

# Fill colours: by function kind before placement, by node after it (one per node used).
KIND_COLOURS = {"filter": "#f9d6d5", "queue": "#d5e5f6", "forward": "#d5efd9",
                "monitor": "#fdf0c7"}
_OTHER_KIND = "#ececec"
_NODE_PALETTE = ("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
                 "#f7b6d2", "#dbdb8d", "#9edae5", "#c7c7c7")
_FONT = "Helvetica"
_MAX_VALUE = 30  # characters of an argument value shown in a diagram
_MAX_ARGS = 4


def node_colours(placement: Placement) -> dict[str, str]:
    """A colour per node that runs functions, in order of first use (stable)."""
    return {n: _NODE_PALETTE[i % len(_NODE_PALETTE)]
            for i, n in enumerate(placement.nodes_used())}


def _graph(cls: type, name: str) -> graphviz.Graph | graphviz.Digraph:
    g = cls(name=name)
    g.attr(rankdir="LR", bgcolor="transparent", fontname=_FONT, fontsize="11", pad="0.2",
           nodesep="0.35", ranksep="0.5")
    g.attr("node", fontname=_FONT, fontsize="11", style="filled", fillcolor="white")
    g.attr("edge", fontname=_FONT, fontsize="9", color="#555555")
    return g


def _short(text: str, limit: int = _MAX_VALUE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@cache
def _std_defaults(qualname: str) -> Mapping[str, str | None]:
    """Declared defaults of a stdlib function by parameter: the literal as written
    (``15ms``), or None when it is computed from other parameters (``min(a, b / 3)``)."""
    parts = qualname.split(".")
    if len(parts) != 3 or parts[0] != "std":
        return {}
    from .. import std
    from ..lang import _ast as A
    from ..lang.printer import format_expr

    try:
        decl = getattr(getattr(std, parts[1]), parts[2]).decl
    except AttributeError:
        return {}
    computed = (A.Name, A.Attribute, A.BinOp, A.Call)
    return {p.name: None if isinstance(p.default, computed) else format_expr(p.default)
            for p in decl.params if p.default is not None}


def shown_args(fi: I.FunctionInstance) -> list[tuple[str, str]]:
    """The arguments worth showing: those that differ from a literal default (a computed
    default follows the arguments it is computed from, which are shown if set)."""
    defaults = _std_defaults(fi.function)
    out = []
    for name in fi.args:  # (Args.items is its field, not Mapping.items)
        text = format_value(fi.args[name])
        if name in defaults and defaults[name] in (None, text):
            continue
        out.append((name, text))
    return out


def _args_label(fi: I.FunctionInstance) -> str:
    args = shown_args(fi)
    parts = [f"{escape(n)}={escape(_short(v))}" for n, v in args[:_MAX_ARGS]]
    if len(args) > _MAX_ARGS:
        parts.append(f"+{len(args) - _MAX_ARGS} more")
    return "<br/>".join(parts)


# ----------------------------------------------------------------------------- topology


def _node_label(n: I.NodeIR, hosted: list[str]) -> str:
    rows = [f"<b>{escape(n.name)}</b>"]
    if isinstance(n, I.Switch):
        rows.append(f"{escape(n.target)} · {n.ports} ports")
        if n.queue_rate is not None:
            rows.append(f"queue {n.queue_rate}")
    elif isinstance(n, I.Host):
        rows.append(f"{escape(n.platform)} · {n.vcpus} vCPU · {n.ram}")
    else:
        rows.append(str(n.ip))
    if not n.trusted and not isinstance(n, I.Switch):
        rows.append('<font color="#b03a2e">untrusted</font>')
    if hosted:
        rows.append('<font point-size="9">' + "<br/>".join(escape(h) for h in hosted)
                    + "</font>")
    return "<" + "<br/>".join(rows) + ">"


_SHAPES = {"switch": "box", "host": "box3d", "endpoint": "ellipse"}
_MARGINS = {"host": "0.2,0.12"}  # box3d draws its depth inside the node: keep text clear


def topology_graph(topology: I.Topology, placement: Placement | None = None,
                   program: I.Program | None = None) -> graphviz.Graph:
    """The topology; with ``placement`` (and the ``program`` it places) coloured by where
    each function runs, with the links the routes take drawn in bold."""
    import graphviz as gv

    g = _graph(gv.Graph, f"topology_{topology.name}")
    g.attr(label=f"<<b>topology {escape(topology.name)}</b>>", labelloc="t")
    colours: dict[str, str] = {}
    hosted: dict[str, list[str]] = {}
    used_links: set[frozenset[str]] = set()
    if placement is not None:
        colours = node_colours(placement)
        names = {fi.id: fi.name for fi in program.instances()} if program is not None else {}
        for a in placement.assignments:
            target = "p4" if a.target.startswith("p4") else a.target
            hosted.setdefault(a.node, []).append(
                f"{names.get(a.instance, a.instance)} ({a.instance}, {target})")
        for r in placement.routes:
            used_links.update(frozenset(p) for p in pairwise(r.nodes))
    for n in topology.nodes:
        attrs = {"shape": _SHAPES[n.kind]}
        if n.kind in _MARGINS:
            attrs["margin"] = _MARGINS[n.kind]
        if n.kind == "switch":
            attrs["style"] = "rounded,filled"
        if n.name in colours:
            attrs["fillcolor"] = colours[n.name]
            attrs["penwidth"] = "2"
        elif placement is not None:
            attrs["fillcolor"] = "#f6f6f6"
            attrs["color"] = "#999999"
        if n.kind == "endpoint" and not n.trusted:
            attrs["color"] = "#b03a2e"
        g.node(n.name, _node_label(n, hosted.get(n.name, [])), **attrs)
    for lk in topology.links:
        attrs = {"label": f"{lk.bandwidth} · {lk.delay}"}
        if lk.a.port is not None:
            attrs["taillabel"] = str(lk.a.port)
        if lk.b.port is not None:
            attrs["headlabel"] = str(lk.b.port)
        if placement is not None:
            if frozenset((lk.a.node, lk.b.node)) in used_links:
                attrs.update(penwidth="2.5", color="#222222")
            else:
                attrs.update(style="dashed", color="#aaaaaa")
        g.edge(lk.a.node, lk.b.node, **attrs)
    return g


# ----------------------------------------------------------------------------- chains


def _requirements(s: I.Service) -> str:
    r = s.requirements
    parts = []
    if r.latency is not None:
        parts.append(f"latency ≤ {r.latency}")
    if r.bandwidth is not None:
        parts.append(f"bandwidth ≥ {r.bandwidth}")
    if r.secure:
        parts.append("secure")
    return " · ".join(parts)


def chain_graph(program: I.Program, placement: Placement | None = None,
                services: Iterable[str] | None = None) -> graphviz.Digraph:
    """Every service (or those named) as a cluster: sources → steps → destination."""
    import graphviz as gv

    g = _graph(gv.Digraph, "chains")
    colours = node_colours(placement) if placement is not None else {}
    runs = {a.instance: a for a in placement.assignments} if placement is not None else {}
    wanted = None if services is None else set(services)
    for i, s in enumerate(program.services):
        if wanted is not None and s.name not in wanted:
            continue
        with g.subgraph(name=f"cluster_{i}") as c:
            head = f"<b>service {escape(s.name)}</b> on {escape(s.topology)}"
            sub = [_short(str(s.match), 80)]
            if _requirements(s):
                sub.append(_requirements(s))
            left = '<br align="left"/>'
            c.attr(label=f'<{head}{left}<font point-size="9">'
                         f'{left.join(escape(x) for x in sub)}</font>{left}>',
                   labeljust="l", style="rounded", color="#888888")
            ids = []
            for src in s.sources:
                sid = f"{s.name}/src/{src}"
                c.node(sid, src, shape="ellipse", fillcolor="#f6f6f6")
                ids.append(sid)
            prev = ids
            for fi in s.chain:
                nid = f"{s.name}/step/{fi.id}"
                rows = [f"<b>{escape(fi.name)}</b> "
                        f'<font color="#555555" point-size="9">{escape(fi.kind)}</font>']
                args = _args_label(fi)
                if args:
                    rows.append(f'<font point-size="9">{args}</font>')
                a = runs.get(fi.id)
                if a is not None:
                    rows.append(f'<font point-size="9"><i>on {escape(a.node)} · '
                                f"{escape(a.target)}</i></font>")
                    fill = colours.get(a.node, _OTHER_KIND)
                else:
                    if fi.pin is not None:
                        rows.append(f'<font point-size="9"><i>@ {escape(fi.pin)}</i></font>')
                    fill = KIND_COLOURS.get(fi.kind, _OTHER_KIND)
                c.node(nid, "<" + "<br/>".join(rows) + ">", shape="box",
                       style="rounded,filled", fillcolor=fill)
                for p in prev:
                    c.edge(p, nid)
                prev = [nid]
            did = f"{s.name}/dst/{s.destination}"
            c.node(did, s.destination, shape="ellipse", penwidth="2", fillcolor="#f6f6f6")
            for p in prev:
                c.edge(p, did)
    return g


def chain_text(program: I.Program, placement: Placement | None = None) -> str:
    """``web_ll: l4s_client, attacker → Blocklist@s1 → … → server`` per service."""
    runs = {a.instance: a for a in placement.assignments} if placement is not None else {}
    lines = []
    for s in program.services:
        steps = []
        for fi in s.chain:
            a = runs.get(fi.id)
            args = ", ".join(f"{n}={_short(v)}" for n, v in shown_args(fi)[:_MAX_ARGS])
            where = f" @ {a.node} ({a.target})" if a is not None else ""
            steps.append(f"{fi.name}({args}){where}")
        req = _requirements(s)
        lines.append(f"service {s.name} on {s.topology}" + (f"  [{req}]" if req else ""))
        lines.append(f"  match {s.match}")
        lines.append("  " + " → ".join([", ".join(s.sources), *steps, s.destination]))
    return "\n".join(lines)
