"""The fault-injection suite: deploys killed, interrupted and starved at every step, for real.

A real ``mosaico deploy`` process is signalled at its N-th step by ``MOSAICO_FAULT`` (see
``mosaico_dsl/runtime/faults.py``): the fault point sits right after the step's intent is in
the state store's write-ahead record, so where the run stops does not depend on timing.
After each fault the suite checks that the state store and the targets agree — what the
store records (its units, and the steps of the write-ahead record) is what exists, and
nothing exists that it does not record — and that the next ``deploy`` or ``destroy``
leaves the targets exactly as the store says: read back from the targets themselves
(``ip``/``nft``/``tc`` in each namespace, a P4Runtime ``Read`` of everything).

* SIGKILL cannot be caught: the write-ahead record is all that is left, and the next
  command undoes it (``recover``).
* SIGINT, SIGTERM and SIGHUP stop the run at its next step and roll it back at once; the
  command exits with 128 + the signal's number.
* The switch is killed in the middle of a deploy (the process is stopped at a step,
  the switch killed, the process continued); the state store's disk fills or turns
  read-only under a running deploy.

The targets: the local target (namespaces, veths, nftables, tc, and BMv2 switches with
their processes and run directories), P4Runtime against the reference target served as a
process and against ``simple_switch_grpc``; OpenStack and OSM at their HTTP boundary (no
cloud or OSM can run here: Heat and OSM's NBI are played by the fakes of their own tests),
where the client — a forked copy of the test process, whose fakes save their state after
every request — is what gets killed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_support import SIGNALS, Served, diff, intents, machine, run, switch_state, units
from local_support import leftovers, namespaces, status, switches
from runtime_helpers import (
    DATA,
    flagship_build,
    free_port,
    insert,
    lab_entries,
    make_build,
    route_entry,
    start_bmv2,
)

from mosaico_dsl.compiler import compile as compile_program

# --------------------------------------------------------------------------- the local target

LOCAL_STEPS = 13  # one_switch.mosaico on the Linux stand-in (and on BMv2): 13 steps


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    return compile_program(DATA / "one_switch.mosaico").write(
        tmp_path_factory.mktemp("one") / "build")


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    root = tmp_path_factory.mktemp("edges")
    return {v: compile_program(DATA / f"edge_{v}.mosaico").write(root / v) for v in "ab"}


def local(prefix: str, state: Path, plane: str = "linux") -> list[str]:
    return ["--target", "local", "--local-prefix", prefix, "--state", str(state),
            "--data-plane", plane]


def announced(state: Path) -> set[str]:
    """Namespaces the write-ahead record says a run was creating."""
    return {i.spec["step"]["new"]["name"] for i in intents(state)
            if i.spec["step"]["op"] == "add" and i.spec["step"]["new"]["type"] == "netns"}


def recorded(state: Path) -> set[str]:
    """Namespaces the state store's local unit records as deployed."""
    out = set()
    for u in units(state):
        if u.target == "local":
            out |= {u.data["prefix"] + ns["name"] for ns in u.data["doc"]["namespaces"]}
    return out


def destroyed(state: Path, prefix: str) -> None:
    """``destroy`` leaves nothing: no namespace, BMv2 process or run directory of the
    prefix, no step in the write-ahead record."""
    r = run("destroy", "--state", state)
    assert r.returncode == 0, r.output
    assert leftovers(prefix) == [] and intents(state) == []


def agree(state: Path, prefix: str) -> None:
    """What exists under the prefix is recorded (as deployed, or as a step a run
    announced), and what is recorded as deployed exists — unless a run's steps are pending."""
    live = namespaces(prefix)
    assert live <= recorded(state) | announced(state), \
        f"namespaces nobody records: {sorted(live - recorded(state) - announced(state))}"
    if not intents(state):
        assert recorded(state) <= live, f"recorded but gone: {recorded(state) - live}"


@pytest.mark.root
@pytest.mark.parametrize("step", [*range(1, LOCAL_STEPS + 1), "after"])
def test_local_deploy_killed_at_each_step(one, prefix, tmp_path, step):
    """SIGKILL at each step of a first deploy (and after the last, before the commit): what
    the run created is recorded in the write-ahead record; status says a deploy was
    interrupted, not "not deployed"; the next deploy removes it first (no E1211), and
    destroy leaves nothing."""
    state = tmp_path / "state.db"
    fault = f"before:{step}:SIGKILL" if step != "after" else f"after:{LOCAL_STEPS}:SIGKILL"
    r = run("deploy", one, *local(prefix, state), fault=fault)
    assert r.returncode == -signal.SIGKILL, r.output
    assert units(state) == []
    assert len(intents(state)) == (step if step != "after" else LOCAL_STEPS)
    agree(state, prefix)
    rows = status(state)
    assert [(x["node"], x["state"]) for x in rows] == [("local", "interrupted")], rows
    assert "left" in rows[0]["detail"] and "deploy" in rows[0]["detail"]
    if step == "after" or step % 2:  # the next deploy recovers first, then deploys
        again = run("deploy", one, *local(prefix, state))
        assert again.returncode == 0, again.output
        assert "recovering an interrupted deploy" in again.stderr
        assert "E1211" not in again.output
        assert intents(state) == [] and namespaces(prefix) == recorded(state) != set()
    gone = run("destroy", "--state", state)
    assert gone.returncode == 0, gone.output
    assert intents(state) == [] and units(state) == []
    assert leftovers(prefix) == []


@pytest.mark.root
@pytest.mark.parametrize("sig", sorted(SIGNALS))
@pytest.mark.parametrize("step", [1, 6, LOCAL_STEPS])
def test_local_deploy_signalled_rolls_back(one, prefix, tmp_path, sig, step):
    """SIGINT, SIGTERM, SIGHUP at a step: the run stops there, undoes every step before it
    and exits with 128 + the signal; the store records nothing, not even a step."""
    state = tmp_path / "state.db"
    r = run("deploy", one, *local(prefix, state), fault=f"before:{step}:{sig}")
    assert r.returncode == 128 + SIGNALS[sig], r.output
    assert f"error[E1233]: deploy interrupted by {sig}" in r.stderr
    if step == 1:  # stopped before its first step: nothing to undo, no rollback claimed
        assert "nothing had been changed on any target" in r.stderr
        assert "E1212" not in r.stderr
    else:
        assert f"error[E1212]: deploy failed and was rolled back: every completed step " \
               f"was undone ({step - 1})" in r.stderr
    assert "stopping after the current step" in r.stderr
    assert leftovers(prefix) == []
    assert intents(state) == [] and units(state) == []


def _kill_each_step(edges, prefix, tmp_path, old: str, new: str) -> None:
    """Deploy ``old``; then, for each step of the deploy of ``new``, kill it there and
    check that the next deploy of ``old`` first puts the machine back exactly as it was
    (read back), then has nothing to do."""
    state = tmp_path / "state.db"
    assert run("deploy", edges[old], *local(prefix, state)).returncode == 0
    before = machine(prefix)
    plan = run("plan", edges[new], *local(prefix, state), "--format", "json")
    steps = len(json.loads(plan.stdout)["units"][0]["changes"])
    assert steps >= 3
    for step in range(1, steps + 4):  # shown changes, and deferred steps beside them
        r = run("deploy", edges[new], *local(prefix, state), fault=f"before:{step}:SIGKILL")
        if r.returncode == 0:  # fewer steps than that: deployed; the loop is done
            break
        assert r.returncode == -signal.SIGKILL, (step, r.output)
        agree(state, prefix)
        back = run("deploy", edges[old], *local(prefix, state))
        assert back.returncode == 0, (step, back.output)
        assert "recovering an interrupted deploy" in back.stderr
        assert "Nothing to do" in back.stderr, (step, back.output)
        assert diff(machine(prefix), before) == [], step
    assert step > steps, "every step was interrupted once"


@pytest.mark.root
def test_local_redeploy_killed_at_each_step_is_undone_exactly(edges, prefix, tmp_path):
    """edge_a → edge_b adds a namespace, a link, routes and addresses, and reloads a
    ruleset in place: killed at each step, the recovery restores edge_a as read back."""
    _kill_each_step(edges, prefix, tmp_path, "a", "b")


@pytest.mark.root
def test_local_removal_killed_at_each_step_is_undone_exactly(edges, prefix, tmp_path):
    """edge_b → edge_a removes a namespace with its link, routes and queues: killed at
    each step, the recovery rebuilds what was removed, as read back."""
    _kill_each_step(edges, prefix, tmp_path, "b", "a")


@pytest.mark.root
def test_local_destroy_killed_is_finished_by_the_next_destroy(one, prefix, tmp_path):
    state = tmp_path / "state.db"
    assert run("deploy", one, *local(prefix, state)).returncode == 0
    r = run("destroy", "--state", state, fault="before:3:SIGKILL")
    assert r.returncode == -signal.SIGKILL
    agree(state, prefix)
    assert run("destroy", "--state", state).returncode == 0
    assert leftovers(prefix) == [] and intents(state) == [] and units(state) == []


@pytest.mark.root
def test_local_redeploy_signalled_restores_exactly(edges, prefix, tmp_path):
    state = tmp_path / "state.db"
    assert run("deploy", edges["a"], *local(prefix, state)).returncode == 0
    before = machine(prefix)
    r = run("deploy", edges["b"], *local(prefix, state), fault="before:7:SIGTERM")
    assert r.returncode == 128 + signal.SIGTERM, r.output
    assert "undone: local: restore the previous nftables" in r.stderr
    assert diff(machine(prefix), before) == []
    assert intents(state) == []


# --------------------------------------------------------------------------- P4Runtime


P4RT_STEPS = 5  # lab_entries(2): 9 updates, in batches of 2


@pytest.fixture(scope="module")
def p4builds(tmp_path_factory):
    """Build A, and build B with another pipeline (its P4Info names another package: a
    new cookie, so deploying B over A pushes it, after reading A's state for the undo)."""
    root = tmp_path_factory.mktemp("p4rt")
    lab = (DATA / "lab.p4info.txtpb").read_text()
    other = root / "lab-v2.p4info.txtpb"
    other.write_text(lab.replace('arch: "v1model"', 'arch: "v1model"\n  name: "lab-v2"', 1))
    return {"a": make_build(root / "a", {"s1": lab_entries(2)}),
            "b": make_build(root / "b", {"s1": [*lab_entries(3), insert(route_entry(9))]},
                            p4info=other)}


@pytest.fixture
def served(request):
    """``start(build, *args)``: the reference target for build's s1, on a port of its own
    (the same port each time it is started again in one test)."""
    procs: list[Served] = []
    port = free_port()

    def start(build: Path, *args: str) -> Served:
        s = Served(build / "s1", port, *args)
        procs.append(s)
        return s
    yield start
    for s in procs:
        s.kill()


def p4rt(address: str, state: Path, *extra: str) -> list[str]:
    return ["--target", "p4runtime", "--address", f"s1={address}", "--state", str(state),
            "--batch", "2", "--timeout", "5", *extra]


@pytest.fixture(scope="module")
def clean_after_destroy(tmp_path_factory, p4builds):
    """What a fresh switch holds after build A is deployed and destroyed normally: the
    pipeline stays (P4Runtime cannot remove one), every entity mosaico wrote is gone."""
    state = tmp_path_factory.mktemp("baseline") / "state.db"
    s = Served(p4builds["a"] / "s1", free_port(), "--no-pipeline")
    try:
        assert run("deploy", p4builds["a"], *p4rt(s.address, state)).returncode == 0
        assert run("destroy", "--state", state, "--target", "p4runtime").returncode == 0
        return switch_state(s.address, 1)
    finally:
        s.kill()


@pytest.mark.parametrize("step", [*range(1, P4RT_STEPS + 1), "after"])
def test_p4runtime_deploy_killed_at_each_step(p4builds, served, tmp_path, step,
                                              clean_after_destroy):
    """SIGKILL at each batch of a first deploy to a fresh switch: the write-ahead record
    holds the batches begun; status says so; destroy removes every entity the run wrote,
    as a normal destroy does (read back)."""
    state = tmp_path / "state.db"
    s = served(p4builds["a"], "--no-pipeline")
    fault = f"before:{step}:SIGKILL" if step != "after" else f"after:{P4RT_STEPS}:SIGKILL"
    r = run("deploy", p4builds["a"], *p4rt(s.address, state), fault=fault)
    assert r.returncode == -signal.SIGKILL, r.output
    assert units(state) == [] and len(intents(state)) == (
        step if step != "after" else P4RT_STEPS)
    written = switch_state(s.address, 1)
    assert (written == clean_after_destroy) == (step == 1), "batch 1 was written by step 2"
    rows = status(state)
    assert ("s1", "interrupted") in [(x["node"], x["state"]) for x in rows], rows
    gone = run("destroy", "--state", state)  # the kinds the write-ahead record names
    assert gone.returncode == 0, gone.output
    assert "recovering an interrupted deploy" in gone.stderr
    assert intents(state) == [] and units(state) == []
    assert switch_state(s.address, 1) == clean_after_destroy


@pytest.mark.parametrize("step", range(1, P4RT_STEPS + 3))
def test_p4runtime_pipeline_change_killed_at_each_step(p4builds, served, tmp_path, step):
    """Build A runs; deploying B (a new pipeline: step 1 pushes it, the next write its
    entries) is killed at each step; the next deploy of A first restores A's pipeline and
    everything it held, and then has nothing to do: the switch reads back as before."""
    state = tmp_path / "state.db"
    s = served(p4builds["a"], "--no-pipeline")
    assert run("deploy", p4builds["a"], *p4rt(s.address, state)).returncode == 0
    before = switch_state(s.address, 1)
    r = run("deploy", p4builds["b"], *p4rt(s.address, state), fault=f"before:{step}:SIGKILL")
    assert r.returncode == -signal.SIGKILL, r.output
    killed = switch_state(s.address, 1)
    assert (killed == before) == (step == 1), "the pipeline is pushed by step 1"
    back = run("deploy", p4builds["a"], *p4rt(s.address, state))
    assert back.returncode == 0, back.output
    assert "recovering an interrupted deploy" in back.stderr
    assert "Nothing to do" in back.stderr, back.output
    assert switch_state(s.address, 1) == before


@pytest.mark.parametrize("sig", sorted(SIGNALS))
def test_p4runtime_pipeline_change_signalled_rolls_back(p4builds, served, tmp_path, sig):
    state = tmp_path / "state.db"
    s = served(p4builds["a"], "--no-pipeline")
    assert run("deploy", p4builds["a"], *p4rt(s.address, state)).returncode == 0
    before = switch_state(s.address, 1)
    r = run("deploy", p4builds["b"], *p4rt(s.address, state), fault=f"before:4:{sig}")
    assert r.returncode == 128 + SIGNALS[sig], r.output
    assert "error[E1212]" in r.stderr
    assert "undone: p4runtime s1: restore the previous pipeline" in r.stderr
    assert switch_state(s.address, 1) == before
    assert intents(state) == []


def test_p4runtime_switch_killed_mid_deploy(p4builds, served, tmp_path):
    """The switch dies (SIGKILL) while the deploy of B stands at its third step; the
    deploy fails and cannot undo (E1213) — the write-ahead record keeps what it could not.
    The switch comes back empty, as a restarted switch does: the next deploy of A finds
    nothing of B to undo there, sees the drift and puts A back."""
    state = tmp_path / "state.db"
    s = served(p4builds["a"], "--no-pipeline")
    assert run("deploy", p4builds["a"], *p4rt(s.address, state)).returncode == 0
    before = switch_state(s.address, 1)
    r = run("deploy", p4builds["b"], *p4rt(s.address, state), fault="before:3:stop",
            at_stop=lambda _pid: s.kill())
    assert r.returncode == 1, r.output
    assert "error[E1205]" in r.stderr and "error[E1213]" in r.stderr
    assert intents(state), "what was not undone stays in the write-ahead record"
    assert [u.fingerprint for u in units(state)] != [], "the store still records A"
    s = served(p4builds["a"], "--no-pipeline")  # restarted: no pipeline, no entries
    back = run("deploy", p4builds["a"], *p4rt(s.address, state))
    assert back.returncode == 0, back.output
    assert "drift" in back.stdout
    assert intents(state) == []
    assert switch_state(s.address, 1) == before


# --------------------------------------------------------------------------- BMv2


def _wrapper(directory: Path, tool: str, body: str) -> dict:
    """A ``tool`` first on PATH that runs ``body`` (sh) and then the real one."""
    real = shutil.which(tool)
    directory.mkdir(exist_ok=True)
    script = directory / tool
    script.write_text(f"#!/bin/sh\nREAL={real}\n{body}\n")
    script.chmod(0o755)
    return {"PATH": f"{directory}:{os.environ['PATH']}"}


@pytest.mark.parametrize("fault", ["before:13:SIGKILL", "after:13:SIGKILL"])
@pytest.mark.root
@pytest.mark.bmv2
@pytest.mark.p4c
def test_bmv2_deploy_killed_at_the_switch(one, prefix, tmp_path, fault):
    """Killed just before BMv2 starts, and once it runs (its process, its run directory):
    destroy stops what runs and removes its run directory too."""
    state = tmp_path / "state.db"
    r = run("deploy", one, *local(prefix, state, "bmv2"), fault=fault)
    assert r.returncode == -signal.SIGKILL, r.output
    assert len(switches(prefix)) == fault.startswith("after")
    agree(state, prefix)
    destroyed(state, prefix)


@pytest.mark.root
@pytest.mark.bmv2
@pytest.mark.p4c
def test_bmv2_deploy_killed_while_p4c_compiles(one, prefix, tmp_path):
    """The deploy dies while p4c compiles the switch's program into its run directory;
    p4c finishes after it. Destroy removes the run directory the killed run made."""
    done = tmp_path / "p4c-done"
    env = _wrapper(tmp_path / "bin", "p4c-bm2-ss",
                   f'kill -KILL $PPID; "$REAL" "$@"; rc=$?; touch {done}; exit $rc')
    state = tmp_path / "state.db"
    r = run("deploy", one, *local(prefix, state, "bmv2"), env=env)
    assert r.returncode == -signal.SIGKILL, r.output
    wait_for(done.exists)
    assert leftovers(prefix) and not switches(prefix)
    destroyed(state, prefix)


@pytest.mark.root
@pytest.mark.bmv2
@pytest.mark.p4c
def test_bmv2_deploy_killed_as_the_switch_starts(one, prefix, tmp_path):
    """The deploy dies once simple_switch is spawned (detached: it outlives the deploy)
    and before the entries are loaded: destroy finds the orphaned switch by its run
    directory and stops it."""
    spawned, go = tmp_path / "spawned", tmp_path / "go"
    env = _wrapper(tmp_path / "bin", "simple_switch",
                   f'touch {spawned}; while [ ! -e {go} ]; do sleep 0.05; done; '
                   'exec "$REAL" "$@"')
    state = tmp_path / "state.db"
    proc = subprocess.Popen([sys.executable, "-m", "mosaico_dsl.cli", "deploy", str(one),
                             *local(prefix, state, "bmv2")], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(spawned.exists)
    finally:
        proc.kill()
        proc.wait(30)
    go.touch()
    wait_for(lambda: switches(prefix))  # the real switch runs now, orphaned
    destroyed(state, prefix)


@pytest.mark.root
@pytest.mark.bmv2
@pytest.mark.p4c
def test_bmv2_switch_killed_while_its_entries_load(one, prefix, tmp_path):
    """The switch dies (SIGKILL) as its entries are being loaded: the deploy fails on its
    CLI and rolls back everything — namespaces, links, queues, the run directory."""
    env = _wrapper(tmp_path / "bin", "simple_switch_CLI",
                   'for p in $(ip netns pids "$(ip netns identify $$)"); do '
                   '[ "$(cat /proc/$p/comm)" = simple_switch ] && kill -KILL $p; done; '
                   'exec "$REAL" "$@"')
    state = tmp_path / "state.db"
    r = run("deploy", one, *local(prefix, state, "bmv2"), env=env)
    assert r.returncode == 1, r.output
    assert "error[E1211]" in r.stderr and "error[E1212]" in r.stderr
    assert leftovers(prefix) == [] and intents(state) == [] and units(state) == []


@pytest.mark.root
@pytest.mark.bmv2
@pytest.mark.p4c
def test_bmv2_switch_killed_after_the_deploy_step(one, prefix, tmp_path):
    """The switch is killed once its step is done: the deploy completes and records it;
    status says it stopped, plan shows the drift, the next deploy starts it again."""
    state = tmp_path / "state.db"

    def kill_switch(_pid: int) -> None:
        for pid in switches(prefix):
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not switches(prefix))
    r = run("deploy", one, *local(prefix, state, "bmv2"), fault=f"after:{LOCAL_STEPS}:stop",
            at_stop=kill_switch)
    assert r.returncode == 0, r.output
    rows = {x["node"]: x["state"] for x in status(state)}
    assert rows["s1"] == "stopped", rows
    drift = run("plan", one, *local(prefix, state, "bmv2"))
    assert "drift: stopped out of band" in drift.stdout
    assert run("deploy", one, *local(prefix, state, "bmv2")).returncode == 0
    assert len(switches(prefix)) == 1
    assert run("destroy", "--state", state).returncode == 0
    assert leftovers(prefix) == []


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def flagship(tmp_path_factory):
    return flagship_build(tmp_path_factory.mktemp("flagship") / "build")


def grpc_args(sw, state: Path) -> list[str]:
    return ["--target", "p4runtime", "--address", f"s1={sw.address}", "--thrift",
            f"s1={sw.thrift}", "--state", str(state), "--batch", "4", "--timeout", "5"]


@pytest.mark.bmv2("simple_switch_grpc")
@pytest.mark.p4c
@pytest.mark.parametrize("step", [1, 3])
def test_simple_switch_grpc_deploy_killed_and_destroyed(flagship, tmp_path, step):
    """BMv2's P4Runtime server: a first deploy killed at a batch; destroy removes what
    it wrote, as a normal deploy and destroy leave the switch (read back)."""
    sw = start_bmv2(tmp_path, 1, "--priority-queues", "2")
    try:
        normal = tmp_path / "normal.db"
        assert run("deploy", flagship, *grpc_args(sw, normal)).returncode == 0
        assert run("destroy", "--state", normal).returncode == 0
        baseline = switch_state(sw.address, 1)
        state = tmp_path / "state.db"
        r = run("deploy", flagship, *grpc_args(sw, state), fault=f"before:{step}:SIGKILL")
        assert r.returncode == -signal.SIGKILL, r.output
        assert run("destroy", "--state", state).returncode == 0
        assert intents(state) == [] and switch_state(sw.address, 1) == baseline
    finally:
        sw.stop()


@pytest.mark.bmv2("simple_switch_grpc")
@pytest.mark.p4c
def test_simple_switch_grpc_killed_mid_deploy(flagship, tmp_path):
    """simple_switch_grpc dies while the deploy stands at its second batch: E1205, the
    rollback cannot reach it (E1213), the write-ahead record keeps the rest. Started again
    (empty, as a restarted BMv2 is), the next deploy has nothing of the old run to undo
    there, and deploys."""
    ports = (free_port(), free_port())
    sw = start_bmv2(tmp_path, 1, "--priority-queues", "2", ports=ports)
    state = tmp_path / "state.db"
    try:
        r = run("deploy", flagship, *grpc_args(sw, state), fault="before:2:stop",
                at_stop=lambda _pid: sw.stop())
        assert r.returncode == 1, r.output
        assert "error[E1205]" in r.stderr and "error[E1213]" in r.stderr
        assert intents(state)
        sw = start_bmv2(tmp_path, 1, "--priority-queues", "2", ports=ports)
        again = run("deploy", flagship, *grpc_args(sw, state))
        assert again.returncode == 0, again.output
        assert intents(state) == [] and [u.name for u in units(state)] == ["s1"]
    finally:
        sw.stop()


def test_recovery_waits_for_an_unreachable_switch(p4builds, served, tmp_path,
                                                  clean_after_destroy):
    """A killed deploy's steps cannot be undone while the switch does not answer: the
    next command stops with E1226 — naming each step not undone — and changes nothing
    else; the write-ahead record keeps them, and once the switch answers they are undone."""
    state = tmp_path / "state.db"
    s = served(p4builds["a"], "--no-pipeline")
    r = run("deploy", p4builds["a"], *p4rt(s.address, state), fault="before:3:SIGKILL")
    assert r.returncode == -signal.SIGKILL
    os.kill(s.proc.pid, signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        stuck = run("destroy", "--state", state, "--timeout", "1")
    finally:
        os.kill(s.proc.pid, signal.SIGCONT)
    assert stuck.returncode == 1, stuck.output
    assert "error[E1226]: an interrupted deploy" in stuck.stderr
    assert "left steps that could not be undone (3 of 3)" in stuck.stderr
    assert stuck.stderr.count("NOT undone: p4runtime s1: undo the updates written") == 3
    assert len(intents(state)) == 3
    assert run("destroy", "--state", state).returncode == 0
    assert intents(state) == [] and switch_state(s.address, 1) == clean_after_destroy
