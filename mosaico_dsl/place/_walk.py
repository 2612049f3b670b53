"""Turn "where each instance runs on this route" into the visits packets make, in order."""

from __future__ import annotations

from collections.abc import Sequence

from ._problem import Location
from .placement import Visit

__all__ = ["visits"]


def visits(path: tuple[str, ...], stops: Sequence[tuple[str, Location]]) -> tuple[Visit, ...]:
    """Walk the base path; leave it for a detour (and come back) where a block of
    consecutive instances runs off the path. ``stops`` are in chain order with
    non-decreasing positions."""
    out: list[tuple[str, list[str]]] = [(path[0], [])]
    cur = 0
    i = 0
    while i < len(stops):
        loc = stops[i][1]
        block = []
        while i < len(stops) and stops[i][1].key == loc.key:
            block.append(stops[i][0])
            i += 1
        if loc.position < cur:
            raise ValueError(f"{block[0]} runs before the route's current position")
        for k in range(cur + 1, loc.position + 1):
            out.append((path[k], []))
        cur = loc.position
        if loc.attach is None:
            out[-1][1].extend(block)
            continue
        hops = loc.detour[1:-1]
        out.extend((h, []) for h in hops)
        out.append((loc.node, block))
        out.extend((h, []) for h in reversed(hops))
        out.append((loc.attach, []))
    for k in range(cur + 1, len(path)):
        out.append((path[k], []))
    return tuple(Visit(n, tuple(ids)) for n, ids in out)
