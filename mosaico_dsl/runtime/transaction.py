"""All-or-nothing across targets: a journal of undos, written ahead, replayed in reverse.

Every step a target applies (a batch of P4Runtime updates, a pipeline push, a stack
created, a namespace added) is announced *before* it runs with :meth:`Transaction.step`:
what it is and how to undo it, as data (``spec``) that the target's ``undo`` executes. The
announcement goes to the state store's write-ahead record (durably, before the step) and
is marked completed after the step. When a later step fails, or a signal asks the run to
stop, :meth:`Transaction.rollback` undoes every announced step newest first — the one that
failed too, since it may have done part of its work: undos are idempotent — across
targets, so a multi-target deploy unwinds in the reverse order it was done. An undo that
fails is reported, not hidden, and its intent stays in the store for the next run to retry.
A run killed outright (SIGKILL, a power cut) leaves its intents in the store, and the next
``deploy`` or ``destroy`` undoes them the same way (:func:`.deployment.recover`).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .faults import Faults
from .interrupt import Interrupt
from .jobs import gather_bounded
from .state import StateError, WriteAhead

__all__ = ["Transaction", "Undo", "Step", "RollbackReport", "Undoer", "undo_all", "run_undo"]

# A target's undo of one recorded step: sync (run in a worker thread) or async.
Undoer = Callable[[Mapping[str, Any]], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Undo:
    target: str  # the target kind whose ``undo`` runs it
    unit: str  # "p4runtime s1", "openstack nfvi1", "local"
    what: str  # "delete 12 entries", "delete stack mosaico-lab-nfvi1"
    spec: Mapping[str, Any]  # how to undo it, as data (also after a restart)
    seq: int | None = None  # its intent in the write-ahead record
    n: int = 0  # the step's number in its run (1, 2, ...)


@dataclass
class RollbackReport:
    undone: list[Undo] = field(default_factory=list)
    failed: list[tuple[Undo, str]] = field(default_factory=list)
    record_kept: str = ""  # why the write-ahead record could not be cleared, if it could not

    @property
    def complete(self) -> bool:
        return not self.failed


class Step:
    """A step being applied: :meth:`amend` replaces its undo once the step knows more (the
    stack id Heat gave; the updates a switch refused, which need no undo); :meth:`discard`
    says it did nothing at all (a request refused outright)."""

    def __init__(self, tx: Transaction, undo: Undo) -> None:
        self._tx, self.undo = tx, undo
        self.discarded = False

    def amend(self, spec: Mapping[str, Any], what: str | None = None) -> None:
        u = self.undo
        self.undo = Undo(u.target, u.unit, what or u.what, dict(spec), u.seq, u.n)
        self._tx._replace(self.undo)

    def discard(self) -> None:
        self.discarded = True


class Transaction:
    def __init__(self, undoers: Mapping[str, Undoer], *, record: WriteAhead | None = None,
                 interrupt: Interrupt | None = None, faults: Faults | None = None,
                 jobs: int | None = None) -> None:
        self._undoers = dict(undoers)
        self._jobs = jobs
        self._record = record
        self._interrupt = interrupt
        self._faults = faults or Faults.from_env()
        self._journal: list[Undo] = []
        self._mutex = threading.Lock()  # steps are announced from worker threads too
        self.count = 0  # steps announced

    @property
    def steps(self) -> tuple[Undo, ...]:
        return tuple(self._journal)

    def check(self) -> None:
        """Stop here if a signal asked the run to (raises :class:`.interrupt.Interrupted`)."""
        if self._interrupt is not None:
            self._interrupt.check()

    @contextmanager
    def step(self, target: str, unit: str, what: str, spec: Mapping[str, Any]
             ) -> Iterator[Step]:
        """Announce a step, run the body, mark it completed. If the body raises, the step
        stays in the journal (its undo is idempotent and covers a partial step) unless it
        called :meth:`Step.discard`."""
        self.check()
        with self._mutex:
            self.count += 1
            n = self.count
        seq = self._record.write(target, unit, what, spec) if self._record else None
        undo = Undo(target, unit, what, dict(spec), seq, n)
        with self._mutex:
            self._journal.append(undo)
        self._faults.hit(n, "before", self._interrupt)
        s = Step(self, undo)
        try:
            self.check()  # a signal the fault point sent, or one that came meanwhile
        except BaseException:
            self._drop(undo)  # stopped before it ran: nothing to undo
            raise
        try:
            yield s
        except BaseException:
            if s.discarded:
                self._drop(s.undo)
            raise
        if s.discarded:
            self._drop(s.undo)
            return
        if s.undo.seq is not None:
            self._record.complete(s.undo.seq)
        self._faults.hit(n, "after", self._interrupt)

    def _replace(self, undo: Undo) -> None:
        with self._mutex:
            self._journal = [undo if u.n == undo.n else u for u in self._journal]
        if undo.seq is not None:
            self._record.amend(undo.seq, undo.spec)

    def _drop(self, undo: Undo) -> None:
        with self._mutex:
            self._journal = [u for u in self._journal if u.n != undo.n]
        if undo.seq is not None:
            try:
                self._record.discard([undo.seq])
            except StateError:
                pass  # left in the record: its undo is idempotent, the next run repeats it

    async def rollback(self) -> RollbackReport:
        """Undo every announced step, newest first; clear the write-ahead record of those
        undone (a failed undo's intent stays, for the next run to retry)."""
        with self._mutex:
            journal, self._journal = self._journal, []
        report = await undo_all(list(reversed(journal)), self._undoers, jobs=self._jobs)
        if self._record is not None:
            try:
                self._record.discard(u.seq for u in report.undone if u.seq is not None)
            except StateError as e:
                report.record_kept = e.diagnostics[0].message
        return report


async def undo_all(steps: Sequence[Undo], undoers: Mapping[str, Undoer], *,
                   jobs: int | None = None,
                   each: Callable[[Undo, str | None], None] | None = None) -> RollbackReport:
    """Undo ``steps``, given newest first. The steps of one unit run in that order; the
    units of a stretch of steps of one target (a thousand switches written concurrently)
    are undone concurrently, ``jobs`` at a time; targets unwind in the reverse of the
    order they were applied. ``each(step, error)`` hears of every step (error None: it
    was undone). The report lists the steps in the order given."""
    outcome: dict[int, str | None] = {}  # index in steps → None (undone) or why not

    async def unit(indices: list[int]) -> None:
        for i in indices:
            step = steps[i]
            try:
                await run_undo(undoers[step.target], step.spec)
            except Exception as e:
                outcome[i] = _first_message(e) if _is_diagnostic(e) else \
                    f"{type(e).__name__}: {e}"
            else:
                outcome[i] = None
            if each is not None:
                each(step, outcome[i])

    i = 0
    while i < len(steps):
        target = steps[i].target
        units: dict[str, list[int]] = {}
        while i < len(steps) and steps[i].target == target:
            units.setdefault(steps[i].unit, []).append(i)
            i += 1
        results = await gather_bounded([partial(unit, idx) for idx in units.values()], jobs)
        for r in results:
            if isinstance(r, BaseException):
                raise r  # a cancellation, never an undo's own failure (caught above)
    report = RollbackReport()
    for i, step in enumerate(steps):
        if outcome.get(i, "not run") is None:
            report.undone.append(step)
        else:
            report.failed.append((step, outcome.get(i) or "not run"))
    return report


async def run_undo(undoer: Undoer, spec: Mapping[str, Any]) -> None:
    """Run one undo: an async one on the loop, a blocking one in a worker thread."""
    if inspect.iscoroutinefunction(undoer):
        await undoer(spec)
        return
    result = await asyncio.to_thread(undoer, spec)
    if inspect.isawaitable(result):
        await result


def _is_diagnostic(e: BaseException) -> bool:
    return hasattr(e, "diagnostics")


def _first_message(e: BaseException) -> str:
    return "; ".join(d.message for d in e.diagnostics)  # type: ignore[attr-defined]
