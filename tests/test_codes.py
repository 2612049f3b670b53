"""Every diagnostic code is documented and has a test that shows its text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mosaico_dsl._codes import CODES

ROOT = Path(__file__).resolve().parent.parent


def _mentions(folder: str, pattern: str) -> set[str]:
    text = "\n".join(p.read_text() for p in (ROOT / folder).rglob(pattern))
    return set(re.findall(r"\b[EW]\d{4}\b", text))


def test_codes_are_well_formed():
    for code, title in CODES.items():
        assert re.fullmatch(r"[EW]\d{4}", code), code
        assert title and title == title.strip() and not title.endswith(".")


@pytest.mark.parametrize("code", sorted(CODES))
def test_code_has_a_test(code):
    assert code in _mentions("tests", "test_*.py") - {"E0000"}, \
        f"{code} ({CODES[code]}) has no test showing its text"


@pytest.mark.parametrize("code", sorted(CODES))
def test_code_is_documented(code):
    assert code in _mentions("docs", "*.md"), f"{code} ({CODES[code]}) is not in docs/"
