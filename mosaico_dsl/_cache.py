"""Where mosaico keeps what it derives and can derive again: Lark's analysed grammars.

Building the LALR tables costs more than parsing a program (0.25 s for the language,
0.5 s for the P4 checker); Lark can pickle them. The pickles live in the user's own cache
directory, never in a shared temp directory (loading a pickle someone else wrote would run
their code). Lark stores a hash of the grammar and options in the file and ignores a stale
or unreadable one, so a cache is only ever an optimisation.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["lark_cache"]


def lark_cache(name: str) -> str | bool:
    """The value for ``Lark(cache=...)``: a file in ``$XDG_CACHE_HOME/mosaico``, or False
    (no caching) when that directory cannot be made."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    directory = Path(base) / "mosaico"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return False
    if not os.access(directory, os.W_OK):
        return False
    return str(directory / f"{name}.lark-cache")
