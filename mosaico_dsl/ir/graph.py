"""The topology as a graph, for paths and their delays (shared by checker and placement)."""

from __future__ import annotations

from itertools import pairwise

import networkx as nx

from ..units import Bandwidth, Time
from ._ir import Topology

__all__ = ["topology_graph", "shortest_path", "path_delay", "path_bandwidth", "widest_bandwidth"]


# Memo keyed by identity: hashing a large frozen topology on every lookup costs more than
# building its graph. Entries keep their topology alive, so an id is never reused while cached.
_GRAPHS: dict[int, tuple[Topology, nx.Graph]] = {}
_GRAPHS_MAX = 64


def topology_graph(topology: Topology) -> nx.Graph:
    """Undirected graph: one vertex per node, edge attributes ``delay`` (ns) and ``bps``.

    The graph is shared between callers: treat it as read-only.
    """
    hit = _GRAPHS.get(id(topology))
    if hit is not None and hit[0] is topology:
        return hit[1]
    g = _build(topology)
    if len(_GRAPHS) >= _GRAPHS_MAX:
        _GRAPHS.pop(next(iter(_GRAPHS)))
    _GRAPHS[id(topology)] = (topology, g)
    return g


def _build(topology: Topology) -> nx.Graph:
    g = nx.Graph()
    for n in topology.nodes:
        g.add_node(n.name, kind=n.kind)
    for lk in topology.links:
        g.add_edge(lk.a.node, lk.b.node, delay=lk.delay.ns, bps=lk.bandwidth.bps, link=lk)
    return g


def shortest_path(topology: Topology, src: str, dst: str,
                  avoid: frozenset[str] = frozenset()) -> tuple[str, ...] | None:
    """Lowest-delay path (ties broken by hop count, then names, so the result is stable)."""
    g = topology_graph(topology)
    if avoid:
        g = g.subgraph(n for n in g.nodes if n not in avoid or n in (src, dst))
    if src not in g or dst not in g:
        return None
    try:
        # Weight = delay scaled, plus one per hop: among equal delays prefer fewer hops.
        path = nx.dijkstra_path(g, src, dst, weight=lambda u, v, d: d["delay"] * 1024 + 1)
    except nx.NetworkXNoPath:
        return None
    return tuple(path)


def path_delay(topology: Topology, path: tuple[str, ...]) -> Time:
    g = topology_graph(topology)
    return Time(sum(g.edges[a, b]["delay"] for a, b in pairwise(path)))


def path_bandwidth(topology: Topology, path: tuple[str, ...]) -> Bandwidth:
    g = topology_graph(topology)
    return Bandwidth(min((g.edges[a, b]["bps"] for a, b in pairwise(path)), default=0))


def widest_bandwidth(topology: Topology, src: str, dst: str) -> Bandwidth:
    """The largest bottleneck bandwidth of any path (maximum-spanning-tree argument)."""
    g = topology_graph(topology)
    tree = nx.maximum_spanning_tree(g, weight="bps")
    try:
        path = nx.shortest_path(tree, src, dst)
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return Bandwidth(0)
    return Bandwidth(min((g.edges[a, b]["bps"] for a, b in pairwise(path)), default=0))
