"""Rich displays for notebooks and IPython: diagrams, plots and highlighted code.

:func:`view` turns any mosaico object worth looking at into a view with ``_repr_html_``
(and ``_repr_svg_`` where a diagram stands alone) and a plain-text form for terminals:
programs and topologies (API or IR), placements (with the program they place), compile
results and simulation results. ``%load_ext mosaico_dsl`` registers these views with
IPython, so such objects display themselves; without IPython everything here still works.
Layout is Graphviz's (``dot``); without it diagrams degrade to text.
"""

from __future__ import annotations

from typing import Any

from .compile import CompileView
from .p4 import P4Lexer, P4Source, p4_sources
from .placement import PlacementTable, PlacementView, latency_waterfall
from .program import DiagnosticsView, ProgramView, TopologyView, program_view, topology_view
from .sim import SimView

__all__ = ["view", "ProgramView", "TopologyView", "PlacementView", "PlacementTable",
           "CompileView", "SimView",
           "DiagnosticsView", "P4Source", "P4Lexer", "p4_sources", "latency_waterfall",
           "program_view", "topology_view"]


def view(obj: Any, placement: Any = None) -> Any:
    """The view of ``obj``; pass ``placement`` with a program to see where it runs."""
    from .. import api
    from ..compiler import CompileResult
    from ..ir import _ir as I
    from ..place import Placement
    from ..sim import SimResult

    if placement is not None:
        if not isinstance(obj, I.Program):
            from ..compiler import check

            obj = check(obj)
        return PlacementView(obj, placement)
    if isinstance(obj, (api.Program, I.Program)):
        return program_view(obj)
    if isinstance(obj, (api.Topology, I.Topology)):
        return topology_view(obj)
    if isinstance(obj, CompileResult):
        return CompileView(obj)
    if isinstance(obj, SimResult):
        return SimView(obj)
    if isinstance(obj, Placement):
        return PlacementTable(obj)
    raise TypeError(f"mosaico has no view of a {type(obj).__name__}")
