"""A service's ``match`` as the flow rules SFC classifiers can express.

networking-sfc flow classifiers and OSM ``match-attributes`` take one protocol, one source
and destination prefix and one port range (OSM: one port) each — no negation, no ECN, DSCP
or TCP flags. A predicate becomes the union of such rules by expanding its DNF clauses;
what a rule cannot say is left out, so the rules *over*-approximate the match (steering a
few packets too many, never too few) and ``exact`` says whether they are exact. Steering
too much is safe: the VNF's nftables ruleset re-checks the exact match before acting.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from itertools import product
from typing import Any

from ...ir.predicate import Cmp, Predicate, to_dnf
from ...ir.values import ValueRange, ValueSet

__all__ = ["FlowRule", "Classification", "classify", "PROTOCOLS"]

PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}
_NAMES = {v: k for k, v in PROTOCOLS.items()}
# Beyond this many rules per clause, constraints are dropped (ports first) to stay usable.
_MAX_RULES = 64

Range = tuple[int, int]


@dataclass(frozen=True, slots=True)
class FlowRule:
    protocol: int | None
    source: str | None  # prefix
    destination: str | None
    source_ports: Range | None
    destination_ports: Range | None

    @property
    def protocol_name(self) -> str | None:
        return _NAMES.get(self.protocol) if self.protocol is not None else None


@dataclass(frozen=True, slots=True)
class Classification:
    rules: tuple[FlowRule, ...]
    exact: bool


def classify(p: Predicate) -> Classification:
    rules: list[FlowRule] = []
    exact = True
    for clause in to_dnf(p):
        got = _clause(clause)
        if got is None:
            continue  # contradictory clause: matches nothing
        clause_rules, clause_exact = got
        exact &= clause_exact
        for r in clause_rules:
            if r not in rules:
                rules.append(r)
    return Classification(tuple(rules), exact)


def _clause(clause) -> tuple[list[FlowRule], bool] | None:
    exact = True
    protos: set[int] | None = None
    fields: dict[str, list[Any]] = {}
    for cmp, positive in clause:
        if not positive:
            exact = False  # a negation is no classifier field (and holds without the header)
            continue
        header = cmp.field.header
        if header in ("tcp", "udp"):
            protos = _meet(protos, {PROTOCOLS[header]})
        path = cmp.field.path
        if path == "ipv4.proto":
            if cmp.op in ("==", "in"):
                protos = _meet(protos, set(_ints(cmp)))
            else:
                exact = False
            continue
        if path in ("ipv4.src", "ipv4.dst"):
            nets = _nets(cmp)
            if nets is None:
                exact = False
                continue
            fields[path] = _intersect_nets(fields.get(path), nets)
        elif path in ("tcp.sport", "udp.sport", "tcp.dport", "udp.dport"):
            key = "sport" if path.endswith("sport") else "dport"
            ranges = _ranges(cmp)
            if ranges is None:
                exact = False
                continue
            fields[key] = _intersect_ranges(fields.get(key), ranges)
        else:
            exact = False  # ECN, DSCP, TTL, flags, Ethernet: not expressible
    if protos is not None and not protos:
        return None
    if any(v == [] for v in fields.values()):
        return None
    proto_opts: list[int | None] = sorted(protos) if protos is not None else [None]
    if any(p not in _NAMES for p in proto_opts if p is not None):
        exact = False
    axes = [proto_opts, fields.get("ipv4.src", [None]), fields.get("ipv4.dst", [None]),
            fields.get("sport", [None]), fields.get("dport", [None])]
    for drop in (3, 4, 1, 2):  # shed constraints until the rule count is reasonable
        if _count(axes) <= _MAX_RULES:
            break
        axes[drop] = [None]
        exact = False
    rules = [FlowRule(pr, src, dst, sp, dp) for pr, src, dst, sp, dp in product(*axes)]
    return rules, exact


def _count(axes) -> int:
    n = 1
    for a in axes:
        n *= len(a)
    return n


def _meet(a: set[int] | None, b: set[int]) -> set[int]:
    return set(b) if a is None else a & b


def _values(cmp: Cmp) -> list[Any]:
    v = cmp.value
    if cmp.op in ("==", "in"):
        return list(v) if isinstance(v, (ValueSet, tuple, list)) else [v]
    return []


def _ints(cmp: Cmp) -> list[int]:
    out: list[int] = []
    for v in _values(cmp):
        if isinstance(v, ValueRange):
            out.extend(range(int(v.lo), int(v.hi) + 1))
        elif isinstance(v, int):
            out.append(v)
    return out


def _nets(cmp: Cmp) -> list[str] | None:
    vals = _values(cmp)
    if not vals or any(not isinstance(v, (IPv4Address, IPv4Network)) for v in vals):
        return None
    return [IPv4Network(v).with_prefixlen for v in vals]


def _intersect_nets(have: list[str] | None, new: list[str]) -> list[str]:
    if have is None:
        return new
    out = []
    for a in have:
        for b in new:
            na, nb = IPv4Network(a), IPv4Network(b)
            if na.subnet_of(nb):
                out.append(a)
            elif nb.subnet_of(na):
                out.append(b)
    return list(dict.fromkeys(out))


def _ranges(cmp: Cmp) -> list[Range] | None:
    if cmp.op in ("<", "<=", ">", ">="):
        v = int(cmp.value)
        return [{"<": (0, v - 1), "<=": (0, v), ">": (v + 1, 65535),
                 ">=": (v, 65535)}[cmp.op]]
    out: list[Range] = []
    for v in _values(cmp):
        if isinstance(v, ValueRange):
            out.append((int(v.lo), int(v.hi)))
        elif isinstance(v, int):
            out.append((v, v))
        else:
            return None
    merged: list[list[int]] = []
    for lo, hi in sorted(out):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged if lo <= hi]


def _intersect_ranges(have: list[Range] | None, new: list[Range]) -> list[Range]:
    if have is None:
        return new
    out = []
    for a in have:
        for b in new:
            lo, hi = max(a[0], b[0]), min(a[1], b[1])
            if lo <= hi:
                out.append((lo, hi))
    return out
