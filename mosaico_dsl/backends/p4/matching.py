"""Packet predicates → match keys and table entries (the classifier and ``Acl`` tables).

A predicate becomes a sum of products with :func:`ir.predicate.to_dnf`; each literal is a set
of integer intervals over its field (addresses and MACs are integers too). A negated literal
is the complement of its set *or* its header being absent, because
:func:`ir.predicate.evaluate` calls a comparison on an absent field false (so ``!=`` and
``not`` hold for it). Header validity is therefore a key of its own, matched ternary.

Address and MAC fields are matched ternary (an interval becomes its aligned prefix blocks);
integer and port fields are matched as ranges, which BMv2 supports directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from itertools import product

from ...ir.predicate import Cmp, Field, Literal, Predicate, fields_of, to_dnf
from ...ir.values import MacAddress, NodeRef, ValueRange, ValueSet
from .model import Key, Match

__all__ = ["HEADERS", "P4_FIELDS", "Cube", "Interval", "keys_for", "cubes", "cube_matches",
           "matches_for", "range_to_ternary", "unsupported_fields"]

Interval = tuple[int, int]

# The headers p4/mosaico/headers.p4 declares and the parser extracts, in parse order, and the
# width and print format of each std.net field there (a test checks this against the P4).
HEADERS = ("ethernet", "ipv4", "tcp", "udp")
P4_FIELDS: dict[str, tuple[int, str]] = {
    "ethernet.src": (48, "mac"), "ethernet.dst": (48, "mac"), "ethernet.ether_type": (16, "int"),
    "ipv4.src": (32, "ipv4"), "ipv4.dst": (32, "ipv4"), "ipv4.proto": (8, "int"),
    "ipv4.dscp": (6, "int"), "ipv4.ecn": (2, "int"), "ipv4.ttl": (8, "int"),
    "tcp.sport": (16, "int"), "tcp.dport": (16, "int"), "tcp.flags": (8, "int"),
    "udp.sport": (16, "int"), "udp.dport": (16, "int"),
}


def unsupported_fields(p: Predicate) -> tuple[Field, ...]:
    """Fields of ``p`` that the P4 parser does not extract (user-declared headers)."""
    return tuple(f for f in fields_of(p) if f.path not in P4_FIELDS)


def _field_order(path: str) -> tuple[int, int]:
    names = list(P4_FIELDS)
    return (HEADERS.index(path.split(".")[0]), names.index(path))


def valid_key(header: str) -> Key:
    return Key(f"{header}.$valid$", f"hdr.{header}.isValid()", "ternary", 1)


def field_key(path: str) -> Key:
    bits, fmt = P4_FIELDS[path]
    kind = "ternary" if fmt in ("ipv4", "mac") else "range"
    return Key(path, f"hdr.{path}", kind, bits, fmt)


def keys_for(predicates: Iterable[Predicate]) -> tuple[Key, ...]:
    """Validity and field keys covering every field the predicates read, in parse order."""
    paths = sorted({f.path for p in predicates for f in fields_of(p)}, key=_field_order)
    headers = sorted({p.split(".")[0] for p in paths}, key=HEADERS.index)
    keys: list[Key] = []
    for h in headers:
        keys.append(valid_key(h))
        keys.extend(field_key(p) for p in paths if p.split(".")[0] == h)
    return tuple(keys)


# --------------------------------------------------------------------------- intervals


def _merge(items: Iterable[Interval]) -> tuple[Interval, ...]:
    out: list[list[int]] = []
    for lo, hi in sorted(i for i in items if i[0] <= i[1]):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def _intersect(a: Sequence[Interval], b: Sequence[Interval]) -> tuple[Interval, ...]:
    return _merge((max(x[0], y[0]), min(x[1], y[1])) for x in a for y in b)


def _complement(a: Sequence[Interval], top: int) -> tuple[Interval, ...]:
    out, at = [], 0
    for lo, hi in _merge(a):
        if lo > at:
            out.append((at, lo - 1))
        at = hi + 1
    if at <= top:
        out.append((at, top))
    return tuple(out)


def _scalar(v: object) -> int:
    match v:
        case bool():
            return int(v)
        case int():
            return v
        case IPv4Address():
            return int(v)
        case MacAddress():
            return v.as_int
    raise TypeError(f"cannot match on {v!r}")


def _value_set(v: object) -> tuple[Interval, ...]:
    match v:
        case IPv4Network():
            return ((int(v.network_address), int(v.broadcast_address)),)
        case ValueRange(lo=lo, hi=hi):
            return ((_scalar(lo), _scalar(hi)),)
        case ValueSet() | tuple() | list():
            return _merge(i for item in v for i in _value_set(item))
        case NodeRef():
            raise TypeError(f"unresolved node reference {v} in a predicate")
    x = _scalar(v)
    return ((x, x),)


def literal_set(c: Cmp) -> tuple[Interval, ...]:
    """The field values for which ``c`` holds (``!=`` never reaches here: to_dnf negates)."""
    top = (1 << P4_FIELDS[c.field.path][0]) - 1
    match c.op:
        case "==" | "in":
            s = _value_set(c.value)
        case "<":
            s = ((0, _scalar(c.value) - 1),)
        case "<=":
            s = ((0, _scalar(c.value)),)
        case ">":
            s = ((_scalar(c.value) + 1, top),)
        case ">=":
            s = ((_scalar(c.value), top),)
        case _:
            raise ValueError(f"operator {c.op} cannot be matched")
    return _intersect(s, ((0, top),))


# --------------------------------------------------------------------------- cubes


@dataclass(frozen=True, slots=True)
class Cube:
    """A conjunction a single table entry family can express: header validity and, per
    field, the set of values allowed (a field absent from ``fields`` is unconstrained)."""

    valid: tuple[tuple[str, bool], ...]
    fields: tuple[tuple[str, tuple[Interval, ...]], ...]


def _alternatives(lit: Literal) -> list[tuple[str, bool, tuple[Interval, ...] | None]]:
    cmp, positive = lit
    header, path = cmp.field.header, cmp.field.path
    s = literal_set(cmp)
    if positive:
        return [(header, True, s)]
    top = (1 << P4_FIELDS[path][0]) - 1
    return [(header, False, None), (header, True, _complement(s, top))]


def cubes(p: Predicate) -> tuple[Cube, ...]:
    """The predicate as satisfiable cubes, clause order preserved (deterministic)."""
    out: list[Cube] = []
    for clause in to_dnf(p):
        for combo in product(*(_alternatives(lit) for lit in clause)):
            valid: dict[str, bool] = {}
            fields: dict[str, tuple[Interval, ...]] = {}
            ok = True
            for (header, is_valid, s), lit in zip(combo, clause, strict=True):
                if valid.setdefault(header, is_valid) != is_valid:
                    ok = False
                    break
                if s is not None:
                    path = lit[0].field.path
                    top = (1 << P4_FIELDS[path][0]) - 1
                    s = _intersect(fields.get(path, ((0, top),)), s)
                    if not s:
                        ok = False
                        break
                    fields[path] = s
            if not ok:
                continue
            # A transport header is only ever valid on top of IPv4 (the parser's order).
            if valid.get("ipv4") is False and (valid.get("tcp") or valid.get("udp")):
                continue
            if valid.get("tcp") and valid.get("udp"):
                continue
            cube = Cube(tuple(sorted(valid.items(), key=lambda kv: HEADERS.index(kv[0]))),
                        tuple(sorted(fields.items(), key=lambda kv: _field_order(kv[0]))))
            if cube not in out:
                out.append(cube)
    return tuple(out)


def range_to_ternary(lo: int, hi: int, bits: int) -> tuple[tuple[int, int], ...]:
    """The aligned power-of-two blocks covering ``lo..hi`` as (value, mask) pairs."""
    out: list[tuple[int, int]] = []
    full = (1 << bits) - 1
    while lo <= hi:
        size = lo & -lo if lo else 1 << bits
        while size > hi - lo + 1:
            size >>= 1
        out.append((lo, full & ~(size - 1)))
        lo += size
    return tuple(out)


def _pieces(key: Key, s: tuple[Interval, ...]) -> list[Match | None]:
    top = (1 << key.bits) - 1
    if s == ((0, top),):
        return [None]
    if key.kind == "range":
        return [Match(key, lo, high=hi) for lo, hi in s]
    out: list[Match | None] = []
    for lo, hi in s:
        for value, mask in range_to_ternary(lo, hi, key.bits):
            out.append(None if mask == 0 else Match(key, value, mask=mask))
    return out


def cube_matches(cube: Cube, keys: Sequence[Key]) -> list[tuple[Match, ...]]:
    """Every entry (tuple of matches, don't-cares omitted) that together express ``cube``."""
    valid = dict(cube.valid)
    fields = dict(cube.fields)
    per_key: list[list[Match | None]] = []
    for key in keys:
        if key.name.endswith(".$valid$"):
            header = key.name.split(".")[0]
            v = valid.get(header)
            per_key.append([None] if v is None else [Match(key, int(v), mask=1)])
        elif key.name in fields:
            per_key.append(_pieces(key, fields[key.name]))
        else:
            per_key.append([None])
    return [tuple(m for m in combo if m is not None) for combo in product(*per_key)]


def matches_for(p: Predicate, keys: Sequence[Key]) -> list[tuple[Match, ...]]:
    """All entries expressing predicate ``p`` over ``keys`` (which must cover its fields)."""
    out: list[tuple[Match, ...]] = []
    for cube in cubes(p):
        for m in cube_matches(cube, keys):
            if m not in out:
                out.append(m)
    return out
