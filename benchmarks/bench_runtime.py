"""P4Runtime write throughput: 10,000 entries batched vs one per Write request.

The reference P4Runtime target runs as its own process (``mosaico target serve``), so the
client and the server do not share an interpreter, as with a real switch; both sides do
the full work (the server validates every update against the P4Info). Prints entries/s
for both modes and their ratio, measured in the same run; the aim (issue 7) is ≥ 10×.

    python benchmarks/bench_runtime.py [--entries 10000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from google.protobuf import text_format

from mosaico_dsl.p4proto import p4i, p4r
from mosaico_dsl.runtime.p4runtime import Endpoint, connect

TABLE, ACTION = 0x02000001, 0x01000001


def p4info(size: int) -> p4i.P4Info:
    """One LPM route table, like a forwarding function's, big enough for the run."""
    info = p4i.P4Info()
    t = info.tables.add()
    t.preamble.id, t.preamble.name = TABLE, "MosaicoIngress.routes"
    t.match_fields.add(id=1, name="ipv4.dst", bitwidth=32, match_type=p4i.MatchField.LPM)
    t.action_refs.add(id=ACTION)
    t.size = size
    a = info.actions.add()
    a.preamble.id, a.preamble.name = ACTION, "MosaicoIngress.route"
    a.params.add(id=1, name="port", bitwidth=9)
    a.params.add(id=2, name="dmac", bitwidth=48)
    return info


def updates(n: int, kind: int) -> list[p4r.Update]:
    out = []
    for i in range(n):
        u = p4r.Update(type=kind)
        te = u.entity.table_entry
        te.table_id = TABLE
        m = te.match.add(field_id=1)
        m.lpm.value = (0x0A000000 + (i << 8)).to_bytes(4, "big")
        m.lpm.prefix_len = 24
        te.action.action.action_id = ACTION
        te.action.action.params.add(param_id=1, value=(1 + i % 8).to_bytes(2, "big"))
        te.action.action.params.add(param_id=2, value=(0x020000000000 + i).to_bytes(6, "big"))
        out.append(u)
    return out


def serve(directory: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mosaico_dsl.cli", "target", "serve",
                             str(directory), "--listen", f"127.0.0.1:{port}"],
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"127.0.0.1:{port}"
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("the reference target did not start")


async def measure(address: str, info: p4i.P4Info, n: int, batch: int) -> dict[str, float]:
    inserts, deletes = updates(n, p4r.Update.INSERT), updates(n, p4r.Update.DELETE)
    results = {}
    async with await connect(Endpoint("bench", address, 1)) as c:
        await c.set_pipeline(info)
        await c.write(inserts[:100], batch=100)  # warm up the channel and both sides
        await c.write(deletes[:100], batch=100)
        for label, size in (("batched", batch), ("one per request", 1)):
            t0 = time.perf_counter()
            await c.write(inserts, batch=size)
            results[label] = time.perf_counter() - t0
            await c.write(deletes, batch=batch)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    info = p4info(args.entries + 100)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "s1"
        d.mkdir()
        (d / "p4info.txtpb").write_text(text_format.MessageToString(info))
        proc, address = serve(d)
        try:
            times = asyncio.run(measure(address, info, args.entries, args.batch))
        finally:
            proc.terminate()
            proc.wait(10)
    rate = {k: args.entries / v for k, v in times.items()}
    print(f"{args.entries} table entries to the reference P4Runtime target")
    labels = {"batched": f"batched ({args.batch} per Write)",
              "one per request": "one per Write request"}
    for mode, label in labels.items():
        print(f"  {label + ':':28} {times[mode]:7.2f} s  {rate[mode]:9.0f} entries/s")
    ratio = rate["batched"] / rate["one per request"]
    print(f"  {'batched / one per request:':28} {ratio:7.1f}x  (aim: >= 10x)")


if __name__ == "__main__":
    main()
