"""The ``p4c``/``bmv2`` markers: a missing tool skips the test with the reason — unless
MOSAICO_REQUIRE_P4TOOLS=1 (set by .ci/run after installing the tools) says the tools are
expected, and then the test fails. Run on a throwaway test file with this suite's conftest
and a PATH that holds no P4 tool."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).with_name("conftest.py")
TESTS = """
import pytest

@pytest.mark.p4c
def test_needs_p4c():
    pass

@pytest.mark.bmv2("simple_switch_grpc")
def test_needs_grpc():
    pass

def test_needs_nothing():
    pass
"""


def _run(tmp_path: Path, require: bool) -> subprocess.CompletedProcess:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_tools.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items() if k != "MOSAICO_REQUIRE_P4TOOLS"}
    env["PATH"] = str(tmp_path / "bin")  # no p4c, no BMv2
    if require:
        env["MOSAICO_REQUIRE_P4TOOLS"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-rsE", "-p", "no:cacheprovider",
                           "-W", "ignore::pytest.PytestUnknownMarkWarning", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_missing_tool_skips_with_the_reason(tmp_path):
    r = _run(tmp_path, require=False)
    assert r.returncode == 0, r.stdout
    assert "1 passed, 2 skipped" in r.stdout
    assert "p4c-bm2-ss not on PATH" in r.stdout
    assert "simple_switch_grpc not on PATH" in r.stdout


def test_a_missing_tool_fails_where_the_tools_are_required(tmp_path):
    r = _run(tmp_path, require=True)
    assert r.returncode == 1, r.stdout
    assert "1 passed, 2 errors" in r.stdout
    for tool in ("p4c-bm2-ss", "simple_switch_grpc"):
        assert f"{tool} not on PATH, but MOSAICO_REQUIRE_P4TOOLS=1" in r.stdout
