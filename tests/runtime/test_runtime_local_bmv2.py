"""The local target running the compiled P4 on BMv2 — deploy, redeploy, drift, rollback.

Real ``simple_switch`` in the switch's namespace, real p4c, real namespaces (root). edge_a
and edge_b (tests/runtime/data) differ in s1's program (edge_b adds the endpoint probe on
port 3) and in a VNF's ruleset; ``edge_a`` with another VNF blocklist differs in that
ruleset only. Failures are injected at the tools' boundary: a ``p4c-bm2-ss`` or a
``simple_switch`` that fails, put first on PATH.

Each test uses its own namespace prefix and checks that nothing is left behind: no
namespace, no simple_switch process, no run directory.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from runtime_helpers import DATA

from mosaico_dsl.backends.vnf import localswitch
from mosaico_dsl.cli import cli
from mosaico_dsl.compiler import compile as compile_program
from mosaico_dsl.runtime.state import StateStore

SERVER = "10.0.2.1"


def namespaces(prefix: str) -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith(prefix)}


def switches(prefix: str) -> list[int]:
    """simple_switch processes started for namespaces of this prefix."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"simple_switch") and any(
                    str(localswitch.run_dir(prefix)).encode() in a for a in argv):
                out.append(int(pid))
    return out


def leftovers(prefix: str) -> list[str]:
    root = localswitch.run_dir("x").parent
    runs = [p.name for p in root.glob(f"{prefix}*")] if root.is_dir() else []
    return sorted(namespaces(prefix)) + [f"pid {p}" for p in switches(prefix)] + runs


def mosaico(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def prefix():
    p = f"rb{secrets.token_hex(3)}-"
    yield p
    for ns in namespaces(p):
        localswitch.stop(ns)
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert not leftovers(p), "left behind"


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("bmv2")
    a = (DATA / "edge_a.mosaico").read_text()
    # a2: the same program but for the Blocklist VNF's prefix: s1's P4 is unchanged
    a2 = a.replace("prefixes: [203.0.113.0/24]) @ nfvi1", "prefixes: [203.0.113.0/25]) @ nfvi1")
    assert a2 != a
    (root / "src").mkdir()
    (root / "src" / "edge_a.mosaico").write_text(a2)  # the same name: s1.p4 cites it
    out = {v: compile_program(DATA / f"edge_{v}.mosaico").write(root / v) for v in "ab"}
    out["a2"] = compile_program(root / "src" / "edge_a.mosaico").write(root / "a2")
    return out


def args_for(prefix: str, state: Path, *more: str) -> list[str]:
    return ["--target", "local", "--local-prefix", prefix, "--state", str(state), *more]


SERVE = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(); print("ready", flush=True)
s.settimeout(20)
c, _ = s.accept(); c.sendall(b"hello"); c.close()
"""
CONNECT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print(c.recv(5).decode())
"""


def reaches(prefix: str, source: str, port: int = 80) -> bool:
    """A TCP exchange (the replies too) from ``source`` to the server through s1."""
    server = subprocess.Popen(["ip", "netns", "exec", f"{prefix}server", sys.executable, "-c",
                               SERVE, SERVER, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        got = subprocess.run(["ip", "netns", "exec", prefix + source, sys.executable, "-c",
                              CONNECT, SERVER, str(port)], capture_output=True, text=True,
                             timeout=30)
        return got.stdout.strip() == "hello"
    finally:
        server.kill()
        server.wait(10)


SENT = """
table ip mosaico_test {
	counter sent { }
	chain output {
		type filter hook output priority filter; policy accept;
		ip daddr %s tcp dport %d counter name "sent"
	}
}
"""


def count_sent(ns: str, daddr: str, dport: int) -> None:
    """Count, in ``ns``, the packets that leave it for ``daddr:dport`` (a test table)."""
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=SENT % (daddr, dport),
                   text=True, check=True)


def sent(ns: str) -> int:
    out = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "counter", "ip",
                          "mosaico_test", "sent"], capture_output=True, text=True, check=True)
    return next(i["counter"]["packets"] for i in json.loads(out.stdout)["nftables"]
                if "counter" in i)


def status(prefix: str, state: Path) -> list[dict]:
    r = mosaico("status", "--state", str(state), "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


# --------------------------------------------------------------------------- no BMv2


def test_bmv2_asked_for_but_absent_is_a_diagnostic(builds, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # none of BMv2's tools
    r = mosaico("plan", str(builds["a"]), *args_for("x-", tmp_path / "s.db"),
                "--data-plane", "bmv2")
    assert r.exit_code == 1
    assert "error[E1219]: --data-plane bmv2: simple_switch, simple_switch_CLI, p4c-bm2-ss, " \
           "ethtool not on PATH" in r.output
    assert "--data-plane linux" in r.output


def test_without_bmv2_the_plan_says_the_stand_in_runs(builds, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    r = mosaico("plan", str(builds["a"]), *args_for("x-", tmp_path / "s.db"))
    assert r.exit_code == 0, r.output
    assert "note: switch s1: data plane linux stand-in (nftables, tc): simple_switch, " \
           "simple_switch_CLI, p4c-bm2-ss, ethtool not on PATH" in r.output
    assert "bmv2 s1" not in r.output


def test_bmv2_needs_the_p4_program(tmp_path):
    build = compile_program(DATA / "edge_a.mosaico", emit=["ir", "placement", "vnf"]) \
        .write(tmp_path / "vnf-only")
    r = mosaico("plan", str(build), *args_for("x-", tmp_path / "s.db"), "--data-plane", "bmv2")
    if localswitch.missing_tools():
        assert "error[E1219]: --data-plane bmv2:" in r.output and "not on PATH" in r.output
    else:
        assert "error[E1219]: --data-plane bmv2: the build has no P4 program for s1" \
            in r.output


# --------------------------------------------------------------------------- BMv2


@pytest.mark.root
@pytest.mark.bmv2
@pytest.mark.p4c
def test_redeploys_restart_only_a_changed_switch(builds, prefix, tmp_path):
    state = tmp_path / "state.db"
    args = args_for(prefix, state, "--data-plane", "bmv2")
    r = mosaico("deploy", str(builds["a"]), *args)
    assert r.exit_code == 0, r.output
    assert "note: switch s1: data plane bmv2" in r.output
    assert f"+ bmv2 s1 in {prefix}s1 (program " in r.output
    first = switches(prefix)
    assert len(first) == 1
    assert reaches(prefix, "client")
    with StateStore(state) as store:
        rec = store.unit("local", "local").data["bmv2"]["s1"]
    assert rec["pid"] == first[0] and rec["handles"]  # what destroy and status use

    # Nothing changed: nothing is touched, the switch keeps running as it was.
    again = mosaico("deploy", str(builds["a"]), *args)
    assert again.exit_code == 0 and "Nothing to do" in again.output
    assert switches(prefix) == first

    # Only a VNF's ruleset changed: s1's program is the same, so s1 is not restarted.
    vnf = mosaico("deploy", str(builds["a2"]), *args)
    assert vnf.exit_code == 0, vnf.output
    assert "reloaded in place" in vnf.output and "bmv2 s1" not in vnf.output.split("Plan:")[0]
    assert switches(prefix) == first

    # s1's program changed (a port and a route for probe): it restarts on the new program.
    b = mosaico("deploy", str(builds["b"]), *args)
    assert b.exit_code == 0, b.output
    assert f"~ bmv2 s1 in {prefix}s1 (program " in b.output
    assert "restarted: program changed" in b.output
    second = switches(prefix)
    assert len(second) == 1 and second != first
    argv = Path(f"/proc/{second[0]}/cmdline").read_bytes().split(b"\0")
    assert b"3@p3" in argv  # probe's port
    count_sent(prefix + "client", SERVER, 80)
    assert reaches(prefix, "client")
    rows = status(prefix, state)
    s1 = {r["service"]: r for r in rows if r["node"] == "s1"}
    assert s1["*"]["state"] == "running" and f"pid {second[0]}" in s1["*"]["detail"]
    # read from the restarted switch: exactly what the client sent since
    assert s1["web"]["packets"] == s1["*"]["packets"] == sent(prefix + "client") > 0

    gone = mosaico("destroy", "--state", str(state))
    assert gone.exit_code == 0, gone.output
    assert f"- bmv2 s1 in {prefix}s1" in gone.output
    assert not leftovers(prefix)


@pytest.mark.root
@pytest.mark.bmv2
@pytest.mark.p4c
def test_a_stopped_switch_is_drift_and_is_restarted(builds, prefix, tmp_path):
    state = tmp_path / "state.db"
    args = args_for(prefix, state)  # no --data-plane: BMv2, as its tools are on PATH
    assert mosaico("deploy", str(builds["a"]), *args).exit_code == 0
    (pid,) = switches(prefix)
    os.kill(pid, 9)
    r = mosaico("plan", str(builds["a"]), *args)
    assert f"- bmv2 s1 in {prefix}s1" in r.output and "drift: stopped out of band" in r.output
    rows = status(prefix, state)
    assert next(r for r in rows if r["node"] == "s1")["state"] == "stopped"
    fixed = mosaico("deploy", str(builds["a"]), *args)
    assert fixed.exit_code == 0, fixed.output
    assert len(switches(prefix)) == 1 and reaches(prefix, "client")
    assert mosaico("destroy", "--state", str(state)).exit_code == 0


FAIL = "#!/bin/sh\necho 'injected failure of {tool}' >&2\nexit 3\n"


@pytest.mark.root
@pytest.mark.bmv2
@pytest.mark.p4c
@pytest.mark.parametrize("tool", ["p4c-bm2-ss", "simple_switch"])
def test_a_switch_that_fails_to_start_rolls_everything_back(builds, prefix, tmp_path,
                                                             monkeypatch, tool):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / tool).write_text(FAIL.format(tool=tool))
    (fake / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    state = tmp_path / "state.db"
    r = mosaico("deploy", str(builds["a"]), *args_for(prefix, state, "--data-plane", "bmv2"))
    assert r.exit_code == 1
    assert f"injected failure of {tool}" in r.output
    assert "error[E1212]: deploy failed and was rolled back" in r.output
    assert not leftovers(prefix)
    with StateStore(state) as store:
        assert store.units() == []


@pytest.mark.root
@pytest.mark.bmv2
@pytest.mark.p4c
def test_a_failed_restart_brings_the_previous_program_back(builds, prefix, tmp_path,
                                                           monkeypatch):
    state = tmp_path / "state.db"
    args = args_for(prefix, state, "--data-plane", "bmv2")
    assert mosaico("deploy", str(builds["a"]), *args).exit_code == 0
    (before,) = switches(prefix)
    fake = tmp_path / "bin"
    fake.mkdir()
    # BMv2 refuses edge_b's program (the one with probe's port 3), runs any other
    (fake / "simple_switch").write_text(
        '#!/bin/sh\ncase " $* " in *" 3@p3 "*) echo "injected failure" >&2; exit 3 ;; esac\n'
        f'exec {shutil.which("simple_switch")} "$@"\n')
    (fake / "simple_switch").chmod(0o755)
    with monkeypatch.context() as m:
        m.setenv("PATH", f"{fake}:{os.environ['PATH']}")
        r = mosaico("deploy", str(builds["b"]), *args)
    assert r.exit_code == 1 and "error[E1212]" in r.output
    assert f"undone: local: restore bmv2 s1 in {prefix}s1" in r.output
    (after,) = switches(prefix)  # A's program runs again: no port 3
    assert after != before
    assert b"3@p3" not in Path(f"/proc/{after}/cmdline").read_bytes().split(b"\0")
    assert f"{prefix}probe" not in namespaces(prefix)
    assert reaches(prefix, "client")
    assert mosaico("destroy", "--state", str(state)).exit_code == 0
