"""Scale benchmark: operator-sized topologies and thousands of services, stage by stage.

A seeded generator writes `.mosaico` programs on realistic topologies —

* ``fattree``: a k-ary fat tree (k = 8, 16, 32: 80, 320, 1,280 switches; Al-Fares et al.,
  "A scalable, commodity data center network architecture", SIGCOMM 2008), cable delays of
  1.5–6 µs, each edge switch with a VNF host and two endpoints;
* ``isp``: an ISP-like mesh — PoPs scattered over a 4,000 km plane, each linked to its
  nearest PoPs (5 µs/km, as light in fibre), each PoP two core routers and a ring of access
  switches with VNF hosts and customers; services are regional;
* ``line``: issue 17's line of N switches, each with a host and endpoints; services run
  to a site among the 50 nearest —

with services between edge endpoints (mixed chains of the standard library — filters,
monitors, the destination's DualQ or FIFO, a forward — latency budgets at most 100 µs above
each service's floor, ``require secure`` on 30 %, ``prefer: vnf`` on 5 %, one or two
sources), and measures the wall time and the peak resident memory of each stage — check
(parse + check of the text), place (the optimiser and its verifier), compile (every
artifact of `mosaico compile` from that placement) — in a fresh process per instance, the
peak reset before each stage. It prints a table and, per stage, the growth exponent of time
in the instance size n = switches + services (the slope of log time against log n between
the smallest and the largest instance, and a least-squares fit): n log n has an exponent a
little above 1, a quadratic stage 2. Fixed costs (imports: OR-Tools for place) make the
small rows slow and the exponents low. Figures are measured, never asserted.

    python benchmarks/bench_scale.py                      # fat trees and the ISP mesh
    python benchmarks/bench_scale.py --family line        # the issue's line, N up to 2,000
    python benchmarks/bench_scale.py --family fattree --k 32 --services 5000
    python benchmarks/bench_scale.py --write big.mosaico --k 16 --services 1000

Stages are a list (:data:`STAGES`). ``plan`` and ``deploy`` run against one reference
P4Runtime target process serving every switch of the build (``mosaico target serve BUILD``:
one device per switch, a multi-device server as PI's), with ``--jobs`` at its default; the
table adds the second deploy's time (nothing to do) and the target's peak resident memory
after the deploy (idle, after loading every program, in brackets). ``--no-deploy`` skips
them.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

# --------------------------------------------------------------------------- topologies


@dataclass
class Net:
    """A generated topology: declarations and a graph of link delays (ns)."""

    lines: list[str]
    graph: nx.Graph
    switches: list[str]
    clients: list[str]
    servers: list[str]
    ports: dict[str, int]
    # Regional traffic (the ISP): endpoint → its PoP, PoP → the PoPs its services reach.
    region: dict[str, int] = field(default_factory=dict)
    near: dict[int, list[int]] = field(default_factory=dict)

    def port(self, switch: str) -> str:
        self.ports[switch] = self.ports.get(switch, 0) + 1
        return f"{switch}.{self.ports[switch] - 1}"

    def link(self, a: str, b: str, bandwidth: str, delay_ns: int) -> None:
        ea = self.port(a) if a in self.graph and self.graph.nodes[a]["switch"] else a
        eb = self.port(b) if b in self.graph and self.graph.nodes[b]["switch"] else b
        self.graph.add_edge(a, b, delay=delay_ns)
        self.lines.append(f"  link {ea} -- {eb} {{ bandwidth: {bandwidth}, "
                          f"delay: {_time(delay_ns)} }}")

    def switch(self, name: str, ports: int, **attrs: str) -> None:
        self.graph.add_node(name, switch=True)
        self.switches.append(name)
        # a device id of its own: the deploy stages serve every switch from one
        # multi-device P4Runtime server
        attrs = {**attrs, "device_id": str(len(self.switches))}
        extra = "".join(f", {k}: {v}" for k, v in attrs.items())
        self.lines.append(f"  switch {name} : bmv2 {{ ports: {ports}{extra} }}")

    def host(self, name: str, trusted: bool, vcpus: int) -> None:
        self.graph.add_node(name, switch=False)
        self.lines.append(f"  host {name} : openstack {{ vcpus: {vcpus}, ram: 256GiB, "
                          f"trusted: {str(trusted).lower()} }}")

    def endpoint(self, name: str, index: int, trusted: bool, server: bool) -> None:
        self.graph.add_node(name, switch=False)
        (self.servers if server else self.clients).append(name)
        ip = f"10.{index // 62500}.{index // 250 % 250}.{index % 250 + 1}"  # all distinct
        self.lines.append(f"  endpoint {name} {{ ip: {ip}, trusted: {str(trusted).lower()} }}")


def _time(ns: int) -> str:
    return f"{ns // 1000}us" if ns % 1000 == 0 else f"{ns}ns"


def _new_net() -> Net:
    return Net([], nx.Graph(), [], [], [], {})


def _edge_site(net: Net, rng: random.Random, switch: str, index: int, clients: int,
               region: int | None = None) -> None:
    """A VNF host and endpoints behind an edge switch."""
    net.host(f"h_{switch}", trusted=rng.random() < 0.8, vcpus=rng.choice((16, 32)))
    net.link(switch, f"h_{switch}", "40Gbps", rng.randint(3, 8) * 1000)
    for j in range(clients + 1):
        name = f"e{index}_{j}"
        net.endpoint(name, index * (clients + 1) + j, trusted=rng.random() < 0.6,
                     server=j == 0)
        if region is not None:
            net.region[name] = region
        net.link(switch, name, "10Gbps", rng.randint(5, 20) * 1000)


def fat_tree(k: int, rng: random.Random) -> Net:
    """The k-ary fat tree: k pods of k/2 edge and k/2 aggregation switches, (k/2)² core
    switches; link delays of a data centre (µs)."""
    net = _new_net()
    half = k // 2
    stages = {"stages": "64"}
    for c in range(half * half):
        net.switch(f"c{c}", k, **stages)
    for p in range(k):
        for i in range(half):
            net.switch(f"a{p}_{i}", k, **stages)
            net.switch(f"t{p}_{i}", k, **stages)
    for p in range(k):
        for i in range(half):
            for j in range(half):
                # Cable lengths differ: lowest-delay paths spread over the fabric as
                # ECMP would spread flows (mosaico routes each source on one path).
                net.link(f"t{p}_{i}", f"a{p}_{j}", "40Gbps", rng.randint(1500, 2500))
                net.link(f"a{p}_{i}", f"c{i * half + j}", "100Gbps", rng.randint(4000, 6000))
    index = 0
    for p in range(k):
        for i in range(half):
            _edge_site(net, rng, f"t{p}_{i}", index, clients=1)
            index += 1
    return net


def isp(switches: int, rng: random.Random) -> Net:
    """An ISP-like mesh: PoPs scattered over a 4,000 km plane, each linked to its nearest
    PoPs (delay 5 µs/km), each PoP two core routers and a ring of access switches. Services
    are regional — to a PoP among the four nearest — as a P4 program classifies at most
    255 services (E0905) and a backbone router would otherwise carry thousands."""
    net = _new_net()
    per_pop = 8  # 2 core + 6 access
    pops = max(2, switches // per_pop)
    pos = [(rng.random() * 4000, rng.random() * 4000) for _ in range(pops)]

    def km(a: int, b: int) -> float:
        return math.dist(pos[a], pos[b])

    for p in range(pops):
        net.switch(f"p{p}_c0", 48, stages="64")
        net.switch(f"p{p}_c1", 48, stages="64")
        for i in range(per_pop - 2):
            net.switch(f"p{p}_x{i}", 16)
    edges: set[tuple[int, int]] = set()
    for p in range(1, pops):  # a spanning tree keeps the backbone connected
        edges.add((min(range(p), key=lambda q: km(p, q)), p))
    for p in range(pops):
        for q in sorted((q for q in range(pops) if q != p), key=lambda q: km(p, q))[:3]:
            edges.add((min(p, q), max(p, q)))
    for a, b in sorted(edges):
        delay = max(50, round(km(a, b) * 5)) * 1000
        net.link(f"p{a}_c{rng.randint(0, 1)}", f"p{b}_c{rng.randint(0, 1)}", "100Gbps", delay)
    index = 0
    for p in range(pops):
        net.link(f"p{p}_c0", f"p{p}_c1", "100Gbps", 10_000)
        access = [f"p{p}_x{i}" for i in range(per_pop - 2)]
        for i, x in enumerate(access):
            net.link(x, f"p{p}_c{i % 2}", "40Gbps", rng.randint(20, 200) * 1000)
            _edge_site(net, rng, x, index, clients=2, region=p)
            index += 1
    for p in range(pops):
        net.near[p] = sorted(range(pops), key=lambda q: (km(p, q), q))[:4]
    return net


def line(n: int, rng: random.Random) -> Net:
    """The issue's line: N switches in a row, each with a host and endpoints. Services run
    to one of the 50 nearest sites: with random ends, the middle switch of a line is
    crossed by half the services, and a P4 program classifies at most 255 (E0905)."""
    net = _new_net()
    for i in range(n):
        net.switch(f"s{i}", 8)
    for i in range(n - 1):
        net.link(f"s{i}", f"s{i + 1}", "10Gbps", 50_000)
    for i in range(n):
        _edge_site(net, rng, f"s{i}", i, clients=1, region=i)
        net.near[i] = [j for j in range(max(0, i - 25), min(n, i + 26))]
    return net


TOPOLOGIES: dict[str, Callable[[int, random.Random], Net]] = {
    "fattree": lambda k, rng: fat_tree(k, rng),
    "isp": lambda n, rng: isp(n, rng),
    "line": lambda n, rng: line(n, rng),
}

# --------------------------------------------------------------------------- services

# Chains from the standard library: (steps before the queue, the queue is chosen per
# destination — services delivering to one endpoint share its egress queue).
HEADS = (
    ("sec.Blocklist(prefixes: BAD)",),
    ("sec.RateLimit(rate: {kpps}kpps, burst: 200)", "sec.SynGuard(max_syns: 200)"),
    ("sec.Blocklist(prefixes: BAD)", "sec.RateLimit(rate: {kpps}kpps)"),
    ("sec.SynGuard(max_syns: 100)", "Mirror(to: {collector})"),
    ("sec.Acl(rules: [deny(tcp.dport == 23), allow(ipv4.proto == 6)])",),
    ("sec.RateLimit(rate: {kpps}kpps, burst: 50, per: \"source\", buckets: 256)",),
)
QUEUES = ("std.l4s.DualQ(classic_target: 15ms)", "std.l4s.Fifo(buffer: 20ms)")


def _step_floors() -> dict[str, int]:
    """Fastest processing + queueing target of each step template above (ns), read from
    the standard library by checking one tiny program: budgets follow the stdlib's own
    figures. ``Forward`` is every chain's last step."""
    import mosaico_dsl as mo
    from mosaico_dsl.check.services import latency_floor

    steps = sorted({s for h in HEADS for s in h} | set(QUEUES))
    lines = ["import std.l4s", "import std.security as sec",
             "from std.fwd import Forward, Mirror", "const BAD = [203.0.113.0/24]",
             "topology t {", f"  switch s : bmv2 {{ ports: {len(steps) + 2} }}",
             "  endpoint a { ip: 10.0.0.1 }", "  link a -- s.0 { bandwidth: 1Gbps }"]
    for i in range(len(steps) + 1):
        lines += [f"  endpoint b{i} {{ ip: 10.0.1.{i + 1} }}",
                  f"  link s.{i + 1} -- b{i} {{ bandwidth: 1Gbps }}"]
    lines += ["}", "service fwd on t {", "  from a", f"  chain {{ Forward(to: b{len(steps)}) }}",
              "}"]
    for i, step in enumerate(steps):
        lines += [f"service f{i} on t {{", "  from a",
                  f"  chain {{ {step.format(kpps=10, collector='a')} -> Forward(to: b{i}) }}",
                  "}"]
    program = mo.check("\n".join(lines) + "\n")

    def floor(name: str) -> int:
        processing, queue = latency_floor(program.service(name))
        return processing.ns + queue.ns

    forward = floor("fwd")
    return {"Forward": forward} | {s: floor(f"f{i}") - forward for i, s in enumerate(steps)}


def services(net: Net, n: int, rng: random.Random) -> list[str]:
    """``n`` services between random edge endpoints, budgets a little above their floor."""
    floor = _step_floors()
    queue_of = {s: rng.choice(QUEUES) for s in net.servers}
    switches = net.graph.subgraph(net.switches)
    from_switch: dict[str, dict[str, int]] = {}

    def delay(a: str, b: str) -> int:
        (sa,), (sb,) = net.graph[a], net.graph[b]
        if sa not in from_switch:
            from_switch[sa] = nx.single_source_dijkstra_path_length(switches, sa,
                                                                    weight="delay")
        g = net.graph
        return g.edges[a, sa]["delay"] + from_switch[sa][sb] + g.edges[sb, b]["delay"]

    by_region: dict[int, tuple[list[str], list[str]]] = {}
    for e, p in net.region.items():
        by_region.setdefault(p, ([], []))[e in net.servers].append(e)
    out = []
    for i in range(n):
        if net.near:  # regional: a client, then a server and maybe another client nearby
            first = rng.choice(net.clients)
            pops = net.near[net.region[first]]
            dst = rng.choice([e for p in pops for e in by_region[p][1]])
            others = [e for p in pops for e in by_region[p][0] if e != first]
            srcs = [first, *rng.sample(others, rng.choice((0, 0, 0, 1)))]
        else:
            dst = rng.choice(net.servers)
            srcs = rng.sample(net.clients, rng.choice((1, 1, 1, 2)))
        head = rng.choice(HEADS)
        steps = [s.format(kpps=rng.randint(5, 50), collector=rng.choice(net.servers))
                 for s in head]
        if rng.random() < 0.05:
            steps[-1] = steps[-1][:-1] + ", prefer: vnf)"
        queue = queue_of[dst]
        processing = sum(floor[s] for s in head) + floor[queue] + floor["Forward"]
        worst = max(delay(s, dst) for s in srcs)
        budget = worst + processing + rng.choice((0, 5, 10, 20, 50, 100)) * 1000
        body = [f"service svc{i} on net {{", f"  from {', '.join(srcs)}",
                f"  require latency <= {_time(budget)}"]
        if rng.random() < 0.3:
            body.append("  require secure")
        body += ["  chain {", "    " + "\n    -> ".join([*steps, queue, f"Forward(to: {dst})"]),
                 "  }", "}"]
        out.append("\n".join(body))
    return out


def generate(family: str, size: int, n_services: int, seed: int = 1) -> tuple[str, int]:
    """The program text and its number of switches."""
    rng = random.Random(seed)
    net = TOPOLOGIES[family](size, rng)
    head = ["import std.l4s", "import std.security as sec", "from std.fwd import Forward, Mirror",
            "", "const BAD = [203.0.113.0/24, 198.51.100.0/24]", "", "topology net {"]
    body = services(net, n_services, rng)
    return "\n".join([*head, *net.lines, "}", "", *body]) + "\n", len(net.switches)


# --------------------------------------------------------------------------- stages


def _peak_rss() -> int:
    """The process's peak resident set since the last :func:`_reset_peak` (bytes)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    try:  # Linux: writing 5 to clear_refs resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


@dataclass
class Context:
    """What the stages hand each other."""

    text: str
    options: object = None
    program: object = None
    placement: object = None
    artifacts: dict | None = None
    compilation: object = None
    target: object = None  # the running reference target (plan, deploy)
    notes: dict = field(default_factory=dict)  # figures beside the stages (the target's)
    cleanup: list = field(default_factory=list)


def _check(ctx: Context) -> str:
    import mosaico_dsl as mo

    ctx.program = mo.check(ctx.text)
    return f"{sum(len(s.chain) for s in ctx.program.services)} functions"


def _place(ctx: Context) -> str:
    from mosaico_dsl.place import place

    ctx.placement = place(ctx.program, options=ctx.options)
    search = ctx.placement.search
    if search.optimal:
        return "optimal"
    return "gap " + ", ".join(f"{lv.name.split(' (')[0]} {lv.gap:.2%}"
                              for lv in search.levels if not lv.optimal)


def _compile(ctx: Context) -> str:
    """Every artifact (`mosaico compile`'s backends) from the placement just made."""
    from mosaico_dsl.compiler import BACKENDS, Compilation

    c = Compilation(ctx.program, ctx.placement, "bench.mosaico", ctx.text)
    ctx.compilation = c
    ctx.artifacts = {}
    warnings: list[str] = []
    for backend in BACKENDS.values():
        produced = backend(c)
        warnings += [d.code for d in getattr(produced, "warnings", ())]
        ctx.artifacts.update(produced)
    size = sum(len(b) for b in ctx.artifacts.values())
    return f"{len(ctx.artifacts)} files, {size / 2**20:.0f} MiB" + \
        (f" ({', '.join(warnings)})" if warnings else "")


@dataclass
class _Served:
    """`mosaico target serve BUILD`: every switch of the build, one device each, in one
    process — a multi-device P4Runtime server, as PI's."""

    proc: object
    address: str
    build: Path
    state: Path

    def peak_rss(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    def rss(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _serve(ctx: Context) -> _Served:
    """Write the build and start one reference target serving all its switches."""
    import re
    import subprocess
    import tempfile

    from mosaico_dsl._atomic import write_tree
    from mosaico_dsl.compiler import BACKENDS, _manifest

    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    files = dict(ctx.artifacts)
    files["manifest.json"] = _manifest(ctx.compilation, files, list(BACKENDS))
    write_tree(tmp / "build", files)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mosaico_dsl.cli", "target", "serve",
                             str(tmp / "build"), "--listen", "127.0.0.1:0"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    line = proc.stderr.readline()
    m = re.search(r"listening on (\S+)", line)
    if m is None:
        raise RuntimeError(f"the reference target did not start: {line}{proc.stderr.read()}")
    served = _Served(proc, m[1], tmp / "build", tmp / "state.db")
    ctx.cleanup.append(served.stop)
    ctx.notes["serve s"] = time.perf_counter() - t0
    ctx.notes["target idle MiB"] = served.rss() / 2**20
    return served


def _p4runtime_target(ctx: Context):
    from mosaico_dsl.runtime.build import load_build
    from mosaico_dsl.runtime.switches import P4RuntimeTarget

    build = load_build(ctx.target.build)
    return P4RuntimeTarget(build, addresses={s.name: ctx.target.address
                                             for s in build.switches}), len(build.switches)


def _plan(ctx: Context) -> str:
    """`mosaico plan` of the build against the running target (its devices fresh)."""
    import asyncio

    from mosaico_dsl.runtime.deployment import plan
    from mosaico_dsl.runtime.state import StateStore

    t, n = _p4runtime_target(ctx)
    with StateStore(ctx.target.state) as store:
        p = asyncio.run(plan([t], store))
    return f"{n} switches, {sum(len(u.changes) for u in p.units)} changes"


def _deploy(ctx: Context) -> str:
    """`mosaico deploy` of the build to the running target (``--jobs`` default), then a
    second deploy, which finds nothing to do."""
    import asyncio

    from mosaico_dsl.runtime.deployment import deploy
    from mosaico_dsl.runtime.state import StateStore

    t, n = _p4runtime_target(ctx)
    with StateStore(ctx.target.state) as store:
        result = asyncio.run(deploy([t], store))
    ctx.notes["target MiB"] = ctx.target.peak_rss() / 2**20
    updates = sum(len(u.payload.updates) for u in result.plan.units)
    t0 = time.perf_counter()
    t, _ = _p4runtime_target(ctx)
    with StateStore(ctx.target.state) as store:
        again = asyncio.run(deploy([t], store))
    ctx.notes["again s"] = time.perf_counter() - t0
    assert not again.changed, "a second deploy of the same build changed something"
    return f"{n} switches, {updates} updates"


def _start_target(ctx: Context) -> None:
    ctx.target = _serve(ctx)


_plan.setup = _start_target  # untimed: the target starts before the plan is timed

#: (name, runner): each runner reads and extends the context and returns a remark; a
#: runner's ``setup``, if it has one, runs first, untimed (the running target of `plan`
#: and `deploy`).
STAGES: list[tuple[str, Callable[[Context], str]]] = [
    ("check", _check),
    ("place", _place),
    ("compile", _compile),
    ("plan", _plan),
    ("deploy", _deploy),
]


def _run(family: str, size: int, n_services: int, seed: int, limit: float | None,
         queue, skip: tuple[str, ...] = ()) -> None:
    """One instance, in its own process: time and peak RSS of every stage."""
    from mosaico_dsl.place import Options

    text, switches = generate(family, size, n_services, seed)
    ctx = Context(text, Options() if limit is None else Options(deterministic_time=limit))
    row = {"family": family, "size": size, "switches": switches, "services": n_services,
           "lines": text.count("\n"), "stages": {}}
    try:
        for name, runner in STAGES:
            if name in skip:
                continue
            try:
                if hasattr(runner, "setup"):
                    runner.setup(ctx)
                _reset_peak()
                t0, c0 = time.perf_counter(), time.process_time()
                remark = runner(ctx)
            except Exception as e:  # a failed stage is a figure too: report it and stop
                row["stages"][name] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
                break
            row["stages"][name] = {"seconds": time.perf_counter() - t0,
                                   "cpu": time.process_time() - c0, "rss": _peak_rss(),
                                   "remark": remark}
    finally:
        for stop in ctx.cleanup:
            stop()
    row["notes"] = ctx.notes
    queue.put(row)


def measure(family: str, size: int, n_services: int, seed: int = 1,
            limit: float | None = None, skip: tuple[str, ...] = ()) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_run, args=(family, size, n_services, seed, limit, q, skip))
    p.start()
    try:
        row = q.get()
    finally:
        p.join()
    return row


def _exponent(rows: list[dict], stage: str, size: Callable[[dict], int]
              ) -> tuple[float | None, float | None]:
    """(end-to-end slope, least-squares slope) of log seconds against log ``size``."""
    pts = [(math.log(size(r)), math.log(r["stages"][stage]["seconds"]))
           for r in rows if "seconds" in r["stages"].get(stage, {})]
    if len(pts) < 2:
        return None, None
    (x0, y0), (x1, y1) = pts[0], pts[-1]
    ends = (y1 - y0) / (x1 - x0) if x1 != x0 else None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    fit = sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None
    return ends, fit


def _print_table(rows: list[dict]) -> None:
    """Wall seconds, CPU seconds (a loaded machine stretches the first, not the second)
    and peak resident MiB of each stage."""
    names = [n for n, _ in STAGES if any(n in r["stages"] for r in rows)]
    head = f"{'family':8} {'size':>5} {'switches':>8} {'services':>8} {'lines':>7}"
    for n in names:
        head += f" | {n + ' s':>9} {'cpu':>5} {'MiB':>5}"
    deployed = any(r.get("notes", {}).get("target MiB") for r in rows)
    print(head + " | total s" + (" | again s  target MiB (idle)" if deployed else ""))
    for r in rows:
        line = (f"{r['family']:8} {r['size']:>5} {r['switches']:>8} {r['services']:>8} "
                f"{r['lines']:>7}")
        total = 0.0
        for n in names:
            st = r["stages"].get(n, {})
            if "seconds" in st:
                total += st["seconds"]
                line += (f" | {st['seconds']:>9.2f} {st['cpu']:>5.1f} "
                         f"{st['rss'] / 2**20:>5.0f}")
            else:
                line += f" | {'—':>9} {'':>5} {'':>5}"
        notes = r.get("notes", {})
        if deployed and "again s" in notes:
            line += (f" | {total:7.2f} | {notes['again s']:7.2f}  {notes['target MiB']:6.0f} "
                     f"({notes['target idle MiB']:.0f})")
            print(line)
            continue
        print(line + f" | {total:7.2f}")
    for r in rows:
        for n in names:
            st = r["stages"].get(n, {})
            if "error" in st or st.get("remark", "").startswith("gap"):
                print(f"  {r['family']} {r['size']}/{r['services']} {n}: "
                      f"{st.get('error') or st['remark']}")


SWEEPS = {
    # Growing the fabric and the services together (the issue's aim is the last row).
    "fattree": [(8, 100), (8, 500), (16, 1000), (16, 2000), (32, 2000), (32, 5000)],
    "isp": [(80, 100), (320, 1000), (1280, 5000)],
    "line": [(100, 100), (500, 500), (1000, 1000), (2000, 2000)],
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", choices=sorted(TOPOLOGIES), action="append")
    ap.add_argument("--k", "--size", dest="size", type=int, action="append",
                    help="fat-tree k, or switches for isp/line (repeatable)")
    ap.add_argument("--services", type=int, action="append")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=float, help="placement search limit per solve")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--write", type=Path, help="write the (single) generated program here")
    ap.add_argument("--no-deploy", action="store_true",
                    help="skip plan and deploy against the reference target")
    args = ap.parse_args(argv)

    families = args.family or ["fattree", "isp"]
    if args.write:
        text, _ = generate(families[0], (args.size or [8])[0], (args.services or [100])[0],
                           args.seed)
        args.write.write_text(text)
        return 0
    all_rows = []
    for family in families:
        if args.size or args.services:
            plan = [(k, n) for k in (args.size or [8]) for n in (args.services or [100])]
        else:
            plan = SWEEPS[family]
        rows = []
        for size, n in plan:
            row = measure(family, size, n, args.seed, args.limit,
                          ("plan", "deploy") if args.no_deploy else ())
            rows.append(row)
            print(f"  {family} {size} × {n}: " + ", ".join(
                f"{k} {v.get('seconds', float('nan')):.2f}s" for k, v in row["stages"].items()),
                file=sys.stderr, flush=True)
        _print_table(rows)
        if len(rows) > 1:
            # A fat tree's links grow as k³ while its switches grow as k², so its program
            # (the input) grows as n^1.5: a stage linear in its input shows 1.5 in n.
            print("growth exponent of time (first→last, least squares) in "
                  "n = switches + services, and in the program's lines:")
            for name, _ in STAGES:
                if not any(name in r["stages"] for r in rows):
                    continue
                ends, fit = _exponent(rows, name, lambda r: r["switches"] + r["services"])
                by_lines = _exponent(rows, name, lambda r: r["lines"])
                if ends is not None:
                    print(f"  {name:8} {ends:5.2f}  {fit:5.2f}   |  lines {by_lines[0]:5.2f}  "
                          f"{by_lines[1]:5.2f}")
        print()
        all_rows += rows
    if args.json:
        args.json.write_text(json.dumps(all_rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
