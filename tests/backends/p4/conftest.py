"""Fixtures of the P4 backend tests (helpers live in p4_support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from p4_support import EXAMPLES


@pytest.fixture(params=EXAMPLES, ids=lambda p: p.stem)
def example(request) -> Path:
    return request.param
