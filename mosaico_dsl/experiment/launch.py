"""Starting, synchronising and stopping the agents (:mod:`.agent`) in their namespaces.

Each agent is ``ip netns exec NS python -m mosaico_dsl.experiment.agent TASK.json`` (``ip
netns exec`` replaces itself with the agent: the process id is the agent's), in a session
of its own so that nothing else is signalled with it. They are all told the same time
zero once every one has said ``ready``; stopping sends SIGTERM to each, by its id, then
SIGKILL to any still alive two seconds later.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from .tasks import AgentTask

__all__ = ["Agents", "AgentError"]


class AgentError(Exception):
    """An agent failed to start, to get ready, or to finish; the message quotes it."""


class _Agent:
    def __init__(self, task: AgentTask, workdir: Path, label: str) -> None:
        self.task = task
        self.label = label
        path = workdir / f"{label}.task.json"
        path.write_text(task.to_json(), encoding="utf-8")
        self.err_path = workdir / f"{label}.stderr"
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", task.namespace, sys.executable, "-m",
             "mosaico_dsl.experiment.agent", str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, bufsize=0,
            start_new_session=True)
        self.said: list[str] = []
        self._buffer = b""

    def stderr(self) -> str:
        self.err.flush()
        try:
            return self.err_path.read_text(errors="replace").strip()[-2000:]
        except OSError:
            return ""

    def lines(self) -> list[str]:
        """Read what the agent printed since the last call (non-blocking)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            self._buffer += chunk
        *done, self._buffer = self._buffer.split(b"\n")
        new = [d.decode(errors="replace").strip() for d in done]
        self.said += new
        return new

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line.encode() + b"\n")
        except (BrokenPipeError, OSError):
            pass  # it exited; wait() reports why


class Agents:
    """The agents of one run."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.agents: list[_Agent] = []

    def start(self, task: AgentTask, label: str) -> None:
        self.agents.append(_Agent(task, self.workdir, label))

    def _failed(self, a: _Agent, what: str) -> AgentError:
        return AgentError(f"agent {a.label} in namespace {a.task.namespace} {what}"
                          + (f": {a.stderr()}" if a.stderr() else ""))

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(self.agents)
        while waiting:
            for a in list(waiting):
                a.lines()
                if "ready" in a.said:
                    waiting.remove(a)
                elif a.proc.poll() is not None:
                    raise self._failed(a, f"exited ({a.proc.returncode}) before it was ready")
            if waiting and time.monotonic() > deadline:
                raise self._failed(waiting[0], f"was not ready after {timeout:g} s")
            if waiting:
                time.sleep(0.02)

    def go(self, t0_ns: int) -> None:
        for a in self.agents:
            a.tell(f"go {t0_ns}")

    def failed(self) -> AgentError | None:
        """The first agent that exited with an error, if any (while they run)."""
        for a in self.agents:
            code = a.proc.poll()
            if code not in (None, 0):
                return self._failed(a, f"failed ({code})")
        return None

    def wait(self, timeout: float) -> None:
        """Wait for every agent to finish and write its records."""
        deadline = time.monotonic() + timeout
        for a in self.agents:
            try:
                a.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise self._failed(a, f"did not finish within {timeout:g} s") from None
            a.lines()
            if a.proc.returncode != 0 or "done" not in a.said:
                raise self._failed(a, f"failed ({a.proc.returncode})")

    def output(self, label: str) -> Path:
        return Path(next(a.task.output for a in self.agents if a.label == label))

    def stop(self) -> None:
        """SIGTERM every agent still running, SIGKILL after 2 s; by process id only."""
        alive = [a for a in self.agents if a.proc.poll() is None]
        for a in alive:
            try:
                os.kill(a.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 2.0
        for a in alive:
            try:
                a.proc.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                a.proc.kill()
                a.proc.wait()
        for a in self.agents:
            for f in (a.proc.stdin, a.proc.stdout):
                if f is not None:
                    f.close()
            a.err.close()
