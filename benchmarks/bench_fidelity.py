"""DualQ fidelity: the simulator against published Linux DualPI2 measurements.

One TCP Prague flow against one Classic flow (Reno or CUBIC, Not-ECT) through
``std.l4s.DualQ()`` (RFC 9332 defaults) on a bottleneck of rate R and base RTT T — the
grid 4, 12, 40, 120 Mb/s × 5, 10, 20, 50, 100 ms, three seeds each — and the points where
measurements were published (CUBIC only, at their rates). Per point it prints the
Classic/L4S goodput ratio (mean over the seeds, and its range), the L and Classic queue
delay p50/p99, the longest time the Classic queue held packets while none left it
(starvation; the aim is < 1 s), and the published figure beside it with its source.

Published figures (Classic/L4S goodput, one Prague and one CUBIC flow, equal base RTTs):

* **L4S team, RTT independence** — Prague with ``rtt_scaling=0`` (no RTT independence, as
  the simulator's Prague), Linux DualPI2 defaults, 100 Mb/s: 0.23, 0.41, 0.56 and
  0.45–0.58 at 5, 10, 20 and 50 ms (L4STeam, "Prague RTT-independence" experiments,
  github.com/L4STeam/linux, as summarised in the project's issue 13);
* **Heist & Morton, l4s-tests, scenario 1** (Prague vs CUBIC through DualPI2,
  github.com/heistp/l4s-tests): 10 Mb/s — 0.47, 0.54–0.55, 0.58–0.59 at 10, 20, 80 ms;
  50 Mb/s — 0.37–0.38, 0.46–0.50, 0.58–0.70 at 10, 20, 50–100 ms. Their CUBIC was
  ECN-capable: the harness (``fl``, ``ns_setup``) sets ``net.ipv4.tcp_ecn=3`` on the client
  and the server, so CUBIC negotiated (Accurate) ECN and sent ECT(0); these points run
  ``cubic[ecn=ect0]``, whose packets DualPI2 marks rather than drops.

The aim: every anchored point within ±0.15 of its figure, no grid point outside
[0.2, 1.5]. Goodput is measured after a warm-up (a third of the run), and runs last long
enough for Prague, which grows one segment per RTT, to converge: ``--rtts-per-run`` RTTs
(default 1500), at least ``--min-duration`` seconds.

It is long at full scale (about 12 CPU-minutes here); run it in parts and with ``nice``::

    nice -n 10 python benchmarks/bench_fidelity.py --rates 12 --rtts 5,20 --seeds 1
    nice -n 10 python benchmarks/bench_fidelity.py --anchors-only --workers 2
    nice -n 10 python benchmarks/bench_fidelity.py --grid-only --ccs reno

Every run also prints its speed (simulated seconds per wall second).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

PROGRAM = """import std.l4s
from std.fwd import Forward

topology bench {{
  switch s1 : bmv2 {{ ports: 4, priority_queues: 2, queue_rate: {rate} }}
  endpoint l4s_client {{ ip: 10.0.1.1, trusted: true }}
  endpoint classic_client {{ ip: 10.0.1.2, trusted: true }}
  endpoint server {{ ip: 10.0.2.1 }}
  link l4s_client -- s1.1 {{ bandwidth: 10Gbps, delay: {edge} }}
  link classic_client -- s1.2 {{ bandwidth: 10Gbps, delay: {edge} }}
  link s1.0 -- server {{ bandwidth: {rate}, delay: {core} }}
}}

service bulk on bench {{
  match ipv4.dst == server
  chain {{ std.l4s.DualQ() -> Forward(to: server) }}
}}
"""

GRID_RATES = (4, 12, 40, 120)
GRID_RTTS = (5, 10, 20, 50, 100)
L4S_TEAM = "L4S team, Prague rtt_scaling=0 vs CUBIC, DualPI2 defaults, 100 Mb/s"
HEIST_10 = "Heist & Morton l4s-tests scenario 1, 10 Mb/s"
HEIST_50 = "Heist & Morton l4s-tests scenario 1, 50 Mb/s"
ECN_CLASSIC = {HEIST_10, HEIST_50}  # sources whose CUBIC sent ECT(0) (see the docstring)
# (rate Mb/s, base RTT ms) -> (low, high, source): Classic/L4S goodput ratio, CUBIC.
ANCHORS: dict[tuple[int, int], tuple[float, float, str]] = {
    (100, 5): (0.23, 0.23, L4S_TEAM),
    (100, 10): (0.41, 0.41, L4S_TEAM),
    (100, 20): (0.56, 0.56, L4S_TEAM),
    (100, 50): (0.45, 0.58, L4S_TEAM),
    (10, 10): (0.47, 0.47, HEIST_10),
    (10, 20): (0.54, 0.55, HEIST_10),
    (10, 80): (0.58, 0.59, HEIST_10),
    (50, 10): (0.37, 0.38, HEIST_50),
    (50, 20): (0.46, 0.50, HEIST_50),
    (50, 50): (0.58, 0.70, HEIST_50),
    (50, 100): (0.58, 0.70, HEIST_50),
}
TOLERANCE = 0.15
GRID_BOUNDS = (0.2, 1.5)
STALL_LIMIT_MS = 1000.0


@dataclass(frozen=True)
class Point:
    rate: int  # Mb/s
    rtt: int  # ms
    cc: str  # reno | cubic
    seed: int
    ecn: bool  # the Classic flow is ECN-capable (ECT(0))
    duration: float  # s
    warmup: float  # s

    @property
    def vs(self) -> str:
        """The Classic flow as the report names it: reno, cubic, or cubic+ecn."""
        return f"{self.cc}+ecn" if self.ecn else self.cc


@dataclass(frozen=True)
class Outcome:
    point: Point
    ratio: float
    l_p50: float
    l_p99: float
    c_p50: float
    c_p99: float
    stall_ms: float
    wall: float


def program(rate: int, rtt: int) -> str:
    """A bottleneck of ``rate`` Mb/s whose base RTT (both directions, no queueing) is
    ``rtt`` ms: the clients sit 100 µs from the switch, the server the rest."""
    edge_us = 100
    core_us = rtt * 500 - edge_us
    return PROGRAM.format(rate=f"{rate}Mbps", edge=f"{edge_us}us", core=f"{core_us}us")


def run(pt: Point) -> Outcome:
    from mosaico_dsl.sim import simulate

    t0 = time.perf_counter()
    classic = f"{pt.cc}:1[ecn=ect0]" if pt.ecn else f"{pt.cc}:1"
    r = simulate(program(pt.rate, pt.rtt), duration=pt.duration,
                 traffic=f"prague:1,{classic}", seed=pt.seed, bin=0.1)
    wall = time.perf_counter() - t0
    tr = r.traces
    start = int(pt.warmup / (tr.bin_ns / 1e9))
    got = {c: 0 for c in ("l4s", "classic")}
    for i, klass in enumerate(tr.flow_classes):
        got[klass] += int(tr.goodput[i, start:].sum())
    ratio = got["classic"] / got["l4s"] if got["l4s"] else float("inf")
    b = r.bottleneck
    l4s, classic = b.cls("l4s"), b.cls("classic")
    return Outcome(pt, ratio, l4s.delay_ms.p50, l4s.delay_ms.p99, classic.delay_ms.p50,
                   classic.delay_ms.p99, max(l4s.max_stall_ms, classic.max_stall_ms), wall)


def points(args) -> list[Point]:
    out: list[Point] = []

    def add(rate: int, rtt: int, cc: str, ecn: bool = False) -> None:
        duration = max(args.min_duration, args.rtts_per_run * rtt / 1000)
        if args.max_duration:
            duration = min(duration, args.max_duration)
        for seed in range(1, args.seeds + 1):
            p = Point(rate, rtt, cc, seed, ecn, duration, duration / 3)
            if p not in out:
                out.append(p)

    rates = args.rates or GRID_RATES
    rtts = args.rtts or GRID_RTTS
    if not args.anchors_only:
        for rate in rates:
            for rtt in rtts:
                for cc in args.ccs:
                    add(rate, rtt, cc)
    if not args.grid_only:
        for (rate, rtt) in ANCHORS:
            if (args.rates and rate not in args.rates) or (args.rtts and rtt not in args.rtts):
                continue
            add(rate, rtt, "cubic", ANCHORS[rate, rtt][2] in ECN_CLASSIC)
    return out


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=_ints, default=(), help="Mb/s, e.g. 12,40 (default: grid)")
    ap.add_argument("--rtts", type=_ints, default=(), help="ms, e.g. 5,20 (default: grid)")
    ap.add_argument("--ccs", type=lambda s: tuple(s.split(",")), default=("reno", "cubic"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rtts-per-run", type=float, default=1500.0)
    ap.add_argument("--min-duration", type=float, default=40.0, help="s")
    ap.add_argument("--max-duration", type=float, default=0.0, help="s (0: no cap)")
    ap.add_argument("--workers", type=int, default=1,
                    help="processes (the machine is shared: keep it small)")
    ap.add_argument("--grid-only", action="store_true")
    ap.add_argument("--anchors-only", action="store_true")
    args = ap.parse_args()

    todo = points(args)
    print(f"{len(todo)} runs, {sum(p.duration for p in todo):.0f} simulated seconds, "
          f"{args.workers} worker(s)", flush=True)
    t0 = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            done = list(pool.map(run, todo))
    else:
        done = []
        for p in todo:
            done.append(run(p))
            o = done[-1]
            print(f"  {p.rate:>4} Mb/s {p.rtt:>4} ms {p.vs:<9} seed {p.seed}: C/L {o.ratio:5.2f}, "
                  f"stall {o.stall_ms:7.1f} ms, {p.duration / o.wall:6.1f} sim s per wall s",
                  flush=True)
    wall = time.perf_counter() - t0
    report(done, wall)


def _avg(runs: list[Outcome], name: str) -> float:
    return sum(getattr(o, name) for o in runs) / len(runs)


def report(done: list[Outcome], wall: float) -> None:
    groups: dict[tuple[int, int, str], list[Outcome]] = {}
    for o in done:
        groups.setdefault((o.point.rate, o.point.rtt, o.point.vs), []).append(o)
    print()
    print(f"{'Mb/s':>5} {'RTT':>4} {'vs':<9} {'C/L':>5} {'range':>11}  {'L p50':>6} {'L p99':>6}"
          f"  {'C p50':>6} {'C p99':>6}  {'stall':>7}  published (source)")
    misses, outside, stalls = [], [], []
    for (rate, rtt, cc), runs in sorted(groups.items()):
        ratios = [o.ratio for o in runs]
        mean = sum(ratios) / len(ratios)
        stall = max(o.stall_ms for o in runs)
        anchor = ANCHORS.get((rate, rtt)) if cc.startswith("cubic") else None
        ref = ""
        if anchor:
            lo, hi, source = anchor
            ok = lo - TOLERANCE <= mean <= hi + TOLERANCE
            ref = f"{lo:.2f}" + (f"–{hi:.2f}" if hi != lo else "") + \
                f" {'ok' if ok else 'MISS'} ({source})"
            if not ok:
                misses.append((rate, rtt, mean, lo, hi))
        if rate in GRID_RATES and rtt in GRID_RTTS and not GRID_BOUNDS[0] <= mean <= \
                GRID_BOUNDS[1]:
            outside.append((rate, rtt, cc, mean))
        if stall > STALL_LIMIT_MS:
            stalls.append((rate, rtt, cc, stall))
        print(f"{rate:>5} {rtt:>4} {cc:<9} {mean:5.2f} {min(ratios):5.2f}–{max(ratios):<5.2f}"
              f"  {_avg(runs, 'l_p50'):6.2f} {_avg(runs, 'l_p99'):6.2f}"
              f"  {_avg(runs, 'c_p50'):6.1f} {_avg(runs, 'c_p99'):6.1f}"
              f"  {stall:7.1f}  {ref}")
    sim_s = sum(o.point.duration for o in done)
    cpu = sum(o.wall for o in done)
    print()
    print(f"{len(done)} runs, {sim_s:.0f} simulated s in {wall:.0f} s of wall time "
          f"({cpu:.0f} s in the runs: {sim_s / cpu:.1f} simulated s per run-second)")
    anchored = sum(1 for (r, t, c) in groups if c.startswith("cubic") and (r, t) in ANCHORS)
    print(f"anchored points within ±{TOLERANCE}: {anchored - len(misses)}/{anchored}"
          + "".join(f"; MISS {r} Mb/s {t} ms: {m:.2f} vs {lo:.2f}–{hi:.2f}"
                    for r, t, m, lo, hi in misses))
    print(f"grid points outside [{GRID_BOUNDS[0]}, {GRID_BOUNDS[1]}]: {len(outside)}"
          + "".join(f"; {r} Mb/s {t} ms {c}: {m:.2f}" for r, t, c, m in outside))
    print(f"points with a Classic (or L) stall over {STALL_LIMIT_MS:.0f} ms: {len(stalls)}"
          + "".join(f"; {r} Mb/s {t} ms {c}: {s:.0f} ms" for r, t, c, s in stalls))


if __name__ == "__main__":
    main()
