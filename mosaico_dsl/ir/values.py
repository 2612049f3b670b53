"""Typed values of the IR.

After checking, every argument, attribute and constant is one of these Python values:

=============  =====================================================================
mosaico type   Python value
=============  =====================================================================
bool int float ``bool``, ``int``, ``float``
string         ``str``
time …         :class:`~mosaico_dsl.units.Time`, ``Bandwidth``, ``Rate``, ``Size``, ``Percent``
ipv4 / prefix  ``ipaddress.IPv4Address`` / ``ipaddress.IPv4Network``
mac            :class:`MacAddress`
port           ``int``
endpoint/node  :class:`NodeRef`
list<T>        ``tuple``
set<T>         :class:`ValueSet` (ordered as written, duplicates removed: deterministic)
range          :class:`ValueRange` (inclusive)
rule           :class:`AclRule`
=============  =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ..units import Bandwidth, Percent, Quantity, Rate, Size, Time

__all__ = ["MacAddress", "NodeRef", "ValueSet", "ValueRange", "AclRule", "Value", "value_to_json",
           "format_value", "value_sort_key", "canonical_set"]


@dataclass(frozen=True, slots=True, order=True)
class MacAddress:
    value: str  # lower-case aa:bb:cc:dd:ee:ff

    def __str__(self) -> str:
        return self.value

    @property
    def as_int(self) -> int:
        return int(self.value.replace(":", ""), 16)


@dataclass(frozen=True, slots=True, order=True)
class NodeRef:
    """A reference to a topology node (an endpoint, switch or host) by name."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ValueSet:
    """A set value; build it with :func:`canonical_set` so equal sets compare equal."""

    items: tuple[Any, ...]

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, x: object) -> bool:
        return any(_contains(i, x) for i in self.items)


@dataclass(frozen=True, slots=True)
class ValueRange:
    lo: Any
    hi: Any

    def __contains__(self, x: object) -> bool:
        try:
            return self.lo <= x <= self.hi  # type: ignore[operator]
        except TypeError:
            return False

    def __str__(self) -> str:
        return f"{format_value(self.lo)}..{format_value(self.hi)}"


@dataclass(frozen=True, slots=True)
class AclRule:
    """One ``allow(...)``/``deny(...)`` rule of an ``Acl``; ``predicate`` is an IR predicate."""

    action: str  # "allow" | "deny"
    predicate: Any  # ir.predicate.Predicate (kept untyped here to avoid an import cycle)


def value_sort_key(v: Any) -> tuple:
    """A total order over IR values, so that sets are canonical (sets have no order)."""
    match v:
        case bool():
            return (0, int(v))
        case int() | float():
            return (1, v)
        case Quantity():
            return (2, v.dim.value, v.base)
        case str():
            return (3, v)
        case IPv4Address():
            return (4, int(v))
        case IPv4Network():
            return (4, int(v.network_address), v.prefixlen)
        case MacAddress(value=m):
            return (5, m)
        case NodeRef(name=n):
            return (6, n)
        case ValueRange(lo=lo, hi=hi):
            return (*value_sort_key(lo)[:2], 1, value_sort_key(hi))
    return (9, format_value(v))


def canonical_set(items: Any) -> ValueSet:
    """A ValueSet with duplicates removed and items in :func:`value_sort_key` order."""
    return ValueSet(tuple(sorted(dict.fromkeys(items), key=value_sort_key)))


def _contains(item: Any, x: object) -> bool:
    if isinstance(item, ValueRange):
        return x in item
    return item == x


Value = Any  # one of the types in the module docstring


def format_value(v: Value) -> str:
    """The value as ``.mosaico`` would write it (used by reports and the IR's JSON)."""
    match v:
        case bool():
            return "true" if v else "false"
        case Quantity():
            return str(v)
        case IPv4Network():
            return v.with_prefixlen
        case tuple():
            return "[" + ", ".join(format_value(i) for i in v) + "]"
        case ValueSet():
            return "{" + ", ".join(format_value(i) for i in v.items) + "}"
        case str():
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        case AclRule(action=a, predicate=p):
            return f"{a}({p})"
    return str(v)


def value_to_json(v: Value) -> Any:
    """A stable, lossless JSON form: scalars stay scalars, typed values are tagged."""
    match v:
        case bool() | int() | str() | None:
            return v
        case float():
            return v
        case Time(ns=ns):
            return {"time_ns": ns}
        case Bandwidth(bps=b):
            return {"bandwidth_bps": b}
        case Rate(pps=p):
            return {"rate_pps": p}
        case Size(bytes=b):
            return {"size_bytes": b}
        case Percent(value=p):
            return {"percent": str(Fraction(p))}
        case IPv4Address():
            return {"ipv4": str(v)}
        case IPv4Network():
            return {"prefix": v.with_prefixlen}
        case MacAddress(value=m):
            return {"mac": m}
        case NodeRef(name=n):
            return {"node": n}
        case tuple():
            return [value_to_json(i) for i in v]
        case ValueSet(items=items):
            return {"set": [value_to_json(i) for i in items]}
        case ValueRange(lo=lo, hi=hi):
            return {"range": [value_to_json(lo), value_to_json(hi)]}
        case AclRule(action=a, predicate=p):
            return {"rule": a, "match": p.to_json()}
    raise TypeError(f"not an IR value: {v!r}")
