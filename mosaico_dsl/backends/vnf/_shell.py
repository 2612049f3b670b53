"""Running ``ip``/``nft``/``tc`` for the local target: one place for commands and errors."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

__all__ = ["LocalTargetError", "NothingDone", "run", "netns_exec"]


class LocalTargetError(Exception):
    """A command of the realisation failed (the message carries the command and stderr)."""


class NothingDone(LocalTargetError):
    """A step's first command — one that changes all or nothing (``ip netns add``, ``ip
    link add``, ``nft -f``) — failed: the step changed nothing, and has nothing to undo."""


def run(cmd: Sequence[str], stdin: str | None = None, check: bool = True,
        error: type[LocalTargetError] = LocalTargetError) -> subprocess.CompletedProcess[str]:
    """Run a command to its end. It gets a process group of its own, so a Ctrl-C at the
    terminal reaches mosaico alone — which stops at the next step and rolls back — rather
    than killing the command half-way through its step."""
    proc = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True, timeout=60,
                          process_group=0)
    if check and proc.returncode != 0:
        raise error(f"`{' '.join(cmd)}` failed ({proc.returncode}): "
                               f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def netns_exec(namespace: str, *cmd: str) -> list[str]:
    """The command line that runs ``cmd`` inside ``namespace``."""
    return ["ip", "netns", "exec", namespace, *cmd]
