"""Backend behaviour: which switches get programs, segments and detours, queue settings,
diagnostics (E09xx) with the offending function named, the CLI, and determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from ipaddress import IPv4Address

import pytest
from p4_support import ROOT, compiled, plans_of, switch_dirs
from p4_tables import key_values, lookup

from mosaico_dsl import compiler
from mosaico_dsl.backends.p4 import generate, plan_switches
from mosaico_dsl.backends.p4.bmv2 import PACKET_BYTES, queue_settings
from mosaico_dsl.backends.p4.entries import updates
from mosaico_dsl.diagnostics import CompileError
from mosaico_dsl.ir.graph import shortest_path
from mosaico_dsl.place import Assignment, Placement, Route, Visit

TWO_SWITCHES = """
import std.l4s
import std.security as sec
from std.fwd import Forward
topology t {
  switch s1 : bmv2 { ports: 4 }
  switch s2 : bmv2 { ports: 4, device_id: 2, thrift_port: 9091 }
  endpoint c  { ip: 10.0.1.1, trusted: true }
  endpoint w  { ip: 10.0.2.1, mac: 02:00:00:00:02:01 }
  link c -- s1.1  { bandwidth: 1Gbps, delay: 1ms }
  link s1.2 -- s2.1 { bandwidth: 1Gbps, delay: 1ms }
  link s2.2 -- w  { bandwidth: 12Mbps, delay: 5ms }
}
service web on t {
  match ipv4.dst == w and tcp.dport == 80
  chain { sec.Blocklist(prefixes: [203.0.113.0/24]) -> std.l4s.DualQ() -> Forward(to: w) }
}
"""


def manual_placement(program, node_of) -> Placement:
    """A placement written by hand through the public model (any strategy could yield it):
    instance ``i`` on ``node_of(i)``, routes along shortest paths."""
    assignments, routes = [], []
    for svc in program.services:
        topo = program.topology(svc.topology)
        where = {fi.id: node_of(fi) for fi in svc.chain}
        assignments += [Assignment(i, n, "p4.v1model") for i, n in where.items()]
        for src in svc.sources:
            path = shortest_path(topo, src, svc.destination)
            pending = [fi.id for fi in svc.chain]
            visits = []
            for node in path:
                here = []
                while pending and where[pending[0]] == node:
                    here.append(pending.pop(0))
                visits.append(Visit(node, tuple(here)))
            routes.append(Route(svc.name, src, tuple(visits)))
    return Placement(tuple(assignments), tuple(routes))


def _compilation(text: str, node_of=lambda fi: "s1"):
    program = compiler.check(text)
    return compiler.Compilation(program, manual_placement(program, node_of), "t.mosaico", text)


def _codes(e: CompileError) -> list[str]:
    return [d.code for d in e.diagnostics]


# ------------------------------------------------------------------ programs per switch


def test_every_switch_on_a_route_gets_a_program():
    result = compiler.compile(TWO_SWITCHES, emit=["p4"])
    dirs = switch_dirs(result)
    assert sorted(dirs) == ["s1", "s2"]
    program = compiler.check(TWO_SWITCHES)
    plans, _ = plan_switches(program, result.placement)
    by_name = {p.switch.name: p for p in plans}
    # Each instance runs on exactly one switch, in chain order.
    ran = [s.instance.id for p in plans for s in p.steps]
    assert sorted(ran) == sorted(fi.id for fi in program.services[0].chain)
    # s2 classifies what arrives from s1 (port 1) and s1 what arrives from c (port 1).
    for name, plan in by_name.items():
        entries = [u.entity.table_entry for u in updates(plan)
                   if u.entity.table_entry.table_id == plan.classifier.table.id]
        pkt = {"ipv4.dst": IPv4Address("10.0.2.1"), "tcp.dport": 80, "tcp.sport": 1234}
        e = lookup(entries, key_values(pkt, plan.classifier.table.keys, {"ingress_port": 1}))
        assert e is not None, name
        next_port = int.from_bytes(e.action.action.params[2].value, "big")
        assert next_port == 2  # towards s2 on s1, towards w on s2


def test_detour_to_a_vnf_host_continues_the_chain():
    """two_services: gaming runs RateLimit, detours to nfvi1 (SynGuard as a VNF), and the
    packets coming back from the host port run the rest of the chain as segment 1."""
    program, plans = plans_of((ROOT / "examples" / "two_services.mosaico").read_text())
    plan = plans[0]
    segs = {(s.service, s.segment_id): s for s in plan.segments}
    first, second = segs[("gaming", 0)], segs[("gaming", 1)]
    assert [s.template for s in first.steps] == ["ratelimit"]
    assert [s.template for s in second.steps] == ["fifo", "forward"]
    assert first.next_node == "nfvi1" and first.next_port == 5
    entries = [u.entity.table_entry for u in updates(plan)
               if u.entity.table_entry.table_id == plan.classifier.table.id]
    pkt = {"ipv4.dst": IPv4Address("10.0.3.1"), "ipv4.dscp": 0, "udp.dport": 27015,
           "udp.sport": 5000}
    keys = plan.classifier.table.keys
    from_client = lookup(entries, key_values(pkt, keys, {"ingress_port": 1}))
    from_host = lookup(entries, key_values(pkt, keys, {"ingress_port": 5}))
    params = lambda e: [int.from_bytes(p.value, "big") for p in e.action.action.params]
    assert params(from_client) == [2, 0, 5]  # gaming, segment 0, out to nfvi1
    assert params(from_host) == [2, 1, 3]  # gaming, segment 1, out to game
    # dscp 8 is excluded by the match: not classified at all.
    assert lookup(entries, key_values({**pkt, "ipv4.dscp": 8}, keys,
                                      {"ingress_port": 1})) is None


def test_queue_rate_and_depth_follow_links_and_buffers():
    program, plans = plans_of((ROOT / "examples" / "two_services.mosaico").read_text())
    qs = {q.port: q for q in queue_settings(plans[0])}
    assert qs[0].rate_pps == -(-20_000_000 // (8 * PACKET_BYTES))  # 20 Mb/s link to web
    assert qs[0].depth == qs[0].rate_pps * 250_000 // 1_000_000  # DualQ default buffer 250 ms
    assert qs[3].depth == qs[3].rate_pps * 20_000 // 1_000_000  # Fifo(buffer: 20ms)
    assert qs[1].depth is None  # no queue function: BMv2's default depth
    artifacts = compiled(ROOT / "examples" / "two_services.mosaico").artifacts
    text = artifacts["s1/run-bmv2.sh"].decode()
    assert f"assuming {PACKET_BYTES}-byte packets" in text.replace("\n# ", " ")
    assert "--priority-queues 2" in text
    # entries.txt carries the queue settings with the rest of the runtime state, so the
    # script and the local target's BMv2 load the same commands
    cli = artifacts["s1/entries.txt"].decode().splitlines()
    assert f"set_queue_rate {qs[0].rate_pps} 0" in cli
    assert f"set_queue_depth {qs[0].depth} 0" in cli
    assert not any(line.startswith("set_queue_depth") and line.endswith(" 1") for line in cli)


def test_switch_queue_rate_overrides_links():
    plan = plans_of((ROOT / "examples" / "secure_l4s.mosaico").read_text())[1][0]
    assert {q.rate_pps for q in queue_settings(plan)} == {1000}  # 12 Mb/s / 1500 B


# ------------------------------------------------------------------ diagnostics


SMALL = TWO_SWITCHES.replace("switch s1 : bmv2 { ports: 4 }",
                             "switch s1 : bmv2 { ports: 4, table_entries: 300 }")


def test_capacity_overflow_names_the_function():
    c = _compilation(SMALL)
    with pytest.raises(CompileError) as e:
        generate(c)
    d = next(d for d in e.value.diagnostics if d.code == "E0901")
    assert "Blocklist" in d.message and "web/0" in d.message and "table entries" in d.message
    assert d.span is not None and d.span.line == TWO_SWITCHES.splitlines().index(
        next(x for x in TWO_SWITCHES.splitlines() if "chain {" in x)) + 1
    assert "table_entries" in d.hint


def test_stage_overflow_names_the_function():
    text = TWO_SWITCHES.replace("switch s1 : bmv2 { ports: 4 }",
                                "switch s1 : bmv2 { ports: 4, stages: 3 }")
    with pytest.raises(CompileError) as e:
        generate(_compilation(text))
    d = next(d for d in e.value.diagnostics if d.code == "E0901")
    assert "DualQ" in d.message and "stages" in d.message


def test_all_capacity_problems_are_reported_together():
    text = TWO_SWITCHES.replace(
        "switch s1 : bmv2 { ports: 4 }",
        "switch s1 : bmv2 { ports: 4, table_entries: 300, register_bits: 100, stages: 2 }")
    with pytest.raises(CompileError) as e:
        generate(_compilation(text))
    messages = " | ".join(d.message for d in e.value.diagnostics)
    assert _codes(e.value).count("E0901") == 3
    assert "table entries" in messages and "register bits" in messages and "stages" in messages


def test_dualq_needs_priority_queues():
    text = TWO_SWITCHES.replace("switch s1 : bmv2 { ports: 4 }",
                                "switch s1 : bmv2 { ports: 4, priority_queues: 1 }")
    with pytest.raises(CompileError) as e:
        generate(_compilation(text))
    d = next(d for d in e.value.diagnostics if d.code == "E0903")
    assert "priority_queues: 2" in d.hint


def test_two_dualq_configurations_on_one_port():
    text = """
import std.l4s
from std.fwd import Forward
topology t {
  switch s1 : bmv2 { ports: 4 }
  switch s2 : bmv2 { ports: 4 }
  endpoint c { ip: 10.0.1.1 }
  endpoint a { ip: 10.0.2.1 }
  endpoint b { ip: 10.0.2.2 }
  link c -- s1.1 { bandwidth: 1Gbps }
  link s1.0 -- s2.0 { bandwidth: 10Mbps }
  link s2.1 -- a { bandwidth: 1Gbps }
  link s2.2 -- b { bandwidth: 1Gbps }
}
service sa on t { from c chain { std.l4s.DualQ(classic_target: 10ms) -> Forward(to: a) } }
service sb on t { from c chain { std.l4s.DualQ(classic_target: 20ms) -> Forward(to: b) } }
"""
    # Both DualQs on s1, so both manage its port 0 towards s2.
    with pytest.raises(CompileError) as e:
        generate(_compilation(text))
    d = next(d for d in e.value.diagnostics if d.code == "E0904")
    assert "s1.0" in d.message and "sa/0" in d.message and "sb/0" in d.message


def test_function_without_p4_implementation():
    text = """
from std.fwd import Forward
function Scrub(level: int = 1 in 1..3) : filter {
  targets { p4.v1model { tables: 1, stages: 1 } }
  latency { p4.v1model: 1us }
}
topology t {
  switch s1 : bmv2 { ports: 2 }
  endpoint c { ip: 10.0.1.1 }
  endpoint w { ip: 10.0.2.1 }
  link c -- s1.0 { bandwidth: 1Gbps }
  link s1.1 -- w { bandwidth: 1Gbps }
}
service x on t { chain { Scrub() -> Forward(to: w) } }
"""
    with pytest.raises(CompileError) as e:
        compiler.compile(text, emit=["p4"])
    d = next(d for d in e.value.diagnostics if d.code == "E0902")
    assert "Scrub" in d.message and "vnf" in d.hint


# ------------------------------------------------------------------ CLI and output


def _mosaico(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mosaico_dsl.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_cli_compile_writes_self_contained_switch_directories(tmp_path):
    out = tmp_path / "build"
    r = _mosaico("compile", str(ROOT / "examples" / "secure_l4s.mosaico"), "-o", str(out),
                 "--emit", "p4", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    s1 = out / "s1"
    for name in ("s1.p4", "p4info.txtpb", "entries.json", "entries.txt", "run-bmv2.sh",
                 "resources.json", "mosaico/headers.p4", "std/l4s/dualq.p4"):
        assert (s1 / name).is_file(), name
    assert os.stat(s1 / "run-bmv2.sh").st_mode & 0o111
    resources = json.loads((s1 / "resources.json").read_text())
    assert resources["used"]["register_bits"] == 5 * (32 * 5 + 48 * 3)  # DualQ state, 5 ports
    assert resources["used"]["stages"] <= resources["capacity"]["stages"]
    r2 = _mosaico("compile", str(ROOT / "examples" / "secure_l4s.mosaico"), "-o",
                  str(tmp_path / "again"), "--emit", "p4", cwd=tmp_path)
    assert r2.returncode == 0
    for f in s1.rglob("*"):
        if f.is_file():
            assert f.read_bytes() == (tmp_path / "again" / f.relative_to(out)).read_bytes()


def test_cli_reports_capacity_errors_without_traceback(tmp_path):
    src = tmp_path / "small.mosaico"
    src.write_text(SMALL.replace("switch s2 : bmv2 { ports: 4, device_id: 2, thrift_port: 9091 }",
                                 "switch s2 : bmv2 { ports: 4, device_id: 2, thrift_port: 9091,"
                                 " table_entries: 300 }"))
    r = _mosaico("compile", str(src), "-o", str(tmp_path / "b"), cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "error[E0" in r.stderr  # placement (E08) or the P4 backend (E0901) refuses


def test_mirror_target_must_be_reachable():
    text = """
from std.fwd import Forward, Mirror
topology t {
  switch s1 : bmv2 { ports: 2 }
  endpoint c { ip: 10.0.1.1 }
  endpoint w { ip: 10.0.2.1 }
  endpoint island { ip: 10.0.9.9 }
  link c -- s1.0 { bandwidth: 1Gbps }
  link s1.1 -- w { bandwidth: 1Gbps }
}
service x on t { from c chain { Mirror(to: island) -> Forward(to: w) } }
"""
    with pytest.raises(CompileError) as e:
        generate(_compilation(text))
    d = next(d for d in e.value.diagnostics if d.code == "E0907")
    assert "island" in d.message


def test_match_on_a_header_the_parser_does_not_extract():
    text = """
from std.fwd import Forward
header vxlan { vni: int in 0..16777215 }
topology t {
  switch s1 : bmv2 { ports: 2 }
  endpoint c { ip: 10.0.1.1 }
  endpoint w { ip: 10.0.2.1 }
  link c -- s1.0 { bandwidth: 1Gbps }
  link s1.1 -- w { bandwidth: 1Gbps }
}
service x on t { match vxlan.vni == 42 chain { Forward(to: w) } }
"""
    with pytest.raises(CompileError) as e:
        generate(_compilation(text))
    d = next(d for d in e.value.diagnostics if d.code == "E0906")
    assert "vxlan.vni" in d.message and "ipv4.dst" in d.hint


def test_too_many_services_on_one_switch(monkeypatch):
    from mosaico_dsl.backends.p4 import plan as plan_module

    monkeypatch.setattr(plan_module, "MAX_SERVICES", 1)  # 255 in truth: bit<8> service ids
    text = (ROOT / "examples" / "two_services.mosaico").read_text()
    program = compiler.check(text)
    _, diags = plan_switches(program, compiled(ROOT / "examples" / "two_services.mosaico")
                             .placement)
    d = next(d for d in diags if d.code == "E0905")
    assert "2 services cross `s1`" in d.message
