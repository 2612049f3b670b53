"""Shortest paths (``ir/shortest.py``): the SciPy engine and the plain-Python one agree on
every path, and both follow the documented rule — lowest delay, then fewest hops, then
(walking back from the end) the predecessor declared first — checked against every simple
path of small random topologies, many of them with ties."""

from __future__ import annotations

import itertools

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from mosaico_dsl.ir import _ir as I
from mosaico_dsl.ir.graph import shortest_path
from mosaico_dsl.ir.shortest import HOPS, Links
from mosaico_dsl.units import Bandwidth, Time


@st.composite
def topologies(draw) -> I.Topology:
    n = draw(st.integers(2, 7))
    names = [f"n{i}" for i in draw(st.permutations(range(n)))]  # declaration ≠ name order
    pairs = [p for p in itertools.combinations(range(n), 2)]
    chosen = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=12, unique=True))
    delays = draw(st.lists(st.sampled_from([1, 1, 2, 3]), min_size=len(chosen),
                           max_size=len(chosen)))
    switches = tuple(I.Switch(name, "bmv2", "v1model", 16, 2, None, None,
                              I.P4Capacity(32, 1024, 1024, 1024), True, None, 1, 9090)
                     for name in names)
    links = tuple(I.Link(I.PortRef(names[a], k), I.PortRef(names[b], k),
                         Bandwidth(10**9), Time(d * 1000))
                  for k, ((a, b), d) in enumerate(zip(chosen, delays, strict=True)))
    return I.Topology("t", switches, (), (), links)


def _by_rule(topology: I.Topology, src: str, dst: str) -> tuple[str, ...] | None:
    """The documented rule, by brute force over every simple path."""
    g = nx.Graph()
    g.add_nodes_from(n.name for n in topology.nodes)
    for lk in topology.links:
        g.add_edge(lk.a.node, lk.b.node, delay=lk.delay.ns)
    if src == dst:
        return (src,)
    paths = list(nx.all_simple_paths(g, src, dst))
    if not paths:
        return None

    def weight(p):
        return sum(g.edges[a, b]["delay"] * HOPS + 1 for a, b in itertools.pairwise(p))

    best = min(weight(p) for p in paths)
    tied = [p for p in paths if weight(p) == best]
    order = {n.name: k for k, n in enumerate(topology.nodes)}
    # Walking back from dst: at each step the earliest-declared predecessor that is on a
    # best path to it.
    out = [dst]
    while out[-1] != src:
        here = out[-1]
        preds = {p[p.index(here) - 1] for p in tied if here in p and p.index(here) > 0
                 and tuple(p[p.index(here):]) == tuple(reversed(out))}
        out.append(min(preds, key=order.__getitem__))
        tied = [p for p in tied if p[len(p) - len(out)] == out[-1]]
    return tuple(reversed(out))


@settings(max_examples=200, deadline=None)
@given(topologies(), st.data())
def test_both_engines_follow_the_rule(topology: I.Topology, data):
    names = [n.name for n in topology.nodes]
    src = data.draw(st.sampled_from(names))
    links = Links(topology, names)
    small, bulk = links.small(src), links.rows([src])
    for dst in names:
        expected = _by_rule(topology, src, dst)
        assert small.path(src, dst) == expected
        assert bulk.path(src, dst) == expected
        assert shortest_path(topology, src, dst) == expected
        if expected is not None:
            delay = sum(topology.link_between(a, b).delay.ns
                        for a, b in itertools.pairwise(expected))
            assert small.delay(src, dst) == bulk.delay(src, dst) == delay
