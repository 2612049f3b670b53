"""Per-packet models of the chain's filter and monitor functions, with their counters.

One object per function instance (shared by every route through it), deciding in arrival
order. The semantics are those ``stdlib/std/security.mosaico`` documents:

* ``Blocklist`` / ``Allowlist`` — the source address against the prefixes;
* ``RateLimit`` — a token bucket of ``rate`` packets/s and ``burst`` packets, one for the
  service or one per source; per-source buckets are indexed by CRC-32 of the address modulo
  ``buckets``, so distinct sources can share a bucket as they share a P4 meter cell;
* ``SynGuard`` — TCP SYNs counted per destination (CRC-32 modulo ``buckets``) in fixed
  windows of ``interval``; SYNs beyond ``max_syns`` in a window are dropped;
* ``Acl`` — the first rule whose predicate holds (``ir.predicate.evaluate``) decides,
  otherwise ``default``;
* ``Mirror`` — counted; the copies themselves are not simulated.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from ipaddress import IPv4Network
from typing import Any

from ..ir import _ir as I
from ..ir.predicate import Predicate, evaluate
from .binding import packet_header

__all__ = ["Filter", "Blocklist", "Allowlist", "RateLimit", "SynGuard", "Acl", "Counter",
           "Classifier", "PassThrough", "build_filter", "packet_fields", "MODELLED"]

NS = 1_000_000_000

# Functions with a model here; queue and forward functions act elsewhere (ports, routes).
MODELLED = ("std.security.Blocklist", "std.security.Allowlist", "std.security.RateLimit",
            "std.security.SynGuard", "std.security.Acl", "std.fwd.Mirror", "std.fwd.Forward")


def packet_fields(pkt: Any) -> Mapping[str, Any]:
    """The header fields a predicate may read (``ipv4.src`` → ``IPv4Address``, ...)."""
    return packet_header(pkt.flow.fields, pkt.flow.proto, pkt.src, pkt.ecn, pkt.syn)


class Filter:
    """A function instance that may drop packets; ``admit`` decides and counts."""

    def __init__(self, instance: str, function: str, node: str) -> None:
        self.instance = instance
        self.function = function
        self.node = node
        self.passed = 0
        self.dropped = 0

    def admit(self, t: int, pkt: Any) -> bool:
        if self.decide(t, pkt):
            self.passed += 1
            return True
        self.dropped += 1
        return False

    def decide(self, t: int, pkt: Any) -> bool:
        raise NotImplementedError


def _nets(prefixes: tuple[IPv4Network, ...]) -> tuple[tuple[int, int], ...]:
    return tuple((int(n.network_address), int(n.netmask)) for n in prefixes)


class Blocklist(Filter):
    def __init__(self, instance: str, function: str, node: str,
                 prefixes: tuple[IPv4Network, ...]) -> None:
        super().__init__(instance, function, node)
        self.nets = _nets(prefixes)
        self._cache: dict[int, bool] = {}

    def _listed(self, src: int) -> bool:
        hit = self._cache.get(src)
        if hit is None:
            hit = self._cache[src] = any(src & mask == net for net, mask in self.nets)
        return hit

    def decide(self, t: int, pkt: Any) -> bool:
        return not self._listed(pkt.src)


class Allowlist(Blocklist):
    def decide(self, t: int, pkt: Any) -> bool:
        return self._listed(pkt.src)


class RateLimit(Filter):
    def __init__(self, instance: str, function: str, node: str, rate_pps: int, burst: int,
                 per_source: bool, buckets: int) -> None:
        super().__init__(instance, function, node)
        self.rate = rate_pps
        self.burst = burst
        self.per_source = per_source
        self.buckets = buckets
        # bucket -> (tokens scaled by NS, last refill time): integers, no drift
        self._state: dict[int, tuple[int, int]] = {}

    def decide(self, t: int, pkt: Any) -> bool:
        key = zlib.crc32(pkt.src.to_bytes(4, "big")) % self.buckets if self.per_source else 0
        full = self.burst * NS
        tokens, last = self._state.get(key, (full, t))
        tokens = min(full, tokens + (t - last) * self.rate)
        if tokens >= NS:
            self._state[key] = (tokens - NS, t)
            return True
        self._state[key] = (tokens, t)
        return False


class SynGuard(Filter):
    def __init__(self, instance: str, function: str, node: str, max_syns: int,
                 interval_ns: int, buckets: int) -> None:
        super().__init__(instance, function, node)
        self.max_syns = max_syns
        self.interval = interval_ns
        self.buckets = buckets
        self._window = -1
        self._counts: dict[int, int] = {}

    def decide(self, t: int, pkt: Any) -> bool:
        if not pkt.syn:
            return True
        window = t // self.interval
        if window != self._window:
            self._window = window
            self._counts.clear()
        key = zlib.crc32(pkt.flow.dst.to_bytes(4, "big")) % self.buckets
        n = self._counts.get(key, 0) + 1
        self._counts[key] = n
        return n <= self.max_syns


class Acl(Filter):
    def __init__(self, instance: str, function: str, node: str, rules: tuple, default: str
                 ) -> None:
        super().__init__(instance, function, node)
        self.rules = rules
        self.default_allow = default == "allow"
        self._cache: dict[tuple, bool] = {}

    def decide(self, t: int, pkt: Any) -> bool:
        key = (pkt.flow.id, pkt.src, pkt.ecn, pkt.syn)
        hit = self._cache.get(key)
        if hit is None:
            fields = packet_fields(pkt)
            hit = next((r.action == "allow" for r in self.rules
                        if evaluate(r.predicate, fields)), self.default_allow)
            self._cache[key] = hit
        return hit


class Counter(Filter):
    """Counts and passes (``Mirror``)."""

    def decide(self, t: int, pkt: Any) -> bool:
        return True


class PassThrough(Counter):
    """A function the simulator has no model of: it only costs its latency."""


class Classifier(Filter):
    """The service classifier at the first switch: packets the ``match`` rejects are dropped.

    Only built for flows whose packets may not match (a spoofed source that the predicate
    reads, or a flow that never matches), so matched traffic pays nothing for it.
    """

    def __init__(self, node: str, match: Predicate | None, service: str) -> None:
        super().__init__(f"{service}/classifier", "classifier", node)
        self.match = match
        self._cache: dict[tuple, bool] = {}

    def decide(self, t: int, pkt: Any) -> bool:
        if self.match is None:
            return False
        key = (pkt.flow.id, pkt.src, pkt.ecn, pkt.syn)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = evaluate(self.match, packet_fields(pkt))
        return hit


def build_filter(fi: I.FunctionInstance, node: str) -> Filter | None:
    """The model of one instance; ``None`` for functions that act elsewhere (queues)."""
    a = fi.args
    match fi.function:
        case "std.security.Blocklist":
            return Blocklist(fi.id, fi.function, node, tuple(a["prefixes"]))
        case "std.security.Allowlist":
            return Allowlist(fi.id, fi.function, node, tuple(a["prefixes"]))
        case "std.security.RateLimit":
            return RateLimit(fi.id, fi.function, node, a["rate"].pps, int(a["burst"]),
                             a["per"] == "source", int(a["buckets"]))
        case "std.security.SynGuard":
            return SynGuard(fi.id, fi.function, node, int(a["max_syns"]), a["interval"].ns,
                            int(a["buckets"]))
        case "std.security.Acl":
            return Acl(fi.id, fi.function, node, tuple(a["rules"]), str(a["default"]))
        case "std.fwd.Mirror":
            return Counter(fi.id, fi.function, node)
    if fi.kind in ("queue", "forward"):
        return None
    return PassThrough(fi.id, fi.function, node)
