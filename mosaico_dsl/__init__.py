"""mosaico — one language for secure, low-latency service chains on P4 switches and VNFs.

The supported API is what this module exports; everything prefixed ``_`` and every
submodule not listed here may change.
"""

from ._version import __version__
from .api import (
    Chain,
    Composite,
    Const,
    Param,
    Program,
    Rule,
    Service,
    Step,
    Topology,
    allow,
    deny,
    f,
    lit,
)
from .compiler import CompileResult, check, compile, load
from .diagnostics import CompileError, Diagnostic, Severity, Span, render_text
from .units import Bandwidth, Percent, Rate, Size, Time, parse_quantity

__all__ = [
    "__version__",
    # building programs
    "Topology", "Service", "Program", "Chain", "Step", "Const", "Composite", "Param", "f", "lit",
    "allow", "deny", "Rule",
    # compiling
    "check", "compile", "load", "CompileResult", "CompileError",
    # diagnostics
    "Diagnostic", "Severity", "Span", "render_text",
    # units
    "Time", "Bandwidth", "Rate", "Size", "Percent", "parse_quantity",
]


# `%load_ext mosaico_dsl`: IPython is imported only when the extension is loaded.
def load_ipython_extension(ipython) -> None:
    from .ipython import load_ipython_extension as load
    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .ipython import unload_ipython_extension as unload
    unload(ipython)
