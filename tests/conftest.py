"""Shared fixtures: repository paths, golden files, and markers for real tools.

Golden files live next to the tests that own them and are rewritten only with
``pytest --update-golden``; review their diffs like code.
"""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files from the current output")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests whose real tools are missing, saying which and why."""
    reasons = {
        "root": None if os.geteuid() == 0 else
        "needs root for network namespaces, veth and nftables (CI runs as root)",
        "p4c": None if shutil.which("p4c-bm2-ss") else
        "p4c-bm2-ss is not on PATH (install p4c from p4lang packages to run it)",
        "bmv2": None if shutil.which("simple_switch_grpc") or shutil.which("simple_switch")
        else "BMv2 simple_switch(_grpc) is not on PATH (install behavioral-model to run it)",
    }
    for item in items:
        for marker, reason in reasons.items():
            if reason and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def flagship_path() -> Path:
    return EXAMPLES / "secure_l4s.mosaico"


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """``golden(path, text)``: compare with the stored file (or rewrite it when updating)."""
    update = request.config.getoption("--update-golden")

    def check(path: Path, actual: str | bytes) -> None:
        data = actual.encode() if isinstance(actual, str) else actual
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return
        assert path.exists(), f"golden file {path} is missing: run pytest --update-golden"
        expected = path.read_bytes()
        if expected != data:
            diff = "".join(difflib.unified_diff(
                expected.decode(errors="replace").splitlines(True),
                data.decode(errors="replace").splitlines(True),
                str(path), "actual", n=2))
            pytest.fail(f"output differs from golden file {path} "
                        f"(pytest --update-golden rewrites it):\n{diff[:6000]}")

    return check
