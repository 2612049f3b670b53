"""Fixtures of the IPython tests: a real in-process IPython shell with the extension loaded,
the walkthrough notebook executed by a real Jupyter kernel (nbclient + ipykernel), and the
``chromium`` marker for tests that render it in headless Chromium.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from ipython_helpers import WALKTHROUGH, chromium_path


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("chromium") and chromium_path() is None:
        pytest.skip("headless Chromium is not installed (Debian package `chromium`; "
                    ".ci/run installs it)")
    if item.get_closest_marker("graphviz") and shutil.which("dot") is None:
        pytest.skip("Graphviz's `dot` is not installed (Debian package `graphviz`; "
                    ".ci/run installs it)")


@pytest.fixture(scope="session")
def _session_shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    yield shell
    InteractiveShell.clear_instance()


@pytest.fixture
def shell(_session_shell) -> Iterator:
    """An IPython shell with ``%load_ext mosaico_dsl`` done, fresh variables each test."""
    ip = _session_shell
    ip.run_line_magic("load_ext", "mosaico_dsl")
    ip.reset(new_session=False)
    yield ip
    ip.run_line_magic("unload_ext", "mosaico_dsl")


@pytest.fixture
def run(shell):
    """``run(code) -> (result, outputs)``: run a cell, capturing what it displays."""
    from IPython.utils.capture import capture_output

    def go(code: str):
        with capture_output(display=True) as cap:
            result = shell.run_cell(code, store_history=True)
        return result, cap

    return go


@pytest.fixture(scope="session")
def executed_walkthrough(tmp_path_factory) -> tuple:
    """The walkthrough, executed top to bottom by a real kernel in a scratch directory.

    Any cell error fails every test that uses it, except in cells tagged
    ``raises-exception`` (the deliberate mistake), which nbclient lets through.
    """
    import nbclient
    import nbformat
    from nbclient.exceptions import CellExecutionError

    cwd = tmp_path_factory.mktemp("walkthrough")
    nb = nbformat.read(WALKTHROUGH, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute()
    except CellExecutionError as e:
        pytest.fail(f"the walkthrough notebook failed:\n{e}")
    return nb, cwd
