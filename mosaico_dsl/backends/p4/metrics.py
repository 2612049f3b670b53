"""``metrics.json``: which counter, register or direct counter gives each metric.

``mosaico status`` shows, per switch and per service, packets, drops, CE marks and queue
delay. This map says where each comes from — by P4Runtime id and index, per service and per
function instance, per port and traffic class for the DualQ — so the runtime reads exactly
those cells and never guesses from object names. It is built from the same plan the
templates print: the objects and indices below are the ones the generated P4 counts in.

* **packets** of a service: the classifier's direct counter on the entries where its
  routes *arrive* at the switch (a detour back from a VNF host enters the classifier again
  and is not counted twice); of the switch: those of every service, the replies it
  returns (the direct counter of every reply entry) and the unclassified packets. A
  DualQ's packets per port and class, and a Forward's route hits, are listed for the
  instance.
* **drops**: the counter each filter counts its drops in (index 0), the DualQ's drop
  counter per port and class, and for the switch also the unclassified packets.
* **CE marks**: the DualQ's mark counter per port and class.
* **queue delay**: the DualQ's latest delay samples per port (``qdelay_c`` for the Classic
  queue, ``qdelay_l`` for L4S), in µs as BMv2's ``deq_timedelta``.

Packets, drops and CE marks add up over their sources; queue delay is the largest source.
A DualQ queue shared by several services on one port is listed for each of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..._json import dumps
from .entries import table_doc
from .model import Counter, Register, Table, TableEntry
from .plan import Step, SwitchPlan

__all__ = ["FORMAT", "VERSION", "METRICS", "Source", "Scope", "InstanceMetrics",
           "ServiceMetrics", "SwitchMetrics", "metrics_of", "metrics_json"]

FORMAT = "mosaico-p4-metrics"
VERSION = 1
METRICS = ("packets", "drops", "ce_marks", "queue_delay")
# Templates whose function counts the packets it drops in its first counter, index 0
# (``if (dropped) { <counters[0]>.count(32w0); }``).
_DROPPING = ("blocklist", "allowlist", "acl", "ratelimit", "synguard")
_CLASSES = ((0, "classic"), (1, "l4s"))


@dataclass(frozen=True, slots=True)
class Source:
    """One value on the switch: a counter cell, a register cell, or the direct counter of
    one table entry (``entry``: the entry's key in P4Runtime's JSON mapping — ``match``
    and ``priority`` — as canonical JSON text)."""

    object: str  # counter | register | direct_counter
    id: int
    name: str
    index: int | None = None  # counter or register cell
    table_id: int | None = None  # direct_counter: the table of the entry
    entry: str | None = None
    port: int | None = None  # DualQ: the egress port
    traffic_class: str | None = None  # DualQ: classic | l4s
    unit: str | None = None  # registers: the unit of the value (us)
    comment: str = ""

    def to_json(self) -> dict:
        doc: dict = {"object": self.object, "id": self.id, "name": self.name}
        for key, value in (("index", self.index), ("table_id", self.table_id),
                           ("port", self.port), ("class", self.traffic_class),
                           ("unit", self.unit)):
            if value is not None:
                doc[key] = value
        if self.entry is not None:
            doc["entry"] = json.loads(self.entry)
        if self.comment:
            doc["comment"] = self.comment
        return doc

    @classmethod
    def from_json(cls, doc: Mapping) -> Source:
        entry = doc.get("entry")
        return cls(doc["object"], int(doc["id"]), doc["name"], doc.get("index"),
                   doc.get("table_id"), None if entry is None else _canonical(entry),
                   doc.get("port"), doc.get("class"), doc.get("unit"), doc.get("comment", ""))


@dataclass(frozen=True, slots=True)
class Scope:
    """The sources of each metric for one scope (a switch, a service, an instance)."""

    packets: tuple[Source, ...] = ()
    drops: tuple[Source, ...] = ()
    ce_marks: tuple[Source, ...] = ()
    queue_delay: tuple[Source, ...] = ()

    def __or__(self, other: Scope) -> Scope:
        return Scope(*(_unique((*getattr(self, m), *getattr(other, m))) for m in METRICS))

    @property
    def sources(self) -> tuple[Source, ...]:
        return _unique(s for m in METRICS for s in getattr(self, m))

    def to_json(self) -> dict:
        return {m: [s.to_json() for s in getattr(self, m)] for m in METRICS}

    @classmethod
    def from_json(cls, doc: Mapping) -> Scope:
        return cls(*(tuple(Source.from_json(s) for s in doc.get(m, ())) for m in METRICS))


@dataclass(frozen=True, slots=True)
class InstanceMetrics:
    instance: str
    function: str
    scope: Scope


@dataclass(frozen=True, slots=True)
class ServiceMetrics:
    service: str
    id: int  # the classifier's service id
    scope: Scope  # its arrivals' packets and its instances' drops, marks and delays
    instances: tuple[InstanceMetrics, ...]


@dataclass(frozen=True, slots=True)
class SwitchMetrics:
    switch: str
    node: Scope
    services: tuple[ServiceMetrics, ...]

    def service(self, name: str) -> ServiceMetrics | None:
        return next((s for s in self.services if s.service == name), None)

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "switch": self.switch,
            "aggregation": "packets, drops and ce_marks add up over their sources; "
                           "queue_delay is the largest source",
            "node": self.node.to_json(),
            "services": [{"service": s.service, "id": s.id, **s.scope.to_json(),
                          "instances": [{"instance": i.instance, "function": i.function,
                                         **i.scope.to_json()} for i in s.instances]}
                         for s in self.services],
        }

    @classmethod
    def from_json(cls, doc: Mapping) -> SwitchMetrics:
        if doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise ValueError(f"not a {FORMAT} version {VERSION} document")
        return cls(doc["switch"], Scope.from_json(doc["node"]), tuple(
            ServiceMetrics(s["service"], int(s["id"]), Scope.from_json(s),
                           tuple(InstanceMetrics(i["instance"], i["function"],
                                                 Scope.from_json(i))
                                 for i in s["instances"]))
            for s in doc["services"]))


def _canonical(doc: Mapping) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _unique(sources: Iterable[Source]) -> tuple[Source, ...]:
    return tuple(dict.fromkeys(sources))


def _counter(c: Counter, index: int, **labels) -> Source:
    return Source("counter", c.id, c.fqname, index, **labels)


def _register(r: Register, index: int, **labels) -> Source:
    return Source("register", r.id, r.fqname, index, unit="us", **labels)


def _hits(table: Table, entry: TableEntry, key: Mapping) -> Source:
    assert table.counter is not None
    return Source("direct_counter", table.counter.id, table.counter.fqname,
                  table_id=table.id, entry=_canonical(key), comment=entry.comment)


def _entry_keys(plan: SwitchPlan) -> dict[int, dict]:
    """Per table entry (by position in ``plan.entries``): its key as entries.json has it."""
    out = {}
    for i, e in enumerate(plan.entries):
        doc = table_doc(e)
        out[i] = {k: doc[k] for k in ("match", "priority") if k in doc}
    return out


def _instance(plan: SwitchPlan, step: Step, keys: Mapping[int, dict]) -> Scope:
    if step.template in _DROPPING:
        return Scope(drops=(_counter(step.counters[0], 0),))
    if step.template == "forward":
        return Scope(packets=tuple(_hits(step.table, e, keys[i])
                                   for i, e in enumerate(plan.entries)
                                   if e.table == step.table))
    if step.template == "dualq":
        unit = next(u for u in plan.dualq_units if u.unit == step.c("unit"))
        ports = sorted(p for i, p in unit.users if i == step.instance.id)
        cells = [(p, p * 2 + c, name) for p in ports for c, name in _CLASSES]
        return Scope(
            packets=tuple(_counter(unit.counter("packets"), i, port=p, traffic_class=n)
                          for p, i, n in cells),
            drops=tuple(_counter(unit.counter("drops"), i, port=p, traffic_class=n)
                        for p, i, n in cells),
            ce_marks=tuple(_counter(unit.counter("marks"), i, port=p, traffic_class=n)
                           for p, i, n in cells),
            queue_delay=tuple(_register(unit.register("qdelay_c" if n == "classic"
                                                      else "qdelay_l"), p, port=p,
                                        traffic_class=n) for p, _, n in cells))
    return Scope()  # fifo, mirror: nothing counted


def metrics_of(plan: SwitchPlan) -> SwitchMetrics:
    keys = _entry_keys(plan)
    position = {id(e): i for i, e in enumerate(plan.entries)}
    table = plan.classifier.table
    services: list[ServiceMetrics] = []
    node = Scope()
    seen: dict[str, int] = {}
    for seg in plan.segments:
        seen.setdefault(seg.service, seg.service_id)
    for name, sid in seen.items():
        arrivals = tuple(_hits(table, e, keys[position[id(e)]])
                         for svc, e in plan.arrivals if svc == name)
        steps = {s.instance.id: s for seg in plan.segments if seg.service == name
                 for s in seg.steps}
        instances = tuple(InstanceMetrics(iid, s.instance.function, _instance(plan, s, keys))
                          for iid, s in steps.items())
        scope = Scope(packets=arrivals)
        for inst in instances:
            scope = scope | Scope(drops=inst.scope.drops, ce_marks=inst.scope.ce_marks,
                                  queue_delay=inst.scope.queue_delay)
        services.append(ServiceMetrics(name, sid, scope, instances))
        node = node | scope
    replies = tuple(_hits(table, e, keys[i]) for i, e in enumerate(plan.entries)
                    if e.table == table and e.action in plan.classifier.reply_actions)
    unclassified = _counter(plan.classifier.dropped, 0)
    node = node | Scope(packets=(*replies, unclassified), drops=(unclassified,))
    return SwitchMetrics(plan.switch.name, node, tuple(services))


def metrics_json(plan: SwitchPlan) -> str:
    return dumps(metrics_of(plan).to_json(), 1) + "\n"
