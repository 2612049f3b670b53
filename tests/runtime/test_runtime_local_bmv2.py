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
import time
from pathlib import Path

import pytest
from local_support import (
    arrived,
    burst,
    clean,
    count_arrived,
    count_sent,
    leftovers,
    mosaico,
    namespaces,
    reaches,
    sent,
    status,
    switches,
)
from runtime_helpers import DATA, ROOT

from mosaico_dsl.backends.vnf import localswitch
from mosaico_dsl.compiler import compile as compile_program
from mosaico_dsl.runtime.schema import load_p4info
from mosaico_dsl.runtime.state import StateStore

SERVER = "10.0.2.1"


@pytest.fixture
def prefix():
    p = f"rb{secrets.token_hex(3)}-"
    yield p
    clean(p)
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
    assert reaches(prefix, "client", 80)
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
    assert reaches(prefix, "client", 80)
    rows = status(state)
    s1 = {r["service"]: r for r in rows if r["node"] == "s1"}
    assert s1["*"]["state"] == "running" and f"pid {second[0]}" in s1["*"]["detail"]
    # read from the restarted switch: exactly what the client sent since (the switch's own
    # count adds the server's replies)
    assert s1["web"]["packets"] == sent(prefix + "client") > 0
    assert s1["*"]["packets"] > s1["web"]["packets"]

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
    rows = status(state)
    assert next(r for r in rows if r["node"] == "s1")["state"] == "stopped"
    fixed = mosaico("deploy", str(builds["a"]), *args)
    assert fixed.exit_code == 0, fixed.output
    assert len(switches(prefix)) == 1 and reaches(prefix, "client", 80)

    # The switch's namespace deleted by hand: BMv2 keeps it alive, unnamed. The next deploy
    # rebuilds the namespace and starts a new switch in it; the orphan does not survive.
    subprocess.run(["ip", "netns", "del", f"{prefix}s1"], check=True)
    assert len(switches(prefix)) == 1
    rebuilt = mosaico("deploy", str(builds["a"]), *args)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert f"- namespace {prefix}s1" in rebuilt.output  # drift: deleted out of band
    assert len(switches(prefix)) == 1 and reaches(prefix, "client", 80)
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
    assert reaches(prefix, "client", 80)
    assert mosaico("destroy", "--state", str(state)).exit_code == 0


@pytest.mark.root
@pytest.mark.bmv2
@pytest.mark.p4c
def test_status_reads_marks_drops_and_queue_delay_from_bmv2(prefix, tmp_path):
    """Bursts into the flagship's 1000-pps port towards the server build a queue in BMv2's
    DualQ: what status reads must be what the packets show at the server.

    The bursts run at 2500 pps: BMv2 reads a veth through libpcap, whose ring holds a few
    dozen full-size frames, so a raw line-rate burst is mostly lost before the P4 program
    sees it (measured here: 52 of 200). At 2500 pps the queue grows by 1500 packets/s."""
    build = compile_program(ROOT / "examples" / "secure_l4s.mosaico").write(tmp_path / "b")
    state = tmp_path / "state.db"
    r = mosaico("deploy", str(build), *args_for(prefix, state, "--data-plane", "bmv2"))
    assert r.exit_code == 0, r.output

    def web() -> dict[str, dict]:
        return {row["service"]: row for row in status(state) if row["node"] == "s1"}

    for client, address, tos, kind in (("l4s_client", "10.0.1.1", 0x01, "ECT(1)"),
                                       ("classic_client", "10.0.1.2", 0x00, "Not-ECT")):
        count_sent(prefix + client, SERVER, 80)
        count_arrived(prefix + "server", address, 80)
        before = web()
        took = burst(prefix + client, address, SERVER, 80, 200, tos, 2500)
        time.sleep(1.0)  # the queue drains at 1000 pps
        after = web()
        got = arrived(prefix + "server")
        seen, drops, marks = (
            (after[row][m] or 0) - (before[row][m] or 0)
            for row, m in (("web_ll", "packets"), ("web_ll", "drops"), ("web_ll/2", "ce_marks")))
        # the load it meant: 200 segments at 2500 pps, and most of them reached the program
        assert sent(prefix + client) == 200 and took < 0.2, f"{kind}: took {took:.3f} s"
        assert seen >= 150, f"{kind}: the switch saw {seen} of 200"
        # every packet the switch took in either arrived or is a drop it counted, and every
        # mark it counted arrives as CE
        assert seen - got["arrived"] == drops, kind
        assert got["ce"] == marks, kind
        if kind == "ECT(1)":
            assert marks > 50, "the L4S queue marks above its threshold"
        else:
            assert marks == 0, "Not-ECT packets are never marked"
        # the latest DualQ delay sample: the tail of a queue of dozens of packets at 1 ms
        assert after["web_ll/2"]["queue_delay_ns"] > 20_000_000, kind
    assert mosaico("destroy", "--state", str(state)).exit_code == 0


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.mosaico")),
                         ids=lambda p: p.stem)
def test_entries_txt_loads_all_of_entries_json(example, tmp_path):
    """BMv2 in the local target loads entries.txt, and status maps its table_adds to
    entries.json's table entries by position: the two must hold the same state in the same
    order — every table entry, every meter, every clone session — plus the queues."""
    build = compile_program(example).write(tmp_path / "b")
    for sw in build.glob("*/entries.json"):
        updates = json.loads(sw.read_text())
        program = localswitch.load_program(sw.parent, device_id=1, thrift_port=9090,
                                           priority_queues=2)
        cli = program.cli_commands()
        adds = [c.split()[1] for c in cli if c.startswith("table_add ")]
        tables = [u["entity"]["tableEntry"]["tableId"] for u in updates
                  if "tableEntry" in u["entity"]]
        info = load_p4info(sw.parent / "p4info.txtpb").p4info
        names = {x.preamble.id: x.preamble.name for x in (*info.tables, *info.meters)}
        assert adds == [names[t] for t in tables]
        meters = {names[u["entity"]["meterEntry"]["meterId"]] for u in updates
                  if "meterEntry" in u["entity"]}
        assert meters == {c.split()[1] for c in cli if c.startswith("meter_array_set_rates ")}
        sessions = {u["entity"]["packetReplicationEngineEntry"]["cloneSessionEntry"]
                    ["sessionId"] for u in updates
                    if "packetReplicationEngineEntry" in u["entity"]}
        assert sessions == {int(c.split()[1]) for c in cli if c.startswith("mirroring_add ")}
        ir = json.loads((build / "ir.json").read_text())
        ports = {lk[end]["port"] for t in ir["topologies"] for lk in t["links"]
                 for end in ("a", "b") if lk[end]["node"] == sw.parent.name}
        assert {int(c.split()[2]) for c in cli if c.startswith("set_queue_rate ")} == ports
        assert not [c for c in cli if c.split()[0] not in (
            "table_add", "meter_array_set_rates", "mirroring_add", "set_queue_rate",
            "set_queue_depth")]
