"""The embedded Python API builds the parser's AST and points errors at the user's code."""

from __future__ import annotations

import inspect
import sys
from decimal import Decimal
from ipaddress import IPv4Address

import pytest

import mosaico_dsl as mo
from mosaico_dsl.lang import _ast as A
from mosaico_dsl.lang.parser import parse
from mosaico_dsl.std import fwd, l4s
from mosaico_dsl.std import security as sec

HERE = __file__


def _line() -> int:
    return sys._getframe(1).f_lineno


def small_topology():
    t = mo.Topology("lab")
    s1 = t.switch("s1", ports=4)
    client = t.endpoint("client", ip="10.0.1.1", trusted=True)
    server = t.endpoint("server", ip="10.0.2.1")
    t.link(client, s1.port(1), bandwidth="1Gbps", delay="1ms")
    t.link(s1[2], server, bandwidth="12Mbps", delay="5ms")
    return t, s1, client, server


def test_values_become_the_literals_the_parser_builds():
    assert mo.lit("15ms") == A.QuantityLit(Decimal(15), "ms")
    assert mo.lit("10%") == A.QuantityLit(Decimal(10), "%")
    assert mo.lit("10.0.0.1") == A.IPv4Lit(IPv4Address("10.0.0.1"))
    assert mo.lit("10.0.0.0/8") == A.PrefixLit(IPv4Address("10.0.0.0"), 8)
    assert mo.lit("AA:BB:CC:DD:EE:FF") == A.MacLit("aa:bb:cc:dd:ee:ff")
    assert mo.lit("ramp") == A.StringLit("ramp")
    assert mo.lit(-5) == A.UnaryOp("-", A.IntLit(5))
    assert mo.lit(0.15) == A.FloatLit(Decimal("0.15"))
    assert mo.lit(range(1024, 65536)) == A.RangeExpr(A.IntLit(1024), A.IntLit(65535))
    assert mo.lit({443, 80}) == A.SetLit((A.IntLit(80), A.IntLit(443)))
    assert mo.lit(mo.Time(1_500_000)) == A.QuantityLit(Decimal("1.5"), "ms")
    from mosaico_dsl.api import ms
    assert ms(20) == mo.lit("20ms")


def test_api_program_prints_as_text_that_parses_back_to_its_ast():
    t, s1, client, server = small_topology()
    web = mo.Service("web", on=t, match=(mo.f.ipv4.dst == server) & ~(mo.f.tcp.dport < 1024),
                     latency="20ms", bandwidth="1Mbps", secure=True, sources=[client],
                     chain=sec.Blocklist(prefixes=["203.0.113.0/24"], place="p4")
                     >> l4s.DualQ(coupling=1.5).at(s1) >> fwd.Forward(to=server))
    program = mo.Program(t, web)
    text = program.to_source()
    assert "from std.security import Blocklist" in text
    assert "match ipv4.dst == server and not tcp.dport < 1024" in text
    assert "DualQ(coupling: 1.5) @ s1" in text
    assert parse(text).module == program.ast
    ir = mo.check(program)
    assert ir == mo.check(text)
    assert ir.services[0].chain[0].place == "p4"


def test_every_node_records_the_users_call_site():
    t = mo.Topology("lab"); line = _line()  # noqa: E702
    assert (t.ast.span.file, t.ast.span.line) == (HERE, line)
    s1 = t.switch("s1"); line = _line()  # noqa: E702
    node = t.ast.nodes[0]
    assert (node.span.file, node.span.line, node.span.col) == (HERE, line, 10)
    del s1


def test_errors_point_at_the_python_line_that_caused_them():
    t, s1, client, server = small_topology()
    step = sec.RateLimit(rat="1kpps"); line = _line()  # noqa: E702
    program = mo.Program(t, mo.Service("web", on=t, chain=step >> fwd.Forward(to=server)))
    with pytest.raises(mo.CompileError) as info:
        mo.check(program)
    codes = {d.code: d for d in info.value.diagnostics}
    assert set(codes) == {"E0401", "E0402"}
    d = codes["E0401"]
    assert (d.span.file, d.span.line) == (HERE, line)
    text = str(info.value)
    assert f"--> {HERE}:{line}:" in text
    assert 'step = sec.RateLimit(rat="1kpps")' in text  # the user's own source line
    assert "mosaico_dsl" not in d.span.file


def test_immediate_misuse_is_a_diagnostic_at_the_call_site():
    line = _line() + 2
    with pytest.raises(mo.CompileError) as info:
        mo.f.ipv4.dts  # noqa: B018
    (d,) = info.value.diagnostics
    assert d.code == "E0209" and (d.span.file, d.span.line) == (HERE, line)
    assert "its fields are src, dst" in d.hint
    with pytest.raises(mo.CompileError):
        mo.lit(object())
    with pytest.raises(TypeError, match="use & | ~"):
        bool(mo.f.tcp.dport == 80)


def test_composites_and_constants():
    t, s1, client, server = small_topology()
    bad = mo.Const("BAD", ["203.0.113.0/24"])
    p = mo.Param("prefixes", "list<prefix>")
    r = mo.Param("rate", "rate", default="5kpps")
    shield = mo.Composite("Shield", [p, r], sec.Blocklist(prefixes=p) >> sec.RateLimit(rate=r))
    web = mo.Service("web", on=t, chain=shield(prefixes=bad) >> fwd.Forward(to=server))
    program = mo.Program(bad, t, web)
    text = program.to_source()
    assert "const BAD = [203.0.113.0/24]" in text
    assert "function Shield(prefixes: list<prefix>, rate: rate = 5kpps) {" in text
    assert parse(text).module == program.ast
    chain = mo.check(program).services[0].chain
    assert [f.name for f in chain] == ["Blocklist", "RateLimit", "Forward"]
    assert chain[0].origin == ("__main__.Shield",)


def test_stdlib_functions_have_signatures_docs_and_completion():
    sig = inspect.signature(l4s.DualQ)
    assert list(sig.parameters)[:3] == ["classic_target", "rtt_max", "tupdate"]
    assert sig.parameters["classic_target"].default == "15ms"
    assert "rate" in inspect.signature(sec.RateLimit).parameters
    assert "token bucket" in sec.RateLimit.__doc__
    assert {"Blocklist", "Allowlist", "RateLimit", "SynGuard", "Acl"} <= set(dir(sec))
    assert {"ipv4", "tcp", "udp"} <= set(dir(mo.f))
    assert {"src", "dst", "ecn"} <= set(dir(mo.f.ipv4))
    with pytest.raises(AttributeError, match="modules: fwd, l4s, net, security"):
        from mosaico_dsl import std
        std.nosuch  # noqa: B018


def test_flagship_python_example_equals_the_text_example(flagship_path):
    sys.path.insert(0, str(flagship_path.parent))
    try:
        import secure_l4s
    finally:
        sys.path.pop(0)
    assert mo.check(secure_l4s.program) == mo.check(flagship_path)


def test_results_print_as_one_line_summaries(flagship_path):
    """At a prompt, `mo.compile(...)` must not print pages of nested dataclasses."""
    result = mo.compile(flagship_path)
    assert repr(result.program) == "<Program: 1 service (web_ll) on lab (6 nodes, 5 links)>"
    assert repr(result.program.topologies[0]) == "<Topology lab: 6 nodes, 5 links>"
    assert repr(result.placement) == \
        "<Placement: 4 functions on 1 node, 3 routes, cp-sat optimal>"
    assert repr(result) == f"<CompileResult: {len(result.artifacts)} artifacts, 0 warnings; " \
        f"{result.placement!r}>"


HOSTILE_NAMES = ["web|*) touch pwned;; web", "a/b", "x\ny", "$(touch pwned)", "9lives", "",
                 "true", "not", "naïve", "a b", 'q"uote']


@pytest.mark.parametrize("bad", HOSTILE_NAMES)
def test_every_name_given_to_the_api_must_be_a_mosaico_name(bad):
    t, s1, client, server = small_topology()
    makers = [
        lambda: mo.Topology(bad),
        lambda: t.switch(bad),
        lambda: t.host(bad),
        lambda: t.endpoint(bad, ip="10.0.3.1"),
        lambda: t.switch("s9", target=bad),
        lambda: t.endpoint("e9", **{bad: 1}),
        lambda: mo.Service(bad, on=t, chain=fwd.Forward(to=server)),
        lambda: mo.Service("web", on=t, chain=fwd.Forward(to=server), sources=[bad]),
        lambda: mo.Composite(bad, [], fwd.Forward(to=server)),
        lambda: mo.Param(bad, "rate"),
        lambda: mo.Const(bad, 1),
        lambda: fwd.Forward(to=server).at(bad),
        lambda: fwd.Forward(**{bad: server}),
        lambda: mo.Program(t, mo.Service("web", on=t, chain=sec.Blocklist(
            prefixes=[], place=bad) >> fwd.Forward(to=server))).ast,
    ]
    for make in makers:
        line = _line() + 2
        with pytest.raises(mo.CompileError) as e:
            make()
        (d,) = e.value.diagnostics
        assert d.code == "E0106", (make, d)
        assert "name" in d.message and d.hint and d.span.file == HERE, d
        assert d.span.line in range(line - 20, line + 1)  # this test's lines, not mosaico's


def test_compile_of_api_names_never_raises_anything_but_compile_error():
    # What used to slip through: names with `$(`, `/` or a newline raised RuntimeError
    # from the P4 generator; now the API refuses them where they are written.
    t, s1, client, server = small_topology()
    for bad in ("$(touch pwned)", "a/b", "line\nbreak"):
        with pytest.raises(mo.CompileError):
            mo.compile(mo.Program(t, mo.Service(bad, on=t, chain=fwd.Forward(to=server))))


def test_param_types_are_one_type():
    for bad in ("int) { } service x on y {", "int, y: int", "rate = 5kpps", "list<\n>"):
        with pytest.raises(mo.CompileError) as e:
            _ = mo.Param("x", bad).ast
        assert e.value.diagnostics[0].code == "E0303"
    assert mo.Param("x", "list<prefix>").ast.type.name == "list"


def test_acl_rules_are_written_with_allow_and_deny():
    t, s1, client, server = small_topology()
    rules = [mo.deny((mo.f.ipv4.src == "203.0.113.0/24") & (mo.f.tcp.dport == 22)),
             mo.allow(mo.f.tcp.dport.isin({80, 443}))]
    web = mo.Service("web", on=t, chain=sec.Acl(rules=rules, default="deny")
                     >> fwd.Forward(to=server))
    program = mo.Program(t, web)
    text = program.to_source()
    assert ("Acl(rules: [deny(ipv4.src == 203.0.113.0/24 and tcp.dport == 22), "
            "allow(tcp.dport in {80, 443})], default: \"deny\")") in text
    assert parse(text).module.items[1:] == program.ast.items[1:]  # round trip (spans aside)
    acl = mo.check(program).services[0].chain[0]
    assert [r.action for r in acl.args["rules"]] == ["deny", "allow"]
    assert str(acl.args["rules"][0].predicate) == "ipv4.src == 203.0.113.0/24 and tcp.dport == 22"
    assert repr(rules[1]) == "<mosaico rule allow(tcp.dport in {80, 443})>"
    with pytest.raises(mo.CompileError) as e:
        mo.allow("tcp.dport == 22")
    assert e.value.diagnostics[0].code == "E0301"


def test_ipv6_strings_say_ipv6_is_not_supported_yet():
    t = mo.Topology("lab")
    with pytest.raises(mo.CompileError) as e:
        t.endpoint("server", ip="2001:db8::1")
    (d,) = e.value.diagnostics
    assert d.code == "E0107" and d.message == "IPv6 is not supported yet: '2001:db8::1'"
    assert d.span.file == HERE


def test_an_empty_program_is_nothing_to_compile():
    line = _line() + 2
    with pytest.raises(mo.CompileError) as e:
        mo.compile(mo.Program())
    (d,) = e.value.diagnostics
    assert d.code == "E0711" and d.message == "nothing to compile: the program declares no " \
                                              "topology"
    assert d.span.file == HERE and d.span.line == line
