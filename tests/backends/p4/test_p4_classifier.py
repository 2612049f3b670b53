"""Predicates become table entries that select exactly the packets ``evaluate`` accepts.

Checked on random predicates over every std.net field (negations, ``!=``, sets, ranges,
prefixes, headers a packet may lack) and random packets biased towards the predicates'
constants, through the P4Runtime encoding the switch receives.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st
from p4_support import ROOT, compiled, plans_of
from p4_tables import as_int, key_values, lookup

from mosaico_dsl.backends.p4 import matching
from mosaico_dsl.backends.p4.entries import updates
from mosaico_dsl.backends.p4.model import Action, Table, TableEntry
from mosaico_dsl.ir.predicate import And, Cmp, Field, Not, Or, evaluate
from mosaico_dsl.ir.values import MacAddress, ValueRange, canonical_set

FIELDS = {
    "ethernet.src": "mac", "ethernet.dst": "mac", "ethernet.ether_type": "int",
    "ipv4.src": "ipv4", "ipv4.dst": "ipv4", "ipv4.proto": "int", "ipv4.dscp": "int",
    "ipv4.ecn": "int", "ipv4.ttl": "int", "tcp.sport": "port", "tcp.dport": "port",
    "tcp.flags": "int", "udp.sport": "port", "udp.dport": "port",
}


def _field(path: str) -> Field:
    h, n = path.split(".")
    return Field(h, n, FIELDS[path], matching.P4_FIELDS[path][0])


def _small(path: str):
    """Values concentrated on a few points so that random packets hit them."""
    top = (1 << matching.P4_FIELDS[path][0]) - 1
    points = sorted({min(v, top) for v in (0, 1, 5, 6, top)})
    return st.one_of(st.sampled_from(points), st.integers(0, top))


def _scalar(path: str):
    kind = FIELDS[path]
    if kind == "ipv4":
        return st.sampled_from(["10.0.0.1", "10.0.0.2", "10.1.2.3", "192.168.0.9"]).map(
            IPv4Address)
    if kind == "mac":
        return st.sampled_from(["02:00:00:00:00:01", "02:00:00:00:00:02"]).map(MacAddress)
    return _small(path)


@st.composite
def _cmp(draw):
    path = draw(st.sampled_from(sorted(FIELDS)))
    f = _field(path)
    kind = FIELDS[path]
    if kind == "ipv4":
        op = draw(st.sampled_from(["==", "!=", "in"]))
        if op == "in" or draw(st.booleans()):
            nets = draw(st.lists(st.sampled_from(
                ["10.0.0.0/8", "10.0.0.0/31", "10.1.0.0/16", "192.168.0.0/24", "0.0.0.0/0",
                 "10.0.0.2/32"]).map(IPv4Network), min_size=1, max_size=3))
            value = canonical_set(nets) if op == "in" and len(nets) > 1 else nets[0]
            return Cmp(f, op, value)
        return Cmp(f, op, draw(_scalar(path)))
    if kind == "mac":
        return Cmp(f, draw(st.sampled_from(["==", "!="])), draw(_scalar(path)))
    op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in"]))
    if op == "in":
        items = draw(st.lists(st.one_of(
            _small(path), st.tuples(_small(path), _small(path)).map(
                lambda t: ValueRange(min(t), max(t)))), min_size=1, max_size=3))
        return Cmp(f, "in", canonical_set(items))
    return Cmp(f, op, draw(_small(path)))


PREDICATES = st.recursive(
    _cmp(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: Or(tuple(xs))),
        inner.map(Not)),
    max_leaves=5)


@st.composite
def _packet(draw):
    pkt = {"ethernet.src": draw(_scalar("ethernet.src")),
           "ethernet.dst": draw(_scalar("ethernet.dst")),
           "ethernet.ether_type": draw(_small("ethernet.ether_type"))}
    if draw(st.booleans()):
        for n in ("src", "dst"):
            pkt[f"ipv4.{n}"] = draw(_scalar(f"ipv4.{n}"))
        for n in ("proto", "dscp", "ecn", "ttl"):
            pkt[f"ipv4.{n}"] = draw(_small(f"ipv4.{n}"))
        l4 = draw(st.sampled_from(["tcp", "udp", None]))
        if l4:
            names = ("sport", "dport", "flags") if l4 == "tcp" else ("sport", "dport")
            for n in names:
                pkt[f"{l4}.{n}"] = draw(_small(f"{l4}.{n}"))
    return pkt


def _entries_for(pred, keys):
    allow = Action(0x01000001, "hit")
    miss = Action(0x01000002, "miss")
    table = Table(0x02000001, "t", keys, (allow,), miss, 1 << 20)
    entries = [TableEntry(table, m, allow, priority=1)
               for m in matching.matches_for(pred, keys)]
    return [u.entity.table_entry for u in _updates(entries)]


def _updates(entries):
    from mosaico_dsl.backends.p4.entries import table_update

    return [table_update(e) for e in entries]


@settings(max_examples=300, deadline=None)
@given(PREDICATES, st.lists(_packet(), min_size=1, max_size=12))
def test_entries_select_exactly_what_evaluate_accepts(pred, packets):
    keys = matching.keys_for([pred])
    entries = _entries_for(pred, keys)
    for pkt in packets:
        hit = lookup(entries, key_values(pkt, keys)) is not None
        assert hit == evaluate(pred, pkt), (str(pred), pkt)


@settings(max_examples=100, deadline=None)
@given(PREDICATES)
def test_ternary_blocks_cover_exactly_the_interval(pred):
    for cube in matching.cubes(pred):
        for path, intervals in cube.fields:
            bits = matching.P4_FIELDS[path][0]
            for lo, hi in intervals:
                blocks = matching.range_to_ternary(lo, hi, bits)
                covered = sum(((1 << bits) - 1 - mask) + 1 for _, mask in blocks)
                assert covered == hi - lo + 1
                assert all(v & ~mask & ((1 << bits) - 1) == 0 for v, mask in blocks)
                assert len(blocks) <= 2 * bits


def test_absent_header_semantics():
    """`tcp.dport != 80` holds for UDP packets; `tcp.dport < 1000` does not."""
    dport = _field("tcp.dport")
    udp_pkt = {"ipv4.src": IPv4Address("10.0.0.1"), "udp.dport": 80}
    for pred, expected in ((Cmp(dport, "!=", 80), True), (Cmp(dport, "<", 1000), False),
                           (Not(Cmp(dport, "<", 1000)), True)):
        keys = matching.keys_for([pred])
        hit = lookup(_entries_for(pred, keys), key_values(udp_pkt, keys)) is not None
        assert hit is expected is evaluate(pred, udp_pkt)


def test_flagship_classifier_through_entries_json():
    """The switch's own entries: web traffic to the server from each client port is
    classified (service 1, segment 0, out of port 0); other traffic is not."""
    result = compiled(ROOT / "examples" / "secure_l4s.mosaico")
    program, plans = plans_of((ROOT / "examples" / "secure_l4s.mosaico").read_text())
    plan = plans[0]
    entries = [u.entity.table_entry for u in updates(plan)
               if u.entity.table_entry.table_id == plan.classifier.table.id]
    assert result.artifacts["s1/entries.json"]  # the same updates, serialised
    keys = plan.classifier.table.keys
    svc = program.services[0]
    for port in (1, 2, 3):
        for dport, l4 in ((80, "tcp"), (443, "tcp"), (22, "tcp"), (80, "udp")):
            pkt = {"ipv4.src": IPv4Address("10.0.1.1"), "ipv4.dst": IPv4Address("10.0.2.1"),
                   f"{l4}.dport": dport, f"{l4}.sport": 40000}
            e = lookup(entries, key_values(pkt, keys, {"ingress_port": port}))
            assert (e is not None) == evaluate(svc.match, pkt)
            if e is not None:
                params = [as_int(int.from_bytes(p.value, "big")) for p in e.action.action.params]
                assert params == [1, 0, 0]
    # The server's port is not a source of this service: nothing from it is classified.
    pkt = {"ipv4.dst": IPv4Address("10.0.2.1"), "tcp.dport": 80}
    assert lookup(entries, key_values(pkt, keys, {"ingress_port": 0})) is None
