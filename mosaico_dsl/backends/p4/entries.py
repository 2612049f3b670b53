"""Runtime state of a program: P4Runtime ``Update`` messages and simple_switch_CLI commands.

``entries.json`` is a JSON array of ``p4.v1.Update`` in protobuf's JSON mapping
(``json_format.ParseDict(item, p4runtime_pb2.Update())`` loads each); ``entries.txt`` is the
same state as simple_switch_CLI commands (rendered from ``codegen/bmv2/entries.txt.j2``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from ..._json import dumps
from ...p4proto import p4r as R
from .bmv2 import queue_settings
from .model import Match, TableEntry
from .plan import SwitchPlan
from .render import environment

__all__ = ["to_bytes", "updates", "table_update", "entries_json", "entries_cli", "CliEntry",
           "cli_entries", "update_docs", "table_doc"]


def to_bytes(value: int, bits: int) -> bytes:
    """P4Runtime's canonical bytestring: big-endian, no leading zero bytes (0 is one byte)."""
    if value < 0 or value >= 1 << bits:
        raise ValueError(f"{value} does not fit in {bits} bits")
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _field_match(index: int, m: Match) -> R.FieldMatch:
    fm = R.FieldMatch(field_id=index)
    bits = m.key.bits
    if m.key.kind == "exact":
        fm.exact.value = to_bytes(m.value, bits)
    elif m.key.kind == "ternary":
        fm.ternary.value = to_bytes(m.value, bits)
        fm.ternary.mask = to_bytes(m.mask or 0, bits)
    elif m.key.kind == "lpm":
        fm.lpm.value = to_bytes(m.value, bits)
        fm.lpm.prefix_len = m.prefix_len or 0
    else:
        fm.range.low = to_bytes(m.value, bits)
        fm.range.high = to_bytes(m.high if m.high is not None else m.value, bits)
    return fm


def table_update(e: TableEntry) -> R.Update:
    """The INSERT of one table entry."""
    u = R.Update(type=R.Update.INSERT)
    te = u.entity.table_entry
    te.table_id = e.table.id
    index = {k: i for i, k in enumerate(e.table.keys, start=1)}
    for m in sorted(e.matches, key=lambda m: index[m.key]):
        te.match.append(_field_match(index[m.key], m))
    te.action.action.action_id = e.action.id
    for i, (p, v) in enumerate(zip(e.action.params, e.args, strict=True), start=1):
        te.action.action.params.add(param_id=i, value=to_bytes(v, p.bits))
    if e.table.needs_priority:
        te.priority = e.priority
    return u


def updates(plan: SwitchPlan) -> list[R.Update]:
    """Every Update the switch needs, in a stable order: tables, meters, clone sessions."""
    out = [table_update(e) for e in plan.entries]
    for mc in plan.meter_configs:
        u = R.Update(type=R.Update.MODIFY)
        me = u.entity.meter_entry
        me.meter_id = mc.meter.id
        me.index.index = mc.index
        me.config.cir = me.config.pir = mc.rate
        me.config.cburst = me.config.pburst = mc.burst
        out.append(u)
    for cs in plan.clone_sessions:
        u = R.Update(type=R.Update.INSERT)
        session = u.entity.packet_replication_engine_entry.clone_session_entry
        session.session_id = cs.session
        session.replicas.add(egress_port=cs.port, instance=1)
        out.append(u)
    return out


def entries_json(plan: SwitchPlan) -> str:
    return dumps(update_docs(plan), 1) + "\n"


# protobuf's JSON mapping of the updates above, written directly: json_format walks each
# message in Python, a thousand switches' entries took seconds (tests/backends/p4 check
# the two agree on every example program: ``update_docs(plan) == [MessageToDict(u) ...]``).


def _b64(value: int, bits: int) -> str:
    return base64.b64encode(to_bytes(value, bits)).decode("ascii")


def _nonzero(**fields: int) -> dict:
    """proto3 leaves scalars at their default out; 64-bit integers are strings in JSON."""
    return {k: str(v) for k, v in fields.items() if v}


def table_doc(e: TableEntry) -> dict:
    """``MessageToDict(table_update(e).entity.table_entry)``."""
    index = {k: i for i, k in enumerate(e.table.keys, start=1)}
    match = []
    for m in sorted(e.matches, key=lambda m: index[m.key]):
        bits = m.key.bits
        if m.key.kind == "exact":
            kind = {"exact": {"value": _b64(m.value, bits)}}
        elif m.key.kind == "ternary":
            kind = {"ternary": {"value": _b64(m.value, bits), "mask": _b64(m.mask or 0, bits)}}
        elif m.key.kind == "lpm":
            lpm = {"value": _b64(m.value, bits)}
            if m.prefix_len:
                lpm["prefixLen"] = m.prefix_len
            kind = {"lpm": lpm}
        else:
            high = m.high if m.high is not None else m.value
            kind = {"range": {"low": _b64(m.value, bits), "high": _b64(high, bits)}}
        match.append({"fieldId": index[m.key], **kind})
    action: dict = {"actionId": e.action.id}
    params = [{"paramId": i, "value": _b64(v, p.bits)}
              for i, (p, v) in enumerate(zip(e.action.params, e.args, strict=True), start=1)]
    if params:
        action["params"] = params
    doc: dict = {"tableId": e.table.id}
    if match:
        doc["match"] = match
    doc["action"] = {"action": action}
    if e.table.needs_priority and e.priority:
        doc["priority"] = e.priority
    return doc


def update_docs(plan: SwitchPlan) -> list[dict]:
    """``[MessageToDict(u) for u in updates(plan)]``."""
    out: list[dict] = [{"type": "INSERT", "entity": {"tableEntry": table_doc(e)}}
                       for e in plan.entries]
    for mc in plan.meter_configs:
        meter = {"meterId": mc.meter.id, "index": _nonzero(index=mc.index),
                 "config": _nonzero(cir=mc.rate, cburst=mc.burst, pir=mc.rate,
                                    pburst=mc.burst)}
        out.append({"type": "MODIFY", "entity": {"meterEntry": meter}})
    for cs in plan.clone_sessions:
        # egress_port is in a oneof: present, so written even when it is port 0.
        session = {"sessionId": cs.session,
                   "replicas": [{"egressPort": cs.port, "instance": 1}]}
        out.append({"type": "INSERT", "entity": {
            "packetReplicationEngineEntry": {"cloneSessionEntry": session}}})
    return out


@dataclass(frozen=True, slots=True)
class CliEntry:
    """A table entry as simple_switch_CLI wants it: every key given, BMv2 priorities."""

    entry: TableEntry
    matches: tuple[Match, ...]
    priority: int | None  # BMv2: smaller wins


def cli_entries(plan: SwitchPlan) -> tuple[CliEntry, ...]:
    top: dict[object, int] = {}
    for e in plan.entries:
        top[e.table] = max(top.get(e.table, 0), e.priority)
    out = []
    for e in plan.entries:
        given = {m.key: m for m in e.matches}
        full = []
        for k in e.table.keys:
            m = given.get(k)
            if m is None:  # don't care, spelt out
                if k.kind == "ternary":
                    m = Match(k, 0, mask=0)
                elif k.kind == "lpm":
                    m = Match(k, 0, prefix_len=0)
                elif k.kind == "range":
                    m = Match(k, 0, high=(1 << k.bits) - 1)
                else:  # pragma: no cover - exact keys are always given
                    raise ValueError(f"exact key {k.name} missing")
            full.append(m)
        prio = top[e.table] + 1 - e.priority if e.table.needs_priority else None
        out.append(CliEntry(e, tuple(full), prio))
    return tuple(out)


def entries_cli(plan: SwitchPlan) -> str:
    """``entries.txt``: simple_switch_CLI commands (lines starting with # are comments): table
    entries, meter rates, clone sessions, and each port's queue rate and depth."""
    return environment().get_template("bmv2/entries.txt.j2").render(
        plan=plan, entries=cli_entries(plan), meters=_meter_rates(plan),
        queues=queue_settings(plan))


def _meter_rates(plan: SwitchPlan):
    first = {}
    for mc in plan.meter_configs:
        first.setdefault(mc.meter, mc)
    return list(first.items())
