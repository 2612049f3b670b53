"""Helpers of the IPython tests (a module of its own: conftest modules are not importable
by name, several directories have one)."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WALKTHROUGH = ROOT / "examples" / "walkthrough.ipynb"
FLAGSHIP = ROOT / "examples" / "secure_l4s.mosaico"


def chromium_path() -> str | None:
    """Debian's ``chromium`` (or a ``chromium-browser`` elsewhere), if installed."""
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
