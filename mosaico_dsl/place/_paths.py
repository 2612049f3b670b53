"""The paths traffic takes: lowest-delay base paths and detours, through switches only.

VNF hosts and endpoints terminate traffic, they do not route it, so neither is ever a
transit node: a base path goes source → switches → destination, a detour goes from a
switch on it through switches to the node that runs a function, and back the same way.

Searches keep one predecessor per node (not a path per node: on a line of N switches that
is N² names per source) and a detour search stops at the delay the latency budget leaves
for it, so a fabric of thousands of switches costs memory in proportion to what is near
each path. Ties are broken exactly as networkx's Dijkstra breaks them (lowest delay, then
fewest hops, then the order links were declared in), so paths do not depend on the bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from heapq import heappop, heappush
from itertools import count, pairwise

from ..ir import _ir as I
from ..ir.graph import topology_graph

__all__ = ["Transit", "HOPS"]

# Weights are delay × HOPS + 1 per hop: lowest delay first, then fewest hops (as
# ir.graph.shortest_path), exact while a path has fewer than HOPS hops.
HOPS = 1024


class _Search:
    """One single-source search: weight and first predecessor of every node it reached."""

    __slots__ = ("source", "cutoff", "dist", "pred")

    def __init__(self, adj: dict[str, list[tuple[str, int]]], source: str,
                 cutoff: int | None) -> None:
        self.source, self.cutoff = source, cutoff
        dist: dict[str, int] = {}
        seen = {source: 0}
        pred: dict[str, str] = {}
        tie = count()
        fringe = [(0, next(tie), source)]
        while fringe:
            d, _, v = heappop(fringe)
            if v in dist:
                continue
            dist[v] = d
            for u, w in adj[v]:
                vu = d + w
                if (cutoff is not None and vu > cutoff) or u in dist:
                    continue
                if u not in seen or vu < seen[u]:
                    seen[u] = vu
                    heappush(fringe, (vu, next(tie), u))
                    pred[u] = v
        self.dist, self.pred = dist, pred

    def path(self, node: str) -> list[str]:
        out = [node]
        while out[-1] != self.source:
            out.append(self.pred[out[-1]])
        out.reverse()
        return out


class Transit:
    """Paths in one topology (searched once per switch, then looked up)."""

    def __init__(self, topology: I.Topology) -> None:
        self.topology = topology
        self._switches = frozenset(s.name for s in topology.switches)
        self._full: dict[str, _Search] = {}
        self._bounded: dict[str, _Search] = {}
        self._bases: dict[tuple[str, str], tuple[str, ...] | None] = {}
        self._delays: dict[tuple[str, ...], int] = {}
        self._thinnest: dict[tuple[str, ...], tuple[int, str, str]] = {}
        self._detours: dict[tuple[str, str], tuple[str, ...] | None] = {}
        self._vicinity: dict[str, tuple] = {}

    @cached_property
    def _graph(self):
        return topology_graph(self.topology)

    @cached_property
    def _adj(self) -> dict[str, list[tuple[str, int]]]:
        """Switch-to-switch adjacency with weights, in the graph's neighbour order."""
        g = self._graph
        return {s: [(u, d["delay"] * HOPS + 1) for u, d in g.adj[s].items()
                    if u in self._switches]
                for s in g.nodes if s in self._switches}

    def neighbours(self, switch: str) -> list[tuple[str, int]]:
        """Every node linked to ``switch``, with the link's weight, in declaration order."""
        return self._all_adj[switch]

    @cached_property
    def _all_adj(self) -> dict[str, list[tuple[str, int]]]:
        g = self._graph
        return {s: [(u, d["delay"] * HOPS + 1) for u, d in g.adj[s].items()]
                for s in g.nodes if s in self._switches}

    def _weight(self, a: str, b: str) -> int:
        return self._graph.edges[a, b]["delay"] * HOPS + 1

    def base(self, src: str, dst: str) -> tuple[str, ...] | None:
        """The lowest-delay path from ``src`` to ``dst`` that crosses switches only."""
        key = (src, dst)
        if key not in self._bases:
            self._bases[key] = self._base(src, dst)
        return self._bases[key]

    def bases(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Find the base paths of many (source, destination) pairs, grouped by the switches
        they leave from, so that each full search is held only while it is needed."""
        g = self._graph

        def first(src: str) -> tuple[str, ...]:
            return tuple(sorted(n for n in g.neighbors(src) if n in self._switches)) \
                if src in g else ()

        todo = sorted({p for p in pairs if p not in self._bases},
                      key=lambda p: (first(p[0]), p))
        current = None
        for src, dst in todo:
            if first(src) != current:
                self._full.clear()
                current = first(src)
            self._bases[(src, dst)] = self._base(src, dst)
        self._full.clear()

    def _base(self, src: str, dst: str) -> tuple[str, ...] | None:
        g = self._graph
        if src not in g or dst not in g:
            return None
        best: tuple[int, str, str] | None = None
        for a in sorted(n for n in g.neighbors(src) if n in self._switches):
            dist = self._search(a).dist
            first = self._weight(src, a)
            for b in sorted(n for n in g.neighbors(dst) if n in dist):
                w = first + dist[b] + self._weight(b, dst)
                if best is None or w < best[0]:
                    best = (w, a, b)
        if best is None:
            return None
        return (src, *self._search(best[1]).path(best[2]), dst)

    def detour(self, switch: str, node: str, within: int | None = None
               ) -> tuple[str, ...] | None:
        """``switch`` → … → ``node`` through switches only (``(switch,)`` if equal).

        With ``within`` (ns), only a detour of at most that delay is looked for: None means
        there is none that short (the search stops there)."""
        key = (switch, node)
        if key not in self._detours:
            found = self._detour(switch, node, within)
            if found is None and within is not None:
                return None  # maybe farther: do not remember it as unreachable
            self._detours[key] = found
        found = self._detours[key]
        if found is not None and within is not None and self.delay(found) > within:
            return None
        return found

    def _detour(self, switch: str, node: str, within: int | None) -> tuple[str, ...] | None:
        if switch not in self._switches:
            return None
        search = self._near(switch, within)
        if node in self._switches:
            return tuple(search.path(node)) if node in search.dist else None
        g = self._graph
        if node not in g:
            return None
        best: tuple[int, str] | None = None
        for b in sorted(g.neighbors(node)):
            if b in search.dist:
                w = search.dist[b] + self._weight(b, node)
                if best is None or w < best[0]:
                    best = (w, b)
        if best is None:
            return None
        return (*search.path(best[1]), node)

    def vicinity(self, switch: str, width: int, within: int
                 ) -> list[tuple[str, tuple[str, ...], int]]:
        """(node, detour, delay) of the nodes nearest ``switch`` that a detour from it may
        run functions on: the ``width`` nearest hosts and trusted hosts, and the ``width``
        nearest neighbour switches (a P4 detour reaches a neighbour only) and trusted ones;
        no farther than ``within`` ns. Each detour is the one :meth:`detour` finds."""
        hit = self._vicinity.get(switch)
        if hit is None or hit[0] < width or (not hit[1] and hit[2] < within):
            hit = self._vicinity[switch] = (width, *self._search_vicinity(switch, width,
                                                                          within))
        _, _, _, found = hit
        return [f for f in found if f[2] <= within]

    def _search_vicinity(self, switch: str, width: int, within: int):
        """(whether every quota filled, how far it looked, what it found)."""
        topo, g = self.topology, self._graph
        cutoff = within * HOPS + HOPS - 1
        quotas = {(kind, trusted): 0 for kind in ("switch", "host") for trusted in (0, 1)}
        found: list[tuple[str, tuple[str, ...], int]] = []
        dist: dict[str, int] = {}
        pred: dict[str, str] = {}
        seen = {switch: 0}
        tie = count()
        heap = [(0, next(tie), switch)]

        def path(v: str) -> list[str]:
            out = [v]
            while out[-1] != switch:
                out.append(pred[out[-1]])
            return out[::-1]

        while heap and heap[0][0] <= cutoff:
            if all(n >= width for n in quotas.values()):
                return True, within, found
            d, _, v = heappop(heap)
            if v in dist:
                continue
            dist[v] = d
            node = topo.node(v)
            if v in self._switches:
                if v != switch and pred[v] == switch:
                    self._fill(quotas, found, width, "switch", node, (switch, v))
                for u, w in self.neighbours(v):
                    if u in dist or (u not in self._switches and topo.node(u).kind != "host"):
                        continue
                    if u not in seen or d + w < seen[u]:
                        seen[u] = d + w
                        heappush(heap, (d + w, next(tie), u))
                        if u in self._switches:
                            pred[u] = v
                continue
            # The rule of _detour: the lowest weight, then the first name.
            best = min(((dist[b] + self._weight(b, v), b) for b in g.neighbors(v)
                        if b in dist and b in self._switches), default=None)
            if best is not None:
                self._fill(quotas, found, width, "host", node, (*path(best[1]), v))
        return not heap, within, found

    def _fill(self, quotas, found, width, kind, node, detour) -> None:
        wanted = quotas[(kind, 0)] < width or (node.trusted and quotas[(kind, 1)] < width)
        if not wanted:
            return
        quotas[(kind, 0)] += 1
        if node.trusted:
            quotas[(kind, 1)] += 1
        found.append((node.name, tuple(detour), self.delay(tuple(detour))))

    def near(self, sources: Iterable[str], within: int) -> dict[str, int]:
        """Every node a detour from one of ``sources`` (switches) reaches within ``within``
        ns one way — switches, and the hosts and endpoints linked to them — with its
        least delay. A superset of where a detour that short can go."""
        g = self._graph
        dist: dict[str, int] = {}
        fringe = []
        for s in sources:
            if s in self._switches and s not in dist:
                dist[s] = 0
                fringe.append((0, s))
        fringe.sort()
        done: set[str] = set()
        while fringe:
            d, v = heappop(fringe)
            if v in done:
                continue
            done.add(v)
            for u, e in g.adj[v].items():
                du = d + e["delay"]
                if du > within or du >= dist.get(u, du + 1):
                    continue
                dist[u] = du
                if u in self._switches:
                    heappush(fringe, (du, u))
        return dist

    def delay(self, path: tuple[str, ...]) -> int:
        if len(path) < 2:
            return 0
        if path not in self._delays:
            g = self._graph
            self._delays[path] = sum(g.edges[a, b]["delay"] for a, b in pairwise(path))
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

    def _search(self, switch: str) -> _Search:
        if switch not in self._full:
            self._full[switch] = _Search(self._adj, switch, None)
        return self._full[switch]

    def _near(self, switch: str, within: int | None) -> _Search:
        """A search from ``switch`` that reaches at least every node within ``within`` ns
        (all of them for None); a bounded one is widened when a longer reach is asked."""
        full = self._full.get(switch)
        if full is not None:
            return full
        if within is None:
            return self._search(switch)
        cutoff = within * HOPS + HOPS - 1
        have = self._bounded.get(switch)
        if have is None or have.cutoff < cutoff:
            have = self._bounded[switch] = _Search(self._adj, switch, cutoff)
        return have
