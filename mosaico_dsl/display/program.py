"""Programs and topologies, seen: services as chain diagrams, topologies as graphs.

The views draw the checked IR, so an API-built :class:`~mosaico_dsl.Program` is checked
first; a program with errors shows its diagnostics instead of a diagram (and its
``_repr_svg_`` is None, so frontends fall back to the other forms).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..diagnostics import CompileError, render_html, render_text
from ..ir import _ir as I
from . import _media
from .graphs import chain_graph, chain_text, topology_graph

if TYPE_CHECKING:
    from .. import api

__all__ = ["ProgramView", "TopologyView", "DiagnosticsView", "program_view", "topology_view",
           "summary"]


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def summary(program: I.Program) -> str:
    """``1 topology (lab: 6 nodes, 5 links), 1 service (web_ll: 4 functions)``."""
    tops = ", ".join(f"{t.name}: {_count(len(t.nodes), 'node')}, "
                     f"{_count(len(t.links), 'link')}" for t in program.topologies)
    svcs = ", ".join(f"{s.name}: {_count(len(s.chain), 'function')}"
                     for s in program.services)
    return (f"{_count(len(program.topologies), 'topology', 'topologies')} ({tops}), "
            f"{_count(len(program.services), 'service')}" + (f" ({svcs})" if svcs else ""))


def _topology_text(t: I.Topology) -> str:
    lines = [f"topology {t.name}"]
    for n in t.nodes:
        lines.append(f"  {n.kind} {n.name}")
    for lk in t.links:
        lines.append(f"  link {lk.a} -- {lk.b}  {lk.bandwidth}, {lk.delay}")
    return "\n".join(lines)


class ProgramView:
    """A checked program: its services as a chain diagram, then its topologies."""

    def __init__(self, program: I.Program, title: str = "program") -> None:
        self.program, self.title = program, title

    def __repr__(self) -> str:
        return f"<{self.title}: {summary(self.program)}>"

    def text(self) -> str:
        return f"{self.title}: {summary(self.program)}\n{chain_text(self.program)}"

    def _repr_pretty_(self, p, cycle: bool) -> None:
        p.text(self.text())

    def _repr_svg_(self) -> str | None:
        return _media.svg(lambda: chain_graph(self.program)) if self.program.services else None

    def _repr_html_(self) -> str:
        esc = _media.esc
        parts = [f'<div class="mosaico-view mosaico-program"><p><b>{esc(self.title)}</b>: '
                 f"{esc(summary(self.program))}</p>"]
        if self.program.services:
            parts.append(_media.svg_block(_media.svg(lambda: chain_graph(self.program)),
                                          "mosaico-chain", chain_text(self.program)))
        for t in self.program.topologies:
            svg = _media.svg(lambda t=t: topology_graph(t))
            parts.append(f'<details class="mosaico-topologies"><summary>topology '
                         f"{esc(t.name)}</summary>"
                         f'{_media.svg_block(svg, "mosaico-topology", _topology_text(t))}'
                         "</details>")
        parts.append("</div>")
        return "".join(parts)


class TopologyView:
    """A checked topology: nodes (switches, VNF hosts, endpoints) and their links."""

    def __init__(self, topology: I.Topology) -> None:
        self.topology = topology

    def __repr__(self) -> str:
        t = self.topology
        return f"<topology {t.name}: {len(t.nodes)} nodes, {len(t.links)} links>"

    def _repr_pretty_(self, p, cycle: bool) -> None:
        p.text(_topology_text(self.topology))

    def _repr_svg_(self) -> str | None:
        return _media.svg(lambda: topology_graph(self.topology))

    def _repr_html_(self) -> str:
        svg = _media.svg(lambda: topology_graph(self.topology))
        return ('<div class="mosaico-view mosaico-topology-view">'
                f'{_media.svg_block(svg, "mosaico-topology", _topology_text(self.topology))}'
                "</div>")


class DiagnosticsView:
    """Why something could not be shown: its diagnostics, as in a terminal or notebook."""

    def __init__(self, error: CompileError, what: str) -> None:
        self.error, self.what = error, what

    def __repr__(self) -> str:
        return f"<{self.what} with errors>\n{self.text()}"

    def text(self) -> str:
        return render_text(self.error.diagnostics, self.error.sources)

    def _repr_pretty_(self, p, cycle: bool) -> None:
        p.text(f"{self.what} has errors:\n{self.text()}")

    def _repr_svg_(self) -> None:
        return None

    def _repr_html_(self) -> str:
        return (f"<div class='mosaico-view'><p><b>{_media.esc(self.what)}</b> has errors:</p>"
                f"{render_html(self.error.diagnostics, self.error.sources)}</div>")


def program_view(program: api.Program | I.Program | Any, title: str | None = None
                 ) -> ProgramView | DiagnosticsView:
    """The view of an API or IR program (checking an API program first)."""
    title = title or getattr(program, "name", None) or "program"
    if isinstance(program, I.Program):
        return ProgramView(program, title)
    from ..compiler import check

    try:
        return ProgramView(check(program), title)
    except CompileError as e:
        return DiagnosticsView(e, title)


def topology_view(topology: api.Topology | I.Topology) -> TopologyView | DiagnosticsView:
    """The view of an API or IR topology (checking an API topology on its own first)."""
    if isinstance(topology, I.Topology):
        return TopologyView(topology)
    from ..compiler import check
    from ..lang import _ast as A

    decl = topology.ast
    module = A.Module((decl,), path=decl.span.file if decl.span else "<api>", span=decl.span)
    try:
        return TopologyView(check(module).topology(topology.name))
    except CompileError as e:
        return DiagnosticsView(e, f"topology {topology.name}")
