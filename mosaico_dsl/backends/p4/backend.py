"""The P4 backend: one self-contained BMv2 directory per switch.

``<switch>/<switch>.p4`` (with the ``p4/`` library files it includes copied next to it),
``p4info.txtpb``, ``entries.json``, ``entries.txt``, ``run-bmv2.sh``, ``resources.json`` and
``metrics.json`` (where ``mosaico status`` finds packets, drops, CE marks, queue delay).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..._resources import p4_dir
from ...diagnostics import CompileError, has_errors
from .bmv2 import RUN_SCRIPT, run_script
from .entries import entries_cli, entries_json
from .metrics import metrics_json
from .p4info import p4info_text
from .plan import SwitchPlan, plan_switches
from .render import render_program
from .resources import check_capacity, resources_json
from .syntax import P4SyntaxError, check_source

__all__ = ["generate", "switch_files"]


def _library(rel: str) -> str:
    return (p4_dir() / rel).read_text(encoding="utf-8")


def switch_files(plan: SwitchPlan, source: str) -> dict[str, str]:
    """Every file of one switch's directory (paths relative to it)."""
    name = plan.switch.name
    program = render_program(plan, source)
    files = {f"{name}.p4": program, **{lib: _library(lib) for lib in plan.libraries}}
    try:
        check_source(f"{name}.p4", files)
    except P4SyntaxError as e:  # a generator bug, never a user error
        raise RuntimeError(f"mosaico generated P4 that does not parse: {e}") from e
    files.update({
        "p4info.txtpb": p4info_text(plan),
        "entries.json": entries_json(plan),
        "entries.txt": entries_cli(plan),
        RUN_SCRIPT: run_script(plan),
        "resources.json": resources_json(plan),
        "metrics.json": metrics_json(plan),
    })
    return files


def generate(c) -> Mapping[str, bytes]:
    """The ``p4`` backend of :data:`mosaico_dsl.compiler.BACKENDS`."""
    plans, diagnostics = plan_switches(c.program, c.placement)
    diagnostics = list(diagnostics)
    for plan in plans:
        diagnostics.extend(check_capacity(plan))
    sources = {c.source_path: c.source_text} if c.source_text is not None else {}
    if has_errors(diagnostics):
        raise CompileError(diagnostics, sources)
    source = Path(c.source_path).name if c.source_path else "<program>"
    out: dict[str, bytes] = {}
    for plan in plans:
        for rel, text in switch_files(plan, source).items():
            out[f"{plan.switch.name}/{rel}"] = text.encode()
    return out
