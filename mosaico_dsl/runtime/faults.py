"""Fault points for tests: stop or signal a deploy at its N-th step, deterministically.

``MOSAICO_FAULT=before:3:SIGKILL`` makes the run send itself SIGKILL once its third step is
announced in the write-ahead record and before the step runs; ``after:3:SIGTERM`` once the
third step completed; ``before:3:stop`` stops the process (SIGSTOP) so a test can do
something at that exact point — kill the switch, fill the store's disk — and continue it
with SIGCONT. Several points are separated by commas. Without the variable nothing
happens. This is how the fault-injection suite (``tests/runtime/test_runtime_recovery.py``)
kills a real ``mosaico deploy`` process at every step without relying on timing.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .interrupt import Interrupt

__all__ = ["Faults", "ENV"]

ENV = "MOSAICO_FAULT"
_ACTIONS = {"SIGKILL", "SIGINT", "SIGTERM", "SIGHUP", "stop"}


@dataclass(frozen=True)
class Faults:
    points: Mapping[tuple[int, str], str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Faults:
        points = {}
        for item in filter(None, (x.strip() for x in text.split(","))):
            when, _, rest = item.partition(":")
            n, _, action = rest.partition(":")
            if when not in ("before", "after") or not n.isdigit() or action not in _ACTIONS:
                raise ValueError(f"{ENV}: {item!r} is not (before|after):N:"
                                 f"({'|'.join(sorted(_ACTIONS))})")
            points[(int(n), when)] = action
        return cls(points)

    @classmethod
    def from_env(cls) -> Faults:
        """The points ``$MOSAICO_FAULT`` names; a malformed value is said on stderr and
        ignored (it is a test hook: a test that sets it checks that its fault happened)."""
        try:
            return cls.parse(os.environ.get(ENV, ""))
        except ValueError as e:
            print(f"mosaico: warning: {e}; ignored", file=sys.stderr)
            return cls()

    def hit(self, n: int, when: str, interrupt: Interrupt | None) -> None:
        action = self.points.get((n, when))
        if action is None:
            return
        if action == "stop":
            os.kill(os.getpid(), signal.SIGSTOP)
            return
        os.kill(os.getpid(), getattr(signal, action))
        # A handled signal runs its handler in the main thread; a step announced from a
        # worker thread waits for it, so the run stops exactly here.
        if interrupt is not None:
            interrupt.wait(5)
