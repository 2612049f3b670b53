"""Many switches: one multi-device reference target, deploy/plan/status/destroy to all.

A generated program of :data:`N` switches in a line, each declared at one address with its
own device id, is compiled for real (IR, placement, P4 artifacts) and served by one
``mosaico target serve BUILD`` process — one P4Runtime server hosting every switch, as a
multi-device server (PI's, behind BMv2) does. The deploy goes through the real CLI and
gRPC on loopback; every device is read back over P4Runtime.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from fault_support import run
from runtime_helpers import ROOT, free_port, lab_entries, make_build, wait_listening

from mosaico_dsl.cli import cli
from mosaico_dsl.compiler import compile as compile_program
from mosaico_dsl.p4proto import p4r
from mosaico_dsl.runtime.entities import canonical, entities_of, identity, load_updates, payload
from mosaico_dsl.runtime.p4runtime import Channels, Endpoint, P4RuntimeError, connect
from mosaico_dsl.runtime.server import MultiDeviceTarget, ReferenceTarget, start_server
from mosaico_dsl.runtime.state import StateStore

N = 50  # switches: enough for --jobs to matter, compiled in seconds


def fabric_program(n: int, port: int, blocked: str = "203.0.113.0/24") -> str:
    """A line of ``n`` switches at 127.0.0.1:``port``, device ids 1..n, an endpoint on each,
    and a service every few switches."""
    lines = ["import std.security as sec", "from std.fwd import Forward", "",
             "topology fabric {"]
    for i in range(n):
        lines.append(f'  switch s{i} : bmv2 {{ ports: 4, p4runtime: "127.0.0.1:{port}", '
                     f"device_id: {i + 1} }}")
    for i in range(n):
        lines.append(f"  endpoint e{i} {{ ip: 10.{i // 250}.{i % 250}.1 }}")
        lines.append(f"  link e{i} -- s{i}.1 {{ bandwidth: 1Gbps, delay: 10us }}")
    for i in range(n - 1):
        lines.append(f"  link s{i}.2 -- s{i + 1}.3 {{ bandwidth: 10Gbps, delay: 5us }}")
    lines.append("}")
    for i in range(0, n, 5):
        j = (i + n // 2) % n
        lines += [f"service svc{i} on fabric {{", f"  match ipv4.dst == e{j} and "
                  "tcp.dport == 443", "  require latency <= 50ms", "  chain {",
                  f"    sec.Blocklist(prefixes: [{blocked}])", f"    -> Forward(to: e{j})",
                  "  }", "}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def fabric(tmp_path_factory) -> tuple[Path, str]:
    """The compiled fabric and the address its switches declare."""
    root = tmp_path_factory.mktemp("fabric")
    port = free_port()
    src = root / "fabric.mosaico"
    src.write_text(fabric_program(N, port))
    build = compile_program(src, emit=["ir", "placement", "p4"]).write(root / "build")
    return build, f"127.0.0.1:{port}"


@pytest.fixture
def server(fabric):
    """``mosaico target serve BUILD``: every switch of the build in one process."""
    build, address = fabric
    proc = subprocess.Popen([sys.executable, "-m", "mosaico_dsl.cli", "target", "serve",
                             str(build)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    try:
        wait_listening(address)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def mosaico(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def wanted(build: Path) -> dict[str, dict[str, bytes]]:
    """Each switch's table entries as its entries.json says, canonical, by identity."""
    out = {}
    for d in sorted(build.iterdir()):
        if (d / "entries.json").is_file():
            ents = [canonical(e) for e in entities_of(load_updates(d / "entries.json"))
                    if e.HasField("table_entry") and not e.table_entry.is_default_action]
            out[d.name] = {identity(e): payload(e) for e in ents}
    return out


def read_back(address: str, n: int = N) -> dict[str, dict[str, bytes]]:
    """Every device's table entries over P4Runtime (one channel for all of them)."""
    async def go():
        channels = Channels()

        async def one(i: int):
            ep = Endpoint(f"s{i}", address, i + 1)
            async with await connect(ep, primary=False, channels=channels) as c:
                return [canonical(e) for e in
                        await c.read([p4r.Entity(table_entry=p4r.TableEntry())])]
        got = await asyncio.gather(*(one(i) for i in range(n)))
        return {f"s{i}": {identity(e): payload(e) for e in ents} for i, ents in
                enumerate(got)}
    return asyncio.run(go())


def test_deploy_to_many_devices_of_one_server(fabric, server, tmp_path):
    """Deploy, read every device back, deploy again (nothing to do), status, destroy."""
    build, address = fabric
    state = tmp_path / "state.db"
    args = ["--target", "p4runtime", "--state", state, "--jobs", "8"]
    first = mosaico("deploy", build, *args)
    want = wanted(build)
    assert len(want) == N and all(want.values())
    assert read_back(address) == want
    # one progress display: a tally for the whole target, not a line per switch
    assert f"p4runtime: {N}/{N} switches" in first.stderr
    assert "s7: " not in first.stderr, first.stderr
    # the plan names the first units and counts the rest
    assert "more units:" in first.output and len(first.output.splitlines()) < 200
    again = mosaico("deploy", build, *args)
    assert "Nothing to do" in again.stderr and "Plan: 0 changes" in again.output
    rows = json.loads(mosaico("status", *args, "--format", "json").output)
    assert {r["node"] for r in rows if r["service"] == "*"} == set(want)
    assert {r["state"] for r in rows if r["service"] == "*"} == {"running"}
    mosaico("destroy", *args)
    assert read_back(address) == {name: {} for name in want}
    with StateStore(state) as store:
        assert store.units("p4runtime") == [] and store.intents() == []


def test_a_refusing_switch_midway_rolls_back_every_switch(fabric, server, tmp_path):
    """Another controller owns s30: the deploy fails there, starts no further switch, and
    every switch it changed is rolled back (read back: empty tables)."""
    build, address = fabric
    state = tmp_path / "state.db"

    async def hold_and_deploy():
        owner = await connect(Endpoint("s30", address, 31, election_id=1000))
        try:
            return await asyncio.to_thread(
                mosaico, "deploy", build, "--target", "p4runtime", "--state", state,
                "--jobs", "4", ok=False)
        finally:
            await owner.close()

    result = asyncio.run(hold_and_deploy())
    assert result.exit_code == 1
    out = result.output
    assert "E1206" in out and "s30" in out and "E1212" in out
    assert "were not started after the failure" in out
    # a long rollback is summarised: every step up to 60, else the first 20 and a count
    undone = out.count("undone: p4runtime")
    assert (undone == 20 and "more step(s) on" in out) or 0 < undone <= 60, undone
    assert read_back(address) == {f"s{i}": {} for i in range(N)}
    with StateStore(state) as store:
        assert store.units("p4runtime") == [] and store.intents() == []


def test_a_long_rollback_is_summarised():
    """The report of a rollback lists every undone step up to 60; beyond, the first 20 and
    a count of the rest and of the units they were on (the branch the deploy above, with
    its 50 switches, may not reach)."""
    from mosaico_dsl.runtime.deployment import _rollback_diagnostic
    from mosaico_dsl.runtime.transaction import RollbackReport, Undo

    steps = [Undo("p4runtime", f"p4runtime s{i % 7}", f"step {i}", {}) for i in range(100)]
    long = _rollback_diagnostic(RollbackReport(undone=steps), "deploy")
    assert [n.message for n in long.notes[:20]] == [
        f"undone: p4runtime s{i % 7}: step {i}" for i in range(20)]
    assert [n.message for n in long.notes[20:]] == [
        "undone: ... and 80 more step(s) on 7 unit(s)"]
    short = _rollback_diagnostic(RollbackReport(undone=steps[:60]), "deploy")
    assert len(short.notes) == 60 and "more step(s)" not in short.notes[-1].message


def test_killed_deploy_is_found_and_undone_by_destroy(fabric, server, tmp_path):
    """A deploy killed at its 20th step (SIGKILL: no rollback) leaves its intents in the
    write-ahead record; `destroy` finds and undoes every one of them on every device."""
    build, address = fabric
    state = tmp_path / "state.db"
    args = ["--target", "p4runtime", "--state", state, "--jobs", "8"]
    killed = run("deploy", build, *args, fault="after:20:SIGKILL")
    assert killed.returncode == -9, killed.output
    written = read_back(address)
    # each switch took two steps (its pipeline, then its entries): about ten were changed
    assert sum(bool(v) for v in written.values()) >= 8
    with StateStore(state) as store:
        assert len(store.intents()) >= 20
    done = run("destroy", *args)
    assert done.returncode == 0, done.output
    assert "recovered: " in done.stderr and "Removed what an interrupted run left" in \
        done.stderr
    assert read_back(address) == {f"s{i}": {} for i in range(N)}
    with StateStore(state) as store:
        assert store.intents() == []


def test_sigint_midway_rolls_back_every_switch(fabric, server, tmp_path):
    build, address = fabric
    state = tmp_path / "state.db"
    ran = run("deploy", build, "--target", "p4runtime", "--state", state,
              fault="after:25:SIGINT")
    assert ran.returncode == 130, ran.output
    assert "E1233" in ran.output and "E1212" in ran.output
    assert read_back(address) == {f"s{i}": {} for i in range(N)}


# --------------------------------------------------------------------------- the server


@pytest.fixture
def multi(lab_schema):
    target = MultiDeviceTarget.of(range(1, 6), lab_schema.p4info)
    handle = start_server(target)
    yield target, f"127.0.0.1:{handle.port}"
    handle.stop(0)


def test_unknown_device_id_is_not_found(multi):
    """P4Runtime specification, "Rules for Handling MasterArbitrationUpdate Messages": "If
    device_id does not match any of the devices known to the P4Runtime server ... the
    server must return a NOT_FOUND error" — for the stream, and for every other RPC."""
    _, address = multi

    async def go():
        with pytest.raises(P4RuntimeError) as arb:
            await connect(Endpoint("x", address, 99))
        async with await connect(Endpoint("x", address, 99), primary=False) as c:
            with pytest.raises(P4RuntimeError) as read:
                await c.read([p4r.Entity(table_entry=p4r.TableEntry())])
            with pytest.raises(P4RuntimeError) as get:
                await c.get_pipeline()
            with pytest.raises(P4RuntimeError) as write:
                await c.write([p4r.Update(type=p4r.Update.INSERT)])
        return arb.value, read.value, get.value, write.value

    for e in asyncio.run(go()):
        assert e.code == grpc.StatusCode.NOT_FOUND, e


def test_devices_keep_their_own_state_and_arbitration(multi, lab_schema):
    target, address = multi
    from runtime_helpers import route_entry

    async def go():
        # primary on device 1 with election id 10 does not make anyone primary elsewhere
        a = await connect(Endpoint("a", address, 1, election_id=10))
        b = await connect(Endpoint("b", address, 2, election_id=1))  # another device: fine
        try:
            with pytest.raises(P4RuntimeError) as lower:
                await connect(Endpoint("c", address, 1, election_id=5))
            await a.write([p4r.Update(type=p4r.Update.INSERT, entity=route_entry(1))])
            await b.write([p4r.Update(type=p4r.Update.INSERT, entity=route_entry(2)),
                           p4r.Update(type=p4r.Update.INSERT, entity=route_entry(3))])
            # a stream bound to device 1 cannot arbitrate for device 2 (as PI)
            req = p4r.StreamMessageRequest()
            req.arbitration.device_id = 2
            req.arbitration.election_id.low = 10
            await a._outbox.put(req)
            msg = None
            with pytest.raises(grpc.aio.AioRpcError) as rebind:
                while msg is not grpc.aio.EOF:
                    msg = await a._stream.read()
            return lower.value, rebind.value
        finally:
            await a.close()
            await b.close()

    lower, rebind = asyncio.run(go())
    assert "primary" in lower.message
    assert rebind.code() == grpc.StatusCode.FAILED_PRECONDITION
    counts = {i: sum(len(t) for t in d.state.entries.values())
              for i, d in target.devices.items()}
    assert counts == {1: 1, 2: 2, 3: 0, 4: 0, 5: 0}
    # one parsed program for every device running it, pushed or given at start
    programs = {id(d.pipeline.program) for d in target.devices.values()}
    assert len(programs) == 1


def test_a_pushed_pipeline_is_shared_and_per_device(lab_schema):
    target = MultiDeviceTarget.of(range(1, 4))  # no pipeline yet, as fresh switches
    handle = start_server(target)
    address = f"127.0.0.1:{handle.port}"

    async def push(device: int):
        async with await connect(Endpoint("x", address, device)) as c:
            await c.set_pipeline(lab_schema.p4info, b"", cookie=device)
    try:
        asyncio.run(push(1))
        asyncio.run(push(3))
    finally:
        handle.stop(0)
    d = target.devices
    assert d[2].pipeline is None
    assert d[1].pipeline.program is d[3].pipeline.program
    assert (d[1].pipeline.cookie, d[3].pipeline.cookie) == (1, 3)
    assert len(d[1].programs) == 1


def test_channels_one_per_address(multi):
    _, address = multi

    async def go():
        channels = Channels()
        a = await connect(Endpoint("a", address, 1), primary=False, channels=channels)
        b = await connect(Endpoint("b", address, 2), primary=False, channels=channels)
        shared = a.channel is b.channel and len(channels) == 1
        await a.close()
        await a.close()  # closing twice hands the channel back once
        assert len(channels) == 1 and (await b.get_pipeline())[0] is None
        await b.close()
        return shared, len(channels)

    assert asyncio.run(go()) == (True, 0)


def test_jobs_bound_the_streams_open_at_once(lab_schema, tmp_path, monkeypatch):
    """`--jobs 3` to 12 devices of one server: at most 3 streams open at a time (counted
    by the client; the server sees a closed stream end a moment later, so it may count one
    more per unit that just finished)."""
    from mosaico_dsl.runtime import p4runtime

    open_now, peak = [0], [0]
    arbitrate, close = p4runtime.SwitchConnection.arbitrate, p4runtime.SwitchConnection.close

    async def counted_arbitrate(self):
        open_now[0] += 1
        peak[0] = max(peak[0], open_now[0])
        self._counted = True
        await arbitrate(self)

    async def counted_close(self):
        if getattr(self, "_counted", False):
            self._counted = False
            open_now[0] -= 1
        await close(self)

    monkeypatch.setattr(p4runtime.SwitchConnection, "arbitrate", counted_arbitrate)
    monkeypatch.setattr(p4runtime.SwitchConnection, "close", counted_close)
    target = MultiDeviceTarget.of(range(1, 13), lab_schema.p4info)
    handle = start_server(target)
    try:
        program = tmp_path / "many.mosaico"
        program.write_text(fabric_program(12, handle.port))
        build = make_build(tmp_path / "build", {f"s{i}": lab_entries(3) for i in range(12)},
                           program=program)
        mosaico("deploy", build, "--target", "p4runtime", "--state", tmp_path / "s.db",
                "--jobs", "3")
    finally:
        handle.stop(0)
    assert 2 <= peak[0] <= 3 and open_now[0] == 0
    assert 2 <= target.streams_peak <= 6
    assert all(d.updates > 0 for d in target.devices.values())


def test_two_switches_on_one_device_are_refused(lab_schema, tmp_path):
    program = tmp_path / "twice.mosaico"
    text = fabric_program(3, 9559).replace("device_id: 3", "device_id: 1")
    program.write_text(text)
    build = make_build(tmp_path / "build", {f"s{i}": lab_entries(1) for i in range(3)},
                       program=program)
    out = mosaico("plan", build, "--target", "p4runtime", "--state", tmp_path / "s.db",
                  ok=False)
    assert out.exit_code == 1
    assert "E1234" in out.output and "s0, s2" in out.output


def test_serve_cli_devices(lab_schema, tmp_path, fabric):
    """`target serve DIR --devices 1-3`; bad ranges and a build with duplicate ids are
    refused with E1231."""
    build, _ = fabric
    bad = mosaico("target", "serve", build / "s0", "--devices", "5-2", ok=False)
    assert bad.exit_code == 1 and "E1231" in bad.output
    both = mosaico("target", "serve", build, "--devices", "1-3", ok=False)
    assert both.exit_code == 1 and "E1231" in both.output
    program = tmp_path / "twice.mosaico"
    program.write_text(fabric_program(3, 9559).replace("device_id: 3", "device_id: 1"))
    dup = make_build(tmp_path / "dup", {f"s{i}": lab_entries(1) for i in range(3)},
                     program=program)
    clash = mosaico("target", "serve", dup, ok=False)
    assert clash.exit_code == 1 and "E1231" in clash.output and "s0, s2" in clash.output
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mosaico_dsl.cli", "target", "serve",
                             str(build / "s0"), "--devices", "1-3", "--listen",
                             f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        wait_listening(f"127.0.0.1:{port}")

        async def cookies():
            out = []
            for i in (1, 2, 3, 4):
                async with await connect(Endpoint("x", f"127.0.0.1:{port}", i),
                                         primary=False) as c:
                    try:
                        _, cfg = await c.get_pipeline(p4info=True)
                        out.append(len(cfg.p4info.tables) > 0)
                    except P4RuntimeError as e:
                        out.append(e.code.name)
            return out
        assert asyncio.run(cookies()) == [True, True, True, "NOT_FOUND"]
    finally:
        proc.terminate()
        proc.wait(10)
    assert "3 devices, ids 1-3" in proc.stderr.read()


def test_a_single_device_target_is_unchanged(lab_schema):
    """ReferenceTarget still serves one device on its own."""
    t = ReferenceTarget(7, lab_schema.p4info)
    assert t.pipeline.config.p4info == lab_schema.p4info and t.pipeline.cookie is None


def test_a_second_deploy_finds_the_clone_sessions(lab_schema, tmp_path, reference_switch):
    """Clone sessions are read back in the plan: deploying the same build again is
    "nothing to do", not an INSERT the switch refuses (ALREADY_EXISTS)."""
    from runtime_helpers import insert

    sw = reference_switch(device_id=1)
    clone = p4r.Entity()
    c = clone.packet_replication_engine_entry.clone_session_entry
    c.session_id = 1
    c.replicas.add(egress_port=4, instance=1)
    program = tmp_path / "one.mosaico"
    program.write_text(fabric_program(2, 9559))
    build = make_build(tmp_path / "build", {"s0": [*lab_entries(1), insert(clone)],
                                            "s1": lab_entries(1)}, program=program)
    other = reference_switch(device_id=2)
    args = ["--target", "p4runtime", "--state", tmp_path / "s.db", "--address",
            f"s0={sw.address}", "--address", f"s1={other.address}"]
    mosaico("deploy", build, *args)
    assert sw.call(lambda: dict(sw.target.state.clones))[1].replicas[0].egress_port == 4
    again = mosaico("deploy", build, *args)
    assert "Nothing to do" in again.stderr, again.output


def test_one_progress_display_for_many_switches():
    """On a terminal: one rich bar that a tally moves, messages printed above it; in a log:
    the tally as a counter line; --quiet: nothing."""
    import io

    from mosaico_dsl.display.progress import DeployProgress
    from mosaico_dsl.runtime.deployment import Tally

    tty = io.StringIO()
    p = DeployProgress(stream=tty, tty=True)
    p("recovered: 3/3 steps")
    p("planning: a message")
    for done in range(0, 1001, 100):
        p(Tally("p4runtime", done, 1000))
    p.close()
    text = tty.getvalue()
    assert "p4runtime: 1000/1000 switches" in text and "planning: a message" in text
    assert "\x1b[" in text  # drawn live, not printed line by line
    log = io.StringIO()
    p = DeployProgress(stream=log, tty=False, interval=3600)
    for done in range(0, 1001):
        p(Tally("p4runtime", done, 1000))
    p.close()
    assert log.getvalue().splitlines() == ["  p4runtime: 0/1000 switches",
                                           "  p4runtime: 1000/1000 switches"]
    quiet = io.StringIO()
    p = DeployProgress(stream=quiet, tty=True, quiet=True)
    p(Tally("p4runtime", 1, 2))
    p("a message")
    p.close()
    assert quiet.getvalue() == ""
