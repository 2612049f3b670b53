"""The P4 objects of one generated program and the runtime state it needs.

Every object the control plane can see (table, action, counter, direct counter, meter,
register) is a value here with its P4Runtime id and name. The templates print these values
as ``@id``/``@name`` annotations and :mod:`.p4info` serialises the very same values, so
p4c's P4Info and ours agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "INGRESS", "EGRESS", "Prefix", "IdAllocator", "Param", "Action", "Key", "DirectCounter",
    "Table", "Counter", "Meter", "Register", "Match", "TableEntry", "MeterConfig",
    "CloneSession", "qualified",
]

INGRESS = "MosaicoIngress"
EGRESS = "MosaicoEgress"
TOP = ""  # declared at the program's top level: BMv2 lets ingress and egress share it


class Prefix:
    """P4Runtime id prefixes (``p4.config.v1.P4Ids.Prefix``): the id's top byte."""

    ACTION = 0x01
    TABLE = 0x02
    COUNTER = 0x12
    DIRECT_COUNTER = 0x13
    METER = 0x14
    REGISTER = 0x16


@dataclass
class IdAllocator:
    """Hands out ids in declaration order, per resource type: ``prefix << 24 | n``."""

    _next: dict[int, int] = field(default_factory=dict)

    def __call__(self, prefix: int) -> int:
        n = self._next.get(prefix, 1)
        self._next[prefix] = n + 1
        return (prefix << 24) | n


def qualified(control: str, name: str) -> str:
    """The control-plane name p4c gives an object declared directly in ``control``, or at
    the top level of the program (``control`` is :data:`TOP`: shared by ingress and egress)."""
    return f"{control}.{name}" if control else name


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    bits: int
    format: str = "int"  # how entries.txt prints values: int | ipv4 | mac


@dataclass(frozen=True, slots=True)
class Action:
    id: int
    name: str  # the P4 identifier (also the local @name)
    params: tuple[Param, ...] = ()
    control: str = INGRESS

    @property
    def fqname(self) -> str:
        return qualified(self.control, self.name)


@dataclass(frozen=True, slots=True)
class Key:
    """One match field: ``name`` is its P4Runtime name, ``expr`` the P4 expression."""

    name: str
    expr: str
    kind: str  # exact | ternary | lpm | range
    bits: int
    format: str = "int"  # how entries.txt prints values: int | ipv4 | mac


@dataclass(frozen=True, slots=True)
class DirectCounter:
    id: int
    name: str
    unit: str  # packets | bytes | packets_and_bytes
    control: str = INGRESS

    @property
    def fqname(self) -> str:
        return qualified(self.control, self.name)


@dataclass(frozen=True, slots=True)
class Table:
    id: int
    name: str
    keys: tuple[Key, ...]
    actions: tuple[Action, ...]  # entry actions
    default_action: Action  # only as default (``@defaultonly``) unless also in ``actions``
    size: int
    counter: DirectCounter | None = None
    control: str = INGRESS

    @property
    def fqname(self) -> str:
        return qualified(self.control, self.name)

    @property
    def needs_priority(self) -> bool:
        return any(k.kind in ("ternary", "range") for k in self.keys)

    @property
    def all_actions(self) -> tuple[Action, ...]:
        extra = () if self.default_action in self.actions else (self.default_action,)
        return (*self.actions, *extra)

    def default_only(self, action: Action) -> bool:
        return action not in self.actions


@dataclass(frozen=True, slots=True)
class Counter:
    id: int
    name: str
    size: int
    unit: str
    control: str = INGRESS

    @property
    def fqname(self) -> str:
        return qualified(self.control, self.name)


@dataclass(frozen=True, slots=True)
class Meter:
    id: int
    name: str
    size: int
    unit: str = "packets"
    control: str = INGRESS

    @property
    def fqname(self) -> str:
        return qualified(self.control, self.name)


@dataclass(frozen=True, slots=True)
class Register:
    id: int
    name: str
    size: int
    bits: int
    control: str = INGRESS

    @property
    def fqname(self) -> str:
        return qualified(self.control, self.name)


# --------------------------------------------------------------------------- runtime state


@dataclass(frozen=True, slots=True)
class Match:
    """A field's match in an entry; don't-care fields are simply absent from the entry."""

    key: Key
    value: int
    mask: int | None = None  # ternary
    prefix_len: int | None = None  # lpm
    high: int | None = None  # range (``value`` is the low end)


@dataclass(frozen=True, slots=True)
class TableEntry:
    table: Table
    matches: tuple[Match, ...]
    action: Action
    args: tuple[int, ...] = ()
    priority: int = 0  # P4Runtime convention: larger wins
    comment: str = ""


@dataclass(frozen=True, slots=True)
class MeterConfig:
    """Two-rate three-colour meter cell with both rates at ``rate``: red above it."""

    meter: Meter
    index: int
    rate: int  # packets per second
    burst: int  # packets
    comment: str = ""


@dataclass(frozen=True, slots=True)
class CloneSession:
    session: int
    port: int
    comment: str = ""
