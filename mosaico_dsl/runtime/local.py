"""The local Linux target: the build's ``local.json`` realised in network namespaces.

The realisation itself — namespaces, veth pairs, addressing, nftables rulesets, queueing
disciplines — is the VNF backend's (:mod:`mosaico_dsl.backends.vnf.local`); this module
adds what a *runtime* needs around it: a plan against the recorded deployment and the live
machine (drift: namespaces or tables deleted, tables changed by hand), a journaled apply
that a later failure can undo step by step, destroy from the state store alone (the
realised plan and its rulesets are recorded there, so the build directory may be gone),
and status from the nftables counters and qdisc statistics.

A changed plan applies only the difference (:func:`~mosaico_dsl.backends.vnf.local.diff`):
namespaces and veths added or removed, the addressing of the namespaces that changed, the
rulesets whose text changed — reloaded in place, so unchanged counters keep counting — and
the queues that changed. An unchanged plan touches nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..diagnostics import CompileError, error
from .build import Build
from .plan import ADD, DELETE, MODIFY, Change, UnitPlan
from .state import StateStore, UnitUpdate
from .status import Metrics, StatusRow
from .transaction import Transaction

__all__ = ["LocalTarget", "TARGET"]

TARGET = "local"
UNIT = "local"
Progress = Callable[[str], None]


def _backend():
    from ..backends.vnf import local as realise  # the VNF backend's realisation code

    return realise


@dataclass(frozen=True)
class _Recorded:
    doc: dict  # local.json
    files: Mapping[str, str]  # the rulesets and scripts it refers to
    prefix: str

    @property
    def digest(self) -> str:
        return _digest(self.doc, self.files, self.prefix)

    def plan(self):
        from ..backends.vnf.localplan import LocalPlan

        return LocalPlan.from_json(self.doc, self.files)


def _digest(doc: Mapping, files: Mapping[str, str], prefix: str) -> str:
    blob = json.dumps({"doc": doc, "files": dict(files), "prefix": prefix}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class _Payload:
    new: _Recorded | None
    old: _Recorded | None  # what is deployed now (recorded)
    changes: Any  # backends.vnf.local.Changes: the steps from old (as it is live) to new


_OPS = {"add": ADD, "modify": MODIFY, "delete": DELETE}


def _fail(message: str, hint: str | None = None) -> CompileError:
    return CompileError([error("E1211", message, hint=hint)])


def _live_namespaces() -> set[str]:
    try:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return {line.split()[0] for line in out.splitlines() if line.strip()}


class LocalTarget:
    """Deploys the build's ``local.json`` on this machine (root required)."""

    target = TARGET

    def __init__(self, build: Build | None, *, prefix: str | None = None) -> None:
        self.build = build
        self.prefix = prefix

    def _desired(self) -> _Recorded | None:
        if self.build is None or self.build.local_plan is None:
            return None
        root = self.build.root
        try:
            doc = json.loads(self.build.local_plan.read_text(encoding="utf-8"))
            files = {p: (root / p).read_text(encoding="utf-8") for p in doc.get("files", {})}
            rec = _Recorded(doc, files, self.prefix if self.prefix is not None
                            else doc.get("prefix", ""))
            rec.plan()  # validates format and file hashes
        except (OSError, ValueError, KeyError) as e:
            raise _fail(f"{self.build.local_plan}: {e}",
                        hint="recompile: the local plan does not match its files") from None
        return rec

    @staticmethod
    def _recorded(store: StateStore) -> _Recorded | None:
        u = store.unit(TARGET, UNIT)
        if u is None:
            return None
        return _Recorded(u.data["doc"], u.data["files"], u.data["prefix"])

    # ------------------------------------------------------------------ plan

    async def plan(self, store: StateStore, destroy: bool = False) -> list[UnitPlan]:
        new = None if destroy else self._desired()
        old = self._recorded(store)
        if new is None and old is None:
            return []
        return [await asyncio.to_thread(self._plan, new, old)]

    def _plan(self, new: _Recorded | None, old: _Recorded | None) -> UnitPlan:
        realise = _backend()
        try:
            drift = realise.inspect(old.plan(), prefix=old.prefix) if old is not None \
                else realise.Drift()
            changes = realise.diff(old.plan() if old else None, new.plan() if new else None,
                                   old_prefix=old.prefix if old else None,
                                   new_prefix=new.prefix if new else None, drift=drift)
        except realise.LocalTargetError as e:
            raise _fail(f"local target: {e}") from None
        shown = []
        for ns in drift.missing_namespaces:
            shown.append(Change(DELETE, f"namespace {ns}", drift="deleted out of band"))
        for ns, path, table in drift.missing_tables:
            shown.append(Change(DELETE, f"nftables table {table} ({path}) in {ns}",
                                drift="deleted out of band"))
        for ns, path, table in drift.changed_tables:
            shown.append(Change(MODIFY, f"nftables table {table} ({path}) in {ns}",
                                drift="changed out of band"))
        clash = set(changes.created) & (_live_namespaces() if changes.created else set())
        lines = [Change(_OPS[s.op], s.what + (" — exists already, not created by mosaico"
                                              if s.creates in clash else ""), before=s.before)
                 for s in changes.shown]
        notes = () if drift.tables_checked else (
            "nftables tables were not checked for drift (that needs root)",)
        return UnitPlan(TARGET, UNIT, tuple(lines), tuple(shown), notes,
                        _Payload(new, old, changes))

    # ------------------------------------------------------------------ apply

    async def apply(self, plan: UnitPlan, tx: Transaction,
                    progress: Progress = lambda _: None) -> UnitUpdate:
        p: _Payload = plan.payload
        record = UnitUpdate(TARGET, UNIT, None) if p.new is None else UnitUpdate(
            TARGET, UNIT, p.new.digest,
            {"doc": p.new.doc, "files": dict(p.new.files), "prefix": p.new.prefix})
        if p.changes.empty:
            return record
        await asyncio.to_thread(self._apply, p, tx, progress)
        return record

    def _apply(self, p: _Payload, tx: Transaction, progress: Progress) -> None:
        realise = _backend()
        steps = [s for s in p.changes.steps if not s.deferred]
        progress(f"local: {len(steps)} step{'s' if len(steps) != 1 else ''}")
        try:
            deployment = realise.apply_changes(
                p.changes, journal=lambda what, undo: tx.record(TARGET, what, undo))
        except realise.LocalTargetError as e:
            hint = None
            if "already exist" in str(e):
                hint = ("a previous deployment (or another program) owns these namespaces: "
                        "`mosaico destroy --target local`, or delete them with "
                        "`ip netns del NAME` if nothing else uses them")
            raise _fail(f"local target: {e}", hint=hint) from None
        for w in deployment.warnings:
            progress(f"local: warning: {w}")

    # ------------------------------------------------------------------ status

    async def status(self, store: StateStore) -> list[StatusRow]:
        return await asyncio.to_thread(self._status, store)

    def _status(self, store: StateStore) -> list[StatusRow]:
        rec = self._recorded(store)
        if rec is None:
            return [StatusRow("*", "local", TARGET, "not deployed")]
        live = _live_namespaces()
        plan = rec.plan()
        realise = _backend()
        names = realise.namespace_names(plan, rec.prefix)
        try:
            counters = realise.read_counters(plan, prefix=rec.prefix)
        except realise.LocalTargetError as e:
            counters = {}
            failure = str(e)
        else:
            failure = ""
        qstats = _qdisc_stats(plan, names, live)
        rows = []
        for ns in plan.namespaces:
            if not (ns.instances or ns.counters or ns.tc):
                continue
            state = "running" if names[ns.name] in live else "missing"
            per: dict[str, Metrics] = {}
            totals: dict[str, int] = {}
            own = Metrics()  # a switch stand-in's packets no service matched: its drops
            for ref in ns.counters:
                packets, _ = counters.get((ns.name, ref.name), (None, None))
                if packets is None:
                    continue
                if not ref.instance:
                    if ref.meaning == "unclassified":
                        own = Metrics(packets=packets, drops=packets)
                    continue
                svc = ref.instance.split("/")[0]
                totals[ref.instance] = totals.get(ref.instance, 0) + packets
                if ref.meaning == "dropped":
                    per[svc] = per.get(svc, Metrics()) + Metrics(drops=packets)
            for instance, total in totals.items():
                svc = instance.split("/")[0]
                m = per.get(svc, Metrics())
                per[svc] = Metrics(max(m.packets or 0, total), m.drops, m.ce_marks,
                                   m.queue_delay_ns)
            for t in ns.tc:
                svc = t.instance.split("/")[0]
                per[svc] = per.get(svc, Metrics()) + qstats.get((ns.name, t.device), Metrics())
            node = f"{ns.node}:{ns.name}" if ns.role == "vnf" else ns.node
            total = own
            for m in per.values():
                total = total + m
            rows.append(StatusRow("*", node, TARGET, state, total, failure))
            rows += [StatusRow(s, node, TARGET, state, m) for s, m in sorted(per.items())]
        return rows


def _qdisc_stats(plan, names: Mapping[str, str], live: set[str]
                 ) -> dict[tuple[str, str], Metrics]:
    """CE marks, drops and queue delay of the queueing disciplines the plan installs."""
    out: dict[tuple[str, str], Metrics] = {}
    for ns in plan.namespaces:
        real = names[ns.name]
        if not ns.tc or real not in live:
            continue
        for t in ns.tc:
            proc = subprocess.run(["ip", "netns", "exec", real, "tc", "-s", "-j", "qdisc",
                                   "show", "dev", t.device], capture_output=True, text=True,
                                  timeout=30)
            try:
                qdiscs = json.loads(proc.stdout or "[]")
            except ValueError:
                continue
            m = Metrics()
            for q in qdiscs:
                stats = {**q, **q.get("xstats", {})} if isinstance(q.get("xstats"), dict) \
                    else q
                delay = max((int(v) for k, v in stats.items()
                             if k.startswith("delay") and isinstance(v, int)), default=None)
                m = m + Metrics(drops=q.get("drops"),
                                ce_marks=stats.get("ecn_mark", stats.get("ce_mark")),
                                queue_delay_ns=delay * 1000 if delay is not None else None)
            out[(ns.name, t.device)] = m
    return out
