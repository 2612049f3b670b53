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


# Where MOSAICO_REQUIRE_P4TOOLS=1 (.ci/run sets it after installing the real tools), a test
# whose P4 tool is missing fails instead of skipping: in CI they must all run.
REQUIRE_P4TOOLS = "MOSAICO_REQUIRE_P4TOOLS"
_P4_TOOLS = {"p4c": ("p4c-bm2-ss",), "bmv2": ("simple_switch",)}
_P4_HINT = ("install p4c and BMv2 (README: p4lang's packages or Docker images), or unset "
            f"{REQUIRE_P4TOOLS}")


def _missing_p4_tools(item: pytest.Item, marker: str) -> list[str]:
    """Binaries a ``p4c``/``bmv2`` test needs that are not on PATH: the marker's arguments
    (``@pytest.mark.bmv2("simple_switch_grpc")``), else the marker's default tool."""
    needed = [tool for m in item.iter_markers(marker) for tool in m.args] or \
        list(_P4_TOOLS[marker])
    return [tool for tool in dict.fromkeys(needed) if shutil.which(tool) is None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests whose real tools are missing, saying which and why — or, where the
    environment says the P4 tools are expected, fail them."""
    required = os.environ.get(REQUIRE_P4TOOLS) == "1"
    root = None if os.geteuid() == 0 else \
        "needs root for network namespaces, veth and nftables (CI runs as root)"
    for item in items:
        if root and item.get_closest_marker("root"):
            item.add_marker(pytest.mark.skip(reason=root))
        for marker in _P4_TOOLS:
            if item.get_closest_marker(marker) is None:
                continue
            missing = _missing_p4_tools(item, marker)
            if not missing:
                continue
            reason = f"{', '.join(missing)} not on PATH"
            if not required:
                item.add_marker(pytest.mark.skip(
                    reason=f"{reason} (install p4c/BMv2 from p4lang packages to run it)"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Where the P4 tools are required, a test that needs a missing one fails at setup."""
    if os.environ.get(REQUIRE_P4TOOLS) != "1":
        return
    for marker in _P4_TOOLS:
        if item.get_closest_marker(marker) is not None:
            missing = _missing_p4_tools(item, marker)
            if missing:
                pytest.fail(f"{', '.join(missing)} not on PATH, but {REQUIRE_P4TOOLS}=1 says "
                            f"the P4 tools are installed: {_P4_HINT}", pytrace=False)


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
