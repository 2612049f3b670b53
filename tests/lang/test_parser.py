"""The parser: every construct of the language, positions, and syntax errors."""

from __future__ import annotations

import os
from decimal import Decimal
from ipaddress import IPv4Address

import pytest

from mosaico_dsl.diagnostics import render_text
from mosaico_dsl.lang import _ast as A
from mosaico_dsl.lang.parser import MAX_NESTING, parse


def ok(text: str) -> A.Module:
    result = parse(text, "t.mosaico")
    assert result.ok, render_text(result.diagnostics, {"t.mosaico": text})
    return result.module


def expr(text: str) -> A.Expr:
    module = ok(f"const X = {text}")
    return module.items[0].value


def errors(text: str):
    result = parse(text, "t.mosaico")
    assert result.module is None
    return result.diagnostics


# --------------------------------------------------------------------------- imports, consts


def test_import_forms():
    m = ok("import std.l4s\nimport std.security as sec\nfrom std.fwd import Forward, Mirror as M,")
    imp, alias, frm = m.items
    assert imp == A.Import(("std", "l4s"))
    assert alias == A.Import(("std", "security"), "sec")
    assert frm == A.FromImport(("std", "fwd"), (A.ImportName("Forward"),
                                                 A.ImportName("Mirror", "M")))


def test_const_with_and_without_type():
    a, b = ok("const A = 1; const B: list<prefix> = []").items
    assert a == A.Const("A", None, A.IntLit(1))
    assert b == A.Const("B", A.TypeRef("list", (A.TypeRef("prefix"),)), A.ListLit(()))


# --------------------------------------------------------------------------- literals


@pytest.mark.parametrize("text, magnitude, unit", [
    ("800us", "800", "us"), ("15ms", "15", "ms"), ("1.5s", "1.5", "s"), ("7ns", "7", "ns"),
    ("12Mbps", "12", "Mbps"), ("1Gbps", "1", "Gbps"), ("100Kbps", "100", "Kbps"),
    ("20kpps", "20", "kpps"), ("3Mpps", "3", "Mpps"), ("64KiB", "64", "KiB"),
    ("32GiB", "32", "GiB"), ("1500B", "1500", "B"), ("10%", "10", "%"), ("2.5%", "2.5", "%"),
])
def test_quantities_keep_magnitude_and_unit(text, magnitude, unit):
    assert expr(text) == A.QuantityLit(Decimal(magnitude), unit)


def test_scalar_literals():
    assert expr("42") == A.IntLit(42)
    hex_lit = expr("0x1F")
    assert hex_lit == A.IntLit(31) and hex_lit.hex
    assert expr("0.15") == A.FloatLit(Decimal("0.15"))
    assert expr("1e-3") == A.FloatLit(Decimal("1e-3"))
    assert expr("true") == A.BoolLit(True) and expr("false") == A.BoolLit(False)
    assert expr('"a \\"b\\" \\\\ \\n\\t"') == A.StringLit('a "b" \\ \n\t')


def test_network_literals():
    assert expr("10.0.2.1") == A.IPv4Lit(IPv4Address("10.0.2.1"))
    assert expr("203.0.113.0/24") == A.PrefixLit(IPv4Address("203.0.113.0"), 24)
    assert expr("AA:bb:01:02:03:04") == A.MacLit("aa:bb:01:02:03:04")


def test_collections_ranges_and_port_sets():
    assert expr("[1, 2,]") == A.ListLit((A.IntLit(1), A.IntLit(2)))
    assert expr("{}") == A.SetLit(())
    assert expr("1024..65535") == A.RangeExpr(A.IntLit(1024), A.IntLit(65535))
    s = expr("{80, 443, 8000..8080}")
    assert s == A.SetLit((A.IntLit(80), A.IntLit(443),
                          A.RangeExpr(A.IntLit(8000), A.IntLit(8080))))
    assert expr("1ms..1s") == A.RangeExpr(A.QuantityLit(Decimal(1), "ms"),
                                          A.QuantityLit(Decimal(1), "s"))


# --------------------------------------------------------------------------- expressions


def test_precedence_and_associativity():
    e = expr("a or b and not c == 1")
    assert e == A.BoolOp("or", (A.Name("a"), A.BoolOp("and", (
        A.Name("b"), A.Not(A.Compare("==", A.Name("c"), A.IntLit(1)))))))
    assert expr("1 - 2 - 3") == A.BinOp("-", A.BinOp("-", A.IntLit(1), A.IntLit(2)), A.IntLit(3))
    assert expr("1 + 2 * 3") == A.BinOp("+", A.IntLit(1), A.BinOp("*", A.IntLit(2), A.IntLit(3)))
    assert expr("(1 + 2) * 3") == A.BinOp("*", A.BinOp("+", A.IntLit(1), A.IntLit(2)),
                                          A.IntLit(3))
    assert expr("-x") == A.UnaryOp("-", A.Name("x"))


def test_and_or_chains_are_flat():
    assert expr("a and b and c") == A.BoolOp("and", (A.Name("a"), A.Name("b"), A.Name("c")))
    assert expr("(a or b) or c") == A.BoolOp("or", (A.Name("a"), A.Name("b"), A.Name("c")))


def test_field_comparisons_in_and_calls():
    assert expr("tcp.dport in {80}") == A.Compare(
        "in", A.Attribute(A.Name("tcp"), "dport"), A.SetLit((A.IntLit(80),)))
    for op in ("==", "!=", "<", "<=", ">", ">="):
        assert expr(f"ipv4.ttl {op} 3").op == op
    assert expr("len(x)") == A.Call(A.Name("len"), (A.Name("x"),))
    assert expr("a.b.c") == A.Attribute(A.Attribute(A.Name("a"), "b"), "c")


def test_comparisons_do_not_chain():
    (d,) = errors("const X = 1 < 2 < 3")
    assert d.code == "E0101" and d.span.col == 17


# --------------------------------------------------------------------------- topology


def test_topology_nodes_links_and_attributes():
    m = ok("""topology lab {
      switch s1 : bmv2 { ports: 4, queue_rate: 12Mbps, }
      host nfvi1 : openstack {
        vcpus: 16
        trusted: true
      }
      endpoint server
      link server -- s1.3 { bandwidth: 12Mbps, delay: 5ms }
      link s1.2 -- nfvi1
    }""")
    (t,) = m.items
    s1, nfvi1, server = t.nodes
    assert (s1.kind, s1.name, s1.target) == ("switch", "s1", "bmv2")
    assert [a.name for a in s1.attrs] == ["ports", "queue_rate"]
    assert [a.name for a in nfvi1.attrs] == ["vcpus", "trusted"]
    assert server == A.NodeDecl("endpoint", "server", None, ())
    l1, l2 = t.links
    assert (l1.a, l1.b) == (A.LinkEnd("server"), A.LinkEnd("s1", 3))
    assert l2 == A.LinkDecl(A.LinkEnd("s1", 2), A.LinkEnd("nfvi1"), ())


def test_keywords_are_contextual():
    m = ok("topology t { endpoint link { ip: 1.2.3.4 } switch host : bmv2 }")
    assert [n.name for n in m.items[0].nodes] == ["link", "host"]


# --------------------------------------------------------------------------- functions, headers


def test_function_declaration_sections():
    m = ok("""function F(a: time = 1ms in 0ms..1s, b: string = "x" in {"x", "y"}, c: int) : filter {
      targets {
        p4.v1model { tables: 1, entries: len(p) }
        linux { vcpu: 1 }
      }
      latency { p4.v1model: 1us, linux: 20us }
      assert a < 2ms, "a is small"
    }""")
    (f,) = m.items
    assert f.kind == "filter" and [p.name for p in f.params] == ["a", "b", "c"]
    assert f.params[0].default == A.QuantityLit(Decimal(1), "ms")
    assert f.params[0].constraint == A.RangeExpr(A.QuantityLit(Decimal(0), "ms"),
                                                 A.QuantityLit(Decimal(1), "s"))
    assert f.params[2] == A.Param("c", A.TypeRef("int"))
    assert [t.target for t in f.targets] == [("p4", "v1model"), ("linux",)]
    assert [e.target for e in f.latency] == [("p4", "v1model"), ("linux",)]
    assert f.asserts[0].message == "a is small"
    assert f.body is None


def test_composite_function():
    (f,) = ok("function Shield(p: list<prefix>) { chain { Blocklist(prefixes: p) -> "
              "RateLimit(rate: 1kpps) } }").items
    assert f.kind is None and [s.func for s in f.body.steps] == [("Blocklist",), ("RateLimit",)]


def test_header_declaration():
    (h,) = ok("header ipv4 { src: ipv4, proto: int in 0..255 }").items
    assert h.fields == (A.FieldDecl("src", A.TypeRef("ipv4")),
                        A.FieldDecl("proto", A.TypeRef("int"),
                                    A.RangeExpr(A.IntLit(0), A.IntLit(255))))


# --------------------------------------------------------------------------- services


def test_service_statements():
    (s,) = ok("""service web on lab {
      match ipv4.dst == 10.0.2.1 and tcp.dport in {80, 443}
      from client, attacker;
      require latency <= 20ms; require secure
      require bandwidth >= 10Mbps
      chain {
        sec.Blocklist(prefixes: BAD, place: vnf)
        -> std.l4s.DualQ() @ s1
        -> Forward(to: server,)
      }
    }""").items
    assert s.topology == "lab"
    assert isinstance(s.match.predicate, A.BoolOp)
    assert s.sources == A.FromStmt(("client", "attacker"))
    assert [(r.name, r.op) for r in s.requires] == [("latency", "<="), ("secure", None),
                                                   ("bandwidth", ">=")]
    steps = s.chain.steps
    assert steps[0].func == ("sec", "Blocklist")
    assert steps[0].args[1] == A.Arg("place", A.Name("vnf"))
    assert steps[1] == A.Invocation(("std", "l4s", "DualQ"), (), "s1")
    assert steps[2].args == (A.Arg("to", A.Name("server")),)


# --------------------------------------------------------------------------- positions, comments


def test_every_node_has_a_position():
    text = "service web on lab {\n  chain { Forward(to: server) }\n}\n"
    (s,) = ok(text).items
    assert (s.span.line, s.span.col) == (1, 1)
    inv = s.chain.steps[0]
    assert (inv.span.line, inv.span.col, inv.span.end_col) == (2, 11, 30)
    arg = inv.args[0]
    assert (arg.value.span.line, arg.value.span.col) == (2, 23)


def test_comments_are_collected_not_parsed():
    m = ok('// head\nconst A = "#not a comment" # trailing\n# own line\n')
    assert [(c.text, c.line) for c in m.comments] == [("// head", 1), ("# trailing", 2),
                                                     ("# own line", 3)]
    assert m.items[0].value == A.StringLit("#not a comment")


def test_positions_do_not_affect_equality():
    assert ok("const A = 1") == ok("\n\n   const   A=1  ;")


# --------------------------------------------------------------------------- errors


def test_unexpected_token_has_caret_and_expected_hint():
    text = "service x on lab {\n  chain { A() -> -> B() }\n}\n"
    (d,) = errors(text)
    assert d.code == "E0101" and d.message == "unexpected `->`"
    assert (d.span.line, d.span.col) == (2, 18)
    assert d.hint == "expected a name"
    rendered = render_text([d], {"t.mosaico": text})
    assert "2 |   chain { A() -> -> B() }" in rendered
    assert "                 ^^" in rendered


def test_unexpected_character():
    (d,) = errors("const A = $")
    assert d.code == "E0102" and d.message == "unexpected character '$'"
    assert d.hint.startswith("expected an expression")


def test_unexpected_end_of_input():
    (d,) = errors("topology lab {\n  switch s1 : bmv2\n")
    assert d.code == "E0103" and d.span.line == 2
    assert "`}`" in d.hint


def test_all_broken_items_are_reported_in_one_run():
    ds = errors("const A = \nconst B = 1\nservice s on t { match }\nconst C = )\n")
    assert [(d.code, d.span.line) for d in ds] == [("E0103", 1), ("E0101", 3), ("E0101", 4)]
    assert ds[0].message == "this declaration ends too early"


@pytest.mark.parametrize("text, message", [
    ("const A = 300.1.2.3", "300.1.2.3 is not an IPv4 address"),
    ("const A = 10.0.0.0/33", "prefix length /33 is longer than 32 bits"),
    ('const A = "a\\q"', "bad escape in string: \\q"),
])
def test_malformed_literals(text, message):
    (d,) = errors(text)
    assert d.code == "E0104" and d.message == message


def test_literal_errors_and_syntax_errors_together():
    ds = errors("const A = 300.1.2.3\nconst B = \nconst C = 1\n")
    assert [d.code for d in ds] == ["E0104", "E0103"]


def test_deep_nesting_is_a_diagnostic_not_a_crash():
    depth = MAX_NESTING + 50
    ds = errors("const A = " + "[" * depth + "1" + "]" * depth)
    assert [d.code for d in ds] == ["E0105"]
    assert ok("const A = " + "[" * 20 + "1" + "]" * 20)
    assert ok("const A = " + "(" * depth + "1" + ")" * depth)  # parentheses add no depth


def test_flat_and_or_chains_are_one_level_and_deep_nesting_is_located():
    terms = " or ".join(f"tcp.dport == {i}" for i in range(199))
    long_and = " and ".join(f"ipv4.ttl != {i}" for i in range(250))
    module = parse(f"const A = {terms}\nconst B = {long_and}\n").module
    assert module is not None
    assert len(module.items[0].value.operands) == 199
    depth = MAX_NESTING + 5
    (d,) = errors("const A = 1\n\nconst B = [" + "[" * depth + "1" + "]" * depth + "]")
    assert d.code == "E0105"
    assert d.span.line == 3 and d.span.col > 11  # where it is deep, not line 1


def test_ipv6_literals_say_ipv6_is_not_supported_yet():
    (d,) = errors("topology t {\n  endpoint e { ip: fe80::1 }\n}\n")
    assert d.code == "E0107" and d.message == "IPv6 is not supported yet: fe80::1"
    assert (d.span.line, d.span.col, d.span.end_col) == (2, 20, 27)  # the whole literal
    assert "IPv4" in d.hint
    (d,) = errors("const P = 2001:db8::/32\n")
    assert d.code == "E0107" and d.message.endswith("2001:db8::/32")
    assert ok("const M = 02:00:00:00:00:01\n")  # a MAC address is not IPv6


def test_the_grammar_cache_is_only_an_optimisation(tmp_path):
    """Lark's analysed grammar is pickled under $XDG_CACHE_HOME/mosaico; a missing, stale or
    corrupt cache file must give the same parse (in fresh processes: the parser is built
    once per process)."""
    import subprocess
    import sys

    code = ("import mosaico_dsl as mo; p = mo.check('const A = 1\\n'); "
            "print(repr(p))")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}

    def run() -> str:
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout

    first = run()  # builds and writes the cache
    cache = tmp_path / "mosaico" / "mosaico-grammar.lark-cache"
    assert cache.is_file()
    assert run() == first  # loads it
    cache.write_bytes(b"not a pickle\n\x00\x01")
    assert run() == first  # ignores a corrupt one
