"""``experiment()``: the program's traffic, for real, on the local BMv2 testbed — and the
simulator's prediction of the same, side by side.

1. Check the program, the traffic specification and the duration together (every mistake
   at once), bind the flows as the simulator does (:mod:`mosaico_dsl.sim.binding`) and
   refuse what the testbed cannot send (E1401).
2. Provision the testbed (:mod:`.provision`): the running local deployment of this build,
   or a deployment made for the run.
3. Start one agent per flow in its source endpoint's namespace and one per destination
   (:mod:`.agent`); when all are ready, give them a common time zero. While the traffic
   runs, sample the switches' counters and registers (:mod:`.sampling`).
4. Collect everything, stop every process the run started, destroy the deployment if the
   run made it — also on Ctrl-C, SIGTERM or any failure.
5. Describe the run in the simulator's terms (:mod:`.analysis`), simulate the same program
   and traffic, and compare (:mod:`.compare`).
"""

from __future__ import annotations

import json
import math
import os
import signal
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..diagnostics import Collector, CompileError, Diagnostic, Note, error
from ..ir import _ir as I
from ..sim.binding import FlowBinding, bind_traffic
from ..sim.metrics import SimResult
from ..sim.run import as_time, simulate
from ..sim.traffic import TRAFFIC_FILE, format_traffic, parse_traffic
from ..units import Time
from . import wire
from .analysis import LiveResult, Recorded, analyse
from .compare import Comparison, compare
from .launch import AgentError, Agents
from .records import read_records
from .sampling import Sampler
from .tasks import SINK, SOURCE, AgentTask, FlowTask
from .testbed import Testbed

__all__ = ["experiment", "ExperimentResult", "DEFAULT_DURATION", "DEFAULT_TRAFFIC",
           "live_support"]

DEFAULT_DURATION = "30s"
DEFAULT_TRAFFIC = "prague:1,cubic:1"
LINGER_NS = 1_000_000_000  # after the last flow stops: the last packets and feedback
SINK_EXTRA_NS = 500_000_000  # the receivers outlast the senders by this much
READY_TIMEOUT = 60.0  # seconds for every agent to set up (a loaded machine is slow)
_MAX_DURATION = Time(3600 * 10**9)
_START_MARGIN_NS = 500_000_000
_BUDGET = 1.5  # a responsive sender's packet budget: link rate × active time × this
MTU = 1500  # the local target's veths


class Progress(Protocol):
    def update(self, completed: float, total: float | None = None) -> None: ...

    def message(self, text: str) -> None: ...


class _Quiet:
    def update(self, completed: float, total: float | None = None) -> None:
        pass

    def message(self, text: str) -> None:
        pass


@dataclass(frozen=True)
class ExperimentResult:
    """The live run, the simulation of the same, and how far apart they are."""

    live: LiveResult
    sim: SimResult
    comparison: Comparison
    testbed: Testbed
    deployed_here: bool

    def artifacts(self, *, traces: bool = True, plots: bool = True) -> dict[str, bytes]:
        from .report import artifacts

        return artifacts(self, traces=traces, plots=plots)

    def write(self, out_dir: Any, *, traces: bool = True, plots: bool = True,
              force: bool = False) -> Path:
        """Write the outputs atomically; an existing ``out_dir`` is replaced only if it is an
        earlier experiment's output, unchanged (or with ``force``)."""
        from .._atomic import write_tree

        out = Path(out_dir)
        write_tree(out, self.artifacts(traces=traces, plots=plots), force=force)
        return out


def live_support(flows: Sequence[FlowBinding], program: I.Program) -> list[Diagnostic]:
    """What the testbed's senders cannot do (E1401), one diagnostic per flow group."""
    out: list[Diagnostic] = []
    seen: set[int] = set()
    replies = {s.name: s.replies for s in program.services}
    for fb in flows:
        spec = fb.spec
        if id(spec) in seen:
            continue
        if fb.size > MTU:
            out.append(error("E1401", f"{fb.kind} packets of {fb.size} bytes: the testbed's "
                             f"links carry at most {MTU}", spec.span,
                             f"give size={MTU}B or less"))
            seen.add(id(spec))
        elif fb.kind == "prague" and fb.size < wire.IPV4.size + wire.TCP.size + \
                wire.TRANSPORT_HEADER:
            out.append(error("E1401", f"prague packets of {fb.size} bytes leave no room for "
                             "the L4S sender's number and clock", spec.span,
                             f"give size={wire.IPV4.size + wire.TCP.size + wire.TRANSPORT_HEADER}"
                             "B or more"))
            seen.add(id(spec))
        elif fb.is_tcp and not replies.get(fb.service, True):
            out.append(error("E1401", f"{fb.kind} needs replies, and service {fb.service} "
                             "drops them (`reply drop`)", spec.span,
                             "send open-loop traffic (cbr, onoff) on this service"))
            seen.add(id(spec))
        elif fb.kind in ("reno", "cubic"):
            if fb.ecn:
                out.append(error("E1401", f"{fb.kind} with ECN: the testbed's {fb.kind} is "
                                 "the kernel's TCP, which sends Not-ECT here", spec.span,
                                 "leave ecn off for reno and cubic; use prague for an "
                                 "ECN-capable (L4S) flow"))
                seen.add(id(spec))
            elif spec.pacing:
                out.append(error("E1401", f"{fb.kind} with pacing: the kernel paces TCP only "
                                 "with the fq qdisc, which this kernel lacks", spec.span,
                                 "remove pacing=on"))
                seen.add(id(spec))
    return out


def _max_packets(fb: FlowBinding, program: I.Program) -> int:
    """A sender's packet budget: the planned packets of an open-loop flow, the transfer of a
    finite TCP flow, else what its first link could carry over its active time, × 1.5."""
    active = max(0, fb.stop_ns - fb.start_ns)
    if fb.interval_ns:
        burst = max(1, fb.spec.burst or 1)
        return max(1, -(-active // (fb.interval_ns * burst)) * burst)
    if fb.limit is not None:
        return fb.limit
    topo = next(t for t in program.topologies if t.name == fb.topology)
    link = topo.link_between(fb.route.visits[0].node, fb.route.visits[1].node)
    bps = link.bandwidth.bps if link is not None else 10**9
    return max(100, math.ceil(active / 1e9 * bps / (fb.size * 8) * _BUDGET))


def _tasks(flows: Sequence[FlowBinding], testbed: Testbed, program: I.Program,
           duration_ns: int, seed: int, workdir: Path) -> list[tuple[str, AgentTask]]:
    end = duration_ns + LINGER_NS
    out: list[tuple[str, AgentTask]] = []
    for dest in dict.fromkeys(fb.destination for fb in flows):
        st = testbed.station(dest)
        mine = [fb for fb in flows if fb.destination == dest]
        out.append((f"sink-{dest}", AgentTask(
            SINK, st.namespace, str(st.address), st.interface, end + SINK_EXTRA_NS,
            tuple(_flow_task(fb, program, seed) for fb in mine),
            str(workdir / f"sink-{dest}.rec"))))
    for fb in flows:
        st = testbed.station(fb.source)
        label = fb.name.replace("#", "-")
        out.append((label, AgentTask(SOURCE, st.namespace, str(st.address), st.interface, end,
                                     (_flow_task(fb, program, seed),),
                                     str(workdir / f"{label}.rec"))))
    return out


def _flow_task(fb: FlowBinding, program: I.Program, seed: int) -> FlowTask:
    spec = fb.spec
    return FlowTask(
        name=fb.name, index=fb.index, kind=fb.kind, src_ip=str(fb.src_ip),
        dst_ip=str(fb.dst_ip), proto=fb.proto, sport=fb.sport, dport=fb.dport, ecn=fb.ecn,
        size=fb.size, start_ns=fb.start_ns, stop_ns=fb.stop_ns,
        max_packets=_max_packets(fb, program), pacing=fb.pacing,
        interval_ns=fb.interval_ns or 0, burst=max(1, spec.burst or 1),
        on_ns=spec.on.ns if spec.on else (10**9 if fb.kind == "onoff" else 0),
        off_ns=spec.off.ns if spec.off else (10**9 if fb.kind == "onoff" else 0),
        spoof=str(fb.spoof) if fb.spoof is not None else None,
        congestion=fb.kind if fb.kind in ("reno", "cubic") else "", seed=seed)


@contextmanager
def _sigterm_interrupts() -> Any:
    """SIGTERM stops a run as Ctrl-C does (the teardown runs), in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def experiment(source: Path | str, *, build: Path | str | None = None,
               traffic: str = DEFAULT_TRAFFIC, duration: Any = DEFAULT_DURATION,
               seed: int = 1, state: Path | str | None = None, prefix: str | None = None,
               keep: bool = False, progress: Progress | None = None,
               search_paths: Sequence[Path] = ()) -> ExperimentResult:
    """Run ``source``'s traffic on the local testbed and simulate it; raises
    :class:`CompileError` on any user error (E13xx for the testbed's)."""
    from .. import compiler
    from ..runtime import load_build
    from ..runtime.state import default_state_path

    progress = progress or _Quiet()
    source = Path(source)
    attempt = Collector({TRAFFIC_FILE: traffic})  # every mistake at once
    dur = attempt(lambda: as_time(duration))
    if dur is not None and dur > _MAX_DURATION:
        attempt.errors.append(error("E1106", f"duration {dur} is out of range", None,
                                    "run the experiment for at most 1h"))
    specs = attempt(lambda: parse_traffic(traffic))
    compiled = attempt(lambda: compiler.compile(source, search_paths=search_paths))
    attempt.check()
    sources = attempt.sources
    bindings, warnings = bind_traffic(compiled.program, compiled.placement, specs,
                                      duration_ns=dur.ns, sources=sources)
    unsupported = live_support(bindings, compiled.program)
    if unsupported:
        raise CompileError(unsupported, sources)
    if build is not None:
        loaded = load_build(build)
        given = json.loads((Path(build) / "manifest.json").read_text(encoding="utf-8"))
        built = json.loads(compiled.artifacts["manifest.json"])
        differ = sorted(p for p in set(given.get("files", {})) | set(built["files"])
                        if given.get("files", {}).get(p) != built["files"].get(p))
        if differ:
            raise CompileError([error(
                "E1402", f"{build} is not what {source} compiles to now",
                notes=[Note(f"differs: {p}") for p in differ[:8]],
                hint=f"recompile: `mosaico compile {source} -o {build}`, or leave out "
                     "--build to let the experiment compile it")])
    if os.geteuid() != 0:
        raise CompileError([error("E1403", "the live experiment needs root (network "
                                           "namespaces, raw sockets, BMv2)",
                                  hint="run it as root, or use `mosaico sim` for the "
                                       "prediction alone")])

    from ..runtime import StateStore

    with ExitStack() as stack:
        if build is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="mosaico-exp-"))
            loaded = load_build(compiled.write(Path(tmp) / "build"))
        try:
            store = stack.enter_context(StateStore(Path(state) if state
                                                   else default_state_path()))
        except (OSError, ValueError) as e:
            raise CompileError([error("E1214", f"cannot open the state store: {e}")]) \
                from None
        live, testbed, deployed_here = _run(compiled.program, loaded, store, bindings,
                                            dur.ns, seed, prefix, keep, progress, stack,
                                            source.name, format_traffic(specs), warnings)
    progress.message("simulating the same program and traffic")
    sim = simulate(compiled, duration=dur, traffic=specs, seed=seed,
                   bin=Time(live.result.traces.bin_ns))
    sim = _named(sim, source.name)
    return ExperimentResult(live, sim, compare(sim, live), testbed, deployed_here)


def _named(sim: SimResult, name: str) -> SimResult:
    from dataclasses import replace

    return replace(sim, program=name)


def _bin_ns(duration_ns: int) -> int:
    return max(1_000_000, min(100_000_000, duration_ns // 200))


def _run(program: I.Program, build, store, bindings: tuple[FlowBinding, ...],
         duration_ns: int, seed: int, prefix: str | None, keep: bool, progress: Progress,
         stack: ExitStack, name: str, traffic: str, warnings: Sequence[Diagnostic]
         ) -> tuple[LiveResult, Testbed, bool]:
    from .provision import provision, release

    with _sigterm_interrupts():
        provisioned = provision(program, build, store, prefix=prefix,
                                progress=progress.message)
        if provisioned.deployed_here and not keep:
            stack.callback(release, store, progress.message)
        testbed = provisioned.testbed
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mosaico-exp-")))
        agents = Agents(workdir)
        stack.callback(agents.stop)
        tasks = _tasks(bindings, testbed, program, duration_ns, seed, workdir)
        progress.message(f"starting {len(tasks)} traffic agents")
        for label, task in tasks:
            agents.start(task, label)
        try:
            agents.wait_ready(READY_TIMEOUT)
        except AgentError as e:
            raise CompileError([error("E1404", str(e))]) from None
        samplers = []
        for sw in testbed.switches.values():
            samplers.append(Sampler(sw))  # opens its CLI session, reads the baseline
            stack.callback(samplers[-1].close)
        t0 = time.time_ns() + _START_MARGIN_NS
        load_before = os.getloadavg()
        agents.go(t0)
        for s in samplers:
            s.start(t0)
        end = t0 + duration_ns + LINGER_NS + SINK_EXTRA_NS
        progress.message("traffic running")
        while (now := time.time_ns()) < end:
            failed = agents.failed()
            if failed is not None:
                raise CompileError([error("E1404", str(failed))])
            progress.update(min(duration_ns, max(0, now - t0)) / 1e9, duration_ns / 1e9)
            time.sleep(0.1)
        try:
            agents.wait(30.0)
        except AgentError as e:
            raise CompileError([error("E1404", str(e))]) from None
        samples = {s.sw.node: s.stop() for s in samplers}
        sinks = {label.removeprefix("sink-"): read_records(Path(task.output))
                 for label, task in tasks if task.role == SINK}
        sources = {task.flows[0].name: read_records(Path(task.output))
                   for label, task in tasks if task.role == SOURCE}
    progress.message("analysing")
    host = {"cores": os.cpu_count(), "load_average_before": round(load_before[0], 2),
            "load_average_after": round(os.getloadavg()[0], 2)}
    recorded = Recorded(bindings, duration_ns, sources, sinks, samples, testbed, host)
    live = analyse(recorded, program=name, traffic=traffic, seed=seed,
                   bin_ns=_bin_ns(duration_ns), warnings=warnings)
    return live, testbed, provisioned.deployed_here
