"""``tc.sh``: the queueing functions (``std.l4s.DualQ``, ``std.l4s.Fifo``) on Linux.

DualQ maps onto the ``dualpi2`` qdisc (RFC 9332), mainline since Linux 6.17 with
``tc`` from iproute2 6.17 (earlier through the L4S team's out-of-tree patches). The queue is
shaped with HTB to the bottleneck of the rest of the placed route, so the AQM runs where
the queue actually builds. Where ``dualpi2`` is missing — Debian bookworm's ``tc`` 6.1 does
not know it, and kernels may be built without ``CONFIG_NET_SCH_DUALPI2`` — the script says
so and falls back to ``fq_codel`` with an L4S shallow CE threshold on ECT(1), then to a
plain ``pfifo``; ``MOSAICO_TC_REQUIRE_DUALPI2=1`` makes it fail instead.

Differences from the program's parameters, stated in the script: ``dualpi2`` marks L4S
packets with a step, not a ramp (the step sits mid-ramp); its coupling factor is an
integer; its limit is in packets (the buffer time at the shaped rate, 1500-byte packets).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from ...ir import _ir as I
from ...ir.graph import path_bandwidth
from ...place import Placement
from ._templates import render

__all__ = ["Queue", "queue_config", "render_tc", "bottleneck", "QUEUE_FUNCTIONS"]

QUEUE_FUNCTIONS = ("std.l4s.DualQ", "std.l4s.Fifo")
_MTU_BITS = 1500 * 8
_DEFAULT_LIMIT = 10000  # dualpi2's own default, when no rate is known


@dataclass(frozen=True, slots=True)
class Queue:
    """One queueing function as tc parameters (times in µs, rates in bit/s)."""

    name: str  # what `tc.sh NAME DEV` selects
    instance: str
    function: str
    rate_bps: int | None
    limit_packets: int
    dualpi2: bool
    target_us: int = 0
    tupdate_us: int = 0
    alpha: str = ""
    beta: str = ""
    coupling: int = 2
    step_us: int = 0
    min_qlen_step: int = 0
    interval_us: int = 0
    notes: tuple[str, ...] = ()


def bottleneck(topology: I.Topology, placement: Placement, instance: str) -> int | None:
    """Lowest link bandwidth (bit/s) from where ``instance`` runs to the route's end."""
    best: int | None = None
    for route in placement.routes:
        nodes = route.nodes
        at = next((i for i, v in enumerate(route.visits) if instance in v.instances), None)
        if at is None:
            continue
        rest = tuple(n for i, n in enumerate(nodes[at:]) if i == 0 or n != nodes[at + i - 1])
        if len(rest) < 2 or any(topology.link_between(a, b) is None
                                for a, b in zip(rest, rest[1:], strict=False)):
            continue
        bps = path_bandwidth(topology, rest).bps
        best = bps if best is None else min(best, bps)
    return best


def queue_config(fi: I.FunctionInstance, name: str, rate_bps: int | None) -> Queue:
    args = fi.args
    buffer_ns = args["buffer"].ns
    limit = (max(1, ceil(buffer_ns * rate_bps / 10**9 / _MTU_BITS)) if rate_bps
             else _DEFAULT_LIMIT)
    notes = [f"limit {limit} packets: buffer {args['buffer']} at {rate_bps} bit/s "
             f"in 1500-byte packets" if rate_bps else
             f"limit {limit} packets: no link rate is known to size the buffer"]
    if fi.function == "std.l4s.Fifo":
        return Queue(name, fi.id, fi.function, rate_bps, limit, False, notes=tuple(notes))
    coupling = float(args["coupling"])
    k = max(1, round(coupling))
    if k != coupling:
        notes.append(f"coupling {coupling:g} rounded to {k}: dualpi2 takes an integer factor")
    min_th, rng = args["l4s_min_th"].ns // 1000, args["l4s_range"].ns // 1000
    if args["l4s_mode"] == "ramp":
        step = min_th + rng // 2
        notes.append(f"L4S ramp {min_th}..{min_th + rng} us approximated by dualpi2's step "
                     f"at {step} us (mid-ramp)")
    else:
        step = min_th
    return Queue(
        name, fi.id, fi.function, rate_bps, limit, True,
        target_us=args["classic_target"].ns // 1000,
        tupdate_us=args["tupdate"].ns // 1000,
        alpha=f"{float(args['alpha']):.6g}",
        beta=f"{float(args['beta']):.6g}",
        coupling=k,
        step_us=step,
        min_qlen_step=int(args["th_len"]),
        interval_us=args["rtt_max"].ns // 1000,
        notes=tuple(notes),
    )


def render_tc(title: str, queues: tuple[Queue, ...]) -> str:
    return render("tc/tc.sh.j2", title=title, queues=queues)
