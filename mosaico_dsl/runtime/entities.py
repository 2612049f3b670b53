"""P4Runtime entities as values: canonical form, identity, and a readable description.

P4Runtime identifies a table entry by its table, match and priority, and lets a server
return byte strings in canonical form (no leading zero bytes). Diffing what the build wants
against what a switch holds therefore compares *canonical* entities: :func:`canonical`
normalises one, :func:`identity` is its key (what INSERT/DELETE address) and :func:`payload`
the part a MODIFY changes.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from pathlib import Path

from google.protobuf import json_format

from ..p4proto import p4r
from .schema import Schema

__all__ = [
    "canonical_bytes", "to_int", "canonical", "identity", "payload", "kind_of", "describe",
    "load_updates", "MODIFY_ONLY", "EntriesError",
]

# Entities a switch always has (one per index or table): written with MODIFY only, and
# "removing" one means resetting it to its default.
MODIFY_ONLY = frozenset({"register_entry", "meter_entry", "direct_meter_entry",
                         "counter_entry", "default_entry"})


class EntriesError(ValueError):
    """An ``entries.json`` that is not a list of P4Runtime ``Update`` messages."""


def canonical_bytes(b: bytes) -> bytes:
    """The P4Runtime canonical byte string: no leading zero bytes, at least one byte."""
    return b.lstrip(b"\x00") or b"\x00"


def to_int(b: bytes) -> int:
    return int.from_bytes(b, "big")


def kind_of(entity: p4r.Entity) -> str:
    kind = entity.WhichOneof("entity") or "unset"
    if kind == "table_entry" and entity.table_entry.is_default_action:
        return "default_entry"
    if kind == "packet_replication_engine_entry":
        return entity.packet_replication_engine_entry.WhichOneof("type") or "unset"
    return kind


def _canon_table_entry(src: p4r.TableEntry, dst: p4r.TableEntry) -> None:
    dst.table_id = src.table_id
    dst.priority = src.priority
    dst.is_default_action = src.is_default_action
    for m in sorted(src.match, key=lambda m: m.field_id):
        out = dst.match.add(field_id=m.field_id)
        which = m.WhichOneof("field_match_type")
        if which == "exact":
            out.exact.value = canonical_bytes(m.exact.value)
        elif which == "lpm":
            out.lpm.value = canonical_bytes(m.lpm.value)
            out.lpm.prefix_len = m.lpm.prefix_len
        elif which == "ternary":
            out.ternary.value = canonical_bytes(m.ternary.value)
            out.ternary.mask = canonical_bytes(m.ternary.mask)
        elif which == "range":
            out.range.low = canonical_bytes(m.range.low)
            out.range.high = canonical_bytes(m.range.high)
        elif which == "optional":
            out.optional.value = canonical_bytes(m.optional.value)
        else:
            out.CopyFrom(m)
    if src.HasField("action"):
        if src.action.HasField("action"):
            a = src.action.action
            dst.action.action.action_id = a.action_id
            for p in sorted(a.params, key=lambda p: p.param_id):
                dst.action.action.params.add(param_id=p.param_id,
                                             value=canonical_bytes(p.value))
        else:
            dst.action.CopyFrom(src.action)
    if src.HasField("meter_config"):
        dst.meter_config.CopyFrom(src.meter_config)


def canonical(entity: p4r.Entity) -> p4r.Entity:
    """A normalised copy: canonical byte strings, fields and params sorted by id, and the
    volatile parts (counter data, idle time) dropped."""
    out = p4r.Entity()
    which = entity.WhichOneof("entity")
    if which == "table_entry":
        _canon_table_entry(entity.table_entry, out.table_entry)
    elif which == "register_entry":
        out.register_entry.CopyFrom(entity.register_entry)
        data = out.register_entry.data
        if data.WhichOneof("data") == "bitstring":
            data.bitstring = canonical_bytes(data.bitstring)
    elif which == "direct_meter_entry":
        out.direct_meter_entry.config.CopyFrom(entity.direct_meter_entry.config)
        _canon_table_entry(entity.direct_meter_entry.table_entry,
                           out.direct_meter_entry.table_entry)
        out.direct_meter_entry.table_entry.ClearField("action")
    elif which == "packet_replication_engine_entry":
        pre = entity.packet_replication_engine_entry
        out.packet_replication_engine_entry.CopyFrom(pre)
        which = pre.WhichOneof("type")
        if which is not None:  # touch only the set member: a oneof follows its last write
            group = getattr(out.packet_replication_engine_entry, which)
            replicas = sorted(group.replicas, key=lambda r: r.SerializeToString(
                deterministic=True))
            del group.replicas[:]
            group.replicas.extend(replicas)
    elif which is not None:
        out.CopyFrom(entity)
    return out


def identity(entity: p4r.Entity) -> str:
    """The key of a *canonical* entity: what a switch uses to find it."""
    key = p4r.Entity()
    key.CopyFrom(entity)
    which = key.WhichOneof("entity")
    if which == "table_entry":
        key.table_entry.ClearField("action")
        key.table_entry.ClearField("meter_config")
    elif which == "register_entry":
        key.register_entry.ClearField("data")
    elif which in ("meter_entry", "direct_meter_entry"):
        getattr(key, which).ClearField("config")
    elif which == "counter_entry":
        key.counter_entry.ClearField("data")
    elif which == "packet_replication_engine_entry":
        pre = key.packet_replication_engine_entry
        which = pre.WhichOneof("type")
        if which is not None:
            group = getattr(pre, which)
            group.ClearField("replicas")
            if which == "clone_session_entry":
                group.ClearField("class_of_service")
                group.ClearField("packet_length_bytes")
    return key.SerializeToString(deterministic=True).hex()


def payload(entity: p4r.Entity) -> bytes:
    """What a MODIFY of this (canonical) entity changes, as deterministic bytes."""
    return entity.SerializeToString(deterministic=True)


# --------------------------------------------------------------------------- describing


def _fmt(value: bytes, bitwidth: int, name: str) -> str:
    n = to_int(value)
    low = name.lower()
    if bitwidth == 32 and any(h in low for h in ("addr", "ip", "src", "dst", "prefix")):
        return str(ipaddress.IPv4Address(n))
    if bitwidth == 48 and any(h in low for h in ("mac", "addr", "eth")):
        return ":".join(f"{b:02x}" for b in n.to_bytes(6, "big"))
    return str(n)


def _describe_table_entry(te: p4r.TableEntry, schema: Schema | None) -> str:
    table = schema.tables.get(te.table_id) if schema else None
    parts = [table.name if table else f"table {te.table_id:#x}"]
    if te.is_default_action:
        parts.append("(default)")
    for m in te.match:
        f = table.match_fields.get(m.field_id) if table else None
        name, width = (f.name, f.bitwidth) if f else (f"field{m.field_id}", 0)
        which = m.WhichOneof("field_match_type")
        if which == "exact":
            parts.append(f"{name}={_fmt(m.exact.value, width, name)}")
        elif which == "lpm":
            parts.append(f"{name}={_fmt(m.lpm.value, width, name)}/{m.lpm.prefix_len}")
        elif which == "ternary":
            parts.append(f"{name}={_fmt(m.ternary.value, width, name)}"
                         f"&&&{_fmt(m.ternary.mask, width, name)}")
        elif which == "range":
            parts.append(f"{name}={to_int(m.range.low)}..{to_int(m.range.high)}")
        elif which == "optional":
            parts.append(f"{name}={_fmt(m.optional.value, width, name)}")
    if te.priority:
        parts.append(f"priority={te.priority}")
    if te.action.HasField("action"):
        a = te.action.action
        action = schema.actions.get(a.action_id) if schema else None
        args = []
        for p in a.params:
            pi = action.params.get(p.param_id) if action else None
            pname = pi.name if pi else f"p{p.param_id}"
            args.append(f"{pname}={_fmt(p.value, pi.bitwidth if pi else 0, pname)}")
        parts.append(f"-> {action.name if action else hex(a.action_id)}({', '.join(args)})")
    if te.HasField("meter_config"):
        c = te.meter_config
        parts.append(f"meter(cir={c.cir}, cburst={c.cburst}, pir={c.pir}, pburst={c.pburst})")
    return " ".join(parts)


def describe(entity: p4r.Entity, schema: Schema | None = None) -> str:
    """One line a network engineer can read: names from the P4Info, addresses dotted."""
    which = entity.WhichOneof("entity")
    name = schema.name_of if schema else (lambda i: f"{i:#x}")
    if which == "table_entry":
        return _describe_table_entry(entity.table_entry, schema)
    if which == "register_entry":
        r = entity.register_entry
        value = to_int(r.data.bitstring) if r.data.WhichOneof("data") == "bitstring" else "?"
        return f"register {name(r.register_id)}[{r.index.index}] = {value}"
    if which == "meter_entry":
        m, c = entity.meter_entry, entity.meter_entry.config
        return (f"meter {name(m.meter_id)}[{m.index.index}] cir={c.cir} cburst={c.cburst} "
                f"pir={c.pir} pburst={c.pburst}")
    if which == "direct_meter_entry":
        c = entity.direct_meter_entry.config
        of = _describe_table_entry(entity.direct_meter_entry.table_entry, schema)
        return f"direct meter of {of} cir={c.cir} cburst={c.cburst} pir={c.pir} pburst={c.pburst}"
    if which == "counter_entry":
        c = entity.counter_entry
        return f"counter {name(c.counter_id)}[{c.index.index}]"
    if which == "packet_replication_engine_entry":
        pre = entity.packet_replication_engine_entry
        if pre.HasField("multicast_group_entry"):
            g = pre.multicast_group_entry
            ports = ", ".join(f"{r.egress_port or to_int(r.port)}#{r.instance}"
                              for r in g.replicas)
            return f"multicast group {g.multicast_group_id} -> [{ports}]"
        s = pre.clone_session_entry
        return f"clone session {s.session_id} -> {len(s.replicas)} replicas"
    return json_format.MessageToJson(entity, indent=None)


def load_updates(path: Path) -> list[p4r.Update]:
    """Read an ``entries.json``: a JSON array of ``p4.v1.Update`` in protobuf's JSON mapping."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EntriesError(f"cannot read {path}: {e}") from None
    if not isinstance(doc, list):
        raise EntriesError(f"{path}: expected a JSON array of P4Runtime Update messages")
    updates = []
    for i, item in enumerate(doc):
        try:
            updates.append(json_format.ParseDict(item, p4r.Update()))
        except json_format.ParseError as e:
            raise EntriesError(f"{path}: update #{i}: {e}") from None
    return updates


def update(kind: int, entity: p4r.Entity) -> p4r.Update:
    u = p4r.Update(type=kind)
    u.entity.CopyFrom(entity)
    return u


def entities_of(updates: Iterable[p4r.Update]) -> list[p4r.Entity]:
    """The desired entities a list of INSERT/MODIFY updates describes (later wins)."""
    out: dict[str, p4r.Entity] = {}
    for u in updates:
        e = canonical(u.entity)
        if u.type == p4r.Update.DELETE:
            out.pop(identity(e), None)
        else:
            out[identity(e)] = e
    return list(out.values())
