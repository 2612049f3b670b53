"""The P4Info of one pipeline, indexed for lookups by id and by name.

Both the client (to describe entries in plans and read counters for ``status``) and the
reference target (to validate every request) read a pipeline through this one index, so
they cannot disagree about what a table or a bitwidth is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

from ..p4proto import p4i

__all__ = [
    "MatchKind", "MatchFieldInfo", "ParamInfo", "ActionInfo", "TableInfo", "CounterInfo",
    "MeterInfo", "RegisterInfo", "Schema", "SchemaError", "load_p4info",
]


class MatchKind:
    """``p4.config.v1.MatchField.MatchType`` values, named."""

    EXACT = p4i.MatchField.EXACT
    LPM = p4i.MatchField.LPM
    TERNARY = p4i.MatchField.TERNARY
    RANGE = p4i.MatchField.RANGE
    OPTIONAL = p4i.MatchField.OPTIONAL

    NAMES = {EXACT: "exact", LPM: "lpm", TERNARY: "ternary", RANGE: "range",
             OPTIONAL: "optional"}


class SchemaError(ValueError):
    """The P4Info itself is malformed (duplicate ids, dangling references, bad text)."""


@dataclass(frozen=True, slots=True)
class MatchFieldInfo:
    id: int
    name: str
    bitwidth: int
    kind: int  # MatchKind

    @property
    def kind_name(self) -> str:
        return MatchKind.NAMES.get(self.kind, "unspecified")


@dataclass(frozen=True, slots=True)
class ParamInfo:
    id: int
    name: str
    bitwidth: int


@dataclass(frozen=True, slots=True)
class ActionInfo:
    id: int
    name: str
    params: Mapping[int, ParamInfo]


@dataclass(frozen=True, slots=True)
class TableInfo:
    id: int
    name: str
    match_fields: Mapping[int, MatchFieldInfo]
    action_ids: frozenset[int]
    table_only: frozenset[int]  # action ids that cannot be the default action
    default_only: frozenset[int]  # action ids usable only as the default action
    const_default_action_id: int
    is_const: bool
    size: int
    direct_counter_id: int | None
    direct_meter_id: int | None
    # P4Runtime: tables with ternary, range or optional fields order entries by priority.
    needs_priority: bool


@dataclass(frozen=True, slots=True)
class CounterInfo:
    id: int
    name: str
    unit: int  # p4i.CounterSpec.Unit
    size: int  # 0 for direct counters
    table_id: int | None = None  # direct counters


@dataclass(frozen=True, slots=True)
class MeterInfo:
    id: int
    name: str
    size: int
    table_id: int | None = None


@dataclass(frozen=True, slots=True)
class RegisterInfo:
    id: int
    name: str
    size: int
    bitwidth: int


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class Schema:
    """An indexed, read-only view of a ``P4Info``."""

    def __init__(self, info: p4i.P4Info) -> None:
        self.p4info = info
        self.actions = {a.preamble.id: ActionInfo(
            a.preamble.id, a.preamble.name,
            {p.id: ParamInfo(p.id, p.name, p.bitwidth) for p in a.params})
            for a in info.actions}
        self.direct_counters = {c.preamble.id: CounterInfo(
            c.preamble.id, c.preamble.name, c.spec.unit, 0, c.direct_table_id)
            for c in info.direct_counters}
        self.direct_meters = {m.preamble.id: MeterInfo(
            m.preamble.id, m.preamble.name, 0, m.direct_table_id) for m in info.direct_meters}
        self.counters = {c.preamble.id: CounterInfo(c.preamble.id, c.preamble.name,
                                                    c.spec.unit, c.size)
                         for c in info.counters}
        self.meters = {m.preamble.id: MeterInfo(m.preamble.id, m.preamble.name, m.size)
                       for m in info.meters}
        self.registers = {r.preamble.id: RegisterInfo(
            r.preamble.id, r.preamble.name, r.size, r.type_spec.bitstring.bit.bitwidth
            or r.type_spec.bitstring.int.bitwidth) for r in info.registers}
        tables = {}
        for t in info.tables:
            ids = tuple(t.direct_resource_ids)
            tables[t.preamble.id] = TableInfo(
                id=t.preamble.id, name=t.preamble.name,
                match_fields={m.id: MatchFieldInfo(m.id, m.name, m.bitwidth, m.match_type)
                              for m in t.match_fields},
                action_ids=frozenset(a.id for a in t.action_refs),
                table_only=frozenset(a.id for a in t.action_refs
                                     if a.scope == p4i.ActionRef.TABLE_ONLY),
                default_only=frozenset(a.id for a in t.action_refs
                                       if a.scope == p4i.ActionRef.DEFAULT_ONLY),
                const_default_action_id=t.const_default_action_id,
                is_const=t.is_const_table,
                size=t.size,
                direct_counter_id=next((i for i in ids if i in self.direct_counters), None),
                direct_meter_id=next((i for i in ids if i in self.direct_meters), None),
                needs_priority=any(m.match_type in (MatchKind.TERNARY, MatchKind.RANGE,
                                                    MatchKind.OPTIONAL)
                                   for m in t.match_fields),
            )
        self.tables = tables
        self._check()
        self._by_name = {(kind, n): obj for kind, objs in self._kinds().items()
                         for obj in objs.values() for n in {obj.name, _short(obj.name)}}

    def _kinds(self) -> dict[str, Mapping]:
        return {"table": self.tables, "action": self.actions, "counter": self.counters,
                "direct_counter": self.direct_counters, "meter": self.meters,
                "direct_meter": self.direct_meters, "register": self.registers}

    def _check(self) -> None:
        seen: dict[int, str] = {}
        problems: list[str] = []
        info = self.p4info
        for kind, objs in (("table", info.tables), ("action", info.actions),
                           ("counter", info.counters), ("direct_counter", info.direct_counters),
                           ("meter", info.meters), ("direct_meter", info.direct_meters),
                           ("register", info.registers)):
            for obj in objs:
                pid, name = obj.preamble.id, obj.preamble.name
                if pid == 0:
                    problems.append(f"{kind} {name!r} has id 0")
                elif pid in seen:
                    problems.append(f"id {pid:#x} is used by both {seen[pid]} and "
                                    f"{kind} {name!r}")
                seen[pid] = f"{kind} {name!r}"
        for t in self.tables.values():
            problems += [f"table {t.name!r} refers to unknown action id {a:#x}"
                         for a in sorted(t.action_ids - self.actions.keys())]
        if problems:
            raise SchemaError("; ".join(problems))

    def find(self, kind: str, name: str):
        """The object of ``kind`` called ``name`` (full or last dotted component)."""
        try:
            return self._by_name[(kind, name)]
        except KeyError:
            raise KeyError(f"P4Info has no {kind} named {name!r}") from None

    def name_of(self, obj_id: int) -> str:
        for objs in self._kinds().values():
            if obj_id in objs:
                return objs[obj_id].name
        return f"{obj_id:#x}"

    @classmethod
    def from_text(cls, text: str) -> Schema:
        try:
            return cls(text_format.Parse(text, p4i.P4Info()))
        except text_format.ParseError as e:
            raise SchemaError(f"not a text-format P4Info: {e}") from None


def load_p4info(path: Path) -> Schema:
    """Read ``p4info.txtpb`` (text format) or a binary ``P4Info`` (``.bin``/``.pb``)."""
    data = Path(path).read_bytes()
    if path.suffix in (".bin", ".pb"):
        info = p4i.P4Info()
        info.ParseFromString(data)
        return Schema(info)
    return Schema.from_text(data.decode("utf-8"))
