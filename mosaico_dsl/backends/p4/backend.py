"""The P4 backend: one self-contained BMv2 directory per switch.

``<switch>/<switch>.p4`` (with the ``p4/`` library files it includes copied next to it),
``p4info.txtpb``, ``entries.json``, ``entries.txt``, ``run-bmv2.sh``, ``resources.json`` and
``metrics.json`` (where ``mosaico status`` finds packets, drops, CE marks, queue delay).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ..._resources import p4_dir
from ...diagnostics import CompileError, has_errors
from .bmv2 import RUN_SCRIPT, run_script
from .entries import entries_cli, entries_json
from .metrics import metrics_json
from .p4info import p4info_text
from .plan import SwitchPlan, plan_switches
from .render import Fragments, fragments, render_program
from .resources import check_capacity, resources_json
from .syntax import KEYWORDS, P4SyntaxError, check_source

__all__ = ["generate", "switch_files"]


def _library(rel: str) -> str:
    return (p4_dir() / rel).read_text(encoding="utf-8")


# The generated programs parsed in full by the syntax checker before it looks only at the
# programs that bring a fragment it has not parsed yet (see _Checked).
FULL_CHECKS = 32


class _Checked:
    """Which generated programs to parse: a generator bug is in a template — the program's
    frame or a function's fragment — so after the first :data:`FULL_CHECKS` programs a
    program is parsed only if one of its fragments, with names and numbers normalised (so
    that only the shape is left, which is what a parser sees), was in none parsed before.
    A fabric of a thousand switches costs a few dozen parses instead of a thousand."""

    def __init__(self) -> None:
        self.done = 0
        self.shapes: set[str] = set()

    def wanted(self, parts: Fragments) -> tuple[bool, set[str]]:
        shapes = {_shape(f) for f in parts.all()}
        return self.done < FULL_CHECKS or not shapes <= self.shapes, shapes

    def record(self, shapes: set[str]) -> None:
        self.done += 1
        self.shapes |= shapes


_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_NAME = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"\b[0-9]\w*")
_DIGIT = re.compile(r"[0-9a-fA-F]")


def _shape(fragment: str) -> str:
    """Names (but the language's words) → ``x``, the digits of numbers (``8w255``,
    ``0x1f``) → ``0``, comments dropped: what is left is what a parser sees, the kinds of
    the tokens."""
    named = _NAME.sub(lambda m: m.group(0) if m.group(0) in KEYWORDS else "x",
                      _COMMENT.sub("", fragment))
    return _NUMBER.sub(lambda m: _DIGIT.sub("0", m.group(0)), named)


def switch_files(plan: SwitchPlan, source: str, checked: _Checked | None = None
                 ) -> dict[str, str]:
    """Every file of one switch's directory (paths relative to it); ``checked`` says which
    programs the syntax checker has seen (None: parse this one)."""
    name = plan.switch.name
    parts = fragments(plan)
    program = render_program(plan, source, parts)
    files = {f"{name}.p4": program, **{lib: _library(lib) for lib in plan.libraries}}
    check, shapes = checked.wanted(parts) if checked is not None else (True, set())
    if check:
        try:
            check_source(f"{name}.p4", files)
        except P4SyntaxError as e:  # a generator bug, never a user error
            raise RuntimeError(f"mosaico generated P4 that does not parse: {e}") from e
        if checked is not None:
            checked.record(shapes)
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
    checked = _Checked()
    for plan in plans:
        for rel, text in switch_files(plan, source, checked).items():
            out[f"{plan.switch.name}/{rel}"] = text.encode()
    return out
