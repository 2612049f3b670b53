"""What the checker computes: resolved, typed, base-unit IR."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

import mosaico_dsl as mo
from mosaico_dsl.ir import AclRule, Cmp, NodeRef, ValueRange, ValueSet, evaluate
from mosaico_dsl.units import Rate, Size, Time

TOPO = """
topology lab {
  switch   s1     : bmv2      { ports: 4 }
  host     h1     : openstack { trusted: true }
  endpoint client             { ip: 10.0.1.1 }
  endpoint bad                { ip: 203.0.113.9 }
  endpoint server             { ip: 10.0.2.1 }
  link client -- s1.1   { bandwidth: 1Gbps, delay: 1ms }
  link bad    -- s1.0   { bandwidth: 1Gbps }
  link s1.2   -- server { bandwidth: 12Mbps, delay: 5ms }
  link s1.3   -- h1     { bandwidth: 10Gbps, delay: 50us }
}
"""


def check(body: str, extra: str = ""):
    text = "import std.l4s\nimport std.security as sec\nfrom std.fwd import Forward\n" + \
        extra + TOPO + body
    return mo.check(text)


def service(chain: str, *statements: str):
    body = "service web on lab {\n" + "\n".join(statements) + f"\nchain {{ {chain} }}\n}}\n"
    return check(body).services[0]


def test_dualq_defaults_are_rfc9332_reference_parameters():
    (q, _) = service("std.l4s.DualQ() -> Forward(to: server)").chain
    a = q.args
    assert a["classic_target"] == Time(15_000_000)
    assert a["rtt_max"] == Time(100_000_000)
    assert a["tupdate"] == Time(15_000_000)  # min(target, RTT_max/3)
    assert a["alpha"] == pytest.approx(0.15)  # 0.1 * Tupdate / RTT_max^2
    assert a["beta"] == pytest.approx(3.0)  # 0.3 / RTT_max
    assert a["coupling"] == 2.0 and a["l4s_mode"] == "ramp" and a["th_len"] == 1
    assert (a["l4s_min_th"], a["l4s_range"]) == (Time(800_000), Time(400_000))
    assert q.queue_target == Time(1_200_000)
    assert q.kind == "queue" and q.function == "std.l4s.DualQ"


def test_defaults_follow_other_arguments():
    (q, _) = service("std.l4s.DualQ(rtt_max: 30ms) -> Forward(to: server)").chain
    assert q.args["tupdate"] == Time(10_000_000)  # RTT_max / 3 < target
    assert q.args["beta"] == pytest.approx(10.0)
    assert q.args["alpha"] == pytest.approx(0.1 * 0.01 / 0.03 ** 2)


def test_cost_models_are_evaluated_for_the_arguments():
    (b, r, s, _) = service("sec.Blocklist(prefixes: [10.0.0.0/8, 192.0.2.0/24]) -> "
                           "sec.RateLimit(rate: 20kpps) -> sec.SynGuard(buckets: 16) -> "
                           "Forward(to: server)").chain
    assert b.option("p4.v1model").cost.entries == 2
    assert b.option("linux").cost.ram == Size(256 * 2**20)
    assert r.args["rate"] == Rate(20_000) and r.args["burst"] == 100
    assert s.option("p4.v1model").cost.register_bits == 16 * 80
    assert [t.target for t in b.targets] == ["p4.v1model", "linux"]
    assert b.option("linux").latency == Time(25_000)


def test_composites_expand_in_place_and_pass_pins_down():
    extra = ("function Shield(p: list<prefix>, r: rate = 5kpps) : filter {\n"
             "  chain { sec.Blocklist(prefixes: p) -> sec.RateLimit(rate: r) }\n}\n")
    svc = check("service web on lab { chain { Shield(p: [10.0.0.0/8]) @ h1 -> "
                "Forward(to: server) } }", extra).services[0]
    b, r, f = svc.chain
    assert [x.id for x in svc.chain] == ["web/0", "web/1", "web/2"]
    assert b.origin == r.origin == ("__main__.Shield",)
    assert b.args["prefixes"] == (IPv4Network("10.0.0.0/8"),)
    assert r.args["rate"] == Rate(5000)
    assert b.pin == r.pin == "h1" and f.pin is None


def test_placement_options_are_recorded():
    (b, f) = service("sec.Blocklist(prefixes: [], place: vnf, prefer: vnf) -> "
                     "Forward(to: server, prefer: p4) @ s1").chain
    assert (b.place, b.prefer, b.pin) == ("vnf", "vnf", None)
    assert (f.place, f.prefer, f.pin) == (None, "p4", "s1")
    assert "place" not in b.args


def test_match_predicates_resolve_fields_and_endpoints():
    svc = service("Forward(to: server)",
                  "match ipv4.dst == server and tcp.dport in {443, 80, 8000..8080} "
                  "and ipv4.ecn == ECT1")
    dst, ports, ecn = svc.match.items
    assert dst == Cmp(dst.field, "==", IPv4Address("10.0.2.1"))
    assert (dst.field.bits, ports.field.bits, ecn.field.bits) == (32, 16, 2)
    assert ports.value == ValueSet((80, 443, ValueRange(8000, 8080)))  # canonical order
    assert ecn.value == 1
    pkt = {"ipv4.dst": IPv4Address("10.0.2.1"), "tcp.dport": 8042, "ipv4.ecn": 1}
    assert evaluate(svc.match, pkt)
    assert not evaluate(svc.match, {**pkt, "tcp.dport": 22})


def test_default_match_and_sources():
    svc = service("Forward(to: server)")
    assert str(svc.match) == "ipv4.dst == 10.0.2.1"
    assert svc.sources == ("client", "bad") and svc.destination == "server"
    assert service("Forward(to: server)", "from client").sources == ("client",)


def test_acl_rules_are_predicates():
    (acl, _) = service('sec.Acl(rules: [deny(ipv4.src in 203.0.113.0/24 and tcp.dport == 22), '
                       'allow(udp.dport == 53)], default: "deny") -> Forward(to: server)').chain
    deny, allow = acl.args["rules"]
    assert isinstance(deny, AclRule) and deny.action == "deny"
    assert evaluate(deny.predicate, {"ipv4.src": IPv4Address("203.0.113.4"), "tcp.dport": 22})
    assert allow.action == "allow" and acl.option("p4.v1model").cost.entries == 2


def test_topology_defaults_are_safe():
    topo = check("").topologies[0]
    assert topo.node("s1").trusted and topo.node("h1").trusted is not False
    assert not topo.node("client").trusted  # endpoints are untrusted unless declared
    assert topo.node("s1").priority_queues == 2 and topo.node("s1").ports == 4
    assert topo.link_between("bad", "s1").delay == Time(0)


def test_units_convert_exactly():
    program = mo.check("const A = 1.5ms\nconst B = 12Mbps\n" + TOPO.replace(
        "delay: 1ms", "delay: 1.5ms"))
    link = program.topologies[0].link_between("client", "s1")
    assert link.delay == Time(1_500_000) and link.bandwidth.bps == 1_000_000_000


def test_node_references_are_typed():
    (_, f) = service('sec.Blocklist(prefixes: []) -> Forward(to: "server")').chain
    assert f.args["to"] == NodeRef("server")
    with pytest.raises(mo.CompileError) as e:
        service("Forward(to: s1)")
    assert "`s1` is a switch, not an endpoint" in str(e.value)


def test_user_modules_are_imported_from_the_program_directory(tmp_path):
    (tmp_path / "shared.mosaico").write_text(
        "const BAD = [203.0.113.0/24]\n"
        "function Shield(p: list<prefix>) : filter { chain { Blocklist(prefixes: p) } }\n"
        "from std.security import Blocklist\n")
    main = tmp_path / "main.mosaico"
    main.write_text("from shared import BAD, Shield\nfrom std.fwd import Forward\n" + TOPO +
                    "service web on lab { chain { Shield(p: BAD) -> Forward(to: server) } }\n")
    svc = mo.check(main).services[0]
    assert svc.chain[0].function == "std.security.Blocklist"
    assert svc.chain[0].origin == ("shared.Shield",)


def test_services_sharing_an_egress_share_the_queue_arguments():
    text = ("service a on lab { chain { std.l4s.DualQ() -> Forward(to: server) } }\n"
            "service b on lab { chain { std.l4s.DualQ(classic_target: 15ms) -> "
            "Forward(to: server) } }\n")
    a, b = check(text).services
    assert a.chain[0].args == b.chain[0].args


def test_a_constant_sees_only_the_names_defined_before_it():
    """Module scopes are views of one namespace (no copy per constant): what a constant
    sees is still exactly what was defined before it."""
    from mosaico_dsl.check.scope import Namespace, Scope, ValueBinding
    from mosaico_dsl.check.types import INT

    ns = Namespace()
    ns.define("A", ValueBinding(INT, 1))
    early = Scope().child(ns.defined())
    ns.define("B", ValueBinding(INT, 2))
    assert early.lookup("A") is not None and early.lookup("B") is None
    assert early.visible() == ["A"] and Scope().child(ns.defined()).visible() == ["A", "B"]
    with pytest.raises(mo.CompileError) as e:
        mo.check("const A = B + 1\nconst B = 2\n")
    assert [d.code for d in e.value.diagnostics] == ["E0203"]
