"""The state store under hostile content and a hostile disk (issue 16, item 6).

A store is a file anyone can edit, copy half-way or put on a disk that fills up. Bad JSON
or wrong types in a record are E1225, naming the store, the record and the field — never
an internal error, never a rollback claimed when nothing was done. A store that cannot be
written stops ``deploy`` and ``destroy`` before any target is touched (E1224); one that
stops being writable under a running deploy makes the deploy roll back, and the steps the
rollback could not strike from the write-ahead record are undone again — harmlessly — by
the next run.

The disks are real: a tmpfs of a few MiB mounted for the store (root), filled or remounted
read-only; ``chattr +i`` where files are open (a file system with open files cannot be
remounted read-only).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from pathlib import Path

import pytest
from fault_support import disk, intents, run, switch_state, units
from local_support import leftovers, mosaico, namespaces
from runtime_helpers import DATA, TWO_SWITCHES, lab_entries, make_build

from mosaico_dsl.compiler import compile as compile_program
from mosaico_dsl.diagnostics import CompileError, error
from mosaico_dsl.runtime import deployment as rt
from mosaico_dsl.runtime.state import StateStore, UnitUpdate


@pytest.fixture
def build(tmp_path):
    return make_build(tmp_path / "build", {"s1": lab_entries(2)})


def p4rt(address: str, state: Path, *extra: str) -> list[str]:
    return ["--target", "p4runtime", "--address", f"s1={address}", "--state", str(state),
            *extra]


def deployed(reference_switch, build, state: Path):
    """A reference switch with build's s1 deployed on it, recorded in ``state``."""
    sw = reference_switch()
    r = mosaico("deploy", str(build), *p4rt(sw.address, state))
    assert r.exit_code == 0, r.output
    return sw


# --------------------------------------------------------------------------- bad content


def _edit(state: Path, sql: str, *args) -> None:
    db = sqlite3.connect(state)
    db.execute(sql, args)
    db.commit()
    db.close()


@pytest.mark.parametrize("command", ["status", "destroy", "plan"])
def test_bad_json_in_a_record_is_named(reference_switch, build, state_path, command):
    sw = deployed(reference_switch, build, state_path)
    before = switch_state(sw.address, 1)
    _edit(state_path, "UPDATE units SET data='{\"address\": ' WHERE name='s1'")
    args = [command, *([str(build)] if command == "plan" else []), "--state",
            str(state_path), "--target", "p4runtime"]
    r = mosaico(*args)
    assert r.exit_code == 1, r.output
    assert f"error[E1225]: the state store {state_path} holds a malformed record for " \
           "p4runtime unit 's1': its data is not JSON" in r.output
    assert "internal error" not in r.output and "E1212" not in r.output
    assert switch_state(sw.address, 1) == before


@pytest.mark.parametrize("sql, why", [
    ("UPDATE units SET data='[1, 2]' WHERE name='s1'", "its data is not a JSON object"),
    ("UPDATE units SET data=json_set(data, '$.device_id', 'one') WHERE name='s1'",
     "data at device_id: 'one' is not of type 'integer'"),
    ("UPDATE units SET data=json_remove(data, '$.address') WHERE name='s1'",
     "data at (top): 'address' is a required property"),
    ("UPDATE units SET fingerprint='not-a-cookie' WHERE name='s1'",
     "fingerprint 'not-a-cookie' is not a pipeline cookie"),
    ("UPDATE entities SET value=x'ffffffff' WHERE unit='s1'", "does not parse"),
])
def test_wrong_types_in_a_record_are_named(reference_switch, build, state_path, sql, why):
    deployed(reference_switch, build, state_path)
    _edit(state_path, sql)
    r = mosaico("destroy", "--state", str(state_path))
    assert r.exit_code == 1, r.output
    assert "error[E1225]" in r.output and why in r.output, r.output
    assert "internal error" not in r.output and "rolled back" not in r.output


def test_a_local_record_that_does_not_parse(tmp_path, state_path):
    """A local record whose realised plan is not one: named, before anything runs."""
    with StateStore(state_path) as store:
        store.commit("deploy", None, "applied", "hand-made",
                     [UnitUpdate("local", "local", "f", {"doc": {"namespaces": 3},
                                                          "files": {}, "prefix": "x-"})])
    r = mosaico("status", "--state", str(state_path))
    assert r.exit_code == 1
    assert "error[E1225]" in r.output and "'local'" in r.output
    _edit(state_path, "UPDATE units SET data=json_set(data, '$.prefix', 'a b')")
    r = mosaico("status", "--state", str(state_path))
    assert "error[E1225]" in r.output


def test_not_a_store(tmp_path):
    bad = tmp_path / "state.db"
    bad.write_text("hello, I am not SQLite\n" * 100)
    r = mosaico("status", "--state", str(bad))
    assert r.exit_code == 1
    assert f"error[E1214]: {bad} is not a mosaico state store" in r.output
    _edit(tmp_path / "other.db", "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    _edit(tmp_path / "other.db", "INSERT INTO meta VALUES ('schema', '99')")
    r = mosaico("status", "--state", str(tmp_path / "other.db"))
    assert r.exit_code == 1 and "state schema '99' is not 2" in r.output


def test_a_version_1_store_is_upgraded_in_place(tmp_path):
    """Stores written before the write-ahead record keep their units and gain it."""
    old = tmp_path / "state.db"
    db = sqlite3.connect(old)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE units (target TEXT NOT NULL, name TEXT NOT NULL, fingerprint TEXT
          NOT NULL, data TEXT NOT NULL, deployment INTEGER NOT NULL,
          PRIMARY KEY (target, name));
        CREATE TABLE entities (target TEXT NOT NULL, unit TEXT NOT NULL, key TEXT NOT NULL,
          value BLOB NOT NULL, PRIMARY KEY (target, unit, key));
        CREATE TABLE deployments (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,
          command TEXT NOT NULL, build TEXT, outcome TEXT NOT NULL, summary TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema', '1');
        INSERT INTO units VALUES ('p4runtime', 's1', '42',
          '{"address": "127.0.0.1:1", "device_id": 1}', 1);
    """)
    db.commit()
    db.close()
    with StateStore(old) as store:
        assert [u.name for u in store.units()] == ["s1"] and store.intents() == []
        store.write_ahead("deploy").write("p4runtime", "p4runtime s1", "nothing", {})
        assert len(store.intents()) == 1


# --------------------------------------------------------------------------- no false claims


class _Failing:
    """A target whose second step raises something no target should (a bug): the first
    step's undo must still run, and the error must not pose as a rollback diagnostic."""

    target = "local"

    def __init__(self, log: list) -> None:
        self.log = log

    async def plan(self, store, destroy=False):
        from mosaico_dsl.runtime.plan import ADD, Change, UnitPlan

        return [UnitPlan("local", "local", (Change(ADD, "two steps"),))]

    async def apply(self, plan, tx, progress):
        with tx.step("local", "local", "undo step one", {"n": 1}):
            self.log.append("step one")
        with tx.step("local", "local", "undo step two", {"n": 2}):
            raise RuntimeError("a bug")

    async def status(self, store):
        return []

    def undo(self, spec):
        self.log.append(f"undo {spec['n']}")


def test_an_unexpected_error_in_a_step_is_e1229_and_still_rolls_back(state_path):
    log: list = []
    with StateStore(state_path) as store, pytest.raises(CompileError) as info:
        asyncio.run(rt.deploy([_Failing(log)], store))
    text = str(info.value)
    assert "error[E1229]: a step failed unexpectedly: RuntimeError: a bug" in text
    assert "error[E1212]: deploy failed and was rolled back" in text
    assert log == ["step one", "undo 2", "undo 1"]  # the failed step too: it may have begun
    assert intents(state_path) == []


class _Refusing(_Failing):
    async def apply(self, plan, tx, progress):
        raise CompileError([error("E1211", "refused before any step")])


def test_no_rollback_is_claimed_when_nothing_was_done(state_path):
    with StateStore(state_path) as store, pytest.raises(CompileError) as info:
        asyncio.run(rt.deploy([_Refusing([])], store))
    text = str(info.value)
    assert "error[E1211]: refused before any step" in text
    assert "E1212" not in text and "rolled back" not in text
    assert "nothing had been changed on any target" in text


# --------------------------------------------------------------------------- the disk


@pytest.mark.root
def test_destroy_on_a_read_only_store_touches_nothing(reference_switch, build, tmp_path):
    """The issue's case: destroy removed the switch's entries, then crashed on the store,
    which still said deployed. Now it stops first: the switch keeps everything."""
    with disk(tmp_path / "disk") as d:
        sw = deployed(reference_switch, build, d.state)
        before = switch_state(sw.address, 1)
        d.readonly()
        r = mosaico("destroy", "--state", str(d.state))
        assert r.exit_code == 1, r.output
        assert "error[E1224]" in r.output and "read-only" in r.output
        assert "nothing was changed on any target" in r.output
        assert switch_state(sw.address, 1) == before
        # reading still works: status and plan answer from a read-only store
        rows = json.loads(mosaico("status", "--state", str(d.state), "--format",
                                  "json").output)
        assert {x["state"] for x in rows} == {"running"}
        d.readonly(False)
        assert mosaico("destroy", "--state", str(d.state)).exit_code == 0
        assert units(d.state) == []


@pytest.mark.root
def test_deploy_on_a_full_store_touches_nothing(reference_switch, build, tmp_path):
    with disk(tmp_path / "disk", size="1m") as d:
        StateStore(d.state).close()
        sw = reference_switch()
        d.fill()
        r = mosaico("deploy", str(build), *p4rt(sw.address, d.state))
        assert r.exit_code == 1, r.output
        assert "error[E1224]" in r.output and "full" in r.output
        assert sw.call(lambda: sw.target.pipeline) is None, "the switch was not touched"


@pytest.mark.root
@pytest.mark.parametrize("how", ["full", "immutable"])
def test_store_lost_mid_deploy_rolls_back(reference_switch, tmp_path, how):
    """The store's disk fills (or turns unwritable) while a deploy stands at a step: the
    next write of the write-ahead record fails, the deploy rolls back (E1224, E1212), and
    what the rollback could not strike from the record is undone again, harmlessly, by
    the next deploy once the disk is back."""
    a = make_build(tmp_path / "a", {"s1": lab_entries(2)})
    b = make_build(tmp_path / "b", {"s1": lab_entries(5)})
    with disk(tmp_path / "disk") as d:
        sw = deployed(reference_switch, a, d.state)
        before = switch_state(sw.address, 1)
        lose = d.fill if how == "full" else d.immutable
        r = run("deploy", b, *p4rt(sw.address, d.state, "--batch", "1"),
                fault="before:3:stop", at_stop=lambda _pid: lose())
        assert r.returncode == 1, r.output
        assert "error[E1224]" in r.stderr and "error[E1212]" in r.stderr
        assert switch_state(sw.address, 1) == before
        if how == "full":
            d.free()
        else:
            d.immutable(False)
        assert "the write-ahead record could not be cleared" in r.stderr
        again = run("deploy", a, *p4rt(sw.address, d.state))
        assert again.returncode == 0, again.output
        assert "recovering an interrupted deploy" in again.stderr
        assert "Nothing to do" in again.stderr
        assert switch_state(sw.address, 1) == before and intents(d.state) == []


@pytest.mark.root
@pytest.mark.parametrize("how", ["full", "immutable"])
def test_local_store_lost_mid_deploy(tmp_path, prefix, how):
    """The same on the local target: the namespaces the deploy made are removed at once,
    and the next destroy finds nothing left to undo."""
    one = compile_program(DATA / "one_switch.mosaico").write(tmp_path / "one")
    with disk(tmp_path / "disk") as d:
        r = run("deploy", one, "--target", "local", "--local-prefix", prefix, "--state",
                d.state, "--data-plane", "linux", fault="before:5:stop",
                at_stop=lambda _pid: d.fill() if how == "full" else d.immutable())
        d.free()
        d.immutable(False)
        assert r.returncode == 1, r.output
        assert "error[E1224]" in r.stderr and "error[E1212]" in r.stderr
        assert namespaces(prefix) == set()
        assert run("destroy", "--state", d.state).returncode == 0
        assert leftovers(prefix) == [] and intents(d.state) == []


# --------------------------------------------------------------------------- smaller ones


def test_address_without_target_on_an_empty_store_is_refused(state_path, tmp_path):
    """It used to build namespaces on this machine (the default target, local) while the
    user meant a switch: an --address needs p4runtime among the targets."""
    b = compile_program(TWO_SWITCHES).write(tmp_path / "b")
    r = mosaico("deploy", str(b), "--address", "s1=127.0.0.1:9559", "--state",
                str(state_path))
    assert r.exit_code == 1
    assert "error[E1228]: --address set(s) a P4 switch's address, but this command acts " \
           "on local only (what the state store records, or local)" in r.output
    assert "--target p4runtime" in r.output.split("hint:")[1]
    assert units(state_path) == []
    r = mosaico("plan", str(b), "--thrift", "s1=127.0.0.1:9090", "--target", "local",
                "--state", str(state_path))
    assert "error[E1228]: --thrift" in r.output and "acts on local only" in r.output


@pytest.mark.parametrize("bad", ["a b", "x;y", "-lab", "lab/1", "ns\n", "é-"])
def test_local_prefix_is_checked_at_the_front(bad, state_path, tmp_path):
    b = compile_program(TWO_SWITCHES).write(tmp_path / "b")
    r = mosaico("plan", str(b), "--target", "local", "--local-prefix", bad, "--state",
                str(state_path))
    assert r.exit_code == 1
    assert f"error[E1227]: --local-prefix {bad!r}: a namespace prefix is letters" in r.output


def test_local_prefix_too_long_for_names(state_path, tmp_path):
    b = compile_program(TWO_SWITCHES).write(tmp_path / "b")
    r = mosaico("plan", str(b), "--target", "local", "--local-prefix", "p" * 250,
                "--data-plane", "linux", "--state", str(state_path))
    assert r.exit_code == 1
    assert "error[E1227]" in r.output and "iproute2 takes at most 254" in r.output
    r = mosaico("plan", str(b), "--target", "local", "--local-prefix", "p" * 80,
                "--data-plane", "bmv2", "--state", str(state_path))
    if "E1223" not in r.output:  # BMv2's tools are there: its socket path is checked
        assert "error[E1227]" in r.output and "a Unix socket path takes at most 107" \
            in r.output


@pytest.mark.root
def test_status_shows_drift(tmp_path, prefix, state_path):
    """Namespaces or nftables tables deleted by hand: status says missing or drifted, and
    what, instead of running."""
    b = compile_program(DATA / "edge_a.mosaico").write(tmp_path / "b")
    args = ["--target", "local", "--local-prefix", prefix, "--state", str(state_path),
            "--data-plane", "linux"]
    assert mosaico("deploy", str(b), *args).exit_code == 0
    import subprocess

    ns = f"{prefix}nfvi1-web-0-blocklist"
    tables = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "tables"],
                            capture_output=True, text=True, check=True).stdout
    (table,) = [t["table"] for t in json.loads(tables)["nftables"] if "table" in t]
    subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", table["family"],
                    table["name"]], check=True)
    subprocess.run(["ip", "netns", "del", f"{prefix}client"], check=True)
    rows = json.loads(mosaico("status", *args, "--format", "json").output)
    by_node = {(r["node"], r["service"]): r for r in rows}
    blocklist = by_node[("nfvi1:nfvi1-web-0-blocklist", "*")]
    assert blocklist["state"] == "drifted"
    assert f"nftables table {table['family']} {table['name']}" in blocklist["detail"]
    assert "deleted out of band" in blocklist["detail"]
    client = by_node[("client", "*")]
    assert client["state"] == "missing"
    assert f"namespace {prefix}client deleted out of band" == client["detail"]
    assert by_node[("s1", "*")]["state"] == "running"
    assert mosaico("destroy", *args).exit_code == 0


def test_interrupt_restores_the_signal_handlers():
    from mosaico_dsl.runtime.interrupt import Interrupt, Interrupted

    previous = signal.getsignal(signal.SIGTERM)
    interrupt = Interrupt("deploy")
    with interrupt.handling():
        assert signal.getsignal(signal.SIGTERM) is not previous
        signal.raise_signal(signal.SIGTERM)  # asks; does not kill
        assert interrupt.requested
        with pytest.raises(Interrupted) as info:
            interrupt.check()
    assert signal.getsignal(signal.SIGTERM) is previous
    assert info.value.exit_code == 128 + signal.SIGTERM
    assert "error[E1233]: deploy interrupted by SIGTERM" in str(info.value)


def test_fault_points_parse():
    from mosaico_dsl.runtime.faults import Faults

    f = Faults.parse("before:3:SIGKILL, after:10:stop")
    assert f.points == {(3, "before"): "SIGKILL", (10, "after"): "stop"}
    for bad in ("during:3:SIGKILL", "before:x:SIGKILL", "before:3:SIGSEGV", "before3"):
        with pytest.raises(ValueError):
            Faults.parse(bad)
