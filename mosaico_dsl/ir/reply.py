"""Replies: the traffic that returns to a service's sources (``reply forward``).

A service names one direction of traffic. Its *replies* are the packets of the reverse
5-tuple — from the destination back to a source, addresses and ports swapped, same
protocol. Every data plane derives them from here, so they agree on what a reply is:

* stateless targets (the P4 classifier) match :func:`reply_match` — the ``match`` reversed
  and restricted to packets from the destination to one source;
* stateful targets (nftables) accept the reply direction of connections the service
  opened (conntrack), which is the same set, narrowed to connections that really exist.

Only the 5-tuple is reversed: comparisons on other fields (ECN, DSCP, TTL, TCP flags,
Ethernet) are left out, because a reply carries its own (an ACK of ECT(1) data is often
Not-ECT; the answer to a SYN is a SYN-ACK). A comparison on a TCP or UDP field still says
the reply is TCP or UDP (``ipv4.proto``). Left-out comparisons only widen the set.
"""

from __future__ import annotations

from dataclasses import replace

from . import _ir as I
from .predicate import FALSE, And, Cmp, Field, Literal, Not, Or, Predicate, to_dnf
from .values import canonical_set

__all__ = ["SWAPPED", "reverse", "reply_match"]

# Each 5-tuple field and the field its value moves to in a reply.
SWAPPED: dict[str, str] = {
    "ipv4.src": "ipv4.dst", "ipv4.dst": "ipv4.src",
    "tcp.sport": "tcp.dport", "tcp.dport": "tcp.sport",
    "udp.sport": "udp.dport", "udp.dport": "udp.sport",
}
_PROTOCOLS = {"tcp": 6, "udp": 17}
_PROTO = Field("ipv4", "proto", "int", 8)
_SRC = Field("ipv4", "src", "ipv4", 32)
_DST = Field("ipv4", "dst", "ipv4", 32)


def _literal(cmp: Cmp, positive: bool) -> Predicate | None:
    path = cmp.field.path
    if path in SWAPPED:
        header, _, name = SWAPPED[path].partition(".")
        out: Predicate = Cmp(replace(cmp.field, header=header, name=name), cmp.op, cmp.value)
    elif path == _PROTO.path:
        out = cmp
    elif positive and cmp.field.header in _PROTOCOLS:
        return Cmp(_PROTO, "==", _PROTOCOLS[cmp.field.header])
    else:
        return None  # not part of the 5-tuple: a reply carries its own value
    return out if positive else Not(out)


def _clause(clause: tuple[Literal, ...]) -> Predicate:
    items = tuple(dict.fromkeys(x for lit in clause if (x := _literal(*lit)) is not None))
    return items[0] if len(items) == 1 else And(items)


def reverse(p: Predicate) -> Predicate:
    """The packets whose 5-tuple reversed some packet ``p`` matches could have."""
    clauses = tuple(dict.fromkeys(_clause(c) for c in to_dnf(p)))
    if not clauses:
        return FALSE
    return clauses[0] if len(clauses) == 1 else Or(clauses)


def reply_match(service: I.Service, topology: I.Topology,
                sources: tuple[str, ...] | None = None) -> Predicate:
    """The replies of ``service`` to ``sources`` (default: all of them): its match
    reversed, from its destination (the only address its traffic reaches) to a source."""
    dest = topology.node(service.destination)
    assert isinstance(dest, I.Endpoint)
    addresses = []
    for name in service.sources if sources is None else sources:
        node = topology.node(name)
        assert isinstance(node, I.Endpoint)
        addresses.append(node.ip)
    to = (Cmp(_DST, "==", addresses[0]) if len(addresses) == 1
          else Cmp(_DST, "in", canonical_set(addresses)))
    return And((Cmp(_SRC, "==", dest.ip), to, reverse(service.match)))
