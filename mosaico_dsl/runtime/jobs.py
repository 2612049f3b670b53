"""Bounded concurrency over many units: a thousand switches, at most ``jobs`` at a time.

Each unit of work holds a connection (a P4Runtime stream, a gRPC channel's share) while it
runs, so running all of them at once would open a thousand streams on a switch fabric's
servers and a thousand sockets here. :func:`gather_bounded` runs them ``jobs`` at a time
(``--jobs``, :data:`DEFAULT_JOBS` by default) and stops starting new ones once ``stop``
says so — a deploy whose switch 537 failed does not go on to change switches 538 to 1,000
only to roll them back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

__all__ = ["DEFAULT_JOBS", "SKIPPED", "jobs_for", "gather_bounded"]

T = TypeVar("T")

DEFAULT_JOBS: Final = 32


class _Skipped:
    def __repr__(self) -> str:
        return "SKIPPED"


SKIPPED: Final = _Skipped()  # a unit not started because ``stop`` said so


def jobs_for(jobs: int | None, n: int) -> int:
    """How many of ``n`` units run at once: ``jobs`` (default 32), at most ``n``."""
    return max(1, min(jobs or DEFAULT_JOBS, n))


async def gather_bounded(calls: Sequence[Callable[[], Awaitable[T]]], jobs: int | None, *,
                         stop: Callable[[], bool] = lambda: False,
                         finished: Callable[[], None] | None = None
                         ) -> list[T | BaseException | _Skipped]:
    """Run ``calls`` at most ``jobs`` at a time, in order; like ``asyncio.gather(...,
    return_exceptions=True)``, each result or exception in its call's place, and
    :data:`SKIPPED` for a call not started because ``stop()`` was true when its turn came.
    ``finished()`` is called after each call that ran."""
    slots = asyncio.Semaphore(jobs_for(jobs, len(calls)))

    async def one(call: Callable[[], Awaitable[T]]) -> T | _Skipped:
        async with slots:
            if stop():
                return SKIPPED
            try:
                return await call()
            finally:
                if finished is not None:
                    finished()

    return await asyncio.gather(*(one(c) for c in calls), return_exceptions=True)
