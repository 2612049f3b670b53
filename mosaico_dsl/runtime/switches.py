"""The P4Runtime target: plan, apply, undo and observe the build's switches.

All switches are handled concurrently (one asyncio task each). Per switch, the plan
compares three entity sets — the build's ``entries.json``, the state store's record of the
last deploy, and what a ``Read`` returns now — and the pipeline, by cookie: the cookie is a
hash of the P4Info and device config, so an unchanged program is never pushed again (a push
wipes every entry). Apply writes the difference in batches; after each successful batch it
journals the inverse updates, so a failure anywhere rolls the switch back exactly.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from ..diagnostics import CompileError, Note, error
from ..p4proto import p4i, p4r
from .build import Build, SwitchArtifacts
from .entities import (
    MODIFY_ONLY,
    EntriesError,
    canonical,
    describe,
    entities_of,
    identity,
    kind_of,
    load_updates,
    payload,
)
from .jobs import gather_bounded
from .p4runtime import (
    DEFAULT_BATCH,
    Channels,
    Endpoint,
    P4RuntimeError,
    SwitchConnection,
    TlsConfig,
    TlsError,
    connect,
    pipeline_cookie,
    read_kind,
)
from .plan import ADD, DELETE, MODIFY, REPLACE, Change, UnitPlan
from .schema import Schema, SchemaError, load_p4info
from .snapshot import restore_updates, take
from .state import StateStore, UnitUpdate
from .status import StatusRow, missing_sources, read_switch_metrics
from .thrift import ThriftError, ThriftSource
from .transaction import Transaction

if TYPE_CHECKING:
    from ..backends.p4.metrics import SwitchMetrics

__all__ = ["P4RuntimeTarget", "TARGET", "RECORD_SCHEMA"]

TARGET = "p4runtime"
_U = p4r.Update
Progress = Callable[[str], None]


@dataclass(frozen=True)
class _Desired:
    schema: Schema
    device_config: bytes
    cookie: int
    entities: Mapping[str, p4r.Entity]
    metrics: Mapping | None  # metrics.json, recorded so status needs no build directory


@dataclass(frozen=True)
class _Payload:
    endpoint: Endpoint
    desired: _Desired | None  # None: destroy (leave the pipeline, remove our entities)
    pipeline_change: bool
    updates: tuple[p4r.Update, ...]
    inverses: tuple[p4r.Update, ...]  # inverses[i] undoes updates[i]
    final: Mapping[str, bytes]  # the entity set recorded once applied
    # recorded with the unit: the address came from --address (later runs keep using it),
    # and BMv2's Thrift API (--thrift, or the topology's thrift_port)
    address_given: bool = False
    thrift: str | None = None
    thrift_given: bool = False
    live_cookie: int | None = None  # the pipeline the switch ran when planned


# What a switch's record holds (the store checks it before anything reads it).
RECORD_SCHEMA = {
    "type": "object",
    "required": ["address", "device_id"],
    "properties": {
        "address": {"type": ["string", "null"]},
        "device_id": {"type": "integer", "minimum": 0},
        "address_given": {"type": "boolean"},
        "thrift": {"type": "string"},
        "thrift_given": {"type": "boolean"},
        "metrics": {"type": "object"},
    },
}


def _b64(message) -> str:
    return base64.b64encode(message.SerializeToString(deterministic=True)).decode()


def _unb64(cls, text: str):
    m = cls()
    m.ParseFromString(base64.b64decode(text, validate=True))
    return m


def _reset(e: p4r.Entity, schema: Schema | None) -> p4r.Entity:
    """The default value of a modify-only entity (what "removing" it means)."""
    out = p4r.Entity()
    out.CopyFrom(e)
    which = out.WhichOneof("entity")
    if which == "table_entry":
        out.table_entry.ClearField("action")
    elif which == "register_entry":
        out.register_entry.data.bitstring = b"\x00"
    elif which in ("meter_entry", "direct_meter_entry"):
        getattr(out, which).ClearField("config")
    return canonical(out)


def _query(e: p4r.Entity) -> p4r.Entity:
    """A Read request for exactly this modify-only entity."""
    q = p4r.Entity()
    which = e.WhichOneof("entity")
    if which == "table_entry":
        q.table_entry.table_id = e.table_entry.table_id
        q.table_entry.is_default_action = True
    elif which == "register_entry":
        q.register_entry.register_id = e.register_entry.register_id
        q.register_entry.index.index = e.register_entry.index.index
    elif which == "meter_entry":
        q.meter_entry.meter_id = e.meter_entry.meter_id
        q.meter_entry.index.index = e.meter_entry.index.index
    elif which == "direct_meter_entry":
        q.direct_meter_entry.table_entry.CopyFrom(e.direct_meter_entry.table_entry)
    elif which == "counter_entry":
        q.counter_entry.counter_id = e.counter_entry.counter_id
        q.counter_entry.index.index = e.counter_entry.index.index
    return q


def _update(kind: int, e: p4r.Entity) -> p4r.Update:
    u = p4r.Update(type=kind)
    u.entity.CopyFrom(e)
    return u


def _parse(blob: bytes) -> p4r.Entity:
    e = p4r.Entity()
    e.ParseFromString(blob)
    return e


def _record(store: StateStore, name: str):
    """The switch's record, checked: its data as :data:`RECORD_SCHEMA` says, its
    fingerprint a pipeline cookie."""
    rec = store.unit(TARGET, name, RECORD_SCHEMA)
    if rec is not None and not rec.fingerprint.isdigit():
        raise store.malformed(TARGET, name, f"fingerprint {rec.fingerprint!r} is not a "
                                            "pipeline cookie")
    return rec


def _recorded_entities(store: StateStore, name: str) -> dict[str, p4r.Entity]:
    out = {}
    for k, v in store.entities(TARGET, name).items():
        try:
            e = _parse(v)
        except Exception as x:  # protobuf's DecodeError: the bytes are not an Entity
            raise store.malformed(TARGET, name, f"entity {k!r} does not parse: {x}") from None
        if e.WhichOneof("entity") is None:
            raise store.malformed(TARGET, name, f"entity {k!r} is empty")
        out[k] = e
    return out


class P4RuntimeTarget:
    """Deploys the build's P4 switches over P4Runtime."""

    target = TARGET

    def __init__(self, build: Build | None, *, tls: TlsConfig | None = None,
                 election_id: int = 1, role: str = "", batch: int = DEFAULT_BATCH,
                 timeout: float = 10.0, addresses: Mapping[str, str] | None = None,
                 thrift: Mapping[str, str] | None = None, jobs: int | None = None) -> None:
        self.build = build
        self.tls, self.election_id, self.role = tls, election_id, role
        self.batch, self.timeout = batch, timeout
        self.addresses = dict(addresses or {})
        self.thrift = dict(thrift or {})
        self.jobs = jobs  # switches planned or read at once (deploy's apply bounds its own)
        # One gRPC channel per address, shared by the devices behind it.
        self.channels = Channels()
        # Parsed P4Infos by file content: a thousand switches running one program parse it
        # once.
        self._schemas: dict[bytes, Schema] = {}
        self._records = None  # (store, records by name) while a plan or status runs

    # ------------------------------------------------------------------ endpoints

    def _record(self, store: StateStore, name: str):
        """The switch's record: from the records read once for this plan or status (a
        thousand switches each asking for its own record would read all of them each)."""
        cache = self._records
        if cache is not None and cache[0] is store:
            return cache[1].get(name)
        return _record(store, name)

    @contextlib.contextmanager
    def _reading(self, store: StateStore):
        """Read every switch record once, checked, for the duration of a plan or status."""
        recs = {u.name: u for u in store.units(TARGET, RECORD_SCHEMA)}
        for rec in recs.values():
            if not rec.fingerprint.isdigit():
                raise store.malformed(TARGET, rec.name, f"fingerprint {rec.fingerprint!r} "
                                                        "is not a pipeline cookie")
        self._records = (store, recs)
        try:
            yield
        finally:
            self._records = None

    def _names(self, store: StateStore) -> list[str]:
        names = [s.name for s in self.build.switches] if self.build else []
        return list(dict.fromkeys([*names, *(u.name for u in store.units(TARGET,
                                                                          RECORD_SCHEMA))]))

    def _address(self, name: str, store: StateStore) -> tuple[str | None, bool]:
        """Where the switch is, and whether that was given with ``--address``: this run's
        ``--address``, else the one a deploy was given (recorded), else the topology's,
        else the recorded one (the build is gone)."""
        if name in self.addresses:
            return self.addresses[name], True
        art = self._artifacts(name)
        rec = self._record(store, name)
        if rec is not None and rec.data.get("address_given") and rec.data.get("address"):
            return rec.data["address"], True
        return (art.address if art else None) or (rec.data.get("address") if rec else
                                                  None), False

    def _thrift_source(self, name: str, store: StateStore, ep: Endpoint
                       ) -> tuple[ThriftSource | None, bool]:
        """BMv2's Thrift API of the switch, and whether it was given with ``--thrift``:
        as for the address, this run's ``--thrift``, else one a deploy was given, else the
        topology's ``thrift_port`` on the P4Runtime address's host, else the recorded one."""
        if name in self.thrift:
            return ThriftSource(self.thrift[name]), True
        rec = self._record(store, name)
        if rec is not None and rec.data.get("thrift_given") and rec.data.get("thrift"):
            return ThriftSource(rec.data["thrift"]), True
        art = self._artifacts(name)
        if art is not None and art.thrift_port:
            return ThriftSource(f"{ep.address.rpartition(':')[0]}:{art.thrift_port}"), False
        if rec is not None and rec.data.get("thrift"):
            return ThriftSource(rec.data["thrift"]), False
        return None, False

    def _endpoint(self, name: str, store: StateStore) -> Endpoint:
        art = self._artifacts(name)
        rec = self._record(store, name)
        address, _ = self._address(name, store)
        device_id = art.device_id if art else int(rec.data.get("device_id", 1)) if rec else 1
        if not address:
            raise CompileError([error(
                "E1204", f"switch {name} has no P4Runtime address",
                hint=f'declare it in the topology (p4runtime: "HOST:PORT") or pass '
                     f"--address {name}=HOST:PORT")])
        return Endpoint(name, address, device_id, self.election_id, self.role, self.tls)

    def _artifacts(self, name: str) -> SwitchArtifacts | None:
        if self.build is None:
            return None
        return next((s for s in self.build.switches if s.name == name), None)

    def _schema(self, path: Path) -> Schema:
        text = path.read_bytes()
        digest = hashlib.sha256(text).digest()
        schema = self._schemas.get(digest)
        if schema is None:
            schema = self._schemas[digest] = load_p4info(path)
        return schema

    def _desired(self, art: SwitchArtifacts) -> _Desired:
        try:
            schema = self._schema(art.p4info)
            updates = load_updates(art.entries) if art.entries.is_file() else []
            metrics = _load_metrics(art.metrics) if art.metrics else None
        except (SchemaError, EntriesError, OSError, ValueError, KeyError) as e:
            raise CompileError([error("E1216", f"switch {art.name}: {e}")]) from None
        dc_path = art.device_config
        device_config = dc_path.read_bytes() if dc_path else b""
        cookie = pipeline_cookie(schema.p4info, device_config)
        ents = entities_of(updates)
        return _Desired(schema, device_config, cookie, {identity(e): e for e in ents},
                        metrics.to_json() if metrics else None)

    async def _connect(self, ep: Endpoint, primary: bool) -> SwitchConnection:
        try:
            return await connect(ep, primary=primary, timeout=self.timeout,
                                 channels=self.channels)
        except P4RuntimeError as e:
            raise _unreachable(e, ep) from None

    def _check_devices(self, names: Sequence[str], store: StateStore) -> None:
        """Two switches at one address with one device id are one device: deploying both
        would write one program over the other (E1234)."""
        at: dict[tuple[str, int], list[str]] = {}
        for n in names:
            try:
                ep = self._endpoint(n, store)
            except CompileError:
                continue  # no address: E1204 when it is planned
            at.setdefault((ep.address, ep.device_id), []).append(n)
        clash = [(k, v) for k, v in at.items() if len(v) > 1]
        if clash:
            raise CompileError([error(
                "E1234", f"switches {', '.join(v)} are the same device: {a} device id {d}",
                hint="give each switch of a multi-device server its own device_id in the "
                     "topology (or --address it elsewhere)") for (a, d), v in clash[:5]])

    # ------------------------------------------------------------------ plan

    async def plan(self, store: StateStore, destroy: bool = False) -> list[UnitPlan]:
        with self._reading(store):
            names = self._names(store)
            self._check_devices(names, store)
            results = await gather_bounded(
                [functools.partial(self._plan_one, n, store, destroy) for n in names],
                self.jobs)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            _raise_all(errors)
        return list(results)

    async def _read_live(self, conn: SwitchConnection, modify_only: Iterable[p4r.Entity],
                         pre: bool, thrift: ThriftSource | None
                         ) -> tuple[dict[str, p4r.Entity], dict[str, str]]:
        """The switch's entities as they are now, and the entity kinds it cannot read (with
        the reason). Registers P4Runtime cannot read are read through ``thrift``."""
        queries = [p4r.Entity(table_entry=p4r.TableEntry())]
        seen = set()
        registers = []
        for e in modify_only:
            q = _query(e)
            k = q.SerializeToString(deterministic=True)
            if k not in seen:
                seen.add(k)
                queries.append(q)
                if e.HasField("register_entry"):
                    registers.append(e.register_entry)
        if pre:  # multicast groups and clone sessions (a second deploy must find them)
            queries.append(p4r.Entity(packet_replication_engine_entry=p4r.
                                      PacketReplicationEngineEntry(
                                          multicast_group_entry=p4r.MulticastGroupEntry())))
            queries.append(p4r.Entity(packet_replication_engine_entry=p4r.
                                      PacketReplicationEngineEntry(
                                          clone_session_entry=p4r.CloneSessionEntry())))
        read, failed = await conn.read_each(queries)
        unavailable = {k: f"{v.code.name}: {v.message}" for k, v in failed.items()}
        if "registers" in unavailable and thrift is not None:
            try:
                read += await self._thrift_registers(conn, thrift, registers)
                del unavailable["registers"]
            except (ThriftError, SchemaError, P4RuntimeError) as e:  # its reason
                unavailable["registers"] += f"; {thrift}: {e}"
        live = {}
        for e in read:
            c = canonical(e)
            live[identity(c)] = c
        return live, unavailable

    async def _thrift_registers(self, conn: SwitchConnection, thrift: ThriftSource,
                                cells: Sequence[p4r.RegisterEntry]) -> list[p4r.Entity]:
        _, cfg = await conn.get_pipeline(full=True)
        schema = Schema(cfg.p4info)
        names = sorted({schema.registers[c.register_id].name for c in cells
                        if c.register_id in schema.registers})
        values = await thrift.read_registers(names, conn.endpoint.device_id,
                                             cfg.p4_device_config, self.timeout)
        out = []
        for c in cells:
            info = schema.registers.get(c.register_id)
            vals = values.get(info.name, ()) if info else ()
            if c.index.index < len(vals):
                e = p4r.Entity()
                e.register_entry.register_id = c.register_id
                e.register_entry.index.index = c.index.index
                e.register_entry.data.bitstring = vals[c.index.index].to_bytes(
                    max(1, (info.bitwidth + 7) // 8), "big")
                out.append(e)
        return out

    async def _plan_one(self, name: str, store: StateStore, destroy: bool) -> UnitPlan:
        art = None if destroy else self._artifacts(name)
        destroy = destroy or art is None  # a switch gone from the build: remove what is ours
        ep = self._endpoint(name, store)
        rec = self._record(store, name)
        recorded = _recorded_entities(store, name)
        desired = self._desired(art) if art else None
        want = dict(desired.entities) if desired else {}
        _, address_given = self._address(name, store)
        source, thrift_given = self._thrift_source(name, store, ep)
        thrift = source.address if source is not None else None  # recorded for status
        if desired is None and not recorded:
            return UnitPlan(TARGET, name, (), notes=("nothing recorded here",),
                            payload=_Payload(ep, None, False, (), (), {}))

        conn = await self._connect(ep, primary=False)
        try:
            live_cookie, cfg = await conn.get_pipeline(p4info=True)
            try:
                live_schema = Schema(cfg.p4info) if cfg.p4info.tables else None
            except SchemaError:
                live_schema = None
            pipeline_change = desired is not None and live_cookie != desired.cookie
            has_pipeline = live_schema is not None
            mo = [e for e in (*want.values(), *recorded.values()) if kind_of(e) in MODIFY_ONLY]
            pre = any(e.HasField("packet_replication_engine_entry")
                      for e in (*want.values(), *recorded.values()))
            live, unreadable = await self._read_live(
                conn, mo if not pipeline_change else (), pre,
                self._thrift_source(name, store, ep)[0]) if has_pipeline else ({}, {})
        except P4RuntimeError as e:
            raise _unreachable(e, ep) from None
        finally:
            await conn.close()

        shown = desired.schema if desired else live_schema
        notes: list[str] = []
        drift: list[Change] = []
        # Entities of a kind the switch cannot read are taken to be as recorded: their
        # drift is not checked, and the plan says so.
        for kind, reason in sorted(unreadable.items()):
            assumed = [k for k, e in (*recorded.items(), *want.items())
                       if read_kind(e) == kind]
            for k in assumed:
                if k in recorded:
                    live[k] = recorded[k]
            if assumed:
                notes.append(f"{kind}: drift not checked, the switch cannot read them "
                             f"({reason}); taken as recorded")
        recorded_cookie = int(rec.fingerprint) if rec else None
        if rec is not None and live_cookie != recorded_cookie:
            drift.append(Change(REPLACE, "forwarding pipeline",
                                drift="replaced out of band (cookie "
                                      f"{live_cookie or 'none'}, recorded {recorded_cookie})"))
        elif rec is not None:
            drift += _drift(recorded, live, live_schema or shown)
        why = {d_key: d.drift for d_key, d in _drift_keys(recorded, live)}

        changes: list[Change] = []
        updates: list[p4r.Update] = []
        inverses: list[p4r.Update] = []
        if pipeline_change:
            what = f"forwarding pipeline (P4Info {len(desired.schema.tables)} tables" + (
                ", BMv2 JSON" if desired.device_config else ", no device config") + ")"
            changes.append(Change(REPLACE, what, before=f"cookie {live_cookie}"
                                  if live_cookie else ("a pipeline without cookie"
                                                       if has_pipeline else "no pipeline")))
            if has_pipeline and live_cookie is None:
                notes.append("the switch runs a pipeline mosaico did not push; it is replaced")
            live = {}
        deletes, modifies, inserts = [], [], []
        for key, d in want.items():
            cur = live.get(key)
            if kind_of(d) in MODIFY_ONLY:
                if cur is None or payload(cur) != payload(d):
                    inv = cur if cur is not None else _reset(d, shown)
                    modifies.append((Change(MODIFY, describe(d, shown),
                                            before=describe(inv, shown),
                                            drift=why.get(key)),
                                     _update(_U.MODIFY, d), _update(_U.MODIFY, inv)))
            elif cur is None:
                inserts.append((Change(ADD, describe(d, shown), drift=why.get(key)),
                                _update(_U.INSERT, d), _update(_U.DELETE, d)))
            elif payload(cur) != payload(d):
                modifies.append((Change(MODIFY, describe(d, shown), before=describe(cur, shown),
                                        drift=why.get(key)),
                                 _update(_U.MODIFY, d), _update(_U.MODIFY, cur)))
        for key, cur in live.items():
            if key in want:
                continue
            ours = key in recorded
            if destroy and not ours:
                continue  # destroy removes only what mosaico deployed
            if kind_of(cur) in MODIFY_ONLY:
                if not ours:
                    continue
                reset = _reset(cur, shown)
                if payload(reset) != payload(cur):
                    modifies.append((Change(MODIFY, describe(reset, shown),
                                            before=describe(cur, shown)),
                                     _update(_U.MODIFY, reset), _update(_U.MODIFY, cur)))
                continue
            deletes.append((Change(DELETE, describe(cur, shown),
                                   drift=why.get(key) or (None if ours else
                                                          "not deployed by mosaico")),
                            _update(_U.DELETE, cur), _update(_U.INSERT, cur)))
        # Deletes first (free table space), then modifies, then inserts.
        for change, u, inv in (*deletes, *modifies, *inserts):
            changes.append(change)
            updates.append(u)
            inverses.append(inv)
        if destroy:
            notes.append("the forwarding pipeline stays installed (P4Runtime cannot remove "
                         "one)")
        final = {k: payload(e) for k, e in want.items()}
        return UnitPlan(TARGET, name, tuple(changes), tuple(drift), tuple(notes),
                        _Payload(ep, desired, pipeline_change, tuple(updates), tuple(inverses),
                                 final, address_given, thrift, thrift_given, live_cookie))

    # ------------------------------------------------------------------ apply

    async def apply(self, plan: UnitPlan, tx: Transaction,
                    progress: Progress = lambda _: None) -> UnitUpdate:
        p: _Payload = plan.payload
        ep = p.endpoint
        unit = f"{TARGET} {ep.name}"
        data = {"address": ep.address, "device_id": ep.device_id}
        if p.address_given:
            data["address_given"] = True
        if p.thrift:
            data["thrift"] = p.thrift
        if p.thrift_given:
            data["thrift_given"] = True
        if p.desired is not None and p.desired.metrics is not None:
            data["metrics"] = p.desired.metrics
        record = UnitUpdate(TARGET, ep.name,
                            None if p.desired is None else str(p.desired.cookie), data,
                            p.final)
        if plan.empty:
            return record
        conn = await self._connect(ep, primary=True)
        where = {"switch": ep.name, "address": ep.address, "device_id": ep.device_id}
        try:
            cookie = p.live_cookie
            restored = False
            if p.pipeline_change:
                restored = await self._push_pipeline(conn, p, tx, unit, where, progress)
                cookie = p.desired.cookie
            done = 0
            for start in range(0, len(p.updates), self.batch):
                chunk = p.updates[start:start + self.batch]
                inv = p.inverses[start:start + self.batch]
                # A pipeline restored by its undo takes these entries with it.
                spec = {"kind": "updates", **where, "cookie": cookie, "covered": restored,
                        "updates": [_b64(u) for u in inv]}
                what = (f"undo the updates written to {ep.name}"
                        f" ({start + 1}-{start + len(chunk)} of {len(p.updates)})"
                        + (" (the new pipeline stays: the switch had none)"
                           if p.pipeline_change and not restored else "")
                        + (": the restored pipeline replaces them" if restored else ""))
                with tx.step(TARGET, unit, what, spec) as step:
                    try:
                        await conn.write(chunk, batch=len(chunk))
                    except P4RuntimeError as e:
                        if not e.unreachable:  # refused updates need no undo
                            failed = {x.index for x in e.errors}
                            step.amend({**spec, "updates": [
                                _b64(inv[i]) for i in range(len(chunk)) if i not in failed]})
                        # unreachable: the batch may be partly applied: undo all of it
                        raise _write_failed(e, ep, done, len(p.updates), chunk, plan) \
                            from None
                done += len(chunk)
                progress(f"{ep.name}: {done}/{len(p.updates)} updates")
        finally:
            await conn.close()
        return record

    async def _push_pipeline(self, conn: SwitchConnection, p: _Payload, tx: Transaction,
                             unit: str, where: Mapping, progress: Progress) -> bool:
        """Push the new pipeline; announce restoring the old one first. False: there was
        none (P4Runtime cannot remove a pipeline: the new one stays)."""
        old_cookie, old_cfg = await conn.get_pipeline(full=True)
        snapshot = None
        if old_cfg.p4info.tables:
            try:
                old_schema = Schema(old_cfg.p4info)
            except SchemaError:
                old_schema = Schema(p4i.P4Info())  # unreadable: restore its entries only
            snapshot = await take(conn, old_schema)
        ep = p.endpoint
        progress(f"{ep.name}: pushing the forwarding pipeline")
        if snapshot is None:  # nothing to restore: P4Runtime cannot remove a pipeline
            try:
                await conn.set_pipeline(p.desired.schema.p4info, p.desired.device_config,
                                        p.desired.cookie)
            except P4RuntimeError as e:
                raise _push_failed(e, ep) from None
            return False
        # A kind the switch cannot read it cannot be written either (BMv2's registers), so
        # mosaico cannot have changed it; the undo says what it leaves out.
        unread = "".join(f"; {k} not restored ({why})" for k, why in
                         snapshot.unavailable.items())
        what = (f"restore the previous pipeline (cookie {old_cookie}) and its state: "
                f"{snapshot.summary()}{unread}")
        spec = {"kind": "pipeline", **where, "old_cookie": old_cookie,
                "new_cookie": p.desired.cookie, "config": _b64(old_cfg),
                "restore": [_b64(u) for u in restore_updates(snapshot)]}
        with tx.step(TARGET, unit, what, spec) as step:
            try:
                await conn.set_pipeline(p.desired.schema.p4info, p.desired.device_config,
                                        p.desired.cookie)
            except P4RuntimeError as e:
                if not e.unreachable:
                    step.discard()  # refused: the old pipeline still runs, untouched
                raise _push_failed(e, ep) from None
        return True

    async def _reconnect(self, ep: Endpoint) -> SwitchConnection:
        """Become primary again right after this run's own stream closed: a switch (BMv2)
        may still hold that stream for a moment and refuse its election id as a duplicate;
        try again until ``timeout``."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        while True:
            try:
                return await connect(ep, timeout=self.timeout, channels=self.channels)
            except P4RuntimeError as e:
                duplicate = e.code == grpc.StatusCode.INVALID_ARGUMENT and \
                    "already exists" in e.message
                if not duplicate or asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def undo(self, spec: Mapping) -> None:
        """Undo one recorded step on its switch: write a batch's inverses, or push back the
        previous pipeline and its state. A switch that no longer runs the pipeline the step
        wrote to (restarted, or a pipeline pushed since) holds nothing of it: nothing to
        undo."""
        try:
            ep = Endpoint(spec["switch"], spec["address"], int(spec["device_id"]),
                          self.election_id, self.role, self.tls)
            kind = spec["kind"]
            if kind == "updates":
                ups = [] if spec["covered"] else [_unb64(p4r.Update, u)
                                                  for u in spec["updates"]]
                expect = spec["cookie"]
            else:
                config = _unb64(p4r.ForwardingPipelineConfig, spec["config"]) \
                    if spec["config"] else None
                ups = [_unb64(p4r.Update, u) for u in spec["restore"]]
                expect = spec["new_cookie"]
        except (KeyError, TypeError, ValueError, binascii.Error) as e:
            raise CompileError([error("E1205", f"a write-ahead step of switch "
                                               f"{spec.get('switch')!r} cannot be read: {e!r}")]
                               ) from None
        if kind == "updates" and not ups or kind == "pipeline" and config is None:
            return
        try:
            async with await self._reconnect(ep) as c:
                live, _ = await c.get_pipeline()
                if live != expect:
                    return  # the pipeline this step wrote to is gone, and its state with it
                if kind == "pipeline":
                    await c.restore_pipeline(config)
                    await c.write(ups, self.batch)
                    return
                try:
                    await c.write(list(reversed(ups)), len(ups))  # one request
                except P4RuntimeError as e:
                    # Inverses of updates that never applied (a run killed before its
                    # write, an undo repeated) find the entity as it should be: success.
                    ok = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS)
                    if not (e.errors and all(x.code in ok for x in e.errors)):
                        raise
        except P4RuntimeError as e:
            raise _unreachable(e, ep) if e.unreachable or e.code in (
                grpc.StatusCode.PERMISSION_DENIED,) else CompileError([error(
                    "E1207", f"switch {ep.name} refused the undo: {e.code.name}: "
                             f"{e.message}")]) from None

    # ------------------------------------------------------------------ status

    async def status(self, store: StateStore) -> list[StatusRow]:
        with self._reading(store):
            names = self._names(store)
            rows = await gather_bounded(
                [functools.partial(self._status_one, n, store) for n in names], self.jobs)
        for r in rows:
            if isinstance(r, BaseException):
                raise r
        return [r for rs in rows for r in rs]

    def _metrics(self, name: str, rec) -> tuple[SwitchMetrics | None, str]:
        """The switch's metrics map: the build's, else the one recorded at deploy."""
        art = self._artifacts(name)
        try:
            if art is not None:
                return (_load_metrics(art.metrics) if art.metrics else None), ""
            doc = rec.data.get("metrics") if rec is not None else None
            return (_metrics_from(doc) if doc else None), ""
        except (OSError, ValueError, KeyError) as e:
            return None, f"unreadable metrics map: {e}"

    async def _status_one(self, name: str, store: StateStore) -> list[StatusRow]:
        rec = self._record(store, name)
        try:
            ep = self._endpoint(name, store)
        except CompileError as e:
            return [StatusRow("*", name, TARGET, "no address", detail=e.diagnostics[0].message)]
        metrics, detail = self._metrics(name, rec)
        if metrics is None and not detail:
            detail = "no metrics map (metrics.json): counters not read"
        try:
            conn = await connect(ep, primary=False, timeout=self.timeout,
                                 channels=self.channels)
        except P4RuntimeError as e:
            return [StatusRow("*", name, TARGET, "unreachable", detail=e.message)]
        reading = None
        state = "unknown"
        try:
            cookie, cfg = await conn.get_pipeline(p4info=True)
            if not cfg.p4info.tables:
                return [StatusRow("*", name, TARGET, "no pipeline")]
            schema = Schema(cfg.p4info)
            if rec is None:
                state = "not deployed"
            elif str(cookie) != rec.fingerprint:
                state = "pipeline differs"
            else:
                state = "running"
            if metrics is not None:
                lacking = missing_sources(metrics, schema)
                if lacking:
                    detail = ("the running pipeline lacks what metrics.json names ("
                              + ", ".join(lacking[:3]) + (", ..." if len(lacking) > 3 else "")
                              + "): counters not read")
                else:
                    thrift, _ = self._thrift_source(name, store, ep)

                    async def registers(names):
                        _, full = await conn.get_pipeline(full=True)
                        return await thrift.read_registers(names, ep.device_id,
                                                           full.p4_device_config,
                                                           self.timeout)
                    reading = await read_switch_metrics(
                        conn, metrics, registers if thrift else None, str(thrift or ""))
        except SchemaError as e:
            return [StatusRow("*", name, TARGET, "unreadable pipeline", detail=str(e))]
        except P4RuntimeError as e:
            if e.unreachable:
                return [StatusRow("*", name, TARGET, "unreachable", detail=str(e))]
            detail = f"counters not read: {e}"  # reachable, but refused what we asked
        finally:
            await conn.close()

        def row(service: str, extra: str = "") -> StatusRow:
            if reading is None:
                return StatusRow(service, name, TARGET, state, detail=extra)
            return StatusRow(service, name, TARGET, state, reading.metrics[service], extra,
                             reading.sources[service])
        rows = [row("*", detail)]
        if metrics is not None:
            rows += [row(s.service) for s in metrics.services]
        return rows


def _load_metrics(path: Path) -> SwitchMetrics:
    return _metrics_from(json.loads(path.read_text(encoding="utf-8")))


def _metrics_from(doc: Mapping) -> SwitchMetrics:
    from ..backends.p4.metrics import SwitchMetrics  # the P4 backend's map, read back

    return SwitchMetrics.from_json(doc)


# --------------------------------------------------------------------------- errors


def _drift_keys(recorded: Mapping[str, p4r.Entity], live: Mapping[str, p4r.Entity]):
    for key, r in recorded.items():
        cur = live.get(key)
        if cur is None:
            if kind_of(r) not in MODIFY_ONLY:
                yield key, Change(DELETE, "", drift="deleted out of band")
        elif payload(cur) != payload(r):
            yield key, Change(MODIFY, "", drift="changed out of band")
    for key, cur in live.items():
        if key not in recorded and kind_of(cur) not in MODIFY_ONLY:
            yield key, Change(ADD, "", drift="added out of band")


def _drift(recorded: Mapping[str, p4r.Entity], live: Mapping[str, p4r.Entity],
           schema: Schema | None) -> list[Change]:
    out = []
    for key, c in _drift_keys(recorded, live):
        if c.op == DELETE:
            out.append(Change(DELETE, describe(recorded[key], schema), drift=c.drift))
        elif c.op == MODIFY:
            out.append(Change(MODIFY, describe(live[key], schema),
                              before=describe(recorded[key], schema), drift=c.drift))
        else:
            out.append(Change(ADD, describe(live[key], schema), drift=c.drift))
    return out


def _unreachable(e: P4RuntimeError, ep: Endpoint) -> CompileError:
    if isinstance(e, TlsError):
        return CompileError([error(
            "E1230", f"TLS with switch {ep.name} at {ep.address} failed: {e.message}",
            hint=e.problem.hint)])
    if ep.role and e.code in (grpc.StatusCode.PERMISSION_DENIED,
                              grpc.StatusCode.INVALID_ARGUMENT) and "role" in e.message:
        return CompileError([error(
            "E1232", f"switch {ep.name} ({ep.address}) refused role {ep.role!r}: {e.message}",
            hint="roles are defined by the switch's configuration; use one it defines, or "
                 "no --role for full access")])
    if e.code == grpc.StatusCode.PERMISSION_DENIED:
        return CompileError([error(
            "E1206", f"switch {ep.name} ({ep.address}): {e.message}",
            hint="another controller owns this switch; pass a higher --election-id to take "
                 "over deliberately")])
    return CompileError([error(
        "E1205", f"cannot reach switch {ep.name} at {ep.address}: {e.code.name}: {e.message}",
        hint=f"is the switch running? override its address with --address {ep.name}="
             f"HOST:PORT")])


def _push_failed(e: P4RuntimeError, ep: Endpoint) -> CompileError:
    if e.code == grpc.StatusCode.PERMISSION_DENIED:
        return _lost_primary(e, ep)
    if e.unreachable:
        return _unreachable(e, ep)
    return CompileError([error(
        "E1208", f"switch {ep.name} rejected the forwarding pipeline: {e.code.name}: "
                 f"{e.message}",
        hint="check that p4info.txtpb and the BMv2 JSON come from the same p4c run")])


def _lost_primary(e: P4RuntimeError, ep: Endpoint) -> CompileError:
    return CompileError([error(
        "E1206", f"lost primary on switch {ep.name} ({ep.address}) during the deploy: "
                 f"{e.message}",
        hint="another controller took over with a higher election id; find out who before "
             "deploying again (a higher --election-id takes the switch back)")])


def _write_failed(e: P4RuntimeError, ep: Endpoint, done: int, total: int,
                  chunk: Sequence[p4r.Update], plan: UnitPlan) -> CompileError:
    if e.code == grpc.StatusCode.PERMISSION_DENIED and not e.errors:
        return _lost_primary(e, ep)  # the whole request was refused: we are not primary
    if e.unreachable:
        return CompileError([error(
            "E1205", f"lost switch {ep.name} at {ep.address} during a write: {e.code.name}: "
                     f"{e.message} ({done} of {total} updates confirmed before)")])
    notes = []
    for x in e.errors[:10]:
        u = chunk[x.index] if x.index < len(chunk) else None
        what = describe(u.entity) if u is not None else f"update #{x.index}"
        notes.append(Note(f"{_U.Type.Name(u.type) if u else ''} {what}: "
                          f"{x.code.name}: {x.message}"))
    if len(e.errors) > 10:
        notes.append(Note(f"... and {len(e.errors) - 10} more"))
    return CompileError([error(
        "E1207", f"switch {ep.name} rejected {len(e.errors) or 'a batch of'} update(s): "
                 f"{e.code.name}", notes=notes,
        hint="the build's entries do not fit the switch's pipeline; recompile, or run "
             "`mosaico plan` to see the switch's state")])


def _raise_all(errors: Sequence[BaseException]) -> None:
    diags = []
    for e in errors:
        if isinstance(e, CompileError):
            diags.extend(e.diagnostics)
        else:
            raise e
    raise CompileError(diags)

