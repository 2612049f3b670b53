"""Predicates → nft clauses and SFC flow rules, checked against ``ir.predicate.evaluate``.

An oracle in this file gives nft's meaning to the generated matches (a match on a header
the packet lacks is false); hypothesis then checks, on random predicates and packets, that
the nft clauses mean exactly the predicate and that the flow rules cover it (exactly, when
they say so).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st

from mosaico_dsl.backends.vnf.classifier import FlowRule, classify
from mosaico_dsl.backends.vnf.nftables import Match, clauses
from mosaico_dsl.ir.predicate import FALSE, TRUE, And, Cmp, Field, Not, Or, evaluate
from mosaico_dsl.ir.values import ValueRange, canonical_set

SRC = Field("ipv4", "src", "ipv4", 32)
DST = Field("ipv4", "dst", "ipv4", 32)
PROTO = Field("ipv4", "proto", "int", 8)
ECN = Field("ipv4", "ecn", "int", 2)
TCP_D = Field("tcp", "dport", "port", 16)
TCP_S = Field("tcp", "sport", "port", 16)
UDP_D = Field("udp", "dport", "port", 16)
FLAGS = Field("tcp", "flags", "int", 8)

NETS = [IPv4Network(n) for n in ("10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32", "192.0.2.0/24")]
ADDRS = [IPv4Address(a) for a in ("10.1.2.3", "10.9.9.9", "192.0.2.7", "203.0.113.1")]
PORTS = [22, 53, 80, 443, 1023, 1024, 8080]

addr_value = st.sampled_from(NETS + ADDRS)
port = st.sampled_from(PORTS)
port_item = port | st.tuples(port, port).map(lambda t: ValueRange(min(t), max(t)))


def cmp_for(f: Field):
    if f.type == "ipv4":
        return st.one_of(
            addr_value.map(lambda v: Cmp(f, "==", v)),
            addr_value.map(lambda v: Cmp(f, "!=", v)),
            st.lists(addr_value, min_size=1, max_size=3).map(
                lambda vs: Cmp(f, "in", canonical_set(vs))))
    values = {PROTO: st.sampled_from([1, 6, 17]), ECN: st.integers(0, 3),
              FLAGS: st.sampled_from([2, 16, 18, 41])}.get(f, port)
    return st.one_of(
        st.tuples(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), values).map(
            lambda t: Cmp(f, t[0], t[1])),
        st.lists(port_item if f.type == "port" else values, min_size=1, max_size=3).map(
            lambda vs: Cmp(f, "in", canonical_set(vs))))


leaf = st.sampled_from([SRC, DST, PROTO, ECN, TCP_D, TCP_S, UDP_D, FLAGS]).flatmap(cmp_for)
predicates = st.recursive(
    leaf | st.just(TRUE) | st.just(FALSE),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: Or(tuple(xs))),
        inner.map(Not)),
    max_leaves=6)


@st.composite
def packets(draw):
    proto = draw(st.sampled_from([1, 6, 17]))
    pkt = {"ipv4.src": draw(st.sampled_from(ADDRS)), "ipv4.dst": draw(st.sampled_from(ADDRS)),
           "ipv4.proto": proto, "ipv4.ecn": draw(st.integers(0, 3))}
    if proto == 6:
        pkt |= {"tcp.sport": draw(port), "tcp.dport": draw(port),
                "tcp.flags": draw(st.sampled_from([2, 16, 18, 41]))}
    elif proto == 17:
        pkt |= {"udp.sport": draw(port), "udp.dport": draw(port)}
    return pkt


# --------------------------------------------------------------------------- the oracles

_L4 = {1: "icmp", 6: "tcp", 17: "udp"}


def _item(text: str):
    try:
        return int(text)
    except ValueError:
        return IPv4Network(text)


def _in(x, lo: str, hi: str | None) -> bool:
    a = _item(lo)
    if isinstance(a, IPv4Network):
        return x in a
    return a <= x <= (_item(hi) if hi is not None else a)


def nft_match(m: Match, pkt: dict) -> bool:
    if m.field == "meta.l4proto":
        actual = _L4[pkt["ipv4.proto"]]
        (want, _), = m.value.items
        return (actual == want) == (m.op == "==")
    if m.field not in pkt:
        return False  # nft matches a header field only when the header is there
    x = pkt[m.field]
    if m.op in ("==", "!="):
        member = any(_in(x, lo, hi) for lo, hi in m.value.items)
        return member == (m.op == "==")
    (lo, _), = m.value.items
    y = _item(lo)
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[m.op]


def rule_match(r: FlowRule, pkt: dict) -> bool:
    if r.protocol is not None and pkt["ipv4.proto"] != r.protocol:
        return False
    if r.source is not None and pkt["ipv4.src"] not in IPv4Network(r.source):
        return False
    if r.destination is not None and pkt["ipv4.dst"] not in IPv4Network(r.destination):
        return False
    l4 = _L4[pkt["ipv4.proto"]]
    for key, rng in (("sport", r.source_ports), ("dport", r.destination_ports)):
        if rng is not None:
            value = pkt.get(f"{l4}.{key}")
            if value is None or not rng[0] <= value <= rng[1]:
                return False
    return True


@settings(max_examples=400, deadline=None)
@given(predicates, st.lists(packets(), min_size=1, max_size=8))
def test_nft_clauses_mean_the_predicate(p, pkts) -> None:
    cs = clauses(p)
    for pkt in pkts:
        assert evaluate(p, pkt) == any(all(nft_match(m, pkt) for m in c) for c in cs), (
            str(p), pkt, cs)


@settings(max_examples=400, deadline=None)
@given(predicates, st.lists(packets(), min_size=1, max_size=8))
def test_flow_rules_cover_the_predicate(p, pkts) -> None:
    cls = classify(p)
    for pkt in pkts:
        covered = any(rule_match(r, pkt) for r in cls.rules)
        if evaluate(p, pkt):
            assert covered, (str(p), pkt, cls)
        elif cls.exact:
            assert not covered, (str(p), pkt, cls)


def test_negation_on_a_transport_field_also_holds_without_that_header() -> None:
    (a, b) = clauses(Not(Cmp(TCP_D, "==", 80)))
    assert [(m.field, m.op) for m in a] == [("meta.l4proto", "!=")]
    assert [(m.field, m.op) for m in b] == [("tcp.dport", "!=")]


def test_overlapping_set_items_are_merged() -> None:
    (c,), = [clauses(Cmp(DST, "in", canonical_set([NETS[0], NETS[1], ADDRS[0]])))]
    assert c[0].value.items == (("10.0.0.0/8", None),)
    (c,), = [clauses(Cmp(TCP_D, "in", canonical_set([ValueRange(80, 90), 85, 91, 443])))]
    assert c[0].value.items == (("80", "91"), ("443", None))


def test_flagship_match_is_classified_exactly() -> None:
    p = And((Cmp(DST, "==", IPv4Address("10.0.2.1")),
             Cmp(TCP_D, "in", canonical_set([80, 443]))))
    cls = classify(p)
    assert cls.exact
    assert [(r.protocol_name, r.destination, r.destination_ports) for r in cls.rules] == [
        ("tcp", "10.0.2.1/32", (80, 80)), ("tcp", "10.0.2.1/32", (443, 443))]
