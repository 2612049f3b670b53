"""The MOSAICO L4S evaluation with real packets: the flagship on the local BMv2 testbed,
against the simulator's prediction of the same program and traffic (root, BMv2, p4c).

Deploys ``examples/secure_l4s.mosaico`` once (its own namespace prefix and state store),
then runs:

* **the evaluation** — one TCP Prague-like L4S flow, one CUBIC flow, and the attacker's
  spoofed flood and SYN flood, for ``--duration`` seconds; prints the simulated and the
  measured figures per class with their relative difference, the attack's accounting, and
  the machine's load (the testbed shares two cores with everything else running);
* with ``--sharing``, **each class alone** for the same time: BMv2 paces each priority
  queue of a port separately at the port's rate (its QueueingLogicPriRL), so whether the
  two classes share one link's capacity shows in the goodput of each alone against both
  together — the simulator's port is one link they share.

Writes each run's output directory under ``-o`` (default: a temporary directory).

    sudo python benchmarks/bench_experiment.py [--duration 30] [--attack 500pps] [--sharing]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from pathlib import Path

from mosaico_dsl.compiler import compile as compile_program
from mosaico_dsl.experiment import experiment
from mosaico_dsl.runtime import LocalTarget, StateStore, deploy, destroy, load_build

ROOT = Path(__file__).resolve().parent.parent
FLAGSHIP = ROOT / "examples" / "secure_l4s.mosaico"


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                     enumerate(zip(cells, widths, strict=True)))


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print(_row(r, widths))


def run(build: Path, state: Path, prefix: str, traffic: str, duration: int, out: Path, name: str):
    t = time.monotonic()
    load = os.getloadavg()[0]
    result = experiment(FLAGSHIP, build=build, traffic=traffic, duration=f"{duration}s",
                        state=state, prefix=prefix)
    result.write(out / name)
    return result, time.monotonic() - t, load, os.getloadavg()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--attack", default="500pps", help="rate of each flood (0: none)")
    ap.add_argument("--sharing", action="store_true", help="also run each class alone")
    ap.add_argument("-o", "--output", type=Path, default=None)
    args = ap.parse_args()
    out = args.output or Path(tempfile.mkdtemp(prefix="bench-experiment-"))
    work = Path(tempfile.mkdtemp(prefix="bench-experiment-build-"))
    build = compile_program(FLAGSHIP).write(work / "build")
    prefix, state = f"be{secrets.token_hex(3)}-", work / "state.db"
    traffic = "prague:1,cubic:1"
    if args.attack not in ("0", "none"):
        traffic += f",flood[rate={args.attack}],syn[rate={args.attack}]"
    print(f"machine: {os.cpu_count()} cores; output in {out}")
    with StateStore(state) as store:
        asyncio.run(deploy([LocalTarget(load_build(build), prefix=prefix, data_plane="bmv2")],
                           store, build=load_build(build)))
    try:
        result, wall, before, after = run(build, state, prefix, traffic, args.duration, out,
                                          "evaluation")
        print(f"\nevaluation: {traffic}, {args.duration} s (wall {wall:.0f} s, load average "
              f"{before:.1f} before, {after:.1f} after)")
        _print_table(result.comparison.table())
        live = result.live.result
        attack = [f for f in live.flows if f.kind in ("flood", "syn")]
        if attack:
            blocked = sum(f.dropped for f in live.filters
                          if f.function == "std.security.Blocklist")
            sent = sum(f.sent for f in attack)
            print(f"\nattack: {sent} packets sent ({sent / args.duration:.0f} pps), "
                  f"{blocked} dropped by the Blocklist, "
                  f"{sum(f.received for f in attack)} reached the server")
        print(f"base one-way delay through the switch: "
              f"{result.live.base_owd_ns['s1->server'] / 1e3:.0f} µs")
        if args.sharing:
            rows = [["run", "L4S live Mb/s", "Classic live Mb/s", "sum", "L4S sim",
                     "Classic sim", "sum sim"]]
            for name, spec in (("L4S alone", "prague:1"), ("Classic alone", "cubic:1"),
                               ("both", "prague:1,cubic:1")):
                r, *_ = run(build, state, prefix, spec, args.duration, out, name.replace(" ", "_"))
                lv, sm = r.live.result, r.sim
                vals = [lv.goodput_bps("l4s"), lv.goodput_bps("classic"),
                        sm.goodput_bps("l4s"), sm.goodput_bps("classic")]
                rows.append([name, *(f"{v / 1e6:.2f}" for v in vals[:2]),
                             f"{(vals[0] + vals[1]) / 1e6:.2f}",
                             *(f"{v / 1e6:.2f}" for v in vals[2:]),
                             f"{(vals[2] + vals[3]) / 1e6:.2f}"])
            print("\nsharing of the 12 Mb/s port (goodput):")
            _print_table(rows)
    finally:
        with StateStore(state) as store:
            asyncio.run(destroy([LocalTarget(None)], store))


if __name__ == "__main__":
    main()
