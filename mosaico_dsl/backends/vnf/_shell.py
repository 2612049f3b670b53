"""Running ``ip``/``nft``/``tc`` for the local target: one place for commands and errors."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

__all__ = ["LocalTargetError", "run", "netns_exec"]


class LocalTargetError(Exception):
    """A command of the realisation failed (the message carries the command and stderr)."""


def run(cmd: Sequence[str], stdin: str | None = None, check: bool = True
        ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise LocalTargetError(f"`{' '.join(cmd)}` failed ({proc.returncode}): "
                               f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def netns_exec(namespace: str, *cmd: str) -> list[str]:
    """The command line that runs ``cmd`` inside ``namespace``."""
    return ["ip", "netns", "exec", namespace, *cmd]
