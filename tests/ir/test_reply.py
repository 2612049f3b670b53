"""Replies (``ir.reply``): every reply of matched traffic is matched by its reply predicate,
and the reverse keeps exactly the 5-tuple."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mosaico_dsl import compiler
from mosaico_dsl.ir.predicate import And, Cmp, Field, Not, Or, evaluate
from mosaico_dsl.ir.reply import reply_match, reverse
from mosaico_dsl.ir.values import ValueRange, canonical_set
from mosaico_dsl.place import Route, Visit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ADDRESSES = [IPv4Address(a) for a in ("10.0.0.1", "10.0.0.2", "10.0.2.1", "192.0.2.7")]
FIELDS = {  # path -> (type, bits, values drawn for packets and predicates)
    "ipv4.src": ("ipv4", 32, ADDRESSES), "ipv4.dst": ("ipv4", 32, ADDRESSES),
    "ipv4.proto": ("int", 8, [6, 17, 1]), "ipv4.ecn": ("int", 2, [0, 1, 2, 3]),
    "ipv4.ttl": ("int", 8, [1, 2, 64]), "ipv4.dscp": ("int", 6, [0, 8, 46]),
    "tcp.sport": ("port", 16, [80, 443, 40000]), "tcp.dport": ("port", 16, [80, 443, 40000]),
    "tcp.flags": ("int", 8, [0x02, 0x10, 0x12]),
    "udp.sport": ("port", 16, [53, 5000]), "udp.dport": ("port", 16, [53, 5000]),
}


def _field(path: str) -> Field:
    header, name = path.split(".")
    return Field(header, name, FIELDS[path][0], FIELDS[path][1])


@st.composite
def comparisons(draw):
    path = draw(st.sampled_from(sorted(FIELDS)))
    kind, _, values = FIELDS[path]
    if kind == "ipv4":
        op = draw(st.sampled_from(["==", "!=", "in"]))
        if op == "in":
            return Cmp(_field(path), op, canonical_set(draw(st.lists(
                st.sampled_from(values), min_size=1, max_size=3))))
        return Cmp(_field(path), op, draw(st.sampled_from(values)))
    op = draw(st.sampled_from(["==", "!=", "<", ">=", "in"]))
    if op == "in":
        lo = draw(st.sampled_from(values))
        return Cmp(_field(path), op, canonical_set([ValueRange(lo, lo + draw(st.integers(0, 5))),
                                                    draw(st.sampled_from(values))]))
    return Cmp(_field(path), op, draw(st.sampled_from(values)))


predicates = st.recursive(
    comparisons(),
    lambda inner: st.one_of(st.lists(inner, min_size=2, max_size=3).map(tuple).map(And),
                            st.lists(inner, min_size=2, max_size=3).map(tuple).map(Or),
                            inner.map(Not)),
    max_leaves=6)


@st.composite
def packets(draw):
    """A packet and its reply: the 5-tuple reversed, every other field its own."""
    l4 = draw(st.sampled_from(["tcp", "udp", None]))
    pkt = {p: draw(st.sampled_from(v)) for p, (_, _, v) in FIELDS.items()
           if p.startswith("ipv4.")}
    reply = {p: draw(st.sampled_from(v)) for p, (_, _, v) in FIELDS.items()
             if p.startswith("ipv4.")}
    pkt["ipv4.proto"] = reply["ipv4.proto"] = {"tcp": 6, "udp": 17, None: 1}[l4]
    reply["ipv4.src"], reply["ipv4.dst"] = pkt["ipv4.dst"], pkt["ipv4.src"]
    if l4:
        for p in (pkt, reply):
            p.update({f: draw(st.sampled_from(v)) for f, (_, _, v) in FIELDS.items()
                      if f.startswith(l4 + ".")})
        reply[f"{l4}.sport"], reply[f"{l4}.dport"] = pkt[f"{l4}.dport"], pkt[f"{l4}.sport"]
    return pkt, reply


@settings(max_examples=400, deadline=None)
@given(predicates, packets())
def test_every_reply_of_matched_traffic_matches_the_reverse(match, pair):
    pkt, reply = pair
    if evaluate(match, pkt):
        assert evaluate(reverse(match), reply), (str(match), str(reverse(match)), pkt, reply)


def test_reverse_keeps_the_5_tuple_and_only_it():
    dst, dport = Cmp(_field("ipv4.dst"), "==", ADDRESSES[2]), \
        Cmp(_field("tcp.dport"), "in", canonical_set([80, 443]))
    assert str(reverse(And((dst, dport)))) == "ipv4.src == 10.0.2.1 and tcp.sport in {80, 443}"
    # ECN and flags are the reply's own; a TCP field still says the reply is TCP.
    syn = And((dst, Cmp(_field("tcp.flags"), "==", 2), Cmp(_field("ipv4.ecn"), "==", 1)))
    assert str(reverse(syn)) == "ipv4.src == 10.0.2.1 and ipv4.proto == 6"
    # A negated comparison on a transport field holds without the header: it says nothing
    # about the protocol — and a swapped port keeps its negation.
    assert str(reverse(Not(Cmp(_field("tcp.flags"), "==", 2)))) == "true"
    assert str(reverse(Not(Cmp(_field("udp.dport"), "==", 53)))) == "not udp.sport == 53"


def test_reply_match_runs_from_the_destination_to_the_sources():
    program = compiler.check(EXAMPLES.joinpath("guarded_edge.mosaico").read_text())
    svc = program.service("admin")
    topo = program.topology(svc.topology)
    assert str(reply_match(svc, topo, ("remote",))).startswith(
        "ipv4.src == 10.3.0.5 and ipv4.dst == 10.2.0.10 and ")
    assert "ipv4.dst in {10.1.0.10, 10.2.0.10}" in str(reply_match(svc, topo))


def test_reply_path_is_the_route_reversed_without_its_loops():
    route = Route("s", "client", tuple(Visit(n) for n in (
        "client", "s1", "nfvi1", "s1", "s2", "h", "s2", "server")))
    assert route.reply_nodes == ("server", "s2", "s1", "client")
    straight = Route("s", "client", tuple(Visit(n) for n in ("client", "s1", "server")))
    assert straight.reply_nodes == ("server", "s1", "client")
