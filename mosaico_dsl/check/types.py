"""The checker's types.

Unit-carrying types are distinct types: a ``time`` is never a ``bandwidth`` and neither is a
``float``; arithmetic follows the dimensions (time / time is a float, a float times a rate
is a rate).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..units import Dim

__all__ = [
    "Type", "BOOL", "INT", "FLOAT", "STRING", "IPV4", "PREFIX", "MAC", "PORT", "ENDPOINT",
    "NODE", "RULE", "ANY", "TIME", "BANDWIDTH", "RATE", "SIZE", "PERCENT", "SCALARS",
    "GENERICS", "list_of", "set_of", "range_of", "dim_type", "type_dim", "assignable",
    "is_numeric", "is_quantity", "describe",
]


@dataclass(frozen=True, slots=True)
class Type:
    name: str
    args: tuple[Type, ...] = ()

    def __str__(self) -> str:
        return self.name if not self.args else f"{self.name}<{', '.join(map(str, self.args))}>"

    @property
    def elem(self) -> Type:
        return self.args[0] if self.args else ANY


BOOL, INT, FLOAT, STRING = Type("bool"), Type("int"), Type("float"), Type("string")
IPV4, PREFIX, MAC, PORT = Type("ipv4"), Type("prefix"), Type("mac"), Type("port")
ENDPOINT, NODE, RULE, ANY = Type("endpoint"), Type("node"), Type("rule"), Type("any")
TIME, BANDWIDTH, RATE = Type("time"), Type("bandwidth"), Type("rate")
SIZE, PERCENT = Type("size"), Type("percent")

SCALARS: dict[str, Type] = {t.name: t for t in (
    BOOL, INT, FLOAT, STRING, IPV4, PREFIX, MAC, PORT, ENDPOINT, NODE, RULE,
    TIME, BANDWIDTH, RATE, SIZE, PERCENT)}
GENERICS = ("list", "set", "range")

_DIM_TYPES = {Dim.TIME: TIME, Dim.BANDWIDTH: BANDWIDTH, Dim.RATE: RATE, Dim.SIZE: SIZE,
              Dim.PERCENT: PERCENT}
_TYPE_DIMS = {v: k for k, v in _DIM_TYPES.items()}

_EXAMPLES = {TIME: "a time such as 20ms", BANDWIDTH: "a bandwidth such as 12Mbps",
             RATE: "a packet rate such as 20kpps", SIZE: "a size such as 64KiB",
             PERCENT: "a percentage such as 10%", IPV4: "an IPv4 address such as 10.0.2.1",
             PREFIX: "a prefix such as 203.0.113.0/24", MAC: "a MAC address",
             PORT: "a port number 0..65535", ENDPOINT: "an endpoint of the topology",
             NODE: "a node of the topology", BOOL: "true or false", INT: "an integer",
             FLOAT: "a number", STRING: 'a string such as "text"',
             RULE: "allow(<predicate>) or deny(<predicate>)"}


def list_of(t: Type) -> Type:
    return Type("list", (t,))


def set_of(t: Type) -> Type:
    return Type("set", (t,))


def range_of(t: Type) -> Type:
    return Type("range", (t,))


def dim_type(dim: Dim) -> Type:
    return _DIM_TYPES[dim]


def type_dim(t: Type) -> Dim | None:
    return _TYPE_DIMS.get(t)


def is_quantity(t: Type) -> bool:
    return t in _TYPE_DIMS


def is_numeric(t: Type) -> bool:
    return t in (INT, FLOAT, PORT)


def describe(t: Type) -> str:
    """What a value of type ``t`` looks like, for hints."""
    if t in _EXAMPLES:
        return _EXAMPLES[t]
    if t.name in GENERICS:
        return f"a {t.name} of {describe(t.elem)}" if t.elem != ANY else f"a {t.name}"
    return str(t)


def assignable(src: Type, dst: Type) -> bool:
    """May a value of type ``src`` be used where ``dst`` is expected (with conversion)?"""
    if src == dst or dst == ANY or src == ANY:
        return True
    if (src, dst) in {(INT, FLOAT), (INT, PORT), (PORT, INT), (IPV4, PREFIX), (ENDPOINT, NODE)}:
        return True
    if src.name == dst.name and src.name in GENERICS:
        return assignable(src.elem, dst.elem)
    return False
