"""Placement benchmark: CP-SAT against the greedy first-fit baseline, in one run.

A seeded generator writes a `.mosaico` program — 50 switches, 20 VNF hosts, 40 endpoints,
200 services of 4 functions each (two mitigations or monitors, the destination's egress
queue, a forward), latency budgets a little above each service's floor, some `require
secure`, some `prefer: vnf` — and checks it with the real front end. Both placers run on
it; the script prints model size, solve time, per-level optimality gap, the objective of
each, and their ratio. Figures are measured, never asserted.

    python benchmarks/bench_place.py [--services 200] [--seed 7] [--workers 1] [--groups 50]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import mosaico_dsl as mo
from mosaico_dsl.check.services import latency_floor
from mosaico_dsl.place import Options, PlacementError, evaluate, first_fit, place, verify
from mosaico_dsl.place._paths import Transit
from mosaico_dsl.place.latency import format_time

FILTERS = (
    "sec.Blocklist(prefixes: [203.0.113.0/24, 198.51.100.0/24])",
    "sec.RateLimit(rate: 20kpps, burst: 200)",
    "sec.SynGuard(max_syns: 200)",
    "sec.Blocklist(prefixes: [192.0.2.0/24])",
)
MONITOR = "Mirror(to: {collector})"
QUEUES = ("std.l4s.DualQ(classic_target: 15ms)", "std.l4s.Fifo()")


def generate(services: int = 200, switches: int = 50, hosts: int = 20, endpoints: int = 40,
             seed: int = 7) -> str:
    """A program as `.mosaico` text; budgets are set from a first check of the same program."""
    rng = random.Random(seed)
    draft = _program(rng.getstate(), services, switches, hosts, endpoints, budgets=None)
    ir = mo.check(draft)
    topo = ir.topologies[0]
    transit = Transit(topo)
    budgets = {}
    brng = random.Random(seed + 1)
    for svc in ir.services:
        processing, queue = latency_floor(svc)
        worst = max(transit.delay(transit.base(src, svc.destination)) for src in svc.sources)
        floor = worst + processing.ns + queue.ns
        if brng.random() < 0.1:
            continue  # no budget: counted by its worst latency instead
        budgets[svc.name] = floor + brng.choice((100, 200, 400, 800, 1500, 3000)) * 1000
    return _program(rng.getstate(), services, switches, hosts, endpoints, budgets)


def _program(state, n_services, n_switches, n_hosts, n_endpoints, budgets) -> str:
    rng = random.Random()
    rng.setstate(state)
    pos = {f"s{i}": (rng.random(), rng.random()) for i in range(n_switches)}
    names = list(pos)

    def dist(a, b):
        (x1, y1), (x2, y2) = pos[a], pos[b]
        return ((x1 - x2) ** 2 + (y1 - y2) ** 2) ** 0.5

    edges: set[tuple[str, str]] = set()
    for i, s in enumerate(names[1:], start=1):
        near = min(names[:i], key=lambda t: dist(s, t))
        edges.add(tuple(sorted((s, near))))
    for s in names:
        for t in sorted((t for t in names if t != s), key=lambda t: dist(s, t))[:2]:
            edges.add(tuple(sorted((s, t))))
    hosts = [f"h{i}" for i in range(n_hosts)]
    eps = [f"e{i}" for i in range(n_endpoints)]
    host_at = {h: rng.choice(names) for h in hosts}
    endpoint_at = {e: rng.choice(names) for e in eps}
    servers = eps[:10]
    clients = eps[10:]
    egress = {endpoint_at[srv] for srv in servers}
    lines = ["import std.l4s", "import std.security as sec", "from std.fwd import Forward, Mirror",
             "", "topology net {"]
    for s in names:
        # The last hop before a server holds every chain's queue and final forward.
        stages = 64 if s in egress else rng.choice((8, 12, 16))
        # A few switches cannot hold a DualQ — never the last hop before a server.
        queues = 1 if rng.random() < 0.1 and s not in egress else 2
        trusted = "false" if rng.random() < 0.1 else "true"
        entries = 16384 if s in egress else 2048
        lines.append(f"  switch {s} : bmv2 {{ ports: 32, priority_queues: {queues}, "
                     f"stages: {stages}, table_entries: {entries}, trusted: {trusted} }}")
    for h in hosts:
        trusted = "true" if rng.random() < 0.6 else "false"
        lines.append(f"  host {h} : openstack {{ vcpus: {rng.choice((8, 16))}, ram: 64GiB, "
                     f"trusted: {trusted} }}")
    for i, e in enumerate(eps):
        trusted = "true" if rng.random() < 0.7 else "false"
        lines.append(f"  endpoint {e} {{ ip: 10.{i // 200}.{i % 200}.1, trusted: {trusted} }}")
    port = {s: 0 for s in names}

    def end(s):
        port[s] += 1
        return f"{s}.{port[s] - 1}"

    for a, b in sorted(edges):
        delay = max(50, round(dist(a, b) * 2000))
        lines.append(f"  link {end(a)} -- {end(b)} {{ bandwidth: 10Gbps, delay: {delay}us }}")
    for h in hosts:
        s = host_at[h]
        lines.append(f"  link {end(s)} -- {h} {{ bandwidth: 10Gbps, "
                     f"delay: {rng.randint(20, 100)}us }}")
    for e in eps:
        s = endpoint_at[e]
        lines.append(f"  link {end(s)} -- {e} {{ bandwidth: 1Gbps, "
                     f"delay: {rng.randint(200, 1000)}us }}")
    lines.append("}")
    queue_of = {srv: rng.choice(QUEUES) for srv in servers}
    for k in range(n_services):
        name = f"svc{k}"
        dst = rng.choice(servers)
        sources = rng.sample(clients, rng.choice((1, 1, 2)))
        first = rng.choice(FILTERS)
        second = MONITOR.format(collector=rng.choice(servers)) if rng.random() < 0.2 \
            else rng.choice(FILTERS)
        if rng.random() < 0.1:
            second = second[:-1] + ", prefer: vnf)"
        secure = rng.random() < 0.3
        lines += ["", f"service {name} on net {{", f"  from {', '.join(sources)}"]
        if budgets is not None and name in budgets:
            lines.append(f"  require latency <= {budgets[name] // 1000}us")
        if secure:
            lines.append("  require secure")
        lines += ["  chain {", f"    {first}", f"    -> {second}", f"    -> {queue_of[dst]}",
                  f"    -> Forward(to: {dst})", "  }", "}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--switches", type=int, default=50)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--limit", type=float, default=Options().deterministic_time,
                    help="CP-SAT deterministic time per solve")
    ap.add_argument("--write", type=Path, help="also write the generated program here")
    ap.add_argument("--groups", type=int, metavar="SIZE",
                    help="also place it as a large program is placed: in groups of SIZE "
                         "services on narrowed models (docs/placement.md), against the "
                         "exact optimum")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    text = generate(args.services, args.switches, args.hosts, seed=args.seed)
    program = mo.check(text)
    t_gen = time.perf_counter() - t0
    if args.write:
        args.write.write_text(text)
    n_fn = sum(len(s.chain) for s in program.services)
    print(f"instance: {len(program.services)} services, {n_fn} functions, "
          f"{args.switches} switches, {args.hosts} hosts (seed {args.seed}); "
          f"generated and checked in {t_gen:.2f}s")

    t0 = time.perf_counter()
    try:
        greedy = first_fit(program)
        greedy_error = None
    except PlacementError as e:
        greedy, greedy_error = None, e
    t_greedy = time.perf_counter() - t0

    options = Options(deterministic_time=args.limit, workers=args.workers)
    t0, c0 = time.perf_counter(), time.process_time()
    best = place(program, options=options)
    t_opt, t_opt_cpu = time.perf_counter() - t0, time.process_time() - c0

    primary = all(lv.optimal for lv in best.search.levels[:-1])
    status = "optimal" if best.search.optimal else (
        f"optimal on every level but the tie-break, which is within "
        f"{best.search.levels[-1].gap:.2%} of its bound" if primary
        else "NOT proven optimal within the limit")
    print(f"\ncp-sat ({args.workers} worker(s), {args.limit:g} deterministic s per solve): "
          f"{t_opt:.2f}s wall, {t_opt_cpu:.2f}s CPU — {status}")
    for lv in best.search.levels:
        print(f"  {lv.name:36} value {lv.value:>14}  bound {lv.bound:>14}  gap {lv.gap:.3%}")
    print(f"  verification: {len(verify(program, best))} violations")

    if args.groups:
        grouped_options = replace(options, exact_size=0, group_size=args.groups)
        t0 = time.perf_counter()
        grouped = place(program, options=grouped_options)
        t_grouped = time.perf_counter() - t0
        print(f"\nin groups of {args.groups} ({grouped.search.groups} after merges): "
              f"{t_grouped:.2f}s wall, {len(verify(program, grouped))} violations")
        for exact, lv in zip(best.search.levels, grouped.search.levels, strict=True):
            worse = (lv.value - exact.value) / max(exact.value, 1)
            print(f"  {lv.name:36} value {lv.value:>14}  ({worse:+.2%} of the exact model's)"
                  f"  gap {lv.gap:.3%}")

    print(f"\nfirst-fit: {t_greedy:.2f}s wall")
    if greedy is None:
        print(f"  failed: {greedy_error}")
        return 0
    g_obj = evaluate(program, greedy)
    violations = verify(program, greedy)
    kinds = sorted({v.check.value for v in violations})
    print(f"  verification: {len(violations)} violations ({', '.join(kinds) or 'none'})")

    o = best.objective
    print("\nobjective (lower is better)       cp-sat       first-fit     first-fit / cp-sat")
    rows = (
        ("worst budget usage", o.worst_usage_ppm / 1e4, g_obj.worst_usage_ppm / 1e4, "%"),
        ("worst latency, no budget", o.worst_unbudgeted.ns / 1e6,
         g_obj.worst_unbudgeted.ns / 1e6, "ms"),
        ("preferences missed", o.preference_misses, g_obj.preference_misses, ""),
        ("vCPUs", o.vcpus, g_obj.vcpus, ""),
        ("switch stages", o.stages, g_obj.stages, ""),
        ("total latency", o.total_latency.ns / 1e6, g_obj.total_latency.ns / 1e6, "ms"),
    )
    for name, a, b, unit in rows:
        ratio = f"{b / a:.3f}" if a else ("=" if a == b else "inf")
        print(f"  {name:28} {a:>10.2f}{unit:2} {b:>12.2f}{unit:2}   {ratio:>8}")
    over = sum(1 for r in greedy.routes
               if (svc := program.service(r.service)).requirements.latency is not None
               and r.latency is not None and r.latency > svc.requirements.latency)
    print(f"\nfirst-fit routes over their latency budget: {over} of {len(greedy.routes)}; "
          f"cp-sat worst route: {format_time(max(r.latency for r in best.routes))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
