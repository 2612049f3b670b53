"""The process the experiment starts in an endpoint's namespace: ``python -m
mosaico_dsl.experiment.agent TASK.json``.

The protocol with the experiment is three lines: the agent sets up (sockets bound,
listeners open) and prints ``ready``; it reads ``go T0`` on its standard input — the
experiment's time zero, on CLOCK_REALTIME, the same clock for every namespace — and runs
its flows against it; it writes its records (:mod:`.records`) and prints ``done``. An
empty line or end of input before ``go`` means stop without running; SIGTERM stops it at
once. Every agent ends by the task's ``end_ns`` whatever happens, and every sender after
its packet budget.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from .records import write_records
from .tasks import SINK, AgentTask

__all__ = ["main"]


def _ready() -> None:
    print("ready", flush=True)


def _wait_for_start() -> int:
    line = sys.stdin.readline().split()
    if len(line) != 2 or line[0] != "go":
        raise SystemExit(0)
    return int(line[1])


def _terminate(signum, frame) -> None:
    raise SystemExit(143)


def run(task: AgentTask) -> None:
    if task.role == SINK:
        from .sink import run_sink

        tables, meta = run_sink(task, _ready, _wait_for_start)
    else:
        (flow,) = task.flows
        if flow.kind == "prague":
            from .l4s import run_l4s as runner
        elif flow.kind in ("reno", "cubic"):
            from .classic import run_tcp as runner
        else:
            from .openloop import run_open_loop as runner
        tables, meta = runner(task, flow, _ready, _wait_for_start)
    write_records(Path(task.output), tables, meta)
    print("done", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mosaico_dsl.experiment.agent TASK.json", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    try:
        run(AgentTask.from_json(Path(args[0]).read_text(encoding="utf-8")))
    except OSError as e:
        print(f"agent error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
