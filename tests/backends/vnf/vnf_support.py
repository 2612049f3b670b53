"""Shared helpers of the VNF backend tests (a plain module: test directories here have no
``__init__.py``, so helper names must be unique across the test tree)."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

import mosaico_dsl as mo
from mosaico_dsl.backends.vnf.backend import generate_texts
from mosaico_dsl.compiler import Compilation

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
EXAMPLES = ROOT / "examples"
PROGRAMS = HERE / "programs"
GOLDEN = HERE / "golden"

# Every example and every program of this folder: golden files exist for each.
SOURCES = sorted(EXAMPLES.glob("*.mosaico")) + sorted(PROGRAMS.glob("*.mosaico"))


def source_id(p: Path) -> str:
    return p.stem


@cache
def compiled(path: Path) -> mo.CompileResult:
    return mo.compile(path, emit=["placement"])


@cache
def vnf_files(path: Path) -> dict[str, str]:
    """The ``vnf`` backend's files for ``path`` (``{relative path: text}``)."""
    r = compiled(path)
    return generate_texts(Compilation(r.program, r.placement, str(path),
                                      path.read_text(encoding="utf-8")))


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def run(*cmd: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc
