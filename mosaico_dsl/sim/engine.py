"""The discrete-event loop: integer nanoseconds, a binary heap, FIFO among equal times.

Times are ``int`` nanoseconds so that no rounding drifts over a long run and the same seed
replays bit for bit. Events are ``(time, sequence, handler, argument)``; the sequence number
breaks ties in scheduling order, which makes the run deterministic. Handlers are called as
``handler(time, argument)``. Components schedule through :meth:`Engine.at`, or — on their
hot paths — push onto :attr:`Engine.heap` with :attr:`Engine.counter` themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from itertools import count
from typing import Any

__all__ = ["Engine", "Handler", "NS_PER_S", "NS_PER_MS", "NS_PER_US"]

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
NS_PER_US = 1_000

Handler = Callable[[int, Any], None]


class Engine:
    __slots__ = ("heap", "counter", "events", "now")

    def __init__(self) -> None:
        self.heap: list[tuple[int, int, Handler, Any]] = []
        self.counter = count()
        self.events = 0  # handlers run so far
        self.now = 0

    def at(self, t: int, handler: Handler, arg: Any = None) -> None:
        """Run ``handler(t, arg)`` at time ``t`` (ns)."""
        heappush(self.heap, (t, next(self.counter), handler, arg))

    def run(self, until: int) -> None:
        """Run every event due at or before ``until`` (ns); later ones stay queued."""
        heap, pop = self.heap, heappop
        n = 0
        while heap and heap[0][0] <= until:
            t, _, handler, arg = pop(heap)
            handler(t, arg)
            n += 1
        self.events += n
        self.now = until
