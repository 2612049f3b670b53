"""Helpers of the P4 backend tests: compiled examples and programs built from text."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from mosaico_dsl import compiler
from mosaico_dsl.backends.p4 import plan_switches
from mosaico_dsl.place import place

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = tuple(sorted((ROOT / "examples").glob("*.mosaico")))
HERE = Path(__file__).resolve().parent


@cache
def compiled(path: Path) -> compiler.CompileResult:
    return compiler.compile(path, emit=["p4"])


def switch_dirs(result: compiler.CompileResult) -> dict[str, dict[str, bytes]]:
    """Artifacts grouped by switch directory (only directories holding a program)."""
    out: dict[str, dict[str, bytes]] = {}
    for rel, data in result.artifacts.items():
        head, _, tail = rel.partition("/")
        if tail:
            out.setdefault(head, {})[tail] = data
    return {k: v for k, v in out.items() if f"{k}.p4" in v}


def plans_of(text: str):
    program = compiler.check(text)
    plans, diags = plan_switches(program, place(program))
    assert not diags, diags
    return program, plans



def stop_group(proc) -> None:
    """End a process started with ``start_new_session=True`` and everything it started:
    SIGTERM to its group, SIGKILL if it is still there after 10 s."""
    import os
    import signal
    import subprocess

    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
