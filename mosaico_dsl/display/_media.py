"""Turning graphs and figures into markup a notebook (or an HTML export) shows inline.

Graph layout is Graphviz's job (``dot``, driven by the ``graphviz`` package); plots are
matplotlib's (the Agg canvas, no pyplot global state). Both are rendered to bytes here so
the views stay free of either library's details, and so equal inputs give equal markup.
"""

from __future__ import annotations

import base64
import html
import io
import shutil
from collections.abc import Callable
from functools import cache
from importlib.util import find_spec
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import graphviz
    from matplotlib.figure import Figure

__all__ = ["graphviz_available", "svg", "png", "img_tag", "svg_block", "missing_dot_note",
           "esc"]

esc = html.escape


@cache
def graphviz_available() -> bool:
    """Whether Graphviz's ``dot`` and the ``graphviz`` package are installed (diagrams need
    them; the text views do not)."""
    return shutil.which("dot") is not None and find_spec("graphviz") is not None


def svg(build: Callable[[], graphviz.Graph | graphviz.Digraph]) -> str | None:
    """The graph ``build()`` makes, laid out by ``dot``, as an SVG element (no XML prolog);
    None without Graphviz."""
    if not graphviz_available():
        return None
    import graphviz as gv

    try:
        text = build().pipe(format="svg", encoding="utf-8")
    except gv.ExecutableNotFound:  # pragma: no cover - dot vanished after the check
        return None
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def png(fig: Figure, dpi: int = 100) -> bytes:
    """A figure as PNG bytes; no software version or date in the metadata, so stable."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def img_tag(data: bytes, alt: str, css_class: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<img class="{css_class}" alt="{esc(alt)}" style="max-width: 100%" '
            f'src="data:image/png;base64,{b64}"/>')


def svg_block(svg_text: str | None, css_class: str, fallback_text: str) -> str:
    """A diagram, or — without Graphviz — its text form and how to get the diagram."""
    if svg_text is not None:
        return f'<div class="{css_class}" style="max-width: 100%; overflow-x: auto">' \
               f"{svg_text}</div>"
    return (f'<div class="{css_class} mosaico-no-dot"><pre>{esc(fallback_text)}</pre>'
            f"{missing_dot_note()}</div>")


def missing_dot_note() -> str:
    return ("<p><i>Install Graphviz (the <code>dot</code> program, Debian package "
            "<code>graphviz</code>) to see this as a diagram.</i></p>")
