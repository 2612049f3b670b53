"""Shortest paths in bulk: SciPy's compiled Dijkstra from many sources at once.

A fabric of a thousand switches and thousands of services asks for hundreds of
single-source searches (one per switch a service leaves from, one per destination a
checked service has); in Python each costs tens of milliseconds, in SciPy a fraction of
one. Paths are read off the distances with a rule that does not depend on the search's
internal order: **lowest delay, then fewest hops, then — walking back from the end — the
predecessor declared first**. Weights are ``delay × HOPS + 1`` per hop: exact integers in
float64, and the order (delay, then hops) exact, while a path has fewer than ``HOPS``
(65,536) hops and less than 100 s of delay.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property
from heapq import heappop, heappush

from ._ir import Topology

__all__ = ["HOPS", "Links", "Rows", "SmallRows"]

HOPS = 1 << 16
_CHUNK = 128  # sources per call: a chunk's rows are chunk × nodes float64
_INF = float("inf")


class Links:
    """The links of ``topology`` between ``nodes`` (in that order) as a weighted graph."""

    def __init__(self, topology: Topology, nodes: Sequence[str]) -> None:
        self.names = list(nodes)
        self.index = {n: i for i, n in enumerate(self.names)}
        a, b, w = [], [], []
        for lk in topology.links:
            i, j = self.index.get(lk.a.node), self.index.get(lk.b.node)
            if i is None or j is None or i == j:
                continue
            weight = lk.delay.ns * HOPS + 1
            a += (i, j)
            b += (j, i)
            w += (weight, weight)
        self._edges = (a, b, w)

    @cached_property
    def adjacency(self) -> list[list[tuple[int, int]]]:
        """Per node: (neighbour, weight), neighbours in declaration order."""
        adj: list[list[tuple[int, int]]] = [[] for _ in self.names]
        for i, j, w in zip(*self._edges, strict=True):
            adj[i].append((j, w))
        for row in adj:
            row.sort()
        return adj

    @cached_property
    def _arrays(self):
        import numpy as np  # NumPy and SciPy load when a bulk search is first needed
        from scipy.sparse import csr_matrix

        a, b, w = self._edges
        n = len(self.names)
        tail = np.asarray(a, dtype=np.int64)
        head = np.asarray(b, dtype=np.int64)
        weight = np.asarray(w, dtype=np.float64)
        # Edges by head, then tail: the first tight edge into a node comes from its
        # earliest-declared tight predecessor.
        order = np.lexsort((tail, head))
        matrix = csr_matrix((weight, (tail, head)), shape=(n, n))
        return (tail[order], head[order], weight[order]), matrix

    def rows(self, sources: Iterable[str], *, paths: bool = True) -> Rows:
        """Distances (weights) and, with ``paths``, predecessors from each of ``sources``."""
        names = list(dict.fromkeys(s for s in sources if s in self.index))
        return Rows(self, names, paths)

    def small(self, source: str) -> SmallRows:
        """The same search in plain Python (for small graphs: no NumPy to load)."""
        return SmallRows(self, source)


class SmallRows:
    """One search from ``source`` in Python, with the same answers as :class:`Rows`."""

    def __init__(self, links: Links, source: str) -> None:
        self.links = links
        self.source = source
        adj = links.adjacency
        start = links.index[source]
        dist: dict[int, int] = {}
        seen = {start: 0}
        heap = [(0, start)]
        while heap:
            d, v = heappop(heap)
            if v in dist:
                continue
            dist[v] = d
            for u, w in adj[v]:
                if u not in dist and d + w < seen.get(u, _INF):
                    seen[u] = d + w
                    heappush(heap, (d + w, u))
        self._dist = dist
        pred: dict[int, int] = {}
        for u, du in dist.items():
            if u != start:  # neighbours are in declaration order: the first tight one
                pred[u] = next(v for v, w in adj[u] if dist.get(v, _INF) + w == du)
        self._pred = pred

    def weight(self, source: str, node: str) -> float:
        j = self.links.index.get(node)
        return self._dist.get(j, _INF) if j is not None else _INF

    def delay(self, source: str, node: str) -> int | None:
        w = self.weight(source, node)
        return None if w == _INF else int(w) // HOPS

    def path(self, source: str, node: str) -> tuple[str, ...] | None:
        j = self.links.index.get(node)
        if j is None or j not in self._dist:
            return None
        out = [j]
        while out[-1] in self._pred:
            out.append(self._pred[out[-1]])
        return tuple(self.links.names[i] for i in reversed(out))


class Rows:
    """Searches from several sources: ``dist[k, j]`` and ``pred[k, j]`` (−1: none)."""

    def __init__(self, links: Links, sources: list[str], paths: bool = True) -> None:
        import numpy as np
        from scipy.sparse.csgraph import dijkstra

        self.links = links
        self.row = {s: k for k, s in enumerate(sources)}
        n = len(links.names)
        self.dist = np.empty((len(sources), n), dtype=np.float64)
        self.pred = np.full((len(sources) if paths else 0, n), -1, dtype=np.int64)
        (tail, head, weight), matrix = links._arrays
        for start in range(0, len(sources), _CHUNK):
            chunk = [links.index[s] for s in sources[start:start + _CHUNK]]
            if n == 0:
                continue
            d = dijkstra(matrix, directed=True, indices=chunk)
            self.dist[start:start + len(chunk)] = d
            for k in range(len(chunk) if paths else 0):
                row = d[k]
                tight = np.flatnonzero(row[tail] + weight == row[head])
                if tight.size:
                    heads, first = np.unique(head[tight], return_index=True)
                    self.pred[start + k, heads] = tail[tight[first]]
                self.pred[start + k, chunk[k]] = -1

    def weight(self, source: str, node: str) -> float:
        """The weight of the best path (``inf`` when there is none)."""
        j = self.links.index.get(node)
        return _INF if j is None else float(self.dist[self.row[source], j])

    def delay(self, source: str, node: str) -> int | None:
        """ns along the best path from ``source`` to ``node`` (None: unreachable)."""
        w = self.weight(source, node)
        return None if w == _INF else int(w) // HOPS

    def path(self, source: str, node: str) -> tuple[str, ...] | None:
        k, names = self.row[source], self.links.names
        j = self.links.index.get(node)
        if j is None or self.dist[k, j] == _INF:
            return None
        out = [j]
        pred = self.pred[k]
        while pred[out[-1]] >= 0:
            out.append(int(pred[out[-1]]))
        return tuple(names[i] for i in reversed(out))
