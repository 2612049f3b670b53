"""Small performance helpers shared by the front-end passes."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around an allocation-heavy pass.

    Parsing and checking build hundreds of thousands of small, acyclic objects; the
    collector's repeated scans of them cost about a third of the time on large programs
    (measured by benchmarks/bench_frontend.py). Reference counting still frees everything.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
