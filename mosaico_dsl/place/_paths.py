"""The paths traffic takes: lowest-delay base paths and detours, through switches only.

VNF hosts and endpoints terminate traffic, they do not route it, so neither is ever a
transit node: a base path goes source → switches → destination, a detour goes from a
switch on it through switches to the node that runs a function, and back the same way.

Searches run from many switches at once (:mod:`..ir.shortest`) and are dropped once what
was needed from them — paths, or each switch's nearest places to run functions — is kept,
so a fabric of thousands of switches costs memory in proportion to what is asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from itertools import pairwise

import numpy as np

from ..ir import _ir as I
from ..ir.graph import topology_graph
from ..ir.shortest import HOPS, Links, Rows

__all__ = ["Transit", "HOPS"]

_BATCH = 256  # switches searched from at once when many are needed


class Transit:
    """Paths in one topology (searched once per switch, then looked up)."""

    def __init__(self, topology: I.Topology) -> None:
        self.topology = topology
        self._switches = frozenset(s.name for s in topology.switches)
        self._rows: dict[str, Rows] = {}
        self._bases: dict[tuple[str, str], tuple[str, ...] | None] = {}
        self._delays: dict[tuple[str, ...], int] = {}
        self._thinnest: dict[tuple[str, ...], tuple[int, str, str]] = {}
        self._vicinity: dict[str, list[tuple[str, tuple[str, ...], int, bool]]] = {}

    @cached_property
    def _graph(self):
        return topology_graph(self.topology)

    @cached_property
    def _links(self) -> Links:
        return Links(self.topology, [s.name for s in self.topology.switches])

    def _weight(self, a: str, b: str) -> int:
        return self._graph.edges[a, b]["delay"] * HOPS + 1

    def _switch_neighbours(self, node: str) -> list[str]:
        g = self._graph
        return sorted(n for n in g.neighbors(node) if n in self._switches) if node in g else []

    # ------------------------------------------------------------------ searches

    def _search(self, switches: Iterable[str]) -> None:
        """Search from every one of ``switches`` not searched from yet."""
        todo = [s for s in dict.fromkeys(switches) if s in self._switches and s not in self._rows]
        for start in range(0, len(todo), _BATCH):
            rows = self._links.rows(todo[start:start + _BATCH])
            for s in todo[start:start + _BATCH]:
                self._rows[s] = rows

    # ------------------------------------------------------------------ base paths

    def base(self, src: str, dst: str) -> tuple[str, ...] | None:
        """The lowest-delay path from ``src`` to ``dst`` that crosses switches only."""
        key = (src, dst)
        if key not in self._bases:
            self._search(self._switch_neighbours(src))
            self._bases[key] = self._base(src, dst)
        return self._bases[key]

    def bases(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Find the base paths of many (source, destination) pairs, a batch of first
        switches at a time, dropping each batch's searches once its paths are found."""
        todo = sorted({p for p in pairs if p not in self._bases},
                      key=lambda p: (self._switch_neighbours(p[0]), p))
        batch: list[tuple[str, str]] = []
        firsts: set[str] = set()
        for pair in [*todo, None]:
            first = set(self._switch_neighbours(pair[0])) if pair is not None else set()
            if pair is None or len(firsts | first) > _BATCH:
                kept = dict(self._rows)
                self._search(firsts)
                for src, dst in batch:
                    self._bases[(src, dst)] = self._base(src, dst)
                self._rows = kept
                batch, firsts = [], set()
            if pair is not None:
                batch.append(pair)
                firsts |= first

    def _base(self, src: str, dst: str) -> tuple[str, ...] | None:
        g = self._graph
        if src not in g or dst not in g:
            return None
        best: tuple[float, str, str] | None = None
        for a in self._switch_neighbours(src):
            rows = self._rows[a]
            first = self._weight(src, a)
            for b in self._switch_neighbours(dst):
                w = first + rows.weight(a, b) + self._weight(b, dst)
                if w != float("inf") and (best is None or w < best[0]):
                    best = (w, a, b)
        if best is None:
            return None
        return (src, *self._rows[best[1]].path(best[1], best[2]), dst)

    # ------------------------------------------------------------------ detours

    def detour(self, switch: str, node: str, within: int | None = None
               ) -> tuple[str, ...] | None:
        """``switch`` → … → ``node`` through switches only (``(switch,)`` if equal); with
        ``within`` (ns), None when the detour is longer than that."""
        if switch not in self._switches:
            return None
        self._search((switch,))
        rows = self._rows[switch]
        if node in self._switches:
            found = rows.path(switch, node)
        else:
            best: tuple[float, str] | None = None
            for b in self._switch_neighbours(node):
                w = rows.weight(switch, b) + self._weight(b, node)
                if w != float("inf") and (best is None or w < best[0]):
                    best = (w, b)
            found = None if best is None else (*rows.path(switch, best[1]), node)
        if found is not None and within is not None and self.delay(found) > within:
            return None
        return found

    def near(self, sources: Iterable[str], within: int) -> dict[str, int]:
        """Every node a detour from one of ``sources`` (switches) reaches within ``within``
        ns one way — switches, and the hosts and endpoints linked to them — with its least
        delay. A superset of where a detour that short can go."""
        sources = [s for s in sources if s in self._switches]
        if not sources:
            return {}
        self._search(sources)
        names = self._links.names
        best = np.full(len(names), np.inf)
        for s in sources:
            rows = self._rows[s]
            best = np.minimum(best, rows.dist[rows.row[s]])
        out: dict[str, int] = {}
        for j in np.flatnonzero(best <= within * HOPS + HOPS - 1):
            out[names[j]] = int(best[j]) // HOPS
        g = self._graph
        for s, d in list(out.items()):
            for u, e in g.adj[s].items():
                if u not in self._switches:
                    du = d + e["delay"]
                    if du <= within and du < out.get(u, du + 1):
                        out[u] = du
        return out

    def vicinity(self, switch: str, width: int, within: int
                 ) -> list[tuple[str, tuple[str, ...], int]]:
        """(node, detour, delay) of the nodes nearest ``switch`` that a detour from it may
        run functions on: the ``width`` nearest hosts and trusted hosts, and the ``width``
        nearest neighbour switches (a P4 detour reaches a neighbour only) and trusted ones;
        none farther than ``within`` ns. Each detour is the one :meth:`detour` finds."""
        if switch not in self._vicinity:
            self._prepare_vicinity((switch,), width)
        return [(n, d, delay) for n, d, delay, _ in self._vicinity[switch] if delay <= within]

    def prepare_vicinity(self, switches: Iterable[str], width: int) -> None:
        """Find the vicinity of many switches, a batch of searches at a time."""
        todo = [s for s in dict.fromkeys(switches)
                if s in self._switches and s not in self._vicinity]
        for start in range(0, len(todo), _BATCH):
            kept = dict(self._rows)
            self._prepare_vicinity(todo[start:start + _BATCH], width)
            self._rows = kept

    def _prepare_vicinity(self, switches: Iterable[str], width: int) -> None:
        switches = list(switches)
        self._search(switches)
        hosts = self._hosts
        for switch in switches:
            rows = self._rows[switch]
            k = rows.row[switch]
            dist, pred = rows.dist[k], rows.pred[k]
            found: list[tuple[str, tuple[str, ...], int, bool]] = []
            # Neighbour switches reached directly, nearest (then first declared) first.
            me = self._links.index[switch]
            near = np.flatnonzero(pred == me)
            order = near[np.lexsort((near, dist[near]))]
            self._take(found, [(self._links.names[j], float(dist[j])) for j in order],
                       width, lambda name, switch=switch: (switch, name))
            # Hosts, by their best switch neighbour (lowest weight, then first name).
            if hosts.names:
                via = dist[hosts.switch] + hosts.weight
                reach = np.full(len(hosts.names), np.inf)
                np.minimum.at(reach, hosts.host, via)
                order = np.lexsort((np.arange(len(reach)), reach))
                order = order[np.isfinite(reach[order])]
                self._take(found, [(hosts.names[j], float(reach[j])) for j in order],
                           width, lambda name, switch=switch: self.detour(switch, name))
            self._vicinity[switch] = found

    def _take(self, found: list, ranked: list[tuple[str, float]], width: int, detour) -> None:
        """The first ``width`` of ``ranked``, and the first ``width`` trusted ones."""
        topo = self.topology
        any_, trusted = 0, 0
        for name, _ in ranked:
            if any_ >= width and trusted >= width:
                break
            node = topo.node(name)
            if any_ >= width and not node.trusted:
                continue
            path = detour(name)
            if path is None:
                continue
            any_ += 1
            trusted += node.trusted
            found.append((name, tuple(path), self.delay(tuple(path)), node.trusted))

    @cached_property
    def _hosts(self) -> _HostLinks:
        return _HostLinks(self.topology, self._links)

    # ------------------------------------------------------------------ measures

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


class _HostLinks:
    """Every host's links to switches, as arrays: host index, switch index, weight."""

    def __init__(self, topology: I.Topology, links: Links) -> None:
        self.names = [h.name for h in topology.hosts]
        index = {n: i for i, n in enumerate(self.names)}
        host, switch, weight = [], [], []
        for lk in topology.links:
            for h, s in ((lk.a.node, lk.b.node), (lk.b.node, lk.a.node)):
                if h in index and s in links.index:
                    host.append(index[h])
                    switch.append(links.index[s])
                    weight.append(lk.delay.ns * HOPS + 1)
        self.host = np.asarray(host, dtype=np.int64)
        self.switch = np.asarray(switch, dtype=np.int64)
        self.weight = np.asarray(weight, dtype=np.float64)
