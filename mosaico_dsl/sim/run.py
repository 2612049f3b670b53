"""``simulate()``: from a program (file, text, API or IR) to a :class:`SimResult`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from ..diagnostics import Collector, CompileError, error
from ..ir import _ir as I
from ..place import Placement, PlacementError, place
from ..units import Time, parse_quantity
from .binding import packets_at_most
from .metrics import SimResult, collect
from .network import build
from .traffic import TRAFFIC_FILE, FlowSpec, check_flows, parse_traffic

__all__ = ["simulate", "DEFAULT_TRAFFIC", "DEFAULT_DURATION", "DEFAULT_SEED", "as_time"]

DEFAULT_TRAFFIC = "prague:1,cubic:1"
DEFAULT_DURATION = "60s"
DEFAULT_SEED = 1
_MAX_DURATION = Time(24 * 3600 * 10**9)
# Packets a run may send, all flows together: a packet costs 3–4 events, about 40 µs of
# this project's machine (docs/simulation.md), so the default bounds a run to minutes.
MAX_PACKETS = 10_000_000
Progress = Callable[[int, int], None]  # (simulated ns so far, total ns)


def as_time(value: Any, what: str = "duration") -> Time:
    """``"60s"``, a :class:`Time`, or seconds as a number → Time; CompileError otherwise."""
    if isinstance(value, Time):
        t = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise CompileError([error("E1106", f"invalid {what} {value!r}", None,
                                      "write a time such as 60s or 500ms")])
        t = Time(round(value * 10**9))
    else:
        try:
            t = parse_quantity(str(value))
        except ValueError:
            t = None
        if not isinstance(t, Time):
            raise CompileError([error("E1106", f"invalid {what} {value!r}", None,
                                      "write a time such as 60s or 500ms")])
    if not Time(0) < t <= _MAX_DURATION:
        raise CompileError([error("E1106", f"{what} {t} is out of range", None,
                                  "simulate between 1ns and 24h")])
    return t


def _program(source: Any, search_paths: Sequence[Path]) -> tuple[I.Program, Placement | None,
                                                                str]:
    from ..compiler import CompileResult, check

    if isinstance(source, CompileResult):
        return source.program, source.placement, "<compiled>"
    if isinstance(source, I.Program):
        return source, None, "<ir>"
    if isinstance(source, str) and "\n" not in source and source.endswith(".mosaico"):
        source = Path(source)
    if isinstance(source, Path):
        return check(source, search_paths=search_paths), None, source.name
    name = "<api>" if not isinstance(source, str) else "<input>"
    return check(source, search_paths=search_paths), None, name


def simulate(source: Any, *, duration: Any = DEFAULT_DURATION,
             traffic: str | Sequence[FlowSpec] = DEFAULT_TRAFFIC, seed: int = DEFAULT_SEED,
             bin: Any = None, progress: Progress | None = None,
             search_paths: Sequence[Path] = (), max_packets: int | None = MAX_PACKETS
             ) -> SimResult:
    """Simulate a placed program; raises :class:`CompileError` on any user error.

    ``source`` is a path (a :class:`~pathlib.Path`, or a ``str`` ending in ``.mosaico``),
    program text, an :class:`mosaico_dsl.Program`, a checked IR program or a
    :class:`~mosaico_dsl.CompileResult`. ``duration`` and ``bin`` (the throughput
    resolution, 100 ms by default, finer for short runs) take ``"60s"``, a
    :class:`~mosaico_dsl.Time` or seconds. ``traffic`` is a specification string (see
    :mod:`mosaico_dsl.sim.traffic`) or parsed :class:`FlowSpec` values. The same inputs and
    seed give the same result, bit for bit. ``progress(done_ns, total_ns)`` is called as the
    run advances. A run whose flows could send more than ``max_packets`` packets (None: no
    limit) is refused before it starts (E1108).
    """
    # The mistakes of the duration, the traffic and the program are reported together.
    attempt = Collector()
    errors, sources = attempt.errors, attempt.sources
    dur = attempt(lambda: as_time(duration))
    specs = attempt(lambda: parse_traffic(traffic) if isinstance(traffic, str)
                    else check_flows(tuple(traffic)))
    bin_t = attempt(lambda: as_time(bin, "bin")) if bin is not None else None
    loaded = attempt(lambda: _program(source, search_paths))
    if specs == ():
        errors.append(error("E1107", "no traffic to simulate", None,
                            f"give flows, e.g. {DEFAULT_TRAFFIC}"))
    if errors:
        raise CompileError(errors, sources)
    program, placement, name = loaded
    if bin_t is None:
        bin_t = Time(max(1_000_000, min(100_000_000, dur.ns // 200)))
    if placement is None:
        try:
            placement = place(program)
        except PlacementError as e:
            raise CompileError(e.diagnostics) from None
    if isinstance(traffic, str):
        sources[TRAFFIC_FILE] = traffic
    too_many = _too_many_packets(program, placement, specs, dur, max_packets)
    if too_many is not None:
        raise CompileError([too_many], sources)
    net = build(program, placement, specs, duration=dur.ns, seed=int(seed), bin_ns=bin_t.ns,
                sources=sources)
    steps = 200
    for i in range(1, steps + 1):
        net.run(dur.ns * i // steps)
        if progress is not None:
            progress(dur.ns * i // steps, dur.ns)
    return collect(net, name)


def _too_many_packets(program: I.Program, placement: Placement, specs: Sequence[FlowSpec],
                      duration: Time, limit: int | None):
    """E1108 when the flows could send more than ``limit`` packets in ``duration``: an
    open-loop flow sends at its rate, a TCP flow at most what the narrowest link of the
    widest placed route carries."""
    if limit is None:
        return None
    fastest = 0
    for route in placement.routes:
        topo = program.topology(program.service(route.service).topology)
        links = [topo.link_between(a, b) for a, b in pairwise(route.nodes)]
        fastest = max(fastest, min((lk.bandwidth.bps for lk in links if lk is not None),
                                   default=0))
    counts = [(packets_at_most(s, duration.ns, fastest), s) for s in specs]
    total = sum(n for n, _ in counts)
    if total <= limit:
        return None
    n, worst = max(counts, key=lambda c: c[0])
    return error("E1108", f"the traffic could send about {total:,} packets in {duration} "
                 f"(`{worst}` alone {n:,}); a run simulates at most {limit:,}",
                 worst.span, "lower the flow's rate, count or active time, or the duration; "
                 "or raise the limit (`mosaico sim --max-packets N`)")
