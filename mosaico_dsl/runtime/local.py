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
rulesets whose text changed — reloaded in place, so unchanged counters keep counting — the
queues that changed, and the BMv2 switches whose program changed (restarted). An unchanged
plan touches nothing.

**Data planes.** A switch with a P4 program in the build runs it on BMv2 (``simple_switch``
in its namespace, :mod:`mosaico_dsl.backends.vnf.localswitch`) when BMv2, its CLI, p4c and
ethtool are on PATH, or when ``--data-plane bmv2`` asks for it; otherwise — or with
``--data-plane linux`` — it is the Linux stand-in (nftables and tc). The choice is recorded:
a later deploy without ``--data-plane`` keeps asking for the same (``auto`` re-checks the
tools). The record keeps each BMv2 switch's program, metrics map and entry handles, so
``status`` reads its counters and registers and ``destroy`` stops it without the build.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..diagnostics import CompileError, Note, error
from .build import Build, SwitchArtifacts
from .entities import EntriesError, load_updates
from .plan import ADD, DELETE, MODIFY, Change, UnitPlan
from .state import StateStore, UnitUpdate
from .status import Metrics, StatusRow, aggregate, entry_key, metric_scopes, source_key
from .transaction import Transaction

__all__ = ["LocalTarget", "TARGET", "DATA_PLANES", "RECORD_SCHEMA", "check_prefix"]

TARGET = "local"
UNIT = "local"
DATA_PLANES = ("bmv2", "linux")
Progress = Callable[[str], None]


def _backend():
    from ..backends.vnf import local as realise  # the VNF backend's realisation code

    return realise


def _localswitch():
    from ..backends.vnf import localswitch  # BMv2 in a switch namespace

    return localswitch


@dataclass(frozen=True)
class _Bmv2:
    """A switch that runs its P4 program on BMv2, as recorded."""

    program: Any  # backends.vnf.localswitch.SwitchProgram
    metrics: Mapping | None  # metrics.json: where status finds each number
    entries: tuple[str, ...]  # each table entry's identity, in the order of its table_add
    pid: int | None = None  # of the last start, and the handles BMv2 gave the entries
    handles: tuple[int, ...] = ()

    def to_json(self) -> dict:
        return {"program": self.program.to_json(), "metrics": self.metrics,
                "entries": list(self.entries), "pid": self.pid, "handles": list(self.handles)}

    @classmethod
    def from_json(cls, doc: Mapping) -> _Bmv2:
        program = _localswitch().SwitchProgram.from_json(doc["program"])
        return cls(program, doc.get("metrics"), tuple(doc.get("entries", ())), doc.get("pid"),
                   tuple(doc.get("handles", ())))


@dataclass(frozen=True)
class _Recorded:
    doc: dict  # local.json
    files: Mapping[str, str]  # the rulesets and scripts it refers to
    prefix: str
    data_plane: str = "linux"  # what was asked for: auto | bmv2 | linux
    bmv2: Mapping[str, _Bmv2] = field(default_factory=dict)  # switch → its BMv2 program
    why: str = ""  # why the switches without BMv2 have none (for the plan)

    @property
    def digest(self) -> str:
        blob = json.dumps({"doc": self.doc, "files": dict(self.files), "prefix": self.prefix,
                           "bmv2": {n: b.program.digest for n, b in sorted(self.bmv2.items())}},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def programs(self) -> dict:
        return {n: b.program for n, b in self.bmv2.items()}

    def plan(self):
        from ..backends.vnf.localplan import LocalPlan

        return LocalPlan.from_json(self.doc, self.files)

    def to_json(self) -> dict:
        return {"doc": self.doc, "files": dict(self.files), "prefix": self.prefix,
                "data_plane": self.data_plane,
                "bmv2": {n: b.to_json() for n, b in sorted(self.bmv2.items())}}

    @classmethod
    def from_json(cls, data: Mapping) -> _Recorded:
        # A record written before BMv2 ran in the local target is the Linux stand-in.
        return cls(data["doc"], data["files"], data["prefix"], data.get("data_plane", "linux"),
                   {n: _Bmv2.from_json(b) for n, b in data.get("bmv2", {}).items()})


# What a local unit's record holds (the store checks it before anything reads it).
RECORD_SCHEMA = {
    "type": "object",
    "required": ["doc", "files", "prefix"],
    "properties": {
        "doc": {"type": "object"},
        "files": {"type": "object", "additionalProperties": {"type": "string"}},
        "prefix": {"type": "string"},
        "data_plane": {"enum": ["auto", "bmv2", "linux"]},
        "bmv2": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["program"],
            "properties": {"program": {"type": "object"},
                           "metrics": {"type": ["object", "null"]},
                           "entries": {"type": "array", "items": {"type": "string"}},
                           "pid": {"type": ["integer", "null"]},
                           "handles": {"type": "array", "items": {"type": "integer"}}}}},
    },
}
# The namespace name limits: iproute2 refuses a name of NAME_MAX (255) characters or more,
# and a BMv2 switch's notification socket (its run directory's notifications.ipc) is a Unix
# socket, whose path fits sun_path (108 bytes with its terminating NUL).
_NETNS_MAX = 254
_SUN_PATH_MAX = 107
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_prefix(prefix: str, option: str = "--local-prefix") -> None:
    """The characters a namespace prefix may hold (E1227): it becomes part of namespace
    names, which ``ip netns list`` separates by white space and ``ip`` takes as options
    when they start with ``-``."""
    if prefix and not _PREFIX.fullmatch(prefix):
        raise CompileError([error(
            "E1227", f"{option} {prefix!r}: a namespace prefix is letters, digits, '_', '.' "
                     "and '-', starting with a letter or digit",
            hint="for example --local-prefix lab1-")])


def _check_names(prefix: str, plan, switches) -> None:
    """Every namespace name the prefix makes fits iproute2's limit, and every BMv2 switch's
    socket path fits a Unix socket's (E1227)."""
    realise = _backend()
    localswitch = _localswitch()
    names = realise.namespace_names(plan, prefix)
    problems = [f"namespace {n} is {len(n)} characters (iproute2 takes at most "
                f"{_NETNS_MAX})" for n in names.values() if len(n) > _NETNS_MAX]
    for ns in plan.namespaces:
        if ns.role == "switch" and ns.node in switches:
            sock = f"{localswitch.run_dir(names[ns.name])}/notifications.ipc"
            if len(sock.encode()) > _SUN_PATH_MAX:
                problems.append(f"BMv2 {ns.node}'s notification socket {sock} is "
                                f"{len(sock.encode())} bytes (a Unix socket path takes at "
                                f"most {_SUN_PATH_MAX})")
    if problems:
        raise CompileError([error(
            "E1227", f"--local-prefix {prefix!r} makes names too long: {problems[0]}",
            notes=[Note(p) for p in problems[1:]], hint="choose a shorter --local-prefix")])


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


def _bmv2_error(message: str, hint: str) -> CompileError:
    return CompileError([error("E1223", message, hint=hint)])


class LocalTarget:
    """Deploys the build's ``local.json`` on this machine (root required)."""

    target = TARGET

    def __init__(self, build: Build | None, *, prefix: str | None = None,
                 data_plane: str | None = None) -> None:
        self.build = build
        self.prefix = prefix
        self.data_plane = data_plane  # bmv2 | linux | None: as recorded, else auto

    def _desired(self, recorded: _Recorded | None) -> _Recorded | None:
        if self.build is None or self.build.local_plan is None:
            return None
        root = self.build.root
        try:
            doc = json.loads(self.build.local_plan.read_text(encoding="utf-8"))
            files = {p: (root / p).read_text(encoding="utf-8") for p in doc.get("files", {})}
            rec = _Recorded(doc, files, self.prefix if self.prefix is not None
                            else doc.get("prefix", ""))
            plan = rec.plan()  # validates format and file hashes
        except (OSError, ValueError, KeyError) as e:
            raise _fail(f"{self.build.local_plan}: {e}",
                        hint="recompile: the local plan does not match its files") from None
        check_prefix(rec.prefix, "--local-prefix" if self.prefix is not None
                     else f"{self.build.local_plan}: prefix")
        asked = self.data_plane or (recorded.data_plane if recorded else "auto")
        bmv2, why = self._bmv2(asked, [ns.node for ns in plan.namespaces
                                       if ns.role == "switch"])
        _check_names(rec.prefix, plan, bmv2)
        return replace(rec, data_plane=asked, bmv2=bmv2, why=why)

    def _bmv2(self, asked: str, switches: list[str]) -> tuple[dict[str, _Bmv2], str]:
        """The switches that run BMv2, and why the others do not."""
        if asked == "linux" or not switches:
            return {}, "--data-plane linux" if asked == "linux" else ""
        missing = _localswitch().missing_tools()
        arts = {s.name: s for s in self.build.switches}
        lacking = [n for n in switches if n not in arts
                   or not (arts[n].directory / f"{n}.p4").is_file()]
        if asked == "bmv2" and missing:
            raise _bmv2_error(
                f"--data-plane bmv2: {', '.join(missing)} not on PATH",
                "install p4c and BMv2 (simple_switch, simple_switch_CLI) and ethtool, or "
                "deploy the Linux stand-in with --data-plane linux")
        if asked == "bmv2" and lacking:
            raise _bmv2_error(
                f"--data-plane bmv2: the build has no P4 program for {', '.join(lacking)}",
                "compile with the p4 backend (mosaico compile without --emit, or --emit p4)")
        if missing:
            return {}, f"{', '.join(missing)} not on PATH"
        return ({n: self._program(arts[n]) for n in switches if n not in lacking},
                "no P4 program in the build" if lacking else "")

    @staticmethod
    def _program(art: SwitchArtifacts) -> _Bmv2:
        try:
            program = _localswitch().load_program(
                art.directory, device_id=art.device_id, thrift_port=art.thrift_port or 9090,
                priority_queues=art.priority_queues)
            metrics = json.loads(art.metrics.read_text(encoding="utf-8")) if art.metrics \
                else None
            updates = load_updates(art.entries)
        except (OSError, ValueError, EntriesError) as e:
            raise CompileError([error("E1216", f"switch {art.name}: {e}")]) from None
        entries = tuple(entry_key(u.entity.table_entry.table_id, u.entity.table_entry)
                        for u in updates if u.entity.WhichOneof("entity") == "table_entry"
                        and not u.entity.table_entry.is_default_action)
        return _Bmv2(program, metrics, entries)

    @staticmethod
    def _recorded(store: StateStore) -> _Recorded | None:
        u = store.unit(TARGET, UNIT, RECORD_SCHEMA)
        if u is None:
            return None
        try:
            rec = _Recorded.from_json(u.data)  # BMv2 programs included
            rec.plan()  # the realised plan and its files, as local.json is checked
            check_prefix(rec.prefix)
        except (KeyError, TypeError, ValueError, AttributeError, CompileError) as e:
            why = e.diagnostics[0].message if isinstance(e, CompileError) else \
                f"{type(e).__name__}: {e}"
            raise store.malformed(TARGET, UNIT, why) from None
        return rec

    # ------------------------------------------------------------------ plan

    async def plan(self, store: StateStore, destroy: bool = False) -> list[UnitPlan]:
        old = self._recorded(store)
        new = None if destroy else self._desired(old)
        if new is None and old is None:
            return []
        return [await asyncio.to_thread(self._plan, new, old, _announced(store))]

    def _plan(self, new: _Recorded | None, old: _Recorded | None,
              announced: frozenset[str] = frozenset()) -> UnitPlan:
        realise = _backend()
        try:
            drift = realise.inspect(old.plan(), prefix=old.prefix, switches=old.programs) \
                if old is not None else realise.Drift()
            changes = realise.diff(old.plan() if old else None, new.plan() if new else None,
                                   old_prefix=old.prefix if old else None,
                                   new_prefix=new.prefix if new else None, drift=drift,
                                   old_switches=old.programs if old else None,
                                   new_switches=new.programs if new else None)
        except realise.LocalTargetError as e:
            raise _fail(f"local target: {e}") from None
        shown = []
        for ns, node in drift.stopped_switches:
            shown.append(Change(DELETE, f"bmv2 {node} in {ns}", drift="stopped out of band"))
        for ns in drift.missing_namespaces:
            shown.append(Change(DELETE, f"namespace {ns}", drift="deleted out of band"))
        for ns, path, table in drift.missing_tables:
            shown.append(Change(DELETE, f"nftables table {table} ({path}) in {ns}",
                                drift="deleted out of band"))
        for ns, path, table in drift.changed_tables:
            shown.append(Change(MODIFY, f"nftables table {table} ({path}) in {ns}",
                                drift="changed out of band"))
        # A namespace an interrupted run announced is mosaico's: the deploy removes it first.
        clash = set(changes.created) & (_live_namespaces() if changes.created else set()) \
            - announced
        lines = [Change(_OPS[s.op], s.what + (" — exists already, not created by mosaico"
                                              if s.creates in clash else ""), before=s.before)
                 for s in changes.shown]
        notes = () if drift.tables_checked else (
            "nftables tables were not checked for drift (that needs root)",)
        return UnitPlan(TARGET, UNIT, tuple(lines), tuple(shown), notes + _data_planes(new),
                        _Payload(new, old, changes))

    # ------------------------------------------------------------------ apply

    async def apply(self, plan: UnitPlan, tx: Transaction,
                    progress: Progress = lambda _: None) -> UnitUpdate:
        p: _Payload = plan.payload
        started = {} if p.changes.empty else \
            await asyncio.to_thread(self._apply, p, tx, progress)
        if p.new is None:
            return UnitUpdate(TARGET, UNIT, None)
        # Switches started now carry their process and entry handles; the others keep the
        # recorded ones (unchanged switches are not touched).
        kept = p.old.bmv2 if p.old is not None else {}
        bmv2 = {}
        for node, b in p.new.bmv2.items():
            run = started.get(node)
            if run is not None:
                b = replace(b, pid=run.pid, handles=run.handles)
            elif node in kept:
                b = replace(b, pid=kept[node].pid, handles=kept[node].handles)
            bmv2[node] = b
        new = replace(p.new, bmv2=bmv2)
        return UnitUpdate(TARGET, UNIT, new.digest, new.to_json())

    def _apply(self, p: _Payload, tx: Transaction, progress: Progress) -> dict:
        realise = _backend()
        steps = [s for s in p.changes.steps if not s.deferred]
        progress(f"local: {len(steps)} step{'s' if len(steps) != 1 else ''}")
        try:
            deployment = realise.apply_changes(
                p.changes, journal=lambda step: tx.step(TARGET, UNIT, step.undo_what,
                                                        {"step": realise.step_to_json(step)}))
        except realise.LocalTargetError as e:
            hint = None
            if "already exist" in str(e):
                hint = ("neither the state store nor its write-ahead record lists them, so "
                        "mosaico did not create them (or its store is another --state): "
                        "deploy with another --local-prefix, or delete them with "
                        "`ip netns del NAME` if nothing else uses them")
            raise _fail(f"local target: {e}", hint=hint) from None
        for w in deployment.warnings:
            progress(f"local: warning: {w}")
        for sw in deployment.switches:
            progress(f"local: bmv2 {sw.switch} running in {sw.namespace} (pid {sw.pid})")
        return {sw.switch: sw for sw in deployment.switches}

    def undo(self, spec: Mapping[str, Any]) -> None:
        """Undo one step of a local realisation from its record (blocking: ip, nft, tc)."""
        realise = _backend()
        try:
            step = realise.step_from_json(spec["step"])
        except (KeyError, TypeError, ValueError) as e:
            raise _fail(f"local target: a write-ahead step cannot be read: {e}") from None
        try:
            realise.undo(step)
        except realise.LocalTargetError as e:
            raise _fail(f"local target: {e}") from None

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
            drift = realise.inspect(plan, prefix=rec.prefix, switches=rec.programs)
        except realise.LocalTargetError as e:
            drift, failure = realise.Drift(tables_checked=False), str(e)
        else:
            failure = ""
        gone = set(drift.missing_namespaces)
        try:
            counters = realise.read_counters(plan, prefix=rec.prefix, skip=gone)
        except realise.LocalTargetError as e:
            counters = {}
            failure = "; ".join(x for x in (failure, str(e)) if x)
        qstats = _qdisc_stats(plan, names, live, set(rec.bmv2))
        tables: dict[str, list[str]] = {}  # namespace → what drifted in its rulesets
        for ns, path, table in drift.missing_tables:
            tables.setdefault(ns, []).append(f"nftables table {table} ({path}) deleted "
                                             "out of band")
        for ns, path, table in drift.changed_tables:
            tables.setdefault(ns, []).append(f"nftables table {table} ({path}) changed "
                                             "out of band")
        rows = []
        for ns in plan.namespaces:
            real = names[ns.name]
            node = f"{ns.node}:{ns.name}" if ns.role == "vnf" else ns.node
            if ns.role == "switch" and ns.node in rec.bmv2:
                rows += _bmv2_rows(ns.node, real, rec.bmv2[ns.node], live)
                continue
            state, why = _drifted(real, gone, tables)
            if not (ns.instances or ns.counters or ns.tc):
                if why:  # nothing is counted here, but what is missing is said
                    rows.append(StatusRow("*", node, TARGET, state, detail=why))
                continue
            per: dict[str, Metrics] = {}  # instance → its counters and queue
            own = Metrics()  # a switch stand-in's packets no service matched: its drops
            for ref in ns.counters:
                packets, _ = counters.get((ns.name, ref.name), (None, None))
                if packets is None:
                    continue
                if not ref.instance:
                    if ref.meaning == "unclassified":
                        own = Metrics(packets=packets, drops=packets)
                    continue
                per[ref.instance] = per.get(ref.instance, Metrics()) + Metrics(
                    packets, packets if ref.drops else None)
            for t in ns.tc:
                q = qstats.get((ns.name, t.device), Metrics())
                per[t.instance] = per.get(t.instance, Metrics()) + Metrics(
                    None, q.drops, q.ce_marks, q.queue_delay_ns)
            services: dict[str, Metrics] = {}
            for instance, m in per.items():
                svc = instance.split("/")[0]
                s = services.get(svc, Metrics())
                # a service's packets: the most any of its instances saw (each counts them)
                services[svc] = Metrics(max(s.packets or 0, m.packets or 0), s.drops,
                                        s.ce_marks, s.queue_delay_ns) + Metrics(
                    None, m.drops, m.ce_marks, m.queue_delay_ns)
            total = own
            for m in services.values():
                total = total + m
            plane = "data plane: linux stand-in (nftables, tc)" if ns.role == "switch" else ""
            rows.append(StatusRow("*", node, TARGET, state, total,
                                  "; ".join(x for x in (plane, why, failure) if x)))
            for svc, m in sorted(services.items()):
                rows.append(StatusRow(svc, node, TARGET, state, m))
                rows += [StatusRow(i, node, TARGET, state, per[i])
                         for i in sorted(per) if i.split("/")[0] == svc]
        return rows


def _announced(store: StateStore) -> frozenset[str]:
    """Namespaces that interrupted runs announced creating (their write-ahead record)."""
    realise = _backend()
    out = set()
    for intent in store.intents([TARGET]):
        try:
            step = realise.step_from_json(intent.spec["step"])
        except (KeyError, TypeError, ValueError):
            continue
        if step.creates:
            out.add(step.creates)
    return frozenset(out)


def _drifted(namespace: str, gone: set[str], tables: Mapping[str, list[str]]
             ) -> tuple[str, str]:
    """A namespace's state and why: ``missing`` (deleted out of band), ``drifted`` (its
    rulesets deleted or changed out of band), or ``running``."""
    if namespace in gone:
        return "missing", f"namespace {namespace} deleted out of band"
    if namespace in tables:
        return "drifted", "; ".join(tables[namespace])
    return "running", ""


def _data_planes(rec: _Recorded | None) -> tuple[str, ...]:
    """One plan note per switch: which data plane it runs, and why."""
    if rec is None:
        return ()
    out = []
    for ns in rec.plan().namespaces:
        if ns.role != "switch":
            continue
        if ns.node in rec.bmv2:
            out.append(f"switch {ns.node}: data plane bmv2 (simple_switch running its P4 "
                       "program, compiled by p4c-bm2-ss at deploy)")
        else:
            out.append(f"switch {ns.node}: data plane linux stand-in (nftables, tc)"
                       + (f": {rec.why}" if rec.why else ""))
    return tuple(out)


def _bmv2_rows(node: str, namespace: str, sw: _Bmv2, live: set[str]) -> list[StatusRow]:
    """A BMv2 switch's rows, read from the running switch as its metrics map says."""
    from ..backends.p4.metrics import SwitchMetrics

    localswitch = _localswitch()
    pid = localswitch.running(namespace) if namespace in live else None
    state = "running" if pid else "stopped" if namespace in live else "missing"
    detail = f"data plane: bmv2 (simple_switch pid {pid})" if pid else "data plane: bmv2"
    if pid is None or sw.metrics is None:
        why = "" if pid is None else "; no metrics map (metrics.json): counters not read"
        return [StatusRow("*", node, TARGET, state, Metrics(), detail + why)]
    metrics = SwitchMetrics.from_json(sw.metrics)
    scopes = metric_scopes(metrics, instances=True)
    if len(sw.entries) == len(sw.handles):
        handles = dict(zip(sw.entries, sw.handles, strict=True))
    else:  # cannot happen for a switch mosaico started; say so rather than guess
        handles = {}
        detail += "; entry handles unknown: per-entry counters not read"
    sources, cells = [], []
    for src in dict.fromkeys(x for sc in scopes.values() for x in sc.sources):
        if src.object == "direct_counter":
            handle = handles.get(source_key(src)[2])
            if handle is None:
                continue
            cells.append(localswitch.Cell("counter", src.name, handle))
        else:
            cells.append(localswitch.Cell(src.object, src.name, src.index))
        sources.append(src)
    try:
        read = localswitch.read_cells(namespace, sw.program.thrift_port, cells)
    except localswitch.LocalTargetError as e:
        return [StatusRow("*", node, TARGET, "unreachable", Metrics(), f"{detail}; {e}")]
    per = aggregate(scopes, {source_key(s): v for s, v in zip(sources, read, strict=True)
                             if v is not None})
    rows = [StatusRow("*", node, TARGET, state, per["*"], detail)]
    for svc in metrics.services:
        rows.append(StatusRow(svc.service, node, TARGET, state, per[svc.service]))
        rows += [StatusRow(i.instance, node, TARGET, state, per[i.instance],
                           i.function.rpartition(".")[2]) for i in svc.instances]
    return rows


def _qdisc_stats(plan, names: Mapping[str, str], live: set[str], bmv2: set[str]
                 ) -> dict[tuple[str, str], Metrics]:
    """CE marks, drops and queue delay of the queueing disciplines the plan installs (on
    switches that run BMv2, BMv2 queues instead)."""
    out: dict[tuple[str, str], Metrics] = {}
    for ns in plan.namespaces:
        real = names[ns.name]
        if not ns.tc or real not in live or (ns.role == "switch" and ns.node in bmv2):
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
