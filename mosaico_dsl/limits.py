"""What a run will take, estimated before it starts, against what the machine offers.

A stage whose cost grows with what the user wrote — the program's text, the services and
nodes placement chooses among, the packets a simulation sends — estimates its need first
and refuses with a diagnostic that says how much it would take, what is available and how
to proceed, instead of running out of memory or time half-way. Memory estimates use the
per-unit costs measured by ``benchmarks/bench_scale.py`` with a margin; the limit is the
memory the system reports available, or what ``MOSAICO_MEMORY_LIMIT`` (``mosaico
--memory-limit``) says: a size such as ``8GiB``, or ``off``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .diagnostics import Diagnostic, Span, error
from .units import Dim, parse_quantity

__all__ = ["ENV", "Limit", "memory_limit", "over_memory", "format_bytes", "estimate_check",
           "estimate_place"]

ENV = "MOSAICO_MEMORY_LIMIT"

# Resident memory per unit, measured on benchmarks/bench_scale.py's programs (a fat tree of
# 1,280 switches and 5,000 services: 1.9 MB of text checked in 180 MB, placed in 150 MB
# more), doubled for a margin; and the interpreter with what each stage loads (55 MB to
# check a small program, 140 MB to place it: OR-Tools).
CHECK_BASE = 64 * 2**20
PLACE_BASE = 160 * 2**20
CHECK_PER_BYTE = 160  # bytes of memory per byte of program text
PLACE_PER_SERVICE = 64 * 2**10
PLACE_PER_NODE = 16 * 2**10


@dataclass(frozen=True, slots=True)
class Limit:
    """How much memory a run may take (None: unlimited) and where that figure comes from."""

    bytes: int | None
    source: str  # "available memory", "MOSAICO_MEMORY_LIMIT", …


def available_memory() -> int | None:
    """What the kernel says can be allocated without swapping (Linux), else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_limit(setting: str | int | None = None) -> Limit:
    """The limit from ``setting`` (bytes, a size such as ``"8GiB"``, or ``"off"``), else
    from ``MOSAICO_MEMORY_LIMIT``, else the memory available; a setting that is not a
    size raises ``ValueError``."""
    source = "the memory limit given"
    if setting is None:
        setting = os.environ.get(ENV)
        source = f"the memory limit ({ENV})"
    if setting is None:
        return Limit(available_memory(), "the memory available")
    if isinstance(setting, int):
        return Limit(setting, source)
    if setting.strip().lower() in ("off", "none", "unlimited"):
        return Limit(None, source)
    q = parse_quantity(setting.strip())
    if q.dim is not Dim.SIZE:
        raise ValueError(f"{setting!r} is not a size such as 8GiB")
    return Limit(q.bytes, source)


def format_bytes(n: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"


def over_memory(code: str, what: str, need: int, limit: Limit, span: Span | None = None,
                hint: str | None = None) -> Diagnostic | None:
    """A diagnostic when ``need`` bytes are more than ``limit`` allows, else None."""
    if limit.bytes is None or need <= limit.bytes:
        return None
    return error(code, f"{what} would need about {format_bytes(need)} of memory; "
                 f"{limit.source} is {format_bytes(limit.bytes)}", span,
                 (hint + "; or " if hint else "") +
                 f"set a higher limit (`mosaico --memory-limit SIZE`, {ENV}=SIZE) or none "
                 "(`--memory-limit off`) if the estimate is too cautious")


def estimate_check(text_bytes: int) -> int:
    """Memory to parse and check a program of ``text_bytes`` bytes."""
    return CHECK_BASE + CHECK_PER_BYTE * text_bytes


def estimate_place(services: int, nodes: int) -> int:
    """Memory to place ``services`` services on ``nodes`` nodes (switches and hosts); the
    exact model is used only up to a fixed size, beyond it the groups' narrowed models
    grow with the services (docs/placement.md)."""
    return PLACE_BASE + PLACE_PER_SERVICE * services + PLACE_PER_NODE * nodes
