"""Where the data the compiler reads at run time lives.

In a wheel, ``stdlib/``, ``p4/`` and ``codegen/`` are installed as ``mosaico_dsl/_data/...``;
in a checkout (or an editable install) they sit next to the package. Both are supported so
that the same code runs from a clone and from ``pip install .``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """Return the directory of the shipped data folder ``name`` (stdlib, p4 or codegen)."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"mosaico data folder {name!r} is missing: the installation is incomplete "
        f"(looked in {_PACKAGE / '_data'} and {_PACKAGE.parent})"
    )


def stdlib_dir() -> Path:
    return data_dir("stdlib")


def p4_dir() -> Path:
    return data_dir("p4")


def codegen_dir() -> Path:
    return data_dir("codegen")
