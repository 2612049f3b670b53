"""A reference matcher for P4Runtime table entries, as BMv2 evaluates them: the entry with
the highest priority among those whose every field matches wins; absent fields are
don't-care; an invalid header's fields read as 0."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address
from typing import Any

from mosaico_dsl.backends.p4.matching import HEADERS, P4_FIELDS
from mosaico_dsl.backends.p4.model import Key
from mosaico_dsl.ir.values import MacAddress
from mosaico_dsl.p4proto import p4r as R


def key_values(packet: Mapping[str, Any], keys: Sequence[Key],
               extra: Mapping[str, int] | None = None) -> list[int]:
    """The lookup key of a packet given as ``ir.predicate.evaluate`` takes it."""
    present = {h for h in HEADERS if any(k.startswith(h + ".") for k in packet)}
    out = []
    for k in keys:
        if extra and k.name in extra:
            out.append(extra[k.name])
        elif k.name.endswith(".$valid$"):
            out.append(int(k.name.split(".")[0] in present))
        else:
            out.append(as_int(packet.get(k.name, 0)))
    return out


def as_int(v: Any) -> int:
    if isinstance(v, IPv4Address):
        return int(v)
    if isinstance(v, MacAddress):
        return v.as_int
    return int(v)


def _field_ok(fm: R.FieldMatch, value: int) -> bool:
    which = fm.WhichOneof("field_match_type")
    if which == "exact":
        return value == int.from_bytes(fm.exact.value, "big")
    if which == "ternary":
        mask = int.from_bytes(fm.ternary.mask, "big")
        return value & mask == int.from_bytes(fm.ternary.value, "big") & mask
    if which == "lpm":
        return fm.lpm.prefix_len == 0 or \
            value >> (32 - fm.lpm.prefix_len) == int.from_bytes(fm.lpm.value, "big") >> (
                32 - fm.lpm.prefix_len)
    if which == "range":
        return int.from_bytes(fm.range.low, "big") <= value <= \
            int.from_bytes(fm.range.high, "big")
    raise ValueError(which)


def lookup(entries: Sequence[R.TableEntry], values: Sequence[int]) -> R.TableEntry | None:
    best = None
    for e in entries:
        if all(_field_ok(fm, values[fm.field_id - 1]) for fm in e.match):
            if best is None or e.priority > best.priority:
                best = e
    return best


def field_bits(path: str) -> int:
    return P4_FIELDS[path][0]
