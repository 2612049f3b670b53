"""The paths traffic takes: lowest-delay base paths and detours, through switches only.

VNF hosts and endpoints terminate traffic, they do not route it, so neither is ever a
transit node: a base path goes source → switches → destination, a detour goes from a
switch on it through switches to the node that runs a function, and back the same way.
"""

from __future__ import annotations

from functools import cached_property
from itertools import pairwise

import networkx as nx

from ..ir import _ir as I
from ..ir.graph import path_delay, topology_graph

__all__ = ["Transit"]


def _weight(u: str, v: str, d: dict) -> int:
    # As ir.graph.shortest_path: lowest delay first, then fewest hops.
    return d["delay"] * 1024 + 1


class Transit:
    """Paths in one topology (computed once per switch, then looked up)."""

    def __init__(self, topology: I.Topology) -> None:
        self.topology = topology
        self._switches = frozenset(s.name for s in topology.switches)
        self._from: dict[str, tuple[dict[str, int], dict[str, list[str]]]] = {}
        self._delays: dict[tuple[str, ...], int] = {}
        self._thinnest: dict[tuple[str, ...], tuple[int, str, str]] = {}
        self._detours: dict[tuple[str, str], tuple[str, ...] | None] = {}

    @cached_property
    def _graph(self) -> nx.Graph:
        return topology_graph(self.topology)

    @cached_property
    def _switch_graph(self) -> nx.Graph:
        return topology_graph(self.topology).subgraph(sorted(self._switches))

    def base(self, src: str, dst: str) -> tuple[str, ...] | None:
        """The lowest-delay path from ``src`` to ``dst`` that crosses switches only."""
        g = self._graph
        if src not in g or dst not in g:
            return None
        best: tuple[int, str, str] | None = None
        for a in sorted(n for n in g.neighbors(src) if n in self._switches):
            dist, _ = self._dijkstra(a)
            first = _weight(src, a, g.edges[src, a])
            for b in sorted(n for n in g.neighbors(dst) if n in dist):
                w = first + dist[b] + _weight(b, dst, g.edges[b, dst])
                if best is None or w < best[0]:
                    best = (w, a, b)
        if best is None:
            return None
        _, paths = self._dijkstra(best[1])
        return (src, *paths[best[2]], dst)

    def detour(self, switch: str, node: str) -> tuple[str, ...] | None:
        """``switch`` → … → ``node`` through switches only (``(switch,)`` if equal)."""
        key = (switch, node)
        if key not in self._detours:
            self._detours[key] = self._detour(switch, node)
        return self._detours[key]

    def _detour(self, switch: str, node: str) -> tuple[str, ...] | None:
        if switch not in self._switches:
            return None
        dist, paths = self._dijkstra(switch)
        if node in self._switches:
            p = paths.get(node)
            return tuple(p) if p is not None else None
        g = self._graph
        if node not in g:
            return None
        best: tuple[int, str] | None = None
        for b in sorted(g.neighbors(node)):
            if b in dist:
                w = dist[b] + _weight(b, node, g.edges[b, node])
                if best is None or w < best[0]:
                    best = (w, b)
        if best is None:
            return None
        return (*paths[best[1]], node)

    def delay(self, path: tuple[str, ...]) -> int:
        if len(path) < 2:
            return 0
        if path not in self._delays:
            self._delays[path] = path_delay(self.topology, path).ns
        return self._delays[path]

    def thinnest(self, path: tuple[str, ...]) -> tuple[int, str, str] | None:
        """(bandwidth, a, b) of the thinnest link along ``path`` (None for one node)."""
        if len(path) < 2:
            return None
        if path not in self._thinnest:
            g = self._graph
            self._thinnest[path] = min((g.edges[a, b]["bps"], a, b)
                                       for a, b in pairwise(path))
        return self._thinnest[path]

    def _dijkstra(self, switch: str) -> tuple[dict[str, int], dict[str, list[str]]]:
        if switch not in self._from:
            self._from[switch] = nx.single_source_dijkstra(self._switch_graph, switch,
                                                           weight=_weight)
        return self._from[switch]
