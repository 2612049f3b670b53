"""Packet predicates of the IR (``match`` clauses and ACL rules).

Fields are resolved against ``std.net`` headers, so every :class:`Field` knows its type and
bit width. Backends need predicates as sums of products — a P4 classifier or ACL table
entry, an nftables rule and a simulator check each handle one conjunction — so
:func:`to_dnf` is here, shared by all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from itertools import product
from typing import Any

from .values import ValueRange, ValueSet, format_value, value_to_json

__all__ = ["Field", "Cmp", "And", "Or", "Not", "Predicate", "TRUE", "FALSE", "Literal",
           "to_dnf", "evaluate", "fields_of", "decide"]


@dataclass(frozen=True, slots=True, order=True)
class Field:
    header: str
    name: str
    type: str  # ipv4 | port | int | mac
    bits: int

    @property
    def path(self) -> str:
        return f"{self.header}.{self.name}"

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True, slots=True)
class Cmp:
    """``field op value``. For ``in``, ``value`` is a ValueSet, ValueRange or tuple; an
    ``==`` against an ``IPv4Network`` means "inside the prefix"."""

    field: Field
    op: str
    value: Any

    def __str__(self) -> str:
        return f"{self.field} {self.op} {format_value(self.value)}"

    def to_json(self) -> dict:
        return {"field": self.field.path, "op": self.op, "value": value_to_json(self.value)}


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Predicate, ...]

    def __str__(self) -> str:
        return " and ".join(_paren(i) for i in self.items) if self.items else "true"

    def to_json(self) -> dict:
        return {"and": [i.to_json() for i in self.items]}


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Predicate, ...]

    def __str__(self) -> str:
        return " or ".join(_paren(i) for i in self.items) if self.items else "false"

    def to_json(self) -> dict:
        return {"or": [i.to_json() for i in self.items]}


@dataclass(frozen=True, slots=True)
class Not:
    item: Predicate

    def __str__(self) -> str:
        return f"not {_paren(self.item)}"

    def to_json(self) -> dict:
        return {"not": self.item.to_json()}


Predicate = Cmp | And | Or | Not
TRUE: Predicate = And(())
FALSE: Predicate = Or(())


def _paren(p: Predicate) -> str:
    return f"({p})" if isinstance(p, (And, Or)) and len(p.items) > 1 else str(p)


# A literal of a DNF clause: the comparison and whether it holds (True) or must not (False).
Literal = tuple[Cmp, bool]


def to_dnf(p: Predicate) -> tuple[tuple[Literal, ...], ...]:
    """Disjunctive normal form: a tuple of clauses, each a tuple of literals.

    ``!=`` becomes a negated ``==``; negation is pushed to the comparisons. ``()`` is
    false, ``((),)`` is true. Clause order follows the source, so output is deterministic.
    """
    return _dnf(p, True)


def _dnf(p: Predicate, positive: bool) -> tuple[tuple[Literal, ...], ...]:
    match p:
        case Cmp(op="!="):
            return (((Cmp(p.field, "==", p.value), not positive),),)
        case Cmp():
            return (((p, positive),),)
        case Not(item=i):
            return _dnf(i, not positive)
        case And(items=items) if positive:
            return _product([_dnf(i, True) for i in items])
        case Or(items=items) if not positive:
            return _product([_dnf(i, False) for i in items])
        case And(items=items):  # not (a and b) = not a or not b
            return tuple(c for i in items for c in _dnf(i, False))
        case Or(items=items):
            return tuple(c for i in items for c in _dnf(i, True))
    raise TypeError(f"not a predicate: {p!r}")


def _product(parts: list[tuple[tuple[Literal, ...], ...]]) -> tuple[tuple[Literal, ...], ...]:
    return tuple(tuple(lit for clause in combo for lit in clause) for combo in product(*parts))


def fields_of(p: Predicate) -> tuple[Field, ...]:
    """Every field the predicate reads, in first-use order."""
    seen: dict[Field, None] = {}

    def walk(q: Predicate) -> None:
        match q:
            case Cmp(field=f):
                seen.setdefault(f, None)
            case Not(item=i):
                walk(i)
            case And(items=items) | Or(items=items):
                for i in items:
                    walk(i)

    walk(p)
    return tuple(seen)


def _member(x: Any, v: Any) -> bool:
    if isinstance(v, IPv4Network):
        return isinstance(x, IPv4Address) and x in v
    if isinstance(v, (ValueSet, tuple)):
        return any(_member(x, i) for i in v)
    if isinstance(v, ValueRange):
        return x in v
    return x == v


def evaluate(p: Predicate, packet: Mapping[str, Any]) -> bool:
    """Does a packet (``{"ipv4.dst": IPv4Address(...), "tcp.dport": 443, ...}``) match?

    A comparison on a field the packet does not have (a UDP packet asked for ``tcp.dport``)
    is false, so ``tcp.dport != 80`` — which means ``not tcp.dport == 80`` — holds for it;
    the P4 classifier matches header validity to give the same answer.
    """
    match p:
        case Cmp(field=f, op=op, value=v):
            if f.path not in packet:
                return op == "!="
            x = packet[f.path]
            match op:
                case "==" | "in":
                    return _member(x, v)
                case "!=":
                    return not _member(x, v)
                case "<":
                    return x < v
                case "<=":
                    return x <= v
                case ">":
                    return x > v
                case ">=":
                    return x >= v
            raise ValueError(f"unknown operator {op}")
        case And(items=items):
            return all(evaluate(i, packet) for i in items)
        case Or(items=items):
            return any(evaluate(i, packet) for i in items)
        case Not(item=i):
            return not evaluate(i, packet)
    raise TypeError(f"not a predicate: {p!r}")


def decide(p: Predicate, known: Mapping[str, Any]) -> bool | None:
    """Three-valued :func:`evaluate`: True or False when the fields in ``known`` settle
    ``p`` whatever the other fields hold, None when they do not."""
    match p:
        case Cmp(field=f):
            return evaluate(p, {f.path: known[f.path]}) if f.path in known else None
        case Not(item=i):
            v = decide(i, known)
            return None if v is None else not v
        case And(items=items) | Or(items=items):
            decisive = isinstance(p, Or)  # the value that settles the whole
            values = [decide(i, known) for i in items]
            if decisive in values:
                return decisive
            return None if None in values else not decisive
    raise TypeError(f"not a predicate: {p!r}")
