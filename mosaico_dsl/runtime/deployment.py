"""Plan, deploy, destroy and observe a build across its targets, as one transaction.

Targets are applied in dependency order — the local Linux target, then OpenStack hosts
(Heat stacks, or OSM network services), then P4 switches — so traffic is steered to VNFs
only once they exist; units of one target (switches, hosts) run concurrently. Any failure
rolls back every step already done, newest first (see :mod:`.transaction`), and the state
store is written only when all succeeded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..diagnostics import CompileError, Diagnostic, Note, error
from .build import Build
from .plan import Plan, UnitPlan
from .state import StateLocked, StateStore, UnitUpdate
from .status import StatusRow
from .transaction import RollbackReport, Transaction

__all__ = ["Target", "TARGET_ORDER", "plan", "apply", "deploy", "destroy", "status", "lock",
           "DeployResult"]

TARGET_ORDER = ("local", "openstack", "osm", "p4runtime")
Progress = Callable[[str], None]


class Target(Protocol):
    """One kind of target. Plans never change anything; apply journals its undo steps."""

    target: str

    async def plan(self, store: StateStore, destroy: bool = False) -> list[UnitPlan]: ...

    async def apply(self, plan: UnitPlan, tx: Transaction, progress: Progress
                    ) -> UnitUpdate: ...

    async def status(self, store: StateStore) -> list[StatusRow]: ...


@dataclass(frozen=True)
class DeployResult:
    plan: Plan
    deployment: int  # id in the state store's log
    changed: bool


def _ordered(targets: Sequence[Target], reverse: bool = False) -> list[Target]:
    return sorted(targets, key=lambda t: TARGET_ORDER.index(t.target), reverse=reverse)


def _collect(results: Sequence) -> list[Diagnostic]:
    """Diagnostics of failed units; unexpected exceptions become E1212 with their text."""
    out: list[Diagnostic] = []
    for r in results:
        if isinstance(r, CompileError):
            out.extend(r.diagnostics)
        elif isinstance(r, BaseException):
            if isinstance(r, (KeyboardInterrupt, asyncio.CancelledError)):
                raise r
            out.append(error("E1212", f"{type(r).__name__}: {r}"))
    return out


async def plan(targets: Sequence[Target], store: StateStore, *, destroy: bool = False) -> Plan:
    """What deploy (or destroy) would do; reads the devices, changes nothing."""
    results = await asyncio.gather(*(t.plan(store, destroy) for t in _ordered(targets)),
                                   return_exceptions=True)
    diags = _collect(results)
    if diags:
        raise CompileError(diags)
    return Plan(tuple(u for r in results for u in r))


def _rollback_diagnostic(report: RollbackReport, command: str) -> Diagnostic:
    notes = [Note(f"undone: {u.unit}: {u.what}") for u in report.undone]
    if report.complete:
        return error("E1212", f"{command} failed and was rolled back: every completed step "
                              f"was undone ({len(report.undone)})", notes=notes,
                     hint="the targets are as they were before this run; fix the cause above "
                          "and run it again")
    notes += [Note(f"NOT undone: {u.unit}: {u.what}: {why}") for u, why in report.failed]
    return error("E1213", f"{command} failed and the rollback is incomplete: "
                          f"{len(report.failed)} step(s) could not be undone", notes=notes,
                 hint="run `mosaico plan` once the targets are reachable to see and repair "
                      "their state")


async def apply(the_plan: Plan, targets: Sequence[Target], store: StateStore, *,
                command: str = "deploy", build: Build | None = None,
                progress: Progress = lambda _: None) -> DeployResult:
    """Apply a plan all-or-nothing and record the outcome in the state store."""
    by_target = {t.target: t for t in targets}
    tx = Transaction()
    updates: list[UnitUpdate] = []
    build_id = str(build.root) if build else None
    try:
        for t in _ordered(targets, reverse=command == "destroy"):  # unsteer traffic first
            units = [u for u in the_plan.units if u.target == t.target]
            results = await asyncio.gather(*(by_target[u.target].apply(u, tx, progress)
                                             for u in units), return_exceptions=True)
            diags = _collect(results)
            if diags:
                raise CompileError(diags)
            updates += results
    except CompileError as e:
        progress("failed: rolling back")
        report = await tx.rollback()
        outcome = "rolled back" if report.complete else "rollback incomplete"
        store.commit(command, build_id, outcome, "; ".join(d.message for d in e.diagnostics))
        raise CompileError([*e.diagnostics, _rollback_diagnostic(report, command)]) from None
    except BaseException:
        await asyncio.shield(tx.rollback())
        store.commit(command, build_id, "rolled back", "interrupted")
        raise
    changed = not the_plan.empty
    dep = store.commit(command, build_id, "applied" if changed else "unchanged",
                       _summary(the_plan), updates)
    return DeployResult(the_plan, dep, changed)


def _summary(p: Plan) -> str:
    return "; ".join(f"{u.target} {u.unit}: {u.summary()}" for u in p.units) or "nothing"


def lock(store: StateStore) -> None:
    try:
        store.lock()
    except StateLocked as e:
        raise CompileError([error("E1214", str(e),
                                   hint="wait for it to finish; remove the lock file only "
                                        "if no mosaico process is running")]) from None


async def deploy(targets: Sequence[Target], store: StateStore, *, build: Build | None = None,
                 progress: Progress = lambda _: None) -> DeployResult:
    lock(store)
    try:
        the_plan = await plan(targets, store)
        return await apply(the_plan, targets, store, build=build, progress=progress)
    finally:
        store.unlock()


async def destroy(targets: Sequence[Target], store: StateStore, *,
                  progress: Progress = lambda _: None) -> DeployResult:
    lock(store)
    try:
        the_plan = await plan(targets, store, destroy=True)
        return await apply(the_plan, targets, store, command="destroy", progress=progress)
    finally:
        store.unlock()


async def status(targets: Sequence[Target], store: StateStore) -> list[StatusRow]:
    results = await asyncio.gather(*(t.status(store) for t in _ordered(targets)))
    return [r for rows in results for r in rows]
