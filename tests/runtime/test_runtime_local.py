"""The local Linux target for real: namespaces, veth, routes and nftables (needs root).

Each test uses its own namespace prefix and removes every namespace it could have
created, even when it fails.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from local_support import mosaico, namespaces, reaches
from runtime_helpers import TWO_SWITCHES

from mosaico_dsl.compiler import compile as compile_program
from mosaico_dsl.runtime.p4runtime import Endpoint, connect
from mosaico_dsl.runtime.state import StateStore

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compile_program(TWO_SWITCHES).write(tmp_path_factory.mktemp("local") / "build")


UDP_PROBE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(b"probe", (sys.argv[1], int(sys.argv[2])))
"""


@pytest.mark.parametrize("plane", [pytest.param("bmv2", marks=[pytest.mark.bmv2,
                                                                 pytest.mark.p4c]),
                                   "linux"])
def test_deploy_status_destroy(compiled, prefix, state_path, plane):
    args = ["--target", "local", "--local-prefix", prefix, "--state", str(state_path),
            "--data-plane", plane]
    r = mosaico("deploy", str(compiled), *args)
    assert r.exit_code == 0, r.output
    assert f"+ namespace {prefix}s1 (switch s1)" in r.output
    assert f"note: switch s1: data plane {plane}" in r.output
    plan = json.loads((compiled / "local.json").read_text())
    assert namespaces(prefix) == {prefix + ns["name"] for ns in plan["namespaces"]}
    # The topology is really wired: the client reaches the server across s1 and s2 (and
    # the server's replies come back: `web` forwards them).
    assert reaches(prefix, "client", 443)
    # What no service matches is dropped at the first switch and counted there.
    subprocess.run(["ip", "netns", "exec", f"{prefix}client", sys.executable, "-c",
                    UDP_PROBE, "10.0.2.1", "9"], check=True, timeout=20)

    again = mosaico("deploy", str(compiled), *args)
    assert again.exit_code == 0 and "Nothing to do" in again.output

    rows = json.loads(mosaico("status", *args, "--format", "json").output)
    s1 = [r for r in rows if r["node"] == "s1"]
    assert s1 and all(r["state"] == "running" for r in s1)
    assert s1[0]["detail"].startswith(f"data plane: {plane}")
    assert any(r["service"] == "web" for r in s1)
    assert all(isinstance(r["packets"], int) for r in s1 if r["service"] == "web")
    s1_total = next(r for r in s1 if r["service"] == "*")
    assert s1_total["drops"] == 3  # the probes: unclassified (nothing else was dropped)

    subprocess.run(["ip", "netns", "del", f"{prefix}server"], check=True)
    drift = mosaico("plan", str(compiled), *args)
    assert f"- namespace {prefix}server" in drift.output
    assert "drift: deleted out of band" in drift.output
    repaired = mosaico("deploy", str(compiled), *args)
    assert repaired.exit_code == 0, repaired.output
    assert f"{prefix}server" in namespaces(prefix)

    gone = mosaico("destroy", *args)
    assert gone.exit_code == 0, gone.output
    assert namespaces(prefix) == set()
    with StateStore(state_path) as store:
        assert store.units("local") == []


def test_namespace_that_already_exists(compiled, prefix, state_path):
    subprocess.run(["ip", "netns", "add", f"{prefix}s2"], check=True)
    r = mosaico("deploy", str(compiled), "--target", "local", "--local-prefix", prefix,
                "--state", str(state_path))
    assert r.exit_code == 1
    assert f"+ namespace {prefix}s2 (switch s2) — exists already, not created by mosaico" \
        in r.output
    assert "error[E1211]: local target: namespaces already exist" in r.output
    assert "neither the state store nor its write-ahead record lists them" in r.output
    assert "--local-prefix" in r.output.split("hint:")[-1]
    # Nothing was changed, and no rollback is claimed (issue 16: E1212 when nothing was).
    assert "error[E1212]" not in r.output
    assert "nothing had been changed on any target" in r.output
    assert namespaces(prefix) == {f"{prefix}s2"}, "only the foreign namespace remains"
    with StateStore(state_path) as store:
        assert store.units() == []


def test_switch_failure_removes_the_local_namespaces(compiled, prefix, state_path,
                                                     reference_switch):
    """local is applied first; then s1 refuses us (another primary): local is unwound."""
    s1, s2 = reference_switch(device_id=1), reference_switch(device_id=2)

    loop = asyncio.new_event_loop()
    other = loop.run_until_complete(connect(Endpoint("ops", s2.address, 2, election_id=99)))
    try:
        r = mosaico("deploy", str(compiled), "--target", "local", "--target", "p4runtime",
                    "--local-prefix", prefix, "--address", f"s1={s1.address}",
                    "--address", f"s2={s2.address}", "--state", str(state_path))
    finally:
        loop.run_until_complete(other.close())
        loop.close()
    assert r.exit_code == 1
    assert "error[E1206]" in r.output
    assert "undone: local: remove namespace" in r.output
    assert namespaces(prefix) == set()
