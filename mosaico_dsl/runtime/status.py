"""Live status rows: per service and per node, what ``mosaico status`` prints.

A switch's numbers come from the P4 backend's metrics map (``<switch>/metrics.json``,
:mod:`mosaico_dsl.backends.p4.metrics`): it names, by P4Runtime id and index, the counters,
registers and table entries' direct counters that hold each metric of each service and of
the switch. :func:`read_switch_metrics` reads exactly those and adds them up; nothing is
inferred from the objects' names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.protobuf import json_format

from ..p4proto import p4r
from .entities import canonical, identity

if TYPE_CHECKING:
    from ..backends.p4.metrics import Scope, Source, SwitchMetrics
    from .p4runtime import SwitchConnection
    from .schema import Schema

__all__ = ["Metrics", "StatusRow", "render_status", "read_switch_metrics", "missing_sources",
           "metric_scopes", "source_key", "entry_key", "aggregate"]


@dataclass(frozen=True, slots=True)
class Metrics:
    """Counters read from the device; ``None`` where the device has no such counter."""

    packets: int | None = None
    drops: int | None = None
    ce_marks: int | None = None
    queue_delay_ns: int | None = None  # the latest queue delay sample (max over ports)

    def __add__(self, other: Metrics) -> Metrics:
        def add(a, b):
            return b if a is None else a if b is None else a + b

        return Metrics(add(self.packets, other.packets), add(self.drops, other.drops),
                       add(self.ce_marks, other.ce_marks),
                       max((d for d in (self.queue_delay_ns, other.queue_delay_ns)
                            if d is not None), default=None))


@dataclass(frozen=True, slots=True)
class StatusRow:
    service: str  # "*" for a node's totals over every service it carries
    node: str
    target: str
    state: str  # running | not deployed | unreachable | drift | CREATE_COMPLETE | ...
    metrics: Metrics = Metrics()
    detail: str = ""

    def to_json(self) -> dict:
        m = self.metrics
        return {"service": self.service, "node": self.node, "target": self.target,
                "state": self.state, "packets": m.packets, "drops": m.drops,
                "ce_marks": m.ce_marks, "queue_delay_ns": m.queue_delay_ns,
                "detail": self.detail}


def _delay(ns: int | None) -> str:
    if ns is None:
        return "-"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.2f}ms"
    if ns >= 1_000:
        return f"{ns / 1e3:.0f}us"
    return f"{ns}ns"


def render_status(rows: Sequence[StatusRow]) -> str:
    head = ("SERVICE", "NODE", "TARGET", "STATE", "PACKETS", "DROPS", "CE", "QDELAY", "")
    body = [(r.service, r.node, r.target, r.state,
             *("-" if v is None else str(v) for v in (r.metrics.packets, r.metrics.drops,
                                                       r.metrics.ce_marks)),
             _delay(r.metrics.queue_delay_ns), r.detail) for r in rows]
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in (head, *body))


# --------------------------------------------------------------------------- P4 switches

_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000}


def entry_key(table_id: int, entry: p4r.TableEntry | Mapping) -> str:
    """A table entry's identity without its action and data: what a direct counter cell of
    the metrics map (``Source.entry``) names."""
    te = p4r.TableEntry()
    if isinstance(entry, p4r.TableEntry):
        te.CopyFrom(entry)
    else:
        json_format.ParseDict({"tableId": table_id, **entry}, te)
    for f in ("action", "counter_data", "meter_config"):
        te.ClearField(f)
    return identity(canonical(p4r.Entity(table_entry=te)))


def source_key(src: Source) -> tuple:
    """What identifies the value of ``src`` on the switch, whoever reads it."""
    if src.object == "direct_counter":
        return (src.object, src.table_id, entry_key(src.table_id, json.loads(src.entry)))
    return (src.object, src.id, src.index)


def metric_scopes(metrics: SwitchMetrics, instances: bool = False) -> dict[str, Scope]:
    """``"*"`` → the switch's scope, service name → its own and, with ``instances``, each
    function instance id (``web_ll/0``) → its own."""
    out: dict[str, Scope] = {"*": metrics.node, **{s.service: s.scope
                                                   for s in metrics.services}}
    if instances:
        out.update({i.instance: i.scope for s in metrics.services for i in s.instances})
    return out


def aggregate(scopes: Mapping[str, Scope], values: Mapping[tuple, int]) -> dict[str, Metrics]:
    """Each scope's metrics from the values read, keyed by :func:`source_key`."""
    keys = {src: source_key(src) for sc in scopes.values() for src in sc.sources}
    return {name: _aggregate(scope, keys, values) for name, scope in scopes.items()}


def missing_sources(metrics: SwitchMetrics, schema: Schema) -> list[str]:
    """The map's objects the running pipeline lacks (or has under another name): its
    numbers would be read from the wrong objects."""
    out = []
    for src in metrics.node.sources + tuple(x for s in metrics.services
                                            for x in s.scope.sources):
        info = {"counter": schema.counters, "register": schema.registers,
                "direct_counter": schema.direct_counters}[src.object].get(src.id)
        if info is None or info.name != src.name:
            out.append(f"{src.object} {src.name} ({src.id:#x})")
    return sorted(set(out))


async def read_switch_metrics(conn: SwitchConnection, metrics: SwitchMetrics
                              ) -> dict[str, Metrics]:
    """``"*"`` → the switch's totals, service name → its own, read live."""
    scopes = metric_scopes(metrics)
    queries: dict[tuple, p4r.Entity] = {}
    for src in {src for sc in scopes.values() for src in sc.sources}:
        if src.object == "counter":
            queries[("c", src.id)] = p4r.Entity(counter_entry=p4r.CounterEntry(
                counter_id=src.id))
        elif src.object == "register":
            queries[("r", src.id)] = p4r.Entity(register_entry=p4r.RegisterEntry(
                register_id=src.id))
        else:
            queries[("d", src.table_id)] = p4r.Entity(direct_counter_entry=p4r.
                                                      DirectCounterEntry(table_entry=p4r.
                                                      TableEntry(table_id=src.table_id)))
    values: dict[tuple, int] = {}
    for e in await conn.read(queries.values()) if queries else []:
        which = e.WhichOneof("entity")
        if which == "counter_entry":
            c = e.counter_entry
            values[("counter", c.counter_id, c.index.index)] = c.data.packet_count
        elif which == "register_entry":
            r = e.register_entry
            values[("register", r.register_id, r.index.index)] = \
                int.from_bytes(r.data.bitstring, "big")
        elif which == "direct_counter_entry":
            d = e.direct_counter_entry
            values[("direct_counter", d.table_entry.table_id,
                    entry_key(d.table_entry.table_id, d.table_entry))] = d.data.packet_count
    return aggregate(scopes, values)


def _aggregate(scope: Scope, keys: Mapping[Source, tuple], values: Mapping[tuple, int]
               ) -> Metrics:
    """Packets, drops and CE marks add up over their sources; queue delay is the largest.
    A metric none of whose sources the switch answered for is unknown (``None``)."""
    def total(sources: Sequence[Source]) -> int | None:
        got = [values[keys[s]] for s in sources if keys[s] in values]
        return sum(got) if got else None

    delays = [values[keys[s]] * _UNIT_NS[s.unit or "us"] for s in scope.queue_delay
              if keys[s] in values]
    return Metrics(total(scope.packets), total(scope.drops), total(scope.ce_marks),
                   max(delays) if delays else None)
