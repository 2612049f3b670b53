"""Fixtures of the runtime tests: real P4Runtime servers on loopback, build directories.

The reference target runs in a thread with its own event loop (so tests drive it through
the real gRPC client, the CLI, or p4runtime-shell) or as a separate ``mosaico target
serve`` process when a test must kill it. ``bmv2`` tests start ``simple_switch_grpc``
instead; ``p4runtime_shell`` tests need p4runtime-shell's own virtual environment (it pins
protobuf < 3.21), which ``.ci/run`` creates at /opt/p4rt-shell.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from local_support import clean, leftovers
from runtime_helpers import DATA, P4RT_SHELL_PYTHON, ROOT, free_port

from mosaico_dsl.runtime.schema import Schema, load_p4info
from mosaico_dsl.runtime.server import ReferenceTarget, start_server


def _p4rt_shell_reason() -> str | None:
    if not P4RT_SHELL_PYTHON.exists():
        return (f"p4runtime-shell's separate environment is absent ({P4RT_SHELL_PYTHON}); "
                "create it with `python3 -m venv /opt/p4rt-shell && /opt/p4rt-shell/bin/pip "
                "install p4runtime-shell` (.ci/run does) or set MOSAICO_P4RT_SHELL_PYTHON")
    probe = subprocess.run([str(P4RT_SHELL_PYTHON), "-c", "import p4runtime_sh.shell"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        return f"p4runtime-shell does not import in {P4RT_SHELL_PYTHON}: {probe.stderr[-300:]}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = [i for i in items if i.get_closest_marker("p4runtime_shell")]
    if not wanted:
        return
    reason = _p4rt_shell_reason()
    if reason:
        for item in wanted:
            item.add_marker(pytest.mark.skip(reason=reason))


# --------------------------------------------------------------------------- P4Info


@pytest.fixture(scope="session")
def lab_schema() -> Schema:
    return load_p4info(DATA / "lab.p4info.txtpb")


# --------------------------------------------------------------------------- servers


@dataclass
class RunningSwitch:
    address: str
    target: ReferenceTarget

    def call(self, fn):
        """Run ``fn()`` holding the target's lock (its state is shared with gRPC threads)."""
        with self.target.lock:
            return fn()


@pytest.fixture
def reference_switch(lab_schema) -> Iterator[callable]:
    """``start(device_id=1, pipeline=False, tls=None)`` → a :class:`RunningSwitch`."""
    handles = []

    def start(device_id: int = 1, pipeline: bool = False, tls=None) -> RunningSwitch:
        target = ReferenceTarget(device_id, lab_schema.p4info if pipeline else None)
        handle = start_server(target, "127.0.0.1:0", tls)
        handles.append(handle)
        return RunningSwitch(f"127.0.0.1:{handle.port}", target)

    yield start
    for h in handles:
        h.stop(0)


@dataclass
class ServedProcess:
    address: str
    proc: subprocess.Popen

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def served_switch() -> Iterator[callable]:
    """``serve(switch_dir, extra_args)``: `mosaico target serve` as a real process."""
    procs: list[subprocess.Popen] = []

    def serve(switch_dir: Path, *args: str, script: str | None = None) -> ServedProcess:
        port = free_port()
        if script is None:
            cmd = [sys.executable, "-m", "mosaico_dsl.cli", "target", "serve", str(switch_dir),
                   "--listen", f"127.0.0.1:{port}", *args]
        else:
            cmd = [sys.executable, "-c", script, str(switch_dir), str(port), *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT)
        procs.append(proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return ServedProcess(f"127.0.0.1:{port}", proc)
            time.sleep(0.05)
        raise RuntimeError("server did not start listening")

    yield serve
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


# --------------------------------------------------------------------------- builds


@pytest.fixture
def prefix() -> Iterator[str]:
    """A namespace prefix of its own for a local target test; whatever the test leaves —
    namespaces, BMv2 switches, their run directories — is removed, and a leftover fails."""
    p = f"rt{secrets.token_hex(3)}-"
    yield p
    clean(p)
    assert not leftovers(p), "left behind"


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.db"


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
