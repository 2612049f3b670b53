"""nftables rulesets that implement the stdlib functions on Linux.

Python decides *what* each ruleset contains — the clauses of a predicate in disjunctive
normal form (:func:`~mosaico_dsl.ir.predicate.to_dnf`), set elements merged so nft accepts
them, token-bucket rates in units nft can express, one named counter per outcome — and the
templates in ``codegen/vnf/nftables/`` write it in nft syntax.

Structure of every ruleset (one ``table ip``; reloading the file replaces it atomically):

* a ``forward`` base chain whose rules classify service traffic and ``goto`` its chain, so
  a packet is handled by the first service it matches (the P4 classifier's semantics);
* one chain per function; a function that lets a packet through ``return``s, so the
  functions of one visit run in chain order from a sequence chain;
* in the local target only, a ``prerouting`` chain that marks service traffic (and
  replies) for policy routing (see :mod:`.localplan`);
* in the local target's stand-in for a P4 switch only, the switch's semantics: the
  replies of services with ``reply forward`` are accepted *statefully* — the dispatch rule
  marks the connection (``ct mark``) and the reply direction of marked connections
  (``ct state established,related``) is accepted — and everything else is counted and
  dropped, as the P4 classifier drops what it does not classify.

Named counters are the runtime's window into the data plane (``mosaico status``): every
function declares its counters with what they count.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from ipaddress import IPv4Address, IPv4Network, collapse_addresses
from math import ceil
from typing import Any

from ...ir import _ir as I
from ...ir.predicate import Cmp, Predicate, to_dnf
from ...ir.values import AclRule, MacAddress, NodeRef, ValueRange, ValueSet
from ._templates import render

__all__ = [
    "NftValue", "Match", "Clause", "Counter", "PrefixFilter", "RateLimiter", "AclClauseRule",
    "AclParams", "MirrorParams", "NftFunction", "Dispatch", "Sequence", "Steer", "Ruleset",
    "Unsupported", "REPLY_MARK", "clauses", "function_rules", "render_ruleset",
]

# Transport headers: a comparison on one of their fields is false for packets without the
# header (``ir.predicate.evaluate``), so a negated comparison also holds for those packets.
_L4 = ("tcp", "udp")
# A per-source rate-limit bucket or SYN counter is forgotten after this long without packets.
_BUCKET_TIMEOUT_S = 60
# The conntrack mark of connections whose replies are forwarded back (``reply forward``).
REPLY_MARK = 0x1
# nft ``limit`` units, in seconds (nft has no sub-second unit).
_UNITS = (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400))


class Unsupported(Exception):
    """A function the Linux target has no implementation for (the message says which)."""


@dataclass(frozen=True, slots=True)
class NftValue:
    """A right-hand side: ``items`` are ``(low, high)`` texts (``high`` None for a single
    value); ``is_set`` renders them as an anonymous set."""

    items: tuple[tuple[str, str | None], ...]
    is_set: bool


@dataclass(frozen=True, slots=True)
class Match:
    field: str  # a packet field path (``ipv4.src``) or ``meta.l4proto``
    op: str  # == != < <= > >=
    value: NftValue


Clause = tuple[Match, ...]


@dataclass(frozen=True, slots=True)
class Counter:
    name: str
    instance: str
    meaning: str  # dropped | passed | mirrored | rule N: allow|deny | default: allow|deny

    def to_json(self) -> dict:
        return {"name": self.name, "instance": self.instance, "meaning": self.meaning}


@dataclass(frozen=True, slots=True)
class PrefixFilter:
    set_name: str
    size: int
    elements: tuple[str, ...]
    drop_if_member: bool  # Blocklist: drop members; Allowlist: drop non-members


@dataclass(frozen=True, slots=True)
class RateLimiter:
    rate: int
    unit: str
    burst: int
    key: str | None  # None: one bucket for all; else the field keying the buckets
    object_name: str  # named limit (key None) or dynamic set (keyed)
    size: int
    timeout_s: int
    syn_only: bool


@dataclass(frozen=True, slots=True)
class AclClauseRule:
    clause: Clause
    counter: str
    drop: bool


@dataclass(frozen=True, slots=True)
class AclParams:
    rules: tuple[AclClauseRule, ...]
    default_counter: str
    default_drop: bool


@dataclass(frozen=True, slots=True)
class MirrorParams:
    address: str


@dataclass(frozen=True, slots=True)
class NftFunction:
    """One function instance as an nft chain (plus the sets and objects it needs)."""

    instance: str
    function: str
    chain: str
    kind: str  # prefix | ratelimit | acl | mirror | pass
    counters: tuple[Counter, ...]
    params: PrefixFilter | RateLimiter | AclParams | MirrorParams | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Dispatch:
    """``iif`` (or any) and one of ``clauses`` → ``goto target``, marking the connection
    with ``ct_mark`` first when there is one."""

    comment: str
    iif: str | None
    clauses: tuple[Clause, ...]
    target: str
    ct_mark: int | None = None


@dataclass(frozen=True, slots=True)
class Sequence:
    name: str
    jumps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Steer:
    comment: str
    iif: str
    clauses: tuple[Clause, ...]
    mark: int


@dataclass(frozen=True, slots=True)
class Ruleset:
    """``replies``: accept (and count) the reply direction of connections marked
    :data:`REPLY_MARK`; ``unclassified``: count and drop what nothing else accepted."""

    table: str
    title: str
    notes: tuple[str, ...]
    functions: tuple[NftFunction, ...]
    sequences: tuple[Sequence, ...]
    dispatch: tuple[Dispatch, ...]
    steering: tuple[Steer, ...] = ()
    replies: Counter | None = None
    unclassified: Counter | None = None

    @property
    def counters(self) -> tuple[Counter, ...]:
        return tuple(c for f in self.functions for c in f.counters)

    @property
    def reply_mark(self) -> int:
        return REPLY_MARK


# --------------------------------------------------------------------------- predicates


def clauses(p: Predicate) -> tuple[Clause, ...]:
    """``p`` as nft rule matches: one clause per rule, any clause matching means ``p``.

    A negated comparison on a transport field also holds for packets without that header,
    so it splits into "not this protocol" or "the field differs".
    """
    out: list[Clause] = []
    for clause in to_dnf(p):
        alternatives: list[list[Match]] = [[]]
        for cmp, positive in clause:
            options = _literal(cmp, positive)
            alternatives = [a + o for a in alternatives for o in options]
        for a in alternatives:
            c = tuple(dict.fromkeys(a))
            if c not in out:
                out.append(c)
    return tuple(out)


def _literal(cmp: Cmp, positive: bool) -> list[list[Match]]:
    op, value = _op_value(cmp)
    if positive:
        return [[Match(cmp.field.path, op, value)]]
    neg = Match(cmp.field.path, _NEGATE[op], value)
    if cmp.field.header in _L4:
        other = Match("meta.l4proto", "!=", NftValue(((cmp.field.header, None),), False))
        return [[other], [neg]]
    return [[neg]]


_NEGATE = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _op_value(cmp: Cmp) -> tuple[str, NftValue]:
    v = cmp.value
    if cmp.op in ("==", "in"):
        if isinstance(v, (ValueSet, tuple, list)):
            return "==", _set(list(v), cmp.field.type)
        if isinstance(v, ValueRange):
            return "==", NftValue((_range(v),), False)
        return "==", NftValue(((_scalar(v), None),), False)
    if cmp.op == "!=":
        return "!=", _op_value(Cmp(cmp.field, "==", v))[1]
    return cmp.op, NftValue(((_scalar(v), None),), False)


def _scalar(v: Any) -> str:
    match v:
        case bool():
            return str(int(v))
        case int():
            return str(v)
        case IPv4Network():
            return str(v.network_address) if v.prefixlen == 32 else v.with_prefixlen
        case IPv4Address() | MacAddress():
            return str(v)
        case NodeRef():
            raise Unsupported(f"node reference {v} was not resolved to an address")
    raise Unsupported(f"cannot match on {v!r}")


def _range(r: ValueRange) -> tuple[str, str]:
    return _scalar(r.lo), _scalar(r.hi)


def _set(items: list[Any], ftype: str) -> NftValue:
    """Anonymous sets may not hold overlapping intervals: merge them first."""
    if ftype == "ipv4":
        nets = [IPv4Network(i) if isinstance(i, IPv4Address) else i for i in items
                if isinstance(i, (IPv4Address, IPv4Network))]
        ranges = [i for i in items if isinstance(i, ValueRange)]
        merged = [(_scalar(n), None) for n in collapse_addresses(nets)]
        merged += [_range(r) for r in ranges]
        return NftValue(tuple(merged), True)
    ints: list[tuple[int, int]] = []
    others: list[tuple[str, str | None]] = []
    for i in items:
        if isinstance(i, ValueRange) and isinstance(i.lo, int):
            ints.append((i.lo, i.hi))
        elif isinstance(i, int) and not isinstance(i, bool):
            ints.append((i, i))
        else:
            others.append((_scalar(i), None))
    spans: list[list[int]] = []
    for lo, hi in sorted(ints):
        if spans and lo <= spans[-1][1] + 1:
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    out = [(str(lo), None if lo == hi else str(hi)) for lo, hi in spans]
    return NftValue(tuple(out + others), True)


# --------------------------------------------------------------------------- functions

def chain_name(fi: I.FunctionInstance) -> str:
    return f"{fi.service}_{fi.index}_{fi.name.lower()}"


def function_rules(fi: I.FunctionInstance, topology: I.Topology) -> NftFunction:
    """The nft realisation of ``fi``; raises :class:`Unsupported` for unknown functions."""
    chain = chain_name(fi)
    args = fi.args

    def counter(what: str) -> Counter:
        return Counter(f"{chain}_{what}", fi.id, what)

    match fi.function:
        case "std.security.Blocklist" | "std.security.Allowlist":
            nets = collapse_addresses(IPv4Network(p) for p in args["prefixes"])
            params = PrefixFilter(f"{chain}_prefixes", int(args["size"]),
                                  tuple(_scalar(n) for n in nets),
                                  fi.name == "Blocklist")
            return NftFunction(fi.id, fi.function, chain, "prefix",
                               (counter("dropped"), counter("passed")), params)
        case "std.security.RateLimit":
            per_source = args["per"] == "source"
            rate, unit, note = _limit_rate(Fraction(args["rate"].pps))
            params = RateLimiter(rate, unit, int(args["burst"]),
                                 "ipv4.src" if per_source else None,
                                 f"{chain}_{'buckets' if per_source else 'limit'}",
                                 int(args["buckets"]), _BUCKET_TIMEOUT_S, False)
            return NftFunction(fi.id, fi.function, chain, "ratelimit",
                               (counter("dropped"), counter("passed")), params,
                               (note,) if note else ())
        case "std.security.SynGuard":
            interval_ns = args["interval"].ns
            max_syns = int(args["max_syns"])
            rate, unit, note = _limit_rate(Fraction(max_syns * 10**9, interval_ns))
            params = RateLimiter(rate, unit, max_syns, "ipv4.dst", f"{chain}_destinations",
                                 int(args["buckets"]),
                                 max(_BUCKET_TIMEOUT_S, ceil(2 * interval_ns / 10**9)), True)
            notes = (f"{max_syns} SYNs per {args['interval']} per destination as a token "
                     f"bucket: {rate}/{unit}, burst {max_syns}",) + ((note,) if note else ())
            return NftFunction(fi.id, fi.function, chain, "ratelimit",
                               (counter("dropped"), counter("passed")), params, notes)
        case "std.security.Acl":
            rules: list[AclClauseRule] = []
            counters: list[Counter] = []
            for n, rule in enumerate(args["rules"]):
                assert isinstance(rule, AclRule)
                name = f"{chain}_rule{n}"
                counters.append(Counter(name, fi.id, f"rule {n}: {rule.action}"))
                for c in clauses(rule.predicate):
                    rules.append(AclClauseRule(c, name, rule.action == "deny"))
            counters.append(Counter(f"{chain}_default", fi.id, f"default: {args['default']}"))
            params = AclParams(tuple(rules), f"{chain}_default", args["default"] == "deny")
            return NftFunction(fi.id, fi.function, chain, "acl", tuple(counters), params)
        case "std.fwd.Mirror":
            to = args["to"]
            node = topology.node(to.name if isinstance(to, NodeRef) else str(to))
            if not isinstance(node, I.Endpoint):
                raise Unsupported(f"Mirror(to: {node.name}) needs an endpoint with an address")
            return NftFunction(fi.id, fi.function, chain, "mirror", (counter("mirrored"),),
                               MirrorParams(str(node.ip)))
        case "std.fwd.Forward" | "std.l4s.DualQ" | "std.l4s.Fifo":
            # Forwarding is the routing table's job, queueing is tc's (tc.sh); the chain
            # only counts what passes so `status` sees traffic at every step.
            return NftFunction(fi.id, fi.function, chain, "pass", (counter("passed"),), None)
    raise Unsupported(f"{fi.function} has no Linux (nftables/tc) implementation")


def _limit_rate(per_second: Fraction) -> tuple[int, str, str | None]:
    """An nft ``limit`` rate: the smallest unit in which the rate is whole."""
    for unit, seconds in _UNITS:
        value = per_second * seconds
        if value.denominator == 1 and value > 0:
            return int(value), unit, None
    value = max(1, ceil(per_second * 86400))
    return value, "day", f"rate {float(per_second):g}/s rounded up to {value}/day"


def render_ruleset(rs: Ruleset) -> str:
    return render("nftables/ruleset.nft.j2", rs=rs)


def vnf_ruleset(fi: I.FunctionInstance, service: I.Service, topology: I.Topology,
                name: str) -> Ruleset:
    """The ruleset of the VNF ``name`` running ``fi`` (OpenStack VM or local namespace)."""
    fn = function_rules(fi, topology)
    return Ruleset(
        table=f"mosaico_{name.replace('-', '_')}",
        title=f"VNF {name}: {fi.function} of service {service.name}",
        notes=(f"service {service.name} matches: {service.match}",),
        functions=(fn,),
        sequences=(),
        dispatch=(Dispatch(f"service {service.name}", None, clauses(service.match), fn.chain),),
    )
