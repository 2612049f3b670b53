"""A compilation, seen: what was generated, where everything runs, and the P4 programs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _media
from .p4 import P4Source, p4_sources
from .placement import PlacementView

if TYPE_CHECKING:
    from ..compiler import CompileResult

__all__ = ["CompileView"]


def _size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB"


class CompileView:
    """``CompileResult`` shown as its artifacts, its placement and its P4 (highlighted)."""

    def __init__(self, result: CompileResult) -> None:
        self.result = result

    @property
    def p4(self) -> dict[str, P4Source]:
        """The generated P4 program of each switch, by switch name."""
        return p4_sources(self.result.artifacts)

    @property
    def placement(self) -> PlacementView:
        return PlacementView(self.result.program, self.result.placement)

    def __repr__(self) -> str:
        return f"<CompileView: {len(self.result.artifacts)} artifacts>"

    def text(self) -> str:
        lines = [f"compiled: {len(self.result.artifacts)} artifacts"]
        lines += [f"  {p}  ({_size(len(b))})" for p, b in self.result.artifacts.items()]
        lines.append(self.placement.text())
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle: bool) -> None:
        p.text(self.text())

    def _repr_html_(self) -> str:
        esc = _media.esc
        rows = "".join(f"<tr><td><code>{esc(p)}</code></td><td>{_size(len(b))}</td></tr>"
                       for p, b in self.result.artifacts.items())
        parts = ['<div class="mosaico-view mosaico-compile">',
                 f"<p><b>compiled</b>: {len(self.result.artifacts)} artifacts</p>",
                 f'<details class="mosaico-artifacts"><summary>artifacts</summary>'
                 f"<table>{rows}</table></details>",
                 # Closed: compiling follows placing, whose view is usually just above.
                 '<details class="mosaico-compile-placement"><summary>placement</summary>'
                 f"{self.placement._repr_html_()}</details>"]
        for source in self.p4.values():
            parts.append(source.html(open=False))
        parts.append("</div>")
        return "".join(parts)
