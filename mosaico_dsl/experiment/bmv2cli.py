"""Reading a BMv2 switch's counters and registers during a run, through its runtime CLI.

One ``simple_switch_CLI`` session per switch, started inside the switch's namespace (its
Thrift port is on that namespace's loopback) and kept open: a batch of ``counter_read`` and
``register_read`` commands costs a few hundred microseconds of the switch's time, so the
registers — the DualQ's latest queue delays and p′ — can be sampled many times a second.
BMv2's P4Runtime server does not read registers, which is why this is the Thrift CLI; the
local target's own reads (:func:`~mosaico_dsl.backends.vnf.localswitch.read_cells`) start
one CLI per read, which is right for ``mosaico status`` and too slow to sample with.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from collections.abc import Sequence

from ..backends.vnf.localswitch import Cell

__all__ = ["Cell", "RuntimeCli", "RuntimeCliError", "command"]

_PROMPT = "RuntimeCmd: "
_COUNTER = re.compile(r"^\S+\[\d+\]= \((\d+) bytes, (\d+) packets\)$")
_REGISTER = re.compile(r"^\S+\[\d+\]= (\d+)$")


class RuntimeCliError(Exception):
    """The CLI could not be started, died, or answered something unreadable."""


def command(cell: Cell) -> str:
    verb = "counter_read" if cell.kind == "counter" else "register_read"
    return f"{verb} {cell.name} {cell.index}"


class RuntimeCli:
    """An open ``simple_switch_CLI`` session."""

    def __init__(self, namespace: str, thrift_port: int, *, timeout: float = 10.0) -> None:
        self.timeout = timeout
        try:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", namespace, "simple_switch_CLI", "--thrift-port",
                 str(thrift_port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, bufsize=0, start_new_session=True)
        except OSError as e:
            raise RuntimeCliError(f"cannot start simple_switch_CLI: {e}") from None
        self._buffer = b""

    def _line(self, deadline: float) -> str:
        """The next output line (read unbuffered: select() sees exactly what is pending)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeCliError("simple_switch_CLI did not answer in time")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeCliError(f"simple_switch_CLI exited ({self.proc.poll()})")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace")

    def read(self, cells: Sequence[Cell]) -> list[tuple[int, int]]:
        """Each cell's ``(packets, bytes)`` for a counter, ``(value, 0)`` for a register."""
        if not cells:
            return []
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write("".join(command(c) + "\n" for c in cells).encode())
        except (BrokenPipeError, OSError) as e:
            raise RuntimeCliError(f"simple_switch_CLI is gone: {e}") from None
        deadline = time.monotonic() + self.timeout
        out = []
        while len(out) < len(cells):
            line = self._line(deadline)
            if not line.startswith(_PROMPT):
                continue  # the banner
            answer = line[len(_PROMPT):].strip()
            cell = cells[len(out)]
            m = (_COUNTER if cell.kind == "counter" else _REGISTER).match(answer)
            if m is None:
                raise RuntimeCliError(f"`{command(cell)}`: {answer}")
            out.append((int(m.group(2)), int(m.group(1))) if cell.kind == "counter"
                       else (int(m.group(1)), 0))
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
