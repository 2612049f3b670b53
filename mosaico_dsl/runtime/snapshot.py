"""A switch's whole forwarding state, read before a pipeline push and written back by its undo.

Pushing a pipeline wipes everything the old one held: table entries and their direct
counters and meters, default actions, meters, counters, registers, multicast groups and
clone sessions. The undo of a push restores the old pipeline and then every one of those,
read in full just before the push — not only the entries mosaico wrote — so a rolled-back
deploy leaves a rate limiter limiting and a clone session mirroring. Kinds the switch
cannot read (BMv2 implements no register reads or writes over P4Runtime) are named, so the
rollback says what it could not restore.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..p4proto import p4r
from .entities import canonical
from .p4runtime import SwitchConnection
from .schema import Schema

__all__ = ["Snapshot", "take", "restore_updates"]

_U = p4r.Update


@dataclass(frozen=True)
class Snapshot:
    entities: tuple[p4r.Entity, ...]
    unavailable: Mapping[str, str]  # entity kind → why the switch could not read it

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for e in self.entities:
            counts[_word(e)] = counts.get(_word(e), 0) + 1
        return ", ".join(f"{n} {w}" for w, n in sorted(counts.items())) or "nothing"


def _word(e: p4r.Entity) -> str:
    which = e.WhichOneof("entity")
    if which == "table_entry":
        return "default actions" if e.table_entry.is_default_action else "table entries"
    if which == "packet_replication_engine_entry":
        return ("clone sessions" if e.packet_replication_engine_entry.HasField(
            "clone_session_entry") else "multicast groups")
    return {"meter_entry": "meter configs", "counter_entry": "counter cells",
            "register_entry": "register cells", "direct_counter_entry": "direct counters"
            }.get(which, which or "?")


def _queries(schema: Schema) -> list[p4r.Entity]:
    """One query per object: wildcards that every P4Runtime server implements (PI refuses a
    direct-counter read without a table)."""
    q = [p4r.Entity(table_entry=p4r.TableEntry())]
    q += [p4r.Entity(table_entry=p4r.TableEntry(table_id=t.id, is_default_action=True))
          for t in schema.tables.values() if not t.const_default_action_id]
    q += [p4r.Entity(direct_counter_entry=p4r.DirectCounterEntry(
        table_entry=p4r.TableEntry(table_id=t.id)))
        for t in schema.tables.values() if t.direct_counter_id is not None]
    q += [p4r.Entity(meter_entry=p4r.MeterEntry(meter_id=i)) for i in schema.meters]
    q += [p4r.Entity(counter_entry=p4r.CounterEntry(counter_id=i)) for i in schema.counters]
    q += [p4r.Entity(register_entry=p4r.RegisterEntry(register_id=i))
          for i in schema.registers]
    pre = p4r.PacketReplicationEngineEntry
    q += [p4r.Entity(packet_replication_engine_entry=pre(
              multicast_group_entry=p4r.MulticastGroupEntry())),
          p4r.Entity(packet_replication_engine_entry=pre(
              clone_session_entry=p4r.CloneSessionEntry()))]
    return q


async def take(conn: SwitchConnection, schema: Schema) -> Snapshot:
    """Read everything the pipeline ``schema`` describes (the switch's running one)."""
    read, unavailable = await conn.read_each(_queries(schema))
    keep = []
    for e in read:
        which = e.WhichOneof("entity")
        if which == "table_entry" and not e.table_entry.is_default_action:
            keep.append(canonical(e))  # its direct counter is read on its own
        elif which == "table_entry":
            if e.table_entry.HasField("action"):  # a default the controller set
                keep.append(canonical(e))
        elif which == "meter_entry":
            if e.meter_entry.HasField("config") and e.meter_entry.config.cir | \
                    e.meter_entry.config.pir:
                keep.append(canonical(e))
        elif which in ("counter_entry", "direct_counter_entry"):
            d = getattr(e, which).data
            if d.packet_count or d.byte_count:
                keep.append(e)
        elif which == "register_entry":
            data = e.register_entry.data
            if data.WhichOneof("data") == "bitstring" and data.bitstring.strip(b"\0"):
                keep.append(canonical(e))
        else:
            keep.append(canonical(e))
    return Snapshot(tuple(keep), {k: f"{v.code.name}: {v.message}"
                                  for k, v in sorted(unavailable.items())})


def restore_updates(snapshot: Snapshot) -> Sequence[p4r.Update]:
    """The writes that rebuild ``snapshot`` on the freshly restored (empty) pipeline:
    groups and sessions first (entries may point at them), then entries, then the cells
    that belong to entries (direct counters) and the modify-only objects."""
    first, entries, cells = [], [], []
    for e in snapshot.entities:
        which = e.WhichOneof("entity")
        if which == "packet_replication_engine_entry":
            first.append(_update(_U.INSERT, e))
        elif which == "table_entry" and not e.table_entry.is_default_action:
            entries.append(_update(_U.INSERT, e))
        else:
            cells.append(_update(_U.MODIFY, e))
    return [*first, *entries, *cells]


def _update(kind: int, e: p4r.Entity) -> p4r.Update:
    u = p4r.Update(type=kind)
    u.entity.CopyFrom(e)
    return u
