"""A simulation run, seen: the summary tables and the figures that matter most inline —
the queue-delay CDF per class (the MOSAICO figure) and throughput per flow and class.

The figures are the simulator's own (:mod:`mosaico_dsl.sim.plots`), so a notebook shows
exactly what ``mosaico sim`` writes to ``plots/``.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from . import _media

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..sim import SimResult

__all__ = ["SimView"]


class SimView:
    """``SimResult`` with its CDF and throughput plots; ``figure(name)`` gives any other
    (``queue_occupancy``, ``marks_drops``)."""

    INLINE = ("qdelay_cdf", "throughput")

    def __init__(self, result: SimResult) -> None:
        self.result = result

    def __repr__(self) -> str:
        r = self.result
        return f"<SimView {r.program}: {r.duration_s:g} s, {len(r.flows)} flows>"

    def figure(self, name: str) -> Figure:
        from ..sim import plots

        return getattr(plots, name)(self.result)

    def text(self) -> str:
        from rich.console import Console

        from ..sim.report import summary_tables

        # Not Jupyter's console: that would display the tables instead of recording them.
        console = Console(width=120, record=True, file=io.StringIO(), color_system=None,
                          force_jupyter=False)
        for table in summary_tables(self.result):
            console.print(table)
        return console.export_text()

    def _repr_pretty_(self, p, cycle: bool) -> None:
        p.text(self.text())

    def _repr_html_(self) -> str:
        from ..sim.report import html_summary

        # The tables without the summary's own CDF: the figures below include it.
        parts = ['<div class="mosaico-view mosaico-sim">',
                 html_summary(self.result, figure=False)]
        for name in self.INLINE:
            parts.append(_media.img_tag(_media.png(self.figure(name)), name.replace("_", " "),
                                        f"mosaico-plot mosaico-{name}"))
        parts.append("</div>")
        return "".join(parts)

