"""What a route's latency is made of, hop by hop — read off the visits, not the solver.

A route's latency is the sum of the delays of the links between consecutive visits, the
processing latency of every function on the target it runs as, and the target delay of the
service's queue. Detours (a walk that leaves a node and comes back to it the same way) are
reported as one item, ``detour s1→nfvi1→s1``, the way users think of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from itertools import pairwise

from ..ir import _ir as I
from ..units import Time
from .placement import Visit

__all__ = ["ItemKind", "Item", "Breakdown", "breakdown", "format_time", "describe"]


class ItemKind(Enum):
    LINK = "link"
    DETOUR = "detour"
    PROCESSING = "processing"
    QUEUEING = "queueing"


@dataclass(frozen=True, slots=True)
class Item:
    kind: ItemKind
    label: str
    delay: Time
    instance: str | None = None  # PROCESSING / QUEUEING: the function instance


@dataclass(frozen=True, slots=True)
class Breakdown:
    items: tuple[Item, ...]

    @property
    def total(self) -> Time:
        return Time(sum(i.delay.ns for i in self.items))

    def of(self, kind: ItemKind) -> Time:
        return Time(sum(i.delay.ns for i in self.items if i.kind is kind))


def breakdown(topology: I.Topology, service: I.Service, visits: tuple[Visit, ...],
              runs: Mapping[str, str]) -> Breakdown:
    """The items of a route, in traffic order; ``runs`` maps instance id → target.

    Raises ``KeyError`` if two consecutive visits are not linked (the verifier checks that
    first and reports it).
    """
    by_id = {fi.id: fi for fi in service.chain}
    nodes = tuple(v.node for v in visits)
    items: list[Item] = []

    def processing(v: Visit) -> None:
        for fi_id in v.instances:
            fi, target = by_id.get(fi_id), runs.get(fi_id)
            option = fi.option(target) if fi is not None and target is not None else None
            if option is not None:
                items.append(Item(ItemKind.PROCESSING, f"{fi.name} on {v.node} ({target})",
                                  option.latency, fi_id))

    processing(visits[0])
    k = 0
    while k < len(nodes) - 1:
        end = _detour_end(nodes, k)
        if end is None:
            lk = _link(topology, nodes[k], nodes[k + 1])
            items.append(Item(ItemKind.LINK, f"link {lk.end(nodes[k])}→{lk.end(nodes[k + 1])}",
                              lk.delay))
            k += 1
            processing(visits[k])
        else:
            delay = sum(_link(topology, a, b).delay.ns
                        for a, b in pairwise(nodes[k:end + 1]))
            items.append(Item(ItemKind.DETOUR, "detour " + "→".join(nodes[k:end + 1]),
                              Time(delay)))
            for v in visits[k + 1:end + 1]:
                processing(v)
            k = end
    queue = service.queueing
    target_delay = queue.queue_target if queue is not None else None
    if target_delay is not None and target_delay.ns:
        items.append(Item(ItemKind.QUEUEING, f"{queue.name} queueing target", target_delay,
                          queue.id))
    return Breakdown(tuple(items))


def _link(topology: I.Topology, a: str, b: str) -> I.Link:
    lk = topology.link_between(a, b)
    if lk is None:
        raise KeyError(f"{a} and {b} are not linked")
    return lk


def _detour_end(nodes: tuple[str, ...], k: int) -> int | None:
    """Index where a there-and-back walk starting at ``nodes[k]`` returns, if it is one."""
    for end in range(k + 2, len(nodes), 2):
        if nodes[end] == nodes[k]:
            seg = nodes[k:end + 1]
            return end if seg == seg[::-1] and nodes[k] not in seg[1:-1] else None
    return None


def format_time(t: Time) -> str:
    """Times for people: ``23.1ms``, ``100us``, ``1.235ms`` (at most three decimals)."""
    ns = t.ns
    for unit, factor in (("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if abs(ns) >= factor:
            text = f"{ns / factor:.3f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return f"{ns}ns"


def describe(b: Breakdown) -> str:
    """``link client→s1.1 1ms, Blocklist as p4.v1model 1us, …``"""
    return ", ".join(f"{i.label} {format_time(i.delay)}" for i in b.items)
