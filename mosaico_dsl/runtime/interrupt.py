"""SIGINT, SIGTERM and SIGHUP during a deploy or destroy: stop at a step boundary, roll back.

A signal does not kill the run where it stands — half a namespace, a batch written but not
journaled, a worker thread still running a step while the rollback starts. The handler only
*asks* the run to stop (:meth:`Interrupt.request`); the transaction looks at the request
before every step (:meth:`Interrupt.check` raises :class:`Interrupted` there), every unit
stops at its next step, and the rollback undoes what was done. A second signal during the
rollback is refused with a message: the rollback finishes (SIGKILL still kills the run, and
its write-ahead record lets the next deploy or destroy finish the undo). The command exits
with 128 + the signal's number, as a shell reports a process the signal killed.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ..diagnostics import CompileError, Diagnostic, error

__all__ = ["Interrupt", "Interrupted", "SIGNALS"]

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(CompileError):
    """The run stopped because a signal asked it to (exit status 128 + the signal)."""

    def __init__(self, signum: int, command: str = "deploy",
                 diagnostics: Sequence[Diagnostic] | None = None) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(diagnostics if diagnostics is not None else [error(
            "E1233", f"{command} interrupted by {name}",
            hint="run it again to finish it")])


class Interrupt:
    """A request to stop, set from a signal handler and read by the run's threads."""

    def __init__(self, command: str = "deploy") -> None:
        self.command = command
        self._event = threading.Event()
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
        self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def check(self) -> None:
        if self._event.is_set():
            raise Interrupted(self.signum or signal.SIGINT, self.command)

    @contextmanager
    def handling(self, signals: Sequence[int] = SIGNALS) -> Iterator[Interrupt]:
        """Route ``signals`` to this request while the block runs (main thread only; in
        another thread — a notebook's worker — signals keep their handlers)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in signals}

        def handler(signum, _frame) -> None:
            name = signal.Signals(signum).name
            if self.requested:
                _say(f"mosaico: {name}: already stopping; the rollback finishes first "
                     "(SIGKILL leaves the rest to the next deploy or destroy)\n")
                return
            self.request(signum)
            _say(f"mosaico: {name}: stopping after the current step, then rolling back\n")

        for s in signals:
            signal.signal(s, handler)
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def _say(text: str) -> None:
    """Write to stderr from a signal handler (no buffered I/O; a closed terminal — SIGHUP
    — is ignored)."""
    try:
        os.write(2, text.encode())
    except OSError:
        pass
