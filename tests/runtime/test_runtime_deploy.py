"""deploy / plan / destroy / status against real P4Runtime servers on loopback.

Two reference targets stand in for the switches s1 and s2 of ``two_switches.mosaico``;
the CLI is driven in-process, exactly as a user types it.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from runtime_helpers import (
    Ids,
    blocklist_entry,
    insert,
    lab_entries,
    make_build,
    register_entity,
    route_entry,
    update,
)

from mosaico_dsl.cli import cli
from mosaico_dsl.p4proto import p4r
from mosaico_dsl.runtime.entities import canonical, identity, payload
from mosaico_dsl.runtime.p4runtime import Endpoint, connect
from mosaico_dsl.runtime.state import StateStore


def mosaico(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def live(sw) -> dict[str, bytes]:
    """The switch's table entries, canonical, by identity."""
    async def go():
        async with await connect(Endpoint("x", sw.address, sw.target.device_id),
                                 primary=False) as c:
            return await c.read([p4r.Entity(table_entry=p4r.TableEntry())])
    return {identity(canonical(e)): payload(canonical(e)) for e in asyncio.run(go())}


def desired(updates) -> dict[str, bytes]:
    return {identity(canonical(u.entity)): payload(canonical(u.entity)) for u in updates
            if u.entity.HasField("table_entry") and not u.entity.table_entry.is_default_action}


@pytest.fixture
def twin(reference_switch, tmp_path, state_path):
    """Two empty switches, and a function deploying a build of given entries to them."""
    s1, s2 = reference_switch(device_id=1), reference_switch(device_id=2)
    builds = iter(range(100))

    def build(e1, e2, **kw) -> Path:
        return make_build(tmp_path / f"build{next(builds)}", {"s1": e1, "s2": e2}, **kw)

    def args(*extra: str) -> list[str]:
        return ["--target", "p4runtime", "--address", f"s1={s1.address}",
                "--address", f"s2={s2.address}", "--state", str(state_path), *extra]

    return s1, s2, build, args


def test_deploy_writes_both_switches_then_nothing_when_unchanged(twin, state_path):
    s1, s2, build, args = twin
    e1, e2 = lab_entries(3), lab_entries(5)
    b = build(e1, e2)
    out = mosaico("deploy", str(b), *args()).output
    assert "p4runtime s1:" in out and "p4runtime s2:" in out
    assert live(s1) == desired(e1) and live(s2) == desired(e2)
    assert s1.target.pipelines == 1 and s2.target.pipelines == 1
    regs = s1.call(lambda: dict(s1.target.state.registers))
    assert int.from_bytes(regs[(Ids.P_PRIME, 0)].bitstring, "big") == 7
    assert s1.call(lambda: s1.target.state.multicast[1].replicas[1].egress_port) == 2
    writes = (s1.target.writes, s2.target.writes)

    again = mosaico("deploy", str(b), *args())
    assert "Plan: 0 changes" in again.output
    assert "Nothing to do" in again.output
    assert (s1.target.writes, s2.target.writes) == writes, "an unchanged deploy wrote"
    assert (s1.target.pipelines, s2.target.pipelines) == (1, 1)

    with StateStore(state_path) as store:
        assert {u.name for u in store.units("p4runtime")} == {"s1", "s2"}
        assert [h[4] for h in store.history()] == ["unchanged", "applied"]
        applied = store.history()[1][0]
        # The store only logs the run: the records still name the deploy that wrote them.
        assert {u.deployment for u in store.units()} == {applied}


def test_changed_program_applies_only_the_difference(twin):
    s1, s2, build, args = twin
    e1 = lab_entries(4)
    mosaico("deploy", str(build(e1, lab_entries(1))), *args())
    before = s1.target.updates
    # Drop the route to 10.0.3.0/24, move 10.0.1.0/24 to port 3, add a blocklist prefix.
    changed = [u for u in e1 if u.entity != route_entry(3, port=4)]
    assert len(changed) == len(e1) - 1
    changed = [insert(route_entry(1, port=3)) if u.entity == route_entry(1, port=2) else u
               for u in changed]
    changed.append(insert(blocklist_entry("192.0.2.0/24")))
    b2 = build(changed, lab_entries(1))
    plan = mosaico("plan", str(b2), *args()).output
    assert "+ MyIngress.blocklist hdr.ipv4.srcAddr=192.0.2.0/24 -> MyIngress.drop()" in plan
    assert "- MyIngress.ipv4_fwd hdr.ipv4.dstAddr=10.0.3.0/24" in plan
    assert "~ MyIngress.ipv4_fwd hdr.ipv4.dstAddr=10.0.1.0/24 -> MyIngress.forward(port=3" in plan
    assert "was: MyIngress.ipv4_fwd hdr.ipv4.dstAddr=10.0.1.0/24 -> MyIngress.forward(port=2" \
        in plan
    assert "p4runtime s2: no changes" in plan
    mosaico("deploy", str(b2), *args())
    assert s1.target.updates - before == 3
    assert s1.target.pipelines == 1, "same P4Info: the pipeline must not be pushed again"
    assert live(s1) == desired(changed)


def test_plan_shows_drift_and_deploy_repairs_it(twin):
    s1, s2, build, args = twin
    e1 = lab_entries(3)
    b = build(e1, lab_entries(1))
    mosaico("deploy", str(b), *args())

    async def tamper():
        # Another controller (a higher election id) edits s1 behind mosaico's back.
        async with await connect(Endpoint("ops", s1.address, 1, election_id=50)) as c:
            await c.write([update(p4r.Update.MODIFY, route_entry(0, port=9)),
                           update(p4r.Update.DELETE, blocklist_entry("198.51.100.7/32")),
                           insert(blocklist_entry("100.64.0.0/10")),
                           update(p4r.Update.MODIFY, register_entity(Ids.P_PRIME, 0, 99, 16))])
    asyncio.run(tamper())
    out = mosaico("plan", str(b), *args()).output
    assert "drift since the last deploy (4)" in out
    assert "~ MyIngress.ipv4_fwd hdr.ipv4.dstAddr=10.0.0.0/24 -> MyIngress.forward(port=9" in out
    assert "drift: changed out of band" in out
    assert "drift: deleted out of band" in out
    assert "+ MyIngress.blocklist hdr.ipv4.srcAddr=100.64.0.0/10" in out
    assert "drift: added out of band" in out
    assert "register MyEgress.p_prime[0] = 7" in out and "was: register MyEgress.p_prime[0] = 99" \
        in out
    as_json = json.loads(mosaico("plan", str(b), *args("--format", "json")).output)
    s1_plan = next(u for u in as_json["units"] if u["unit"] == "s1")
    assert len(s1_plan["drift"]) == 4 and len(s1_plan["changes"]) == 4
    mosaico("deploy", str(b), *args())
    assert live(s1) == desired(e1)
    assert "Plan: 0 changes" in mosaico("plan", str(b), *args()).output


def test_pipeline_pushed_with_the_bmv2_json_and_again_when_it_changes(twin):
    s1, s2, build, args = twin
    e1 = lab_entries(2)
    b = build(e1, [], extra={"s1/s1.json": b'{"program": "v1"}'})
    mosaico("deploy", str(b), *args())
    cfg = s1.call(lambda: s1.target.pipeline.config)
    assert cfg.p4_device_config == b'{"program": "v1"}'
    assert cfg.cookie.cookie != 0
    b2 = build(e1, [], extra={"s1/s1.json": b'{"program": "v2"}'})
    plan = mosaico("plan", str(b2), *args()).output
    assert "! forwarding pipeline (P4Info 4 tables, BMv2 JSON)" in plan
    mosaico("deploy", str(b2), *args())
    assert s1.target.pipelines == 2
    assert s1.call(lambda: s1.target.pipeline.config.p4_device_config) == b'{"program": "v2"}'
    assert live(s1) == desired(e1), "entries are reinstalled after a pipeline push"


def test_destroy_removes_what_was_deployed(twin, state_path):
    s1, s2, build, args = twin
    b = build(lab_entries(3), lab_entries(2))
    mosaico("deploy", str(b), *args())
    out = mosaico("destroy", *args()).output  # no build directory: from the state store
    assert "- MyIngress.ipv4_fwd" in out and "stays installed" in out
    assert live(s1) == {} and live(s2) == {}
    regs = s1.call(lambda: dict(s1.target.state.registers))
    assert int.from_bytes(regs[(Ids.P_PRIME, 0)].bitstring, "big") == 0
    assert s1.call(lambda: s1.target.state.defaults) == {}
    with StateStore(state_path) as store:
        assert store.units() == []
    assert "Nothing to destroy" in mosaico("destroy", *args()).output


def test_status_states(twin):
    """Per switch: running, then `no pipeline` once the switch restarted empty. (What the
    numbers are is tests/runtime/test_runtime_status.py's business.)"""
    s1, s2, build, args = twin
    b = build(lab_entries(1), lab_entries(1))
    mosaico("deploy", str(b), *args())
    rows = json.loads(mosaico("status", str(b), *args("--format", "json")).output)
    assert {(r["node"], r["state"]) for r in rows} == {("s1", "running"), ("s2", "running")}
    text = mosaico("status", str(b), *args()).output
    assert text.splitlines()[0].split() == ["SERVICE", "NODE", "TARGET", "STATE", "PACKETS",
                                            "DROPS", "CE", "QDELAY"]
    s2.target.pipeline = None  # the switch restarted without a pipeline
    rows = json.loads(mosaico("status", *args("--format", "json")).output)
    assert next(r for r in rows if r["node"] == "s2")["state"] == "no pipeline"


def test_deploy_refuses_when_another_controller_is_primary(twin):
    s1, s2, build, args = twin
    b = build(lab_entries(1), lab_entries(1))

    async def hold():
        return await connect(Endpoint("other", s2.address, 2, election_id=1000))

    loop = asyncio.new_event_loop()
    other = loop.run_until_complete(hold())
    try:
        r = mosaico("deploy", str(b), *args(), ok=False)
    finally:
        loop.run_until_complete(other.close())
        loop.close()
    assert r.exit_code == 1
    assert "error[E1206]" in r.output and "election id 1000" in r.output
    assert "--election-id" in r.output
    assert "error[E1212]" in r.output  # s1 (applied concurrently) was rolled back
    assert live(s1) == {}
    assert s2.target.pipeline is None and s2.target.writes == 0


def test_rejected_entry_rolls_the_switch_back(twin):
    s1, s2, build, args = twin
    good = lab_entries(2)
    mosaico("deploy", str(build(good, [])), *args())
    bad = route_entry(7)
    bad.table_entry.action.action.params[0].value = b"\x7f\xff"  # port is bit<9>
    new = [*good, insert(route_entry(8)), insert(bad), insert(route_entry(9))]
    r = mosaico("deploy", str(build(new, [])), *args("--batch", "1"), ok=False)
    assert r.exit_code == 1
    assert "error[E1207]: switch s1 rejected 1 update(s)" in r.output
    assert "forward(port=32767" in r.output and "OUT_OF_RANGE" in r.output
    assert "does not fit in 9 bits" in r.output
    assert "error[E1212]: deploy failed and was rolled back" in r.output
    assert live(s1) == desired(good), "the entry written before the bad one was undone"


def test_switch_killed_mid_batch(twin, served_switch, tmp_path, state_path):
    """The gRPC server of s2 dies in the middle of a Write: s1 is rolled back, s2 reported."""
    s1, _, build, _ = twin
    first = build(lab_entries(2), lab_entries(2))
    dying = textwrap.dedent("""
        import os, sys
        from pathlib import Path
        from mosaico_dsl.runtime.schema import load_p4info
        from mosaico_dsl.runtime.server import ReferenceTarget, serve

        class Dying(ReferenceTarget):
            def _apply(self, u):
                if self.updates >= int(sys.argv[3]):
                    os._exit(9)  # killed with part of the batch applied
                return super()._apply(u)

        d = Path(sys.argv[1])
        serve(Dying(2, load_p4info(d / "p4info.txtpb").p4info), f"127.0.0.1:{sys.argv[2]}")
    """)
    s2 = served_switch(first / "s2", "12", script=dying)  # 9 updates, then 3 of the next
    args = ["--target", "p4runtime", "--address", f"s1={s1.address}",
            "--address", f"s2={s2.address}", "--state", str(state_path)]
    mosaico("deploy", str(first), *args)
    before = live(s1)
    second = build(lab_entries(6), lab_entries(9))
    r = mosaico("deploy", str(second), *args, "--batch", "4", "--timeout", "2", ok=False)
    assert r.exit_code == 1
    assert s2.proc.wait(10) == 9
    assert "error[E1205]: lost switch s2" in r.output
    assert "error[E1213]: deploy failed and the rollback is incomplete" in r.output
    assert "undone: p4runtime s1" in r.output
    assert "NOT undone: p4runtime s2" in r.output
    assert live(s1) == before, "s1 must be back to the first deploy"
    with StateStore(state_path) as store:
        assert store.history()[0][4] == "rollback incomplete"
        recorded = store.entities("p4runtime", "s1")
    assert len(recorded) == len(lab_entries(2)), "the store still holds the first deploy"


def test_bad_inputs_get_diagnostics(tmp_path, state_path, twin):
    _, _, build, _ = twin
    r = mosaico("deploy", str(tmp_path / "nope"), "--state", str(state_path), ok=False)
    assert r.exit_code == 1 and "error[E1201]" in r.output
    b = build(lab_entries(1), [])
    (b / "s1" / "entries.json").write_text("[]")
    r = mosaico("plan", str(b), "--target", "p4runtime", "--state", str(state_path), ok=False)
    assert "error[E1202]" in r.output and "s1/entries.json was modified" in r.output
    b = build(lab_entries(1), [])
    r = mosaico("plan", str(b), "--address", "s1", "--address", "s9=1.2.3.4:5",
                "--state", str(state_path), ok=False)
    assert r.output.count("error[E1203]") == 1 and "not SWITCH=HOST:PORT" in r.output
    r = mosaico("plan", str(b), "--target", "p4runtime", "--address", "s9=127.0.0.1:1",
                "--state", str(state_path), ok=False)
    assert "error[E1203]" in r.output and "'s9'" in r.output
    r = mosaico("plan", str(b), "--target", "p4runtime", "--address", "s1=127.0.0.1:1",
                "--address", "s2=127.0.0.1:1", "--timeout", "0.5",
                "--state", str(state_path), ok=False)
    assert "error[E1205]: cannot reach switch s1 at 127.0.0.1:1" in r.output
    assert "Traceback" not in r.output


def test_state_lock_refuses_a_second_deploy(twin, state_path):
    _, _, build, args = twin
    with StateStore(state_path) as other:
        other.lock()
        r = mosaico("deploy", str(build(lab_entries(1), [])), *args(), ok=False)
    assert "error[E1214]" in r.output and "another mosaico deploy" in r.output


def test_target_serve_cli(served_switch, twin, state_path):
    """`mosaico target serve BUILD/<switch>` takes device id and P4Info from the build."""
    _, _, build, _ = twin
    b = build(lab_entries(2), lab_entries(3))
    srv1, srv2 = served_switch(b / "s1"), served_switch(b / "s2")
    args = ["--target", "p4runtime", "--address", f"s1={srv1.address}",
            "--address", f"s2={srv2.address}", "--state", str(state_path)]
    mosaico("deploy", str(b), *args)
    assert "Plan: 0 changes" in mosaico("plan", str(b), *args).output
    swapped = ["--target", "p4runtime", "--address", f"s1={srv2.address}",
               "--address", f"s2={srv1.address}", "--state", str(state_path)]
    r = mosaico("plan", str(b), *swapped, ok=False)
    assert "error[E1205]" in r.output and "device id 1 is not 2" in r.output
    for srv in (srv1, srv2):
        srv.proc.terminate()
        assert srv.proc.wait(10) == 0, "SIGTERM stops the server cleanly"


# --------------------------------------------------------------------------- the flagship


@pytest.mark.parametrize("switch", ["reference", pytest.param(
    "bmv2", marks=[pytest.mark.bmv2("simple_switch_grpc"), pytest.mark.p4c])])
def test_flagship_build_deploys_and_converges(switch, reference_switch, tmp_path, state_path):
    """The P4 backend's real artifacts for examples/secure_l4s.mosaico, end to end."""
    from runtime_helpers import ROOT, start_bmv2, wait_listening

    from mosaico_dsl.compiler import compile as compile_program
    from mosaico_dsl.runtime.schema import load_p4info

    build = compile_program(ROOT / "examples" / "secure_l4s.mosaico").write(tmp_path / "b")
    proc = None
    if switch == "reference":
        address = reference_switch(device_id=1).address
    else:
        proc, address = start_bmv2(build / "s1", tmp_path)
        wait_listening(address)
    try:
        args = ["--target", "p4runtime", "--address", f"s1={address}",
                "--state", str(state_path)]
        out = mosaico("deploy", str(build), *args).output
        schema = load_p4info(build / "s1" / "p4info.txtpb")
        blocklist = next(t for t in schema.tables.values() if "blocklist" in t.name)
        assert f"+ {blocklist.name} {next(iter(blocklist.match_fields.values())).name}" \
               f"=203.0.113.0/24" in out
        assert "Plan: 0 changes" in mosaico("plan", str(build), *args).output
        rows = json.loads(mosaico("status", str(build), *args, "--format", "json").output)
        assert {(r["service"], r["state"]) for r in rows} == {("*", "running"),
                                                            ("web_ll", "running")}
        node = next(r for r in rows if r["service"] == "*")
        assert node["packets"] == 0 and node["drops"] == 0 and node["ce_marks"] == 0
        mosaico("destroy", *args)
        left = set(desired_entries(build)) & set(live_entries(address))
        assert not left, "destroy left entries behind"
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)


def desired_entries(build: Path) -> dict[str, bytes]:
    from mosaico_dsl.runtime.entities import load_updates

    return desired(load_updates(build / "s1" / "entries.json"))


def live_entries(address: str) -> dict[str, bytes]:
    async def go():
        async with await connect(Endpoint("x", address, 1), primary=False) as c:
            return await c.read([p4r.Entity(table_entry=p4r.TableEntry())])
    return {identity(canonical(e)): payload(canonical(e)) for e in asyncio.run(go())}


def test_remaining_diagnostics(twin, tmp_path, state_path):
    s1, s2, build, args = twin
    ir = json.loads((build([], []) / "ir.json").read_text())
    for sw in ir["topologies"][0]["switches"]:
        sw["p4runtime"] = None
    no_address = make_build(tmp_path / "noaddr", {"s1": lab_entries(1)},
                            extra={"ir.json": json.dumps(ir).encode()})
    r = mosaico("plan", str(no_address), "--target", "p4runtime", "--state", str(state_path),
                ok=False)
    assert "error[E1204]: switch s1 has no P4Runtime address" in r.output
    assert "--address s1=HOST:PORT" in r.output

    empty_p4info = tmp_path / "empty.txtpb"
    empty_p4info.write_text('pkg_info { arch: "v1model" }\n')
    b = make_build(tmp_path / "empty", {"s1": []}, p4info=empty_p4info)
    r = mosaico("deploy", str(b), "--target", "p4runtime", "--address", f"s1={s1.address}",
                "--state", str(state_path), ok=False)
    assert "error[E1208]: switch s1 rejected the forwarding pipeline: INVALID_ARGUMENT: " \
           "SetForwardingPipelineConfig: the P4Info is empty" in r.output

    r = mosaico("plan", str(build([], [])), "--target", "openstack", "--state",
                str(state_path), ok=False)
    assert "error[E1215]" in r.output and "stack.yaml" in r.output

    broken = tmp_path / "broken.txtpb"
    broken.write_text("tables { preamble { id: oops } }\n")
    b = make_build(tmp_path / "broken", {"s1": []}, p4info=broken)
    r = mosaico("plan", str(b), *args(), ok=False)
    assert "error[E1216]: switch s1: not a text-format P4Info" in r.output

    cert = tmp_path / "client.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    r = mosaico("plan", str(build([], [])), *args("--cert", str(cert)), ok=False)
    assert "error[E1217]: --cert and --key go together" in r.output
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    r = mosaico("plan", str(build([], [])), *args("--ca", str(garbage)), ok=False)
    assert f"error[E1217]: --ca {garbage} is not a PEM file" in r.output
