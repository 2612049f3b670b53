"""Live status rows: per service and per node, what ``mosaico status`` prints.

A switch's numbers come from the P4 backend's metrics map (``<switch>/metrics.json``,
:mod:`mosaico_dsl.backends.p4.metrics`): it names, by P4Runtime id and index, the counters,
registers and table entries' direct counters that hold each metric of each service and of
the switch. :func:`read_switch_metrics` reads exactly those and adds them up; nothing is
inferred from the objects' names.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from google.protobuf import json_format

from ..p4proto import p4r
from .entities import canonical, identity
from .p4runtime import P4RuntimeError
from .thrift import ThriftError

if TYPE_CHECKING:
    from ..backends.p4.metrics import Scope, Source, SwitchMetrics
    from .p4runtime import SwitchConnection
    from .schema import Schema

__all__ = ["Metrics", "StatusRow", "render_status", "read_switch_metrics", "missing_sources",
           "METRICS", "P4RUNTIME", "metric_scopes", "source_key", "entry_key", "aggregate"]

METRICS = ("packets", "drops", "ce_marks", "queue_delay")
P4RUNTIME = "p4runtime"
_SHORT = {"packets": "packets", "drops": "drops", "ce_marks": "CE", "queue_delay": "qdelay"}


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
    # metric (METRICS) → where its figure came from ("p4runtime", "thrift HOST:PORT"), or
    # "unavailable: <why>" when the device could not give it
    sources: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        m = self.metrics
        return {"service": self.service, "node": self.node, "target": self.target,
                "state": self.state, "packets": m.packets, "drops": m.drops,
                "ce_marks": m.ce_marks, "queue_delay_ns": m.queue_delay_ns,
                "detail": self.detail, "sources": dict(self.sources)}

    @property
    def notes(self) -> str:
        """The detail, and every figure not read over P4Runtime with where it came from."""
        out = [self.detail] if self.detail else []
        unavailable: dict[str, list[str]] = {}
        other: dict[str, list[str]] = {}
        for metric in METRICS:
            src = self.sources.get(metric)
            if src is None or src == P4RUNTIME:
                continue
            if src.startswith("unavailable: "):
                unavailable.setdefault(src.removeprefix("unavailable: "), []).append(
                    _SHORT[metric])
            else:
                other.setdefault(src, []).append(_SHORT[metric])
        out += [f"{', '.join(m)} via {src}" for src, m in other.items()]
        out += [f"{', '.join(m)} unavailable ({why})" for why, m in unavailable.items()]
        return "; ".join(out)


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
             _delay(r.metrics.queue_delay_ns), r.notes) for r in rows]
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in (head, *body))


# --------------------------------------------------------------------------- P4 switches

_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000}


def entry_key(table_id: int, entry: p4r.TableEntry | Mapping) -> str:
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


RegisterReader = Callable[[Sequence[str]], Awaitable[Mapping[str, Sequence[int]]]]
_KIND = {"counter": "counters", "register": "registers", "direct_counter": "direct counters"}


@dataclass(frozen=True, slots=True)
class SwitchReading:
    """What one status read of a switch gave: per scope, its figures and their sources."""

    metrics: Mapping[str, Metrics]
    sources: Mapping[str, Mapping[str, str]]


async def read_switch_metrics(conn: SwitchConnection, metrics: SwitchMetrics,
                              registers: RegisterReader | None = None,
                              registers_source: str = "") -> SwitchReading:
    """``"*"`` → the switch's totals, service name → its own, read live.

    Each entity kind is read on its own request: a kind the switch cannot read over
    P4Runtime leaves only the figures built on it unavailable (with the switch's reason),
    unless ``registers`` can read registers another way (BMv2's Thrift API), in which case
    those figures say they came from ``registers_source``."""
    scopes = metric_scopes(metrics)
    queries: dict[tuple, p4r.Entity] = {}
    names: dict[int, str] = {}
    for src in {src for sc in scopes.values() for src in sc.sources}:
        if src.object == "counter":
            queries[("c", src.id)] = p4r.Entity(counter_entry=p4r.CounterEntry(
                counter_id=src.id))
        elif src.object == "register":
            names[src.id] = src.name
            queries[("r", src.id)] = p4r.Entity(register_entry=p4r.RegisterEntry(
                register_id=src.id))
        else:
            queries[("d", src.table_id)] = p4r.Entity(direct_counter_entry=p4r.
                                                      DirectCounterEntry(table_entry=p4r.
                                                      TableEntry(table_id=src.table_id)))
    values: dict[tuple, int] = {}
    read, failed = await conn.read_each(queries.values()) if queries else ([], {})
    for e in read:
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
    origin = {kind: P4RUNTIME for kind in _KIND.values()}
    unavailable = {k: f"{k}: {v.code.name}: {v.message}" for k, v in failed.items()}
    if "registers" in unavailable and registers is not None:
        try:
            cells = await registers(sorted(set(names.values())))
        except (ThriftError, P4RuntimeError) as e:  # the fallback's reason
            unavailable["registers"] += f"; {registers_source or 'fallback'}: {e}"
        else:
            by_name = {n: i for i, n in names.items()}
            for name, vals in cells.items():
                for index, v in enumerate(vals):
                    values[("register", by_name[name], index)] = v
            del unavailable["registers"]
            origin["registers"] = registers_source
    out = aggregate(scopes, values)
    sources: dict[str, dict[str, str]] = {}
    for name, scope in scopes.items():
        sources[name] = {}
        for metric in METRICS:
            kinds = sorted({_KIND[s.object] for s in getattr(scope, metric)})
            if not kinds:
                continue
            missing = [unavailable[k] for k in kinds if k in unavailable]
            if missing:
                sources[name][metric] = "unavailable: " + "; ".join(missing)
                out[name] = _without(out[name], metric)
            else:
                sources[name][metric] = "+".join(dict.fromkeys(origin[k] for k in kinds))
    return SwitchReading(out, sources)


def _without(m: Metrics, metric: str) -> Metrics:
    """``m`` with ``metric`` unknown: a sum over part of its cells would mislead."""
    field_name = "queue_delay_ns" if metric == "queue_delay" else metric
    return Metrics(**{f: (None if f == field_name else getattr(m, f))
                      for f in ("packets", "drops", "ce_marks", "queue_delay_ns")})


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
