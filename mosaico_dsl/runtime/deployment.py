"""Plan, deploy, destroy and observe a build across its targets, as one transaction.

Targets are applied in dependency order — the local Linux target, then OpenStack hosts
(Heat stacks, or OSM network services), then P4 switches — so traffic is steered to VNFs
only once they exist; units of one target (switches, hosts) run concurrently. Any failure
— or SIGINT, SIGTERM, SIGHUP — rolls back every step already done, newest first (see
:mod:`.transaction`), and the state store is written only when all succeeded. Before a
deploy or destroy touches anything, :func:`begin` takes the store's lock, checks the store
can be written, and :func:`recover` undoes what a killed run left (its write-ahead record).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..diagnostics import CompileError, Diagnostic, Note, error
from .build import Build
from .interrupt import Interrupt, Interrupted
from .jobs import SKIPPED, gather_bounded
from .plan import Plan, UnitPlan
from .state import Intent, StateError, StateStore, UnitUpdate
from .status import StatusRow
from .transaction import RollbackReport, Transaction, Undo, undo_all

__all__ = ["Target", "TARGET_ORDER", "plan", "apply", "deploy", "destroy", "status", "lock",
           "begin", "recover", "DeployResult", "Tally", "summarise"]

TARGET_ORDER = ("local", "openstack", "osm", "p4runtime")


@dataclass(frozen=True, slots=True)
class Tally:
    """How far one target's units are. A target with more than :data:`FOLD` units to
    change reports this instead of each unit's messages: one progress display for a
    thousand switches, not a thousand lines. Its text is a counter (``p4runtime: 537/1000
    switches``), which a log prints at most every few seconds."""

    target: str
    done: int
    total: int
    failed: int = 0

    def __str__(self) -> str:
        noun = "switches" if self.target == "p4runtime" else "units"
        return f"{self.target}: {self.done}/{self.total} {noun}" + (
            f" ({self.failed} failed)" if self.failed else "")


FOLD = 8  # more units than this to change: one Tally instead of each unit's messages
SUMMARY = 5  # diagnostics shown in full when many units fail; the rest are counted

# What a deploy reports as it goes: a line of text, or a target's Tally.
Progress = Callable[[str | Tally], None]


class Target(Protocol):
    """One kind of target. Plans never change anything; apply announces each step with its
    undo (:meth:`.Transaction.step`); ``undo`` runs one such undo from its data alone."""

    target: str

    async def plan(self, store: StateStore, destroy: bool = False) -> list[UnitPlan]: ...

    async def apply(self, plan: UnitPlan, tx: Transaction, progress: Progress
                    ) -> UnitUpdate: ...

    async def status(self, store: StateStore) -> list[StatusRow]: ...

    def undo(self, spec: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True)
class DeployResult:
    plan: Plan
    deployment: int  # id in the state store's log
    changed: bool
    recovered: RollbackReport | None = None  # what an interrupted run left, undone first


def _ordered(targets: Sequence[Target], reverse: bool = False) -> list[Target]:
    return sorted(targets, key=lambda t: TARGET_ORDER.index(t.target), reverse=reverse)


def summarise(diags: Sequence[Diagnostic], first: int = SUMMARY) -> list[Diagnostic]:
    """Many units failing (a thousand switches unreachable) give the first ``first``
    diagnostics in full and a count of the rest by code on the last one, not a thousand
    messages."""
    if len(diags) <= first + 1:
        return list(diags)
    rest = diags[first:]
    counts: dict[str, int] = {}
    for d in rest:
        counts[d.code] = counts.get(d.code, 0) + 1
    by_code = ", ".join(f"{code} ×{n}" for code, n in sorted(counts.items()))
    last = diags[first - 1]
    note = Note(f"... and {len(rest)} more error(s) like these: {by_code} "
                "(`mosaico plan --format json` lists every unit)")
    return [*diags[:first - 1], dataclasses.replace(last, notes=(*last.notes, note))]


def _collect(results: Sequence, applying: bool) -> list[Diagnostic]:
    """Diagnostics of failed units. While applying, an unexpected exception becomes E1229
    (the rollback still runs); while planning it is a bug and propagates."""
    out: list[Diagnostic] = []
    seen: set[Diagnostic] = set()
    for r in results:
        if isinstance(r, CompileError):
            for d in r.diagnostics:
                if d not in seen:
                    seen.add(d)
                    out.append(d)
        elif isinstance(r, BaseException):
            if isinstance(r, KeyboardInterrupt | asyncio.CancelledError) or not applying:
                raise r
            out.append(error("E1229", f"a step failed unexpectedly: {type(r).__name__}: {r}",
                             hint="this is probably a bug in mosaico: report this message; "
                                  "the rollback below says what was undone"))
    return out


def _safe(progress: Progress) -> Progress:
    """Progress that cannot stop a rollback (a terminal gone with SIGHUP)."""

    def say(text: str | Tally) -> None:
        try:
            progress(text)
        except OSError:
            pass
    return say


async def plan(targets: Sequence[Target], store: StateStore, *, destroy: bool = False) -> Plan:
    """What deploy (or destroy) would do; reads the devices, changes nothing."""
    results = await asyncio.gather(*(t.plan(store, destroy) for t in _ordered(targets)),
                                   return_exceptions=True)
    diags = _collect(results, applying=False)
    if diags:
        raise CompileError(summarise(diags))
    notes = _interrupted_notes(store, {t.target for t in targets})
    units = tuple(u for r in results for u in r)
    if notes and units:
        first = units[0]
        units = (dataclasses.replace(first, notes=(*notes, *first.notes)), *units[1:])
    return Plan(units)


def _interrupted_notes(store: StateStore, kinds: set[str]) -> tuple[str, ...]:
    left = store.intents(kinds)
    if not left:
        return ()
    if store.busy():
        return (f"a {left[-1].command} is in progress (pid {left[-1].pid}): "
                f"{len(left)} step(s) announced so far",)
    return (f"an interrupted {left[-1].command} (pid {left[-1].pid}, "
            f"{_when(left[-1].at)}) left {len(left)} step(s); the next deploy or destroy "
            "undoes them first",)


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _rollback_diagnostic(report: RollbackReport, command: str) -> Diagnostic | None:
    if not report.undone and not report.failed:
        return None  # nothing had been changed: claim no rollback
    notes = _steps("undone", report.undone)
    kept = [Note(f"the write-ahead record could not be cleared ({report.record_kept}): the "
                 "next deploy or destroy repeats these undos, which are idempotent")] \
        if report.record_kept else []
    if report.complete:
        return error("E1212", f"{command} failed and was rolled back: every completed step "
                              f"was undone ({len(report.undone)})", notes=notes + kept,
                     hint="the targets are as they were before this run; fix the cause above "
                          "and run it again")
    notes += _steps("NOT undone", [u for u, _ in report.failed],
                    [why for _, why in report.failed])
    return error("E1213", f"{command} failed and the rollback is incomplete: "
                          f"{len(report.failed)} step(s) could not be undone",
                 notes=notes + kept,
                 hint="the write-ahead record keeps the steps not undone: the next deploy or "
                      "destroy undoes them first, once their targets are reachable "
                      "(`mosaico plan` shows the targets' state meanwhile)")


def _steps(label: str, steps: Sequence[Undo], why: Sequence[str] | None = None,
           first: int = 20, all_up_to: int = 60) -> list[Note]:
    """One note per step — up to ``all_up_to`` steps, else the first ``first`` and how
    many more, on how many units (a rollback of a thousand switches is not a thousand
    lines)."""
    if len(steps) <= all_up_to:
        first = all_up_to
    notes = [Note(f"{label}: {u.unit}: {u.what}" + (f": {why[i]}" if why else ""))
             for i, u in enumerate(steps[:first])]
    if len(steps) > first:
        rest = steps[first:]
        notes.append(Note(f"{label}: ... and {len(rest)} more step(s) on "
                          f"{len({u.unit for u in rest})} unit(s)"))
    return notes


def _nothing_changed(diags: list[Diagnostic]) -> list[Diagnostic]:
    last = diags[-1]
    return [*diags[:-1], dataclasses.replace(
        last, notes=(*last.notes, Note("nothing had been changed on any target")))]


async def _apply_units(t: Target, units: Sequence[UnitPlan], tx: Transaction,
                       progress: Progress, jobs: int | None,
                       interrupt: Interrupt | None) -> list[UnitUpdate]:
    """Apply one target's units, ``jobs`` at a time; after a failure (or a signal) start
    no further unit — those running finish their step, then the rollback undoes them."""
    failed = 0
    done = 0
    fold = sum(not u.empty for u in units) > FOLD
    unit_progress: Progress = (lambda _: None) if fold else progress

    async def one(u: UnitPlan) -> UnitUpdate:
        nonlocal failed
        try:
            return await t.apply(u, tx, unit_progress)
        except BaseException:
            failed += 1
            raise

    def finished() -> None:
        nonlocal done
        done += 1
        if fold:
            progress(Tally(t.target, done, len(units), failed))

    if fold:
        progress(Tally(t.target, 0, len(units)))
    results = await gather_bounded(
        [functools.partial(one, u) for u in units], jobs, finished=finished,
        stop=lambda: failed > 0 or (interrupt is not None and interrupt.requested))
    diags = _collect([r for r in results if r is not SKIPPED], applying=True)
    if diags:
        skipped = sum(r is SKIPPED for r in results)
        if skipped:
            last = diags[-1]
            diags[-1] = dataclasses.replace(last, notes=(*last.notes, Note(
                f"{skipped} of {len(units)} {t.target} units were not started after the "
                "failure")))
        raise CompileError(summarise(diags))
    if any(r is SKIPPED for r in results):
        tx.check()  # skipped for a signal: stop here
    return list(results)


async def apply(the_plan: Plan, targets: Sequence[Target], store: StateStore, *,
                command: str = "deploy", build: Build | None = None,
                progress: Progress = lambda _: None,
                interrupt: Interrupt | None = None, jobs: int | None = None) -> DeployResult:
    """Apply a plan all-or-nothing and record the outcome in the state store; the units
    of a target run ``jobs`` at a time (default :data:`.jobs.DEFAULT_JOBS`)."""
    progress = _safe(progress)
    record = store.write_ahead(command)
    tx = Transaction({t.target: t.undo for t in targets}, record=record, interrupt=interrupt,
                     jobs=jobs)
    updates: list[UnitUpdate] = []
    build_id = str(build.root) if build else None
    try:
        tx.check()
        for t in _ordered(targets, reverse=command == "destroy"):  # unsteer traffic first
            units = [u for u in the_plan.units if u.target == t.target]
            updates += await _apply_units(t, units, tx, progress, jobs, interrupt)
        tx.check()  # a signal after the last step still aborts the run
        changed = not the_plan.empty
        dep = store.commit(command, build_id, "applied" if changed else "unchanged",
                           _summary(the_plan), updates, run=record.run)
    except CompileError as e:
        if tx.steps:
            progress("failed: rolling back")
        report = await tx.rollback()
        diags = list(e.diagnostics)
        rolled = _rollback_diagnostic(report, command)
        diags = [*diags, rolled] if rolled else _nothing_changed(diags)
        outcome = "rolled back" if report.complete else "rollback incomplete"
        try:
            store.log(command, build_id, outcome, "; ".join(d.message for d in e.diagnostics))
        except StateError:
            pass  # the store said why above, or the rollback diagnostic does
        if interrupt is not None and interrupt.requested:
            raise Interrupted(interrupt.signum, command, _interrupted_first(diags)) from None
        raise CompileError(diags) from None
    except BaseException:
        await asyncio.shield(tx.rollback())
        try:
            store.log(command, build_id, "rolled back", "interrupted")
        except StateError:
            pass
        raise
    return DeployResult(the_plan, dep, changed)


def _interrupted_first(diags: list[Diagnostic]) -> list[Diagnostic]:
    """The interruption first (once), then the rest."""
    first = next((d for d in diags if d.code == "E1233"), None)
    return ([first] if first else []) + [d for d in diags if d.code != "E1233"]


def _summary(p: Plan) -> str:
    return "; ".join(f"{u.target} {u.unit}: {u.summary()}" for u in p.units) or "nothing"


def lock(store: StateStore) -> None:
    """Take the store's lock (``E1214`` if another run holds it, ``E1224`` if the lock
    file cannot be made)."""
    store.lock()


async def recover(targets: Sequence[Target], store: StateStore, *,
                  progress: Progress = lambda _: None,
                  jobs: int | None = None) -> RollbackReport | None:
    """Undo what interrupted runs left in the write-ahead record for these targets, newest
    first (the caller holds the lock, so no run that wrote them is alive). Intents of
    other target kinds stay for a command that acts on them."""
    progress = _safe(progress)
    kinds = {t.target for t in targets}
    left = store.intents()
    mine = [i for i in left if i.target in kinds]
    others = sorted({i.target for i in left} - kinds)
    if others:
        progress(f"an interrupted run left steps on {', '.join(others)}: a deploy or destroy "
                 f"with --target {' --target '.join(others)} undoes them")
    if not mine:
        return None
    last = mine[-1]
    progress(f"recovering an interrupted {last.command} (pid {last.pid}, {_when(last.at)}): "
             f"undoing {len(mine)} step(s)")
    undoers = {t.target: t.undo for t in targets}
    count = 0

    def each(undo: Undo, why: str | None) -> None:
        nonlocal count
        count += 1
        if len(mine) <= FOLD:
            if why is None:
                progress(f"recovered: {undo.unit}: {undo.what}")
        else:
            progress(f"recovered: {count}/{len(mine)} steps")

    report = await undo_all([_undo_of(i) for i in reversed(mine)], undoers, jobs=jobs,
                            each=each)
    store.discard_intents(u.seq for u in report.undone)
    outcome = "recovered" if report.complete else "recovery incomplete"
    store.log("recover", None, outcome,
              f"{len(report.undone)} step(s) of an interrupted {last.command} undone"
              + (f", {len(report.failed)} not" if report.failed else ""))
    if report.failed:
        notes = _steps("undone", report.undone)
        notes += _steps("NOT undone", [u for u, _ in report.failed],
                        [why for _, why in report.failed])
        raise CompileError([error(
            "E1226", f"an interrupted {last.command} (pid {last.pid}, {_when(last.at)}) left "
                     f"steps that could not be undone ({len(report.failed)} of {len(mine)})",
            notes=notes, hint="nothing else was done; make the targets named reachable and "
                              "run the command again (the write-ahead record keeps these "
                              "steps)")])
    return report


def _undo_of(i: Intent) -> Undo:
    return Undo(i.target, i.unit, i.what, i.spec, i.seq)


async def begin(targets: Sequence[Target], store: StateStore, *,
                progress: Progress = lambda _: None,
                jobs: int | None = None) -> RollbackReport | None:
    """What every deploy and destroy does first: take the lock, check that the store can be
    written (before any target is touched), undo what an interrupted run left."""
    store.lock()
    try:
        store.check_writable()
        return await recover(targets, store, progress=progress, jobs=jobs)
    except BaseException:
        store.unlock()
        raise


async def deploy(targets: Sequence[Target], store: StateStore, *, build: Build | None = None,
                 progress: Progress = lambda _: None,
                 interrupt: Interrupt | None = None, jobs: int | None = None) -> DeployResult:
    recovered = await begin(targets, store, progress=progress, jobs=jobs)
    try:
        the_plan = await plan(targets, store)
        result = await apply(the_plan, targets, store, build=build, progress=progress,
                             interrupt=interrupt, jobs=jobs)
        return dataclasses.replace(result, recovered=recovered)
    finally:
        store.unlock()


async def destroy(targets: Sequence[Target], store: StateStore, *,
                  progress: Progress = lambda _: None,
                  interrupt: Interrupt | None = None, jobs: int | None = None) -> DeployResult:
    recovered = await begin(targets, store, progress=progress, jobs=jobs)
    try:
        the_plan = await plan(targets, store, destroy=True)
        result = await apply(the_plan, targets, store, command="destroy", progress=progress,
                             interrupt=interrupt, jobs=jobs)
        return dataclasses.replace(result, recovered=recovered)
    finally:
        store.unlock()


async def status(targets: Sequence[Target], store: StateStore) -> list[StatusRow]:
    results = await asyncio.gather(*(t.status(store) for t in _ordered(targets)))
    rows = [r for rows in results for r in rows]
    left = store.intents({t.target for t in targets})
    if left:
        busy = store.busy()
        here = {(t, u.removeprefix(t).strip() or u) for t, u in _by_unit(left)}
        # "not deployed" is not the whole truth where a killed run left steps
        rows = [r for r in rows if not (r.state == "not deployed" and
                                        (r.target, r.node) in here)]
        for (target, unit), steps in _by_unit(left).items():
            last = steps[-1]
            state = "deploying" if busy else "interrupted"
            detail = (f"a {last.command} in progress (pid {last.pid}): {len(steps)} step(s) "
                      "so far" if busy else
                      f"a {last.command} killed at {_when(last.at)} (pid {last.pid}) left "
                      f"{len(steps)} step(s) here: the next deploy or destroy undoes them")
            rows.append(StatusRow("*", unit.removeprefix(target).strip() or unit, target,
                                  state, detail=detail))
    return rows


def _by_unit(intents: Sequence[Intent]) -> dict[tuple[str, str], list[Intent]]:
    out: dict[tuple[str, str], list[Intent]] = {}
    for i in intents:
        out.setdefault((i.target, i.unit), []).append(i)
    return out
