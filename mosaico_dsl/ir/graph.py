"""The topology as a graph, for paths and their delays (shared by checker and placement)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from itertools import pairwise
from typing import TYPE_CHECKING

import networkx as nx

from ..units import Bandwidth, Time
from ._ir import Topology

if TYPE_CHECKING:
    from .shortest import Links, Rows, SmallRows

_BATCH = 128  # destinations searched from at once
# Below this many nodes a search in Python costs less than loading SciPy's.
_SMALL = 256

__all__ = ["topology_graph", "shortest_path", "path_delay", "path_bandwidth", "widest_bandwidth",
           "Reach"]


# Memo keyed by identity: hashing a large frozen topology on every lookup costs more than
# building its graph. Entries keep their topology alive, so an id is never reused while cached.
_GRAPHS: dict[int, tuple[Topology, nx.Graph]] = {}
_GRAPHS_MAX = 64


def topology_graph(topology: Topology) -> nx.Graph:
    """Undirected graph: one vertex per node, edge attributes ``delay`` (ns) and ``bps``.

    The graph is shared between callers: treat it as read-only.
    """
    return _remembered(_GRAPHS, topology, _build)


def _remembered(store: dict, topology: Topology, build):
    """``build(topology)``, remembered in ``store`` by identity (the oldest entry goes)."""
    hit = store.get(id(topology))
    if hit is not None and hit[0] is topology:
        return hit[1]
    value = build(topology)
    if len(store) >= _GRAPHS_MAX:
        store.pop(next(iter(store)))
    store[id(topology)] = (topology, value)
    return value


def _build(topology: Topology) -> nx.Graph:
    g = nx.Graph()
    for n in topology.nodes:
        g.add_node(n.name, kind=n.kind)
    for lk in topology.links:
        g.add_edge(lk.a.node, lk.b.node, delay=lk.delay.ns, bps=lk.bandwidth.bps, link=lk)
    return g


def shortest_path(topology: Topology, src: str, dst: str,
                  avoid: frozenset[str] = frozenset()) -> tuple[str, ...] | None:
    """Lowest-delay path; among equal delays the fewest hops, then — walking back from
    ``dst`` — the predecessor declared first (:mod:`.shortest`), so it is stable."""
    if avoid:
        from .shortest import Links

        kept = [n.name for n in topology.nodes if n.name not in avoid or n.name in (src, dst)]
        links = Links(topology, kept)
        if src not in links.index:
            return None
        return links.small(src).path(src, dst)
    return _searches(topology).path(src, dst)


class _Searches:
    """Searches from single nodes over every link of one topology, remembered (a few
    thousand at most): the backends ask for paths from each switch to every endpoint."""

    MAX = 4096

    def __init__(self, topology: Topology) -> None:
        from .shortest import Links

        self.links = Links(topology, [n.name for n in topology.nodes])
        self.small = len(self.links.names) < _SMALL
        self.rows: dict[str, Rows | SmallRows] = {}

    def path(self, src: str, dst: str) -> tuple[str, ...] | None:
        if src not in self.links.index or dst not in self.links.index:
            return None
        rows = self.rows.get(src)
        if rows is None:
            if len(self.rows) >= self.MAX:
                self.rows.pop(next(iter(self.rows)))
            rows = self.rows[src] = self.links.small(src) if self.small \
                else self.links.rows([src])
        return rows.path(src, dst)


_SEARCHES: dict[int, tuple[Topology, _Searches]] = {}


def _searches(topology: Topology) -> _Searches:
    return _remembered(_SEARCHES, topology, _Searches)


def path_delay(topology: Topology, path: tuple[str, ...]) -> Time:
    g = topology_graph(topology)
    return Time(sum(g.edges[a, b]["delay"] for a, b in pairwise(path)))


def path_bandwidth(topology: Topology, path: tuple[str, ...]) -> Bandwidth:
    g = topology_graph(topology)
    return Bandwidth(min((g.edges[a, b]["bps"] for a, b in pairwise(path)), default=0))


def widest_bandwidth(topology: Topology, src: str, dst: str) -> Bandwidth:
    """The largest bottleneck bandwidth of any path (maximum-spanning-tree argument)."""
    return Bandwidth(Reach(topology).widest(dst).get(src, 0))



class Reach:
    """From a node to all others: the least link delay of any path, and the widest
    bottleneck bandwidth. Ask for destinations in the order given to the constructor:
    delays are searched for a batch of the next ones at a time (one compiled search each,
    not one per service and source), widths for the last node asked."""

    def __init__(self, topology: Topology, order: Sequence[str] = ()) -> None:
        self.topology = topology
        self._order = list(dict.fromkeys(order))
        self._next = {n: k for k, n in enumerate(self._order)}
        self._rows: Rows | None = None
        self._widest: tuple[str, dict[str, int]] | None = None
        self._tree: nx.Graph | None = None

    @cached_property
    def _links(self) -> Links:
        from .shortest import Links

        return Links(self.topology, [n.name for n in self.topology.nodes])

    def delay(self, node: str, other: str) -> int | None:
        """ns of the least-delay path between ``node`` and ``other`` (None: no path), as
        ``shortest_path`` would find it."""
        if len(self.topology.nodes) < _SMALL:
            path = shortest_path(self.topology, node, other)
            return None if path is None else path_delay(self.topology, path).ns
        if self._rows is None or node not in self._rows.row:
            k = self._next.get(node)
            batch = [node] if k is None else self._order[k:k + _BATCH]
            self._rows = self._links.rows(batch, paths=False)
            if node not in self._rows.row:
                return None
        return self._rows.delay(node, other)

    def widest(self, node: str) -> dict[str, int]:
        """bit/s of the widest path from ``node`` to every other node it reaches."""
        if self._widest is None or self._widest[0] != node:
            if self._tree is None:
                self._tree = nx.maximum_spanning_tree(topology_graph(self.topology),
                                                      weight="bps")
            found: dict[str, int] = {}
            if node in self._tree:
                for a, b in nx.bfs_edges(self._tree, node):
                    bps = self._tree.edges[a, b]["bps"]
                    found[b] = bps if a == node else min(found[a], bps)
            self._widest = (node, found)
        return self._widest[1]
