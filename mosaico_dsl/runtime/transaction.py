"""All-or-nothing across targets: an undo journal replayed in reverse on failure.

Every step a target applies (a batch of P4Runtime updates, a pipeline push, a stack
created, a namespace added) records how to undo itself *after* it succeeded. When any later
step fails, :meth:`Transaction.rollback` runs the recorded undos newest first — across
targets, so a multi-target deploy unwinds in the reverse order it was done. An undo that
fails is reported, not hidden: the error names what could not be restored.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["Transaction", "Undo", "RollbackReport"]

UndoFn = Callable[[], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Undo:
    unit: str  # "p4runtime s1", "openstack nfvi1", "local"
    what: str  # "delete 12 entries", "delete stack mosaico-lab-nfvi1"
    run: UndoFn


@dataclass
class RollbackReport:
    undone: list[Undo] = field(default_factory=list)
    failed: list[tuple[Undo, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failed


class Transaction:
    def __init__(self) -> None:
        self._journal: list[Undo] = []
        self._lock = asyncio.Lock()

    def record(self, unit: str, what: str, run: UndoFn) -> None:
        """Remember how to undo a step that has just succeeded."""
        self._journal.append(Undo(unit, what, run))

    @property
    def steps(self) -> tuple[Undo, ...]:
        return tuple(self._journal)

    async def rollback(self) -> RollbackReport:
        report = RollbackReport()
        while self._journal:
            step = self._journal.pop()
            try:
                result = step.run()
                if inspect.isawaitable(result):
                    await result
            except Exception as e:
                report.failed.append((step, f"{type(e).__name__}: {e}"))
            else:
                report.undone.append(step)
        return report
