"""The local target plan (``local.json``): structure, round trip, and its diagnostics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vnf_support import EXAMPLES, PROGRAMS, SOURCES, compiled, source_id

import mosaico_dsl as mo
from mosaico_dsl.backends.vnf import LocalPlan, LocalPlanError, load_plan, plan_local
from mosaico_dsl.backends.vnf.schema import errors
from mosaico_dsl.place import Assignment, Placement, Route, Visit

FLAGSHIP = EXAMPLES / "secure_l4s.mosaico"


def plan_of(source: Path) -> LocalPlan:
    r = compiled(source)
    return plan_local(r.program, r.placement)


@pytest.mark.parametrize("source", SOURCES, ids=source_id)
def test_plan_is_consistent(source: Path) -> None:
    plan = plan_of(source)
    assert errors("local-plan", plan.to_json()) == []
    names = {ns.name for ns in plan.namespaces}
    addresses = [i.address for ns in plan.namespaces for i in ns.interfaces]
    assert len(addresses) == len(set(addresses)), "every interface has its own address"
    for lk in plan.links:
        a = plan.namespace(lk.a_namespace).interface(lk.a_interface)
        b = plan.namespace(lk.b_namespace).interface(lk.b_interface)
        assert (a.peer_namespace, a.peer_interface) == (lk.b_namespace, lk.b_interface)
        assert a.peer_address == b.address.removesuffix("/32")
    for ns in plan.namespaces:
        devices = {i.name for i in ns.interfaces}
        assert all(r.device in devices for r in ns.routes)
        assert all(p.device in devices for p in ns.policy_routes)
        assert all(t.device in devices for t in ns.tc)
        assert all(f in plan.files for f in ns.nftables)
        assert all(i.peer_namespace in names for i in ns.interfaces)
    r = compiled(source)
    topo = r.program.topologies[0]
    for ep in topo.endpoints:  # endpoints keep their own addresses
        assert plan.namespace_of(ep.name).interfaces[0].address == f"{ep.ip}/32"
    placed = {a.instance for a in r.placement.assignments}
    realised = {i for ns in plan.namespaces for i in ns.instances}
    assert realised | {u.instance for u in plan.unrealised} == placed


def test_flagship_switch_is_a_stand_in_and_says_so() -> None:
    plan = plan_of(FLAGSHIP)
    s1 = plan.namespace_of("s1")
    assert s1.role == "switch" and s1.forwarding
    assert "stand-in for the P4 data plane" in plan.switch_dataplane
    assert dict(s1.bmv2_ports) == {0: "p0", 1: "p1", 2: "p2", 3: "p3", 4: "p4"}
    assert s1.instances == ("web_ll/0", "web_ll/1", "web_ll/2", "web_ll/3")
    assert [(t.name, t.device) for t in s1.tc] == [("web_ll-2-dualq", "p0")]
    meanings = {(c.instance, c.meaning) for c in s1.counters}
    assert {("web_ll/0", "dropped"), ("web_ll/1", "dropped")} <= meanings
    assert s1.interface("p0").rate_bps == 12_000_000


def test_detours_are_policy_routed() -> None:
    plan = plan_of(PROGRAMS / "vnf_chain.mosaico")
    s1, host = plan.namespace_of("s1"), plan.namespace_of("nfvi1")
    assert [(p.device, p.table) for p in s1.policy_routes] == [("p4", 101)]
    assert [p.device for p in host.policy_routes] == ["v0", "v1"]
    vnfs = [ns for ns in plan.namespaces if ns.role == "vnf"]
    assert [ns.nftables for ns in vnfs] == [("nfvi1/web_ll-0-blocklist.nft",),
                                             ("nfvi1/web_ll-1-ratelimit.nft",)]
    text = plan.files["local/s1.nft"]
    assert 'iifname "p1"' in text and "meta mark set 0x00000001 accept" in text


def test_plan_round_trips_through_local_json(tmp_path: Path) -> None:
    r = mo.compile(PROGRAMS / "vnf_chain.mosaico", emit=["vnf"])
    out = r.write(tmp_path / "build")
    plan = load_plan(out)
    assert plan == plan_of(PROGRAMS / "vnf_chain.mosaico")
    assert plan.files == plan_of(PROGRAMS / "vnf_chain.mosaico").files
    (out / "nfvi1" / "web_ll-0-blocklist.nft").write_text("table ip x {}\n")
    with pytest.raises(ValueError, match="does not match local.json"):
        load_plan(out)
    doc = json.loads((out / "local.json").read_text())
    doc["version"] = 99
    with pytest.raises(ValueError, match="version 1"):
        LocalPlan.from_json(doc, {})


def _unsteerable():
    """vnf_chain with a placement (built by hand, as any placer may) that enters s1 twice
    from nfvi1 and must then run different functions there."""
    r = compiled(PROGRAMS / "vnf_chain.mosaico")
    ids = [fi.id for fi in r.program.services[0].chain]
    assignments = (Assignment(ids[0], "nfvi1", "linux"), Assignment(ids[1], "s1", "p4.v1model"),
                   Assignment(ids[2], "nfvi1", "linux"), Assignment(ids[3], "s1", "p4.v1model"))
    visits = (Visit("l4s_client"), Visit("s1"), Visit("nfvi1", (ids[0],)),
              Visit("s1", (ids[1],)), Visit("nfvi1", (ids[2],)), Visit("s1", (ids[3],)),
              Visit("server"))
    return r, Placement(assignments, (Route("web_ll", "l4s_client", visits),))


def test_a_route_the_local_target_cannot_steer_is_E1001() -> None:
    """A placement (built by hand, as any placer may) that enters s1 twice from nfvi1 and
    must then run different functions: the stand-in tells visits apart by interface."""
    r, placement = _unsteerable()
    with pytest.raises(LocalPlanError) as e:
        plan_local(r.program, placement)
    assert {d.code for d in e.value.diagnostics} == {"E1001"}
    messages = [d.message for d in e.value.diagnostics]
    assert any("enters s1 twice by p4 with different functions" in m for m in messages)
    assert any("enters nfvi1 by e0 twice and must leave towards different" in m
               for m in messages)
    assert len(messages) == 2  # one per node and interface, not one per symptom


CUSTOM = """
from std.fwd import Forward
function Scrubber(level: int = 1 in 1..3) : filter {
  targets { linux { vcpu: 2, ram: 1GiB } }
  latency { linux: 50us }
}
topology t {
  switch s : bmv2 { ports: 3 }
  host h : openstack { vcpus: 8, ram: 8GiB, trusted: true }
  endpoint a { ip: 10.0.0.1 }
  endpoint b { ip: 10.0.0.2 }
  link a -- s.1 { bandwidth: 1Gbps, delay: 1ms }
  link s.2 -- h { bandwidth: 1Gbps, delay: 1ms }
  link s.0 -- b { bandwidth: 1Gbps, delay: 1ms }
}
service x on t {
  match ipv4.dst == b
  from a
  chain { Scrubber(level: 2) @ h -> Forward(to: b) }
}
"""


def test_a_function_without_linux_implementation_is_E1002() -> None:
    with pytest.raises(mo.CompileError) as e:
        mo.compile(CUSTOM, emit=["vnf"])
    (d,) = e.value.diagnostics
    assert d.code == "E1002" and "Scrubber" in d.message and d.span is not None
    assert "has no Linux" in str(e.value)


def test_compiling_such_a_placement_leaves_out_only_the_local_target() -> None:
    """The other targets realise what the local stand-in cannot: the VNF backend makes
    every artifact but local.json and says why (W1001, the E1001s as notes)."""
    from mosaico_dsl.backends.vnf import backend
    from mosaico_dsl.compiler import Compilation

    r, placement = _unsteerable()
    out = backend.generate(Compilation(r.program, placement, "vnf_chain.mosaico", None))
    (w,) = out.warnings
    assert w.code == "W1001" and "2 route conflicts" in w.message
    assert all(n.message.startswith("E1001: route of `web_ll`") for n in w.notes)
    assert "local.json" not in out and any(p.endswith("stack.yaml") for p in out)
