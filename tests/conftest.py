"""Shared fixtures: paths of the repository and a helper to compile source text."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def flagship_path() -> Path:
    return EXAMPLES / "secure_l4s.mosaico"
