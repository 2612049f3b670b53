"""The local target: a changed program applied as its difference vs rebuilt as a whole.

Deploys tests/runtime/data/edge_a.mosaico with real namespaces (root), then measures the
switch to edge_b.mosaico — one VNF ruleset and one endpoint differ — two ways, alternating
so both see the same machine state: the difference (``diff`` + ``apply_changes``, what
``mosaico deploy`` does) and the old *replace* (destroy A, apply B). Prints the seconds,
the commands' count and the ratio, measured in the same run.

    sudo python benchmarks/bench_local.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mosaico_dsl.backends.vnf import apply, apply_changes, destroy, diff, load_plan
from mosaico_dsl.compiler import compile as compile_program

DATA = Path(__file__).resolve().parent.parent / "tests" / "runtime" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        a, b = (load_plan(compile_program(DATA / f"edge_{v}.mosaico").write(Path(tmp) / v))
                for v in "ab")
        prefix = f"bl{secrets.token_hex(2)}-"
        incremental, rebuilt = [], []
        try:
            apply(a, prefix=prefix)
            for _ in range(opts.rounds):
                forward = diff(a, b, old_prefix=prefix, new_prefix=prefix)
                t0 = time.perf_counter()
                apply_changes(forward)
                incremental.append(time.perf_counter() - t0)
                apply_changes(diff(b, a, old_prefix=prefix, new_prefix=prefix))
                t0 = time.perf_counter()
                destroy(a, prefix=prefix)
                apply(b, prefix=prefix)
                rebuilt.append(time.perf_counter() - t0)
                destroy(b, prefix=prefix)
                apply(a, prefix=prefix)
        finally:
            destroy(a, prefix=prefix)
            destroy(b, prefix=prefix)
    steps = sum(not s.deferred for s in forward.steps)
    whole = sum(not s.deferred for s in diff(None, b, new_prefix=prefix).steps)
    inc, reb = statistics.median(incremental), statistics.median(rebuilt)
    print(f"difference: {inc:.2f} s ({steps} steps); rebuild: {reb:.2f} s "
          f"({whole} steps after the removal); rebuild / difference: {reb / inc:.1f}x "
          f"(median of {opts.rounds})")


if __name__ == "__main__":
    sys.exit(main())
