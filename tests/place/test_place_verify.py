"""The verifier catches every way a placement can be wrong.

A hand-written correct placement of a program that exercises every rule passes; each test
breaks it in one way and checks the verifier names that rule. Finally, `place()` and the
compiler refuse a placement the verifier rejects.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from place_helpers import check

import mosaico_dsl as mo
from mosaico_dsl.place import Assignment, Check, Placement, PlacementError, Route, Visit, verify
from mosaico_dsl.units import Time

PROGRAM = """
topology lab {
  switch s1 : bmv2 { ports: 8, stages: 8 }
  switch s2 : bmv2 { ports: 8, priority_queues: 2, stages: 8 }
  switch s3 : bmv2 { ports: 8, priority_queues: 1, trusted: false }
  host h1 : linux { vcpus: 2, trusted: true }
  host h2 : linux { vcpus: 2, trusted: false }
  endpoint client { ip: 10.0.1.1, trusted: true }
  endpoint attacker { ip: 203.0.113.9 }
  endpoint server { ip: 10.0.2.1 }
  link client -- s1.1 { bandwidth: 1Gbps, delay: 1ms }
  link attacker -- s1.2 { bandwidth: 1Gbps, delay: 1ms }
  link s1.3 -- h1 { bandwidth: 10Gbps, delay: 100us }
  link s1.4 -- h2 { bandwidth: 10Mbps, delay: 100us }
  link s1.5 -- s3.0 { bandwidth: 10Gbps, delay: 100us }
  link s1.0 -- s2.0 { bandwidth: 10Gbps, delay: 500us }
  link s3.1 -- s2.2 { bandwidth: 10Gbps, delay: 100us }
  link s2.1 -- server { bandwidth: 1Gbps, delay: 2ms }
}
service web on lab {
  require latency <= 10ms
  require secure
  require bandwidth >= 100Mbps
  chain {
    sec.Blocklist(prefixes: [203.0.113.0/24])
    -> sec.RateLimit(rate: 1kpps, place: vnf)
    -> std.l4s.DualQ()
    -> Forward(to: server)
  }
}
service video on lab {
  from client
  chain { std.l4s.DualQ() -> Forward(to: server) @ s2 }
}
"""

GOOD_NODES = {"web/0": ("s1", "p4.v1model"), "web/1": ("h1", "linux"),
              "web/2": ("s2", "p4.v1model"), "web/3": ("s2", "p4.v1model"),
              "video/0": ("s2", "p4.v1model"), "video/1": ("s2", "p4.v1model")}


def web_route(src: str) -> list:
    return [(src, ()), ("s1", ("web/0",)), ("h1", ("web/1",)), ("s1", ()),
            ("s2", ("web/2", "web/3")), ("server", ())]


GOOD_ROUTES = {("web", "client"): web_route("client"),
               ("web", "attacker"): web_route("attacker"),
               ("video", "client"): [("client", ()), ("s1", ()),
                                     ("s2", ("video/0", "video/1")), ("server", ())]}


@pytest.fixture(scope="module")
def program():
    return check(PROGRAM)


def make(nodes=None, routes=None, **latency) -> Placement:
    nodes = dict(GOOD_NODES if nodes is None else nodes)
    routes = dict(GOOD_ROUTES if routes is None else routes)
    return Placement(
        tuple(Assignment(i, n, t) for i, (n, t) in nodes.items()),
        tuple(Route(svc, src, tuple(Visit(n, tuple(ids)) for n, ids in visits),
                    latency.get(f"{svc}_{src}"))
              for (svc, src), visits in routes.items()))


def checks(program, placement) -> set[Check]:
    return {v.check for v in verify(program, placement)}


def test_the_correct_placement_passes(program):
    assert verify(program, make()) == ()
    # ... and it is what the optimiser finds, up to the latency tie-break.
    from mosaico_dsl.place import place

    found = place(program)
    assert verify(program, found) == ()
    assert {a.instance: (a.node, a.target) for a in found.assignments} == GOOD_NODES


def test_missing_duplicate_and_impossible_assignments(program):
    nodes = dict(GOOD_NODES)
    del nodes["web/3"]
    assert Check.ASSIGNMENT in checks(program, make(nodes))
    p = make()
    doubled = Placement((*p.assignments, Assignment("web/0", "s1", "p4.v1model")), p.routes)
    assert Check.ASSIGNMENT in checks(program, doubled)
    wrong_kind = {**GOOD_NODES, "web/0": ("s1", "linux")}
    assert Check.ASSIGNMENT in checks(program, make(wrong_kind))
    nowhere = {**GOOD_NODES, "web/0": ("s7", "p4.v1model")}
    assert Check.ASSIGNMENT in checks(program, make(nowhere))
    lying = make()
    a = lying.assignments[0]
    lying = Placement((Assignment(a.instance, a.node, a.target, Time(1)),
                       *lying.assignments[1:]), lying.routes)
    assert Check.ASSIGNMENT in checks(program, lying)


def test_pin_broken(program):
    nodes = {**GOOD_NODES, "video/1": ("s1", "p4.v1model")}
    routes = {**GOOD_ROUTES, ("video", "client"): [("client", ()), ("s1", ("video/1",)),
                                                  ("s2", ("video/0",)), ("server", ())]}
    assert Check.PIN in checks(program, make(nodes, routes))


def test_place_broken(program):
    nodes = {**GOOD_NODES, "web/1": ("s1", "p4.v1model")}
    routes = {**GOOD_ROUTES, **{("web", s): [(s, ()), ("s1", ("web/0", "web/1")),
                                            ("s2", ("web/2", "web/3")), ("server", ())]
                                for s in ("client", "attacker")}}
    assert checks(program, make(nodes, routes)) == {Check.PLACE}


def test_route_that_teleports(program):
    routes = {**GOOD_ROUTES, ("video", "client"): [("client", ()),
                                                  ("s2", ("video/0", "video/1")),
                                                  ("server", ())]}
    violations = verify(program, make(routes=routes))
    assert [v.check for v in violations] == [Check.ROUTE]
    assert "`client` → `s2` is not a link" in violations[0].message


def test_route_that_skips_a_function_or_runs_it_elsewhere(program):
    skip = {**GOOD_ROUTES, ("web", "client"): [("client", ()), ("s1", ("web/0",)),
                                              ("s2", ("web/2", "web/3")), ("server", ())]}
    assert Check.ROUTE in checks(program, make(routes=skip))
    elsewhere = {**GOOD_ROUTES, ("web", "client"): [
        ("client", ()), ("s1", ("web/0",)), ("h1", ()), ("s1", ("web/1",)),
        ("s2", ("web/2", "web/3")), ("server", ())]}
    assert Check.ROUTE in checks(program, make(routes=elsewhere))
    missing = dict(GOOD_ROUTES)
    del missing[("web", "attacker")]
    found = checks(program, make(routes=missing))
    assert Check.ROUTE in found and Check.SECURE in found  # the attacker is untrusted


def test_route_through_a_host_or_to_the_wrong_place(program):
    via_host = {**GOOD_ROUTES, ("video", "client"): [
        ("client", ()), ("s1", ()), ("h1", ()), ("s1", ()), ("s2", ("video/0", "video/1")),
        ("server", ())]}
    assert Check.ROUTE in checks(program, make(routes=via_host))
    wrong_end = {**GOOD_ROUTES, ("video", "client"): [("client", ()), ("s1", ()),
                                                     ("s2", ("video/0", "video/1"))]}
    assert Check.ROUTE in checks(program, make(routes=wrong_end))


def test_chain_out_of_order(program):
    nodes = {**GOOD_NODES, "web/0": ("s2", "p4.v1model")}
    routes = {**GOOD_ROUTES, **{("web", s): [(s, ()), ("s1", ()), ("h1", ("web/1",)),
                                            ("s1", ()), ("s2", ("web/0", "web/2", "web/3")),
                                            ("server", ())] for s in ("client", "attacker")}}
    assert checks(program, make(nodes, routes)) == {Check.ORDER}


def test_capacity_summed_over_services(program):
    """h1 has 2 vCPUs: web's RateLimit and Blocklist and video's DualQ would take 3."""
    nodes = {**GOOD_NODES, "web/0": ("h1", "linux"), "video/0": ("h1", "linux"),
             "video/1": ("h1", "linux")}
    routes = {**GOOD_ROUTES,
              **{("web", s): [(s, ()), ("s1", ()), ("h1", ("web/0", "web/1")), ("s1", ()),
                              ("s2", ("web/2", "web/3")), ("server", ())]
                 for s in ("client", "attacker")}}
    violations = verify(program, make(nodes, routes))
    assert Check.CAPACITY in {v.check for v in violations}
    assert any("`h1` offers 2 vCPUs but its functions take" in v.message for v in violations)


def test_priority_queues(program):
    """s3 has one priority queue; a DualQ there is wrong (and s3 is not the last hop)."""
    nodes = {**GOOD_NODES, "video/0": ("s3", "p4.v1model"), "video/1": ("s3", "p4.v1model"),
             "web/2": ("s3", "p4.v1model"), "web/3": ("s3", "p4.v1model")}
    routes = {("web", s): [(s, ()), ("s1", ("web/0",)), ("h1", ("web/1",)), ("s1", ()),
                           ("s3", ("web/2", "web/3")), ("s2", ()), ("server", ())]
              for s in ("client", "attacker")}
    routes[("video", "client")] = [("client", ()), ("s1", ()), ("s3", ("video/0", "video/1")),
                                   ("s2", ()), ("server", ())]
    found = checks(program, make(nodes, routes))
    assert {Check.PRIORITY_QUEUES, Check.QUEUE, Check.PIN} <= found


def test_latency_over_budget_and_a_false_latency_claim(program):
    far = {**GOOD_ROUTES, ("web", "client"): [
        ("client", ()), ("s1", ("web/0",)), ("h1", ("web/1",)), ("s1", ()), ("s3", ()),
        ("s1", ()), ("s3", ()), ("s1", ()), ("s2", ("web/2", "web/3")), ("server", ())]}
    assert Check.LATENCY not in checks(program, make(routes=far))  # 0.4 ms more: fits
    claimed = make(web_client=Time(1))
    violations = verify(program, claimed)
    assert [v.check for v in violations] == [Check.LATENCY]
    assert "claims 1ns but adds up to" in violations[0].message


def test_latency_budget_exceeded():
    """The hand-made routes take s1 → s2 (500 µs) rather than the faster s1 → s3 → s2
    (200 µs) and detour to h1: 4.934 ms, over a 4.5 ms budget the fast path would meet."""
    program = check(PROGRAM.replace("require latency <= 10ms", "require latency <= 4.5ms"))
    violations = verify(program, make())
    assert {v.check for v in violations} == {Check.LATENCY}
    assert "latency 4.934ms exceeds the 4.5ms budget" in violations[0].message


def test_mitigation_on_an_untrusted_node(program):
    nodes = {**GOOD_NODES, "web/0": ("s3", "p4.v1model")}
    routes = {**GOOD_ROUTES, **{("web", s): [(s, ()), ("s1", ()), ("s3", ("web/0",)),
                                            ("s1", ()), ("h1", ("web/1",)), ("s1", ()),
                                            ("s2", ("web/2", "web/3")), ("server", ())]
                                for s in ("client", "attacker")}}
    assert checks(program, make(nodes, routes)) == {Check.SECURE}


def test_queue_not_last(program):
    """Forward after the DualQ on another visit: the queue would not be the egress."""
    nodes = {**GOOD_NODES, "web/2": ("h1", "linux"), "video/0": ("h1", "linux")}
    routes = {**GOOD_ROUTES, **{("web", s): [(s, ()), ("s1", ("web/0",)),
                                            ("h1", ("web/1", "web/2")), ("s1", ()),
                                            ("s2", ("web/3",)), ("server", ())]
                                for s in ("client", "attacker")}}
    routes[("video", "client")] = [("client", ()), ("s1", ()), ("h1", ("video/0",)),
                                   ("s1", ()), ("s2", ("video/1",)), ("server", ())]
    assert Check.QUEUE in checks(program, make(nodes, routes))


def test_shared_egress_split(program):
    nodes = {**GOOD_NODES, "video/0": ("h1", "linux"), "video/1": ("h1", "linux")}
    routes = {**GOOD_ROUTES, ("video", "client"): [("client", ()), ("s1", ()),
                                                  ("h1", ("video/0", "video/1")), ("s1", ()),
                                                  ("s2", ()), ("server", ())]}
    assert {Check.EGRESS, Check.PIN} <= checks(program, make(nodes, routes))


def test_bandwidth(program):
    """h2 hangs off a 10 Mb/s link; web needs 100 Mb/s (and h2 is untrusted)."""
    nodes = {**GOOD_NODES, "web/1": ("h2", "linux")}
    routes = {**GOOD_ROUTES, **{("web", s): [(s, ()), ("s1", ("web/0",)), ("h2", ("web/1",)),
                                            ("s1", ()), ("s2", ("web/2", "web/3")),
                                            ("server", ())] for s in ("client", "attacker")}}
    assert checks(program, make(nodes, routes)) == {Check.BANDWIDTH, Check.SECURE}


def test_place_and_compile_refuse_a_placement_that_fails_verification(
        monkeypatch, tmp_path: Path, flagship_path: Path):
    import mosaico_dsl.place as P
    import mosaico_dsl.place._cpsat as solver

    broken = make()  # a placement of another program entirely
    monkeypatch.setattr(solver, "solve", lambda program, options: broken)
    program = mo.check(flagship_path)
    with pytest.raises(PlacementError) as info:
        P.place(program)
    assert info.value.diagnostics and \
        {d.code for d in info.value.diagnostics} == {"E0812"}
    with pytest.raises(mo.CompileError):
        mo.compile(flagship_path).write(tmp_path / "out")
    assert not (tmp_path / "out").exists()
