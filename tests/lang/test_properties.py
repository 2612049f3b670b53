"""Property-based tests of the front end (hypothesis).

1. Every valid program round-trips through the printer: parse(fmt(p)) == p, fmt idempotent.
2. No input — random text, or random mutations of real programs — makes the parser or the
   checker raise anything: bad input yields diagnostics.
3. A program built with the Python API and the same program written as text check to
   equal IR.
"""

from __future__ import annotations

import string
from decimal import Decimal
from ipaddress import IPv4Address
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import mosaico_dsl as mo
from mosaico_dsl._resources import stdlib_dir
from mosaico_dsl.check import check_module
from mosaico_dsl.lang import _ast as A
from mosaico_dsl.lang.parser import parse
from mosaico_dsl.lang.printer import format_module
from mosaico_dsl.std import fwd, l4s
from mosaico_dsl.std import security as sec
from mosaico_dsl.units import UNITS

ROOT = Path(__file__).resolve().parents[2]

# Identifiers containing "_" can never collide with a keyword (no keyword has one).
names = st.from_regex(r"[a-z][a-z0-9]{0,5}_[a-z0-9]{0,4}", fullmatch=True)
decimals = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False,
                       allow_infinity=False)

literals = st.one_of(
    st.builds(A.IntLit, st.integers(min_value=0, max_value=2**40), hex=st.booleans()),
    st.builds(A.FloatLit, decimals),
    st.builds(A.QuantityLit, decimals, st.sampled_from(sorted(UNITS))),
    st.builds(A.BoolLit, st.booleans()),
    st.builds(A.StringLit, st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)),
    st.builds(A.IPv4Lit, st.builds(IPv4Address, st.integers(0, 2**32 - 1))),
    st.builds(A.PrefixLit, st.builds(IPv4Address, st.integers(0, 2**32 - 1)),
              st.integers(0, 32)),
    st.builds(A.MacLit, st.from_regex(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", fullmatch=True)),
    st.builds(A.Name, names),
)


def _boolop(op: str, operands: list) -> A.BoolOp:
    flat: list = []
    for o in operands:  # the AST invariant: and/or are flat
        flat.extend(o.operands if isinstance(o, A.BoolOp) and o.op == op else [o])
    return A.BoolOp(op, tuple(flat))


def _compound(children):
    return st.one_of(
        st.builds(A.Attribute, children, names),
        st.builds(A.ListLit, st.lists(children, max_size=3).map(tuple)),
        st.builds(A.SetLit, st.lists(children, max_size=3).map(tuple)),
        st.builds(A.RangeExpr, children, children),
        st.builds(A.BinOp, st.sampled_from("+-*/"), children, children),
        st.builds(A.UnaryOp, st.just("-"), children),
        st.builds(A.Compare, st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in"]),
                  children, children),
        st.builds(_boolop, st.sampled_from(["and", "or"]), st.lists(children, min_size=2,
                                                                    max_size=3)),
        st.builds(A.Not, children),
        st.builds(A.Call, st.builds(A.Name, names), st.lists(children, max_size=3).map(tuple)),
    )


exprs = st.recursive(literals, _compound, max_leaves=8)
attrs = st.lists(st.builds(A.Attr, names, exprs), max_size=3).map(tuple)
type_refs = st.recursive(
    st.builds(A.TypeRef, st.sampled_from(["int", "time", "prefix", "string", "rate"])),
    lambda inner: st.builds(A.TypeRef, st.sampled_from(["list", "set"]),
                            st.tuples(inner)), max_leaves=3)
dotted = st.lists(names, min_size=1, max_size=3).map(tuple)
invocations = st.builds(A.Invocation, dotted,
                        st.lists(st.builds(A.Arg, names, exprs), max_size=3).map(tuple),
                        st.one_of(st.none(), names))
chains = st.builds(A.Chain, st.lists(invocations, min_size=1, max_size=4).map(tuple))

items = st.one_of(
    st.builds(A.Import, dotted, st.one_of(st.none(), names)),
    st.builds(A.FromImport, dotted,
              st.lists(st.builds(A.ImportName, names, st.one_of(st.none(), names)),
                       min_size=1, max_size=3).map(tuple)),
    st.builds(A.Const, names, st.one_of(st.none(), type_refs), exprs),
    st.builds(A.TopologyDecl, names,
              st.lists(st.builds(A.NodeDecl, st.sampled_from(["switch", "host", "endpoint"]),
                                 names, st.one_of(st.none(), names), attrs),
                       max_size=3).map(tuple),
              st.lists(st.builds(A.LinkDecl,
                                 st.builds(A.LinkEnd, names, st.one_of(st.none(),
                                                                       st.integers(0, 99))),
                                 st.builds(A.LinkEnd, names, st.one_of(st.none(),
                                                                       st.integers(0, 99))),
                                 attrs), max_size=3).map(tuple)),
    st.builds(A.FunctionDecl, names,
              st.lists(st.builds(A.Param, names, type_refs, st.one_of(st.none(), exprs),
                                 st.one_of(st.none(), exprs)), max_size=3).map(tuple),
              st.one_of(st.none(), names),
              st.lists(st.builds(A.TargetCost, dotted, attrs), max_size=2).map(tuple),
              st.lists(st.builds(A.LatencyEntry, dotted, exprs), max_size=2).map(tuple),
              st.lists(st.builds(A.Assert, exprs, st.text(max_size=8)), max_size=2).map(tuple),
              st.one_of(st.none(), chains)),
    st.builds(A.HeaderDecl, names,
              st.lists(st.builds(A.FieldDecl, names, type_refs, st.one_of(st.none(), exprs)),
                       max_size=3).map(tuple)),
    st.builds(A.ServiceDecl, names, names, st.lists(st.one_of(
        st.builds(A.MatchStmt, exprs),
        st.builds(A.RequireStmt, names, st.none(), st.none()),
        st.builds(A.RequireStmt, names, st.sampled_from(["<=", ">=", "<"]), exprs),
        st.builds(A.FromStmt, st.lists(names, min_size=1, max_size=3).map(tuple)),
        st.builds(A.ReplyStmt, st.one_of(st.sampled_from(["forward", "drop"]), names)),
        chains), max_size=4).map(tuple)),
)
modules = st.builds(A.Module, st.lists(items, max_size=5).map(tuple))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules)
def test_printed_programs_parse_back_to_the_same_ast(module):
    text = format_module(module)
    result = parse(text)
    assert result.ok, (text, result.diagnostics)
    assert result.module == module
    assert format_module(result.module) == text


# --------------------------------------------------------------------------- robustness

SOURCES = [p.read_text() for p in [*sorted((ROOT / "examples").glob("*.mosaico")),
                                   *sorted((stdlib_dir() / "std").glob("*.mosaico"))]]
VOCABULARY = ["{", "}", "(", ")", "->", "--", ":", ",", ";", "..", "@", "==", "in", "not",
              "and", "service", "chain", "match", "require", "topology", "link", "switch",
              "function", "import", "std", "Forward", "x", "1", "0x", "1.5", "15ms", "10%",
              "10.0.0.1", "10.0.0.0/8", "\"", "\\", "#", "//", "\n", " ", "é", "\x00"]


def _never_raises(text: str) -> None:
    result = parse(text, "fuzz.mosaico")
    assert result.ok == (result.module is not None)
    for d in result.diagnostics:
        assert d.span is not None and d.code.startswith("E")
    if result.module is not None:
        # Must not raise; the diagnostics (if any) are values.
        checked = check_module(result.module, sources={"fuzz.mosaico": text})
        assert (checked.program is None) == any(d.is_error for d in checked.diagnostics)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_yields_diagnostics_not_exceptions(text):
    _never_raises(text)


@st.composite
def mutated_sources(draw):
    text = draw(st.sampled_from(SOURCES))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 40)))
        kind = draw(st.sampled_from(["delete", "insert", "duplicate", "replace"]))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "insert":
            text = text[:i] + draw(st.sampled_from(VOCABULARY)) + text[i:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        else:
            text = text[:i] + draw(st.sampled_from(string.printable)) + text[i + 1:]
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_sources())
def test_mutated_programs_yield_diagnostics_not_exceptions(text):
    _never_raises(text)


# --------------------------------------------------------------------------- API ≡ text

@st.composite
def scenarios(draw):
    """A random valid program: a line of switches, endpoints, services with stdlib chains."""
    n_switches = draw(st.integers(1, 3))
    n_endpoints = draw(st.integers(2, 4))
    endpoints = [(f"e{j}", f"10.0.{j}.1", draw(st.booleans()), j % n_switches)
                 for j in range(n_endpoints)]
    services = []
    for k in range(draw(st.integers(1, 3))):
        dst = draw(st.sampled_from(endpoints))[0]
        steps = []
        if draw(st.booleans()):
            steps.append(("Blocklist", {"prefixes": draw(st.lists(
                st.sampled_from(["203.0.113.0/24", "198.51.100.7/32", "192.0.2.0/25"]),
                min_size=1, max_size=3, unique=True))}))
        if draw(st.booleans()):
            steps.append(("RateLimit", {"rate": f"{draw(st.integers(1, 99))}kpps",
                                        "burst": draw(st.integers(1, 500))}))
        if draw(st.booleans()):
            steps.append(("DualQ", {"classic_target": f"{draw(st.integers(5, 50))}ms"}))
        ports = draw(st.one_of(st.none(), st.lists(st.integers(1, 65535), min_size=1,
                                                   max_size=3, unique=True)))
        secure = any(name == "Blocklist" for name, _ in steps) and draw(st.booleans())
        reply = draw(st.sampled_from([None, "forward", "drop"]))
        services.append((f"svc{k}", dst, steps, ports, secure, reply))
    # services delivering to one endpoint share its egress queue: keep their DualQs equal
    first_q: dict[str, dict] = {}
    for _name, dst, steps, *_ in services:
        for i, (fn, args) in enumerate(steps):
            if fn == "DualQ":
                steps[i] = (fn, first_q.setdefault(dst, args))
    return n_switches, endpoints, services


def _as_text(n_switches, endpoints, services) -> str:
    lines = ["import std.l4s", "from std.security import Blocklist, RateLimit",
             "from std.fwd import Forward", "topology t {"]
    lines += [f"  switch s{i} : bmv2 {{ ports: 8 }}" for i in range(n_switches)]
    lines += [f"  endpoint {n} {{ ip: {ip}, trusted: {str(tr).lower()} }}"
              for n, ip, tr, _ in endpoints]
    lines += [f"  link s{i}.1 -- s{i + 1}.0 {{ bandwidth: 10Gbps, delay: 10us }}"
              for i in range(n_switches - 1)]
    lines += [f"  link {n} -- s{sw}.{2 + j} {{ bandwidth: 1Gbps, delay: 1ms }}"
              for j, (n, _, _, sw) in enumerate(endpoints)]
    lines.append("}")
    for name, dst, steps, ports, secure, reply in services:
        match = f"ipv4.dst == {dst}"
        if ports:
            match += " and tcp.dport in {" + ", ".join(map(str, ports)) + "}"
        lines += [f"service {name} on t {{", f"  match {match}", "  require latency <= 1s"]
        if secure:
            lines.append("  require secure")
        if reply:
            lines.append(f"  reply {reply}")
        chain = []
        for fn, args in steps:
            rendered = ", ".join(
                f"{k}: [{', '.join(v)}]" if isinstance(v, list) else f"{k}: {v}"
                for k, v in args.items())
            chain.append(f"{'std.l4s.' if fn == 'DualQ' else ''}{fn}({rendered})")
        chain.append(f"Forward(to: {dst})")
        lines += ["  chain { " + " -> ".join(chain) + " }", "}"]
    return "\n".join(lines) + "\n"


def _as_api(n_switches, endpoints, services) -> mo.Program:
    t = mo.Topology("t")
    switches = [t.switch(f"s{i}", ports=8) for i in range(n_switches)]
    nodes = {n: t.endpoint(n, ip=ip, trusted=tr) for n, ip, tr, _ in endpoints}
    for i in range(n_switches - 1):
        t.link(switches[i].port(1), switches[i + 1].port(0), bandwidth="10Gbps", delay="10us")
    for j, (n, _, _, sw) in enumerate(endpoints):
        t.link(nodes[n], switches[sw].port(2 + j), bandwidth="1Gbps", delay="1ms")
    functions = {"Blocklist": sec.Blocklist, "RateLimit": sec.RateLimit, "DualQ": l4s.DualQ}
    built = []
    for name, dst, steps, ports, secure, reply in services:
        match = mo.f.ipv4.dst == nodes[dst]
        if ports:
            match = match & mo.f.tcp.dport.isin(set(ports))
        chain = mo.Chain([functions[fn](**args) for fn, args in steps]) >> fwd.Forward(
            to=nodes[dst])
        built.append(mo.Service(name, on=t, match=match, latency="1s", secure=secure,
                                chain=chain, reply=reply))
    return mo.Program(t, built)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_api_and_text_give_equal_ir(scenario):
    text = _as_text(*scenario)
    parsed = parse(text, "scenario.mosaico")
    assert parsed.ok, (text, parsed.diagnostics)
    from_text = check_module(parsed.module)
    assume(from_text.ok)  # e.g. no path from some source: both front ends must agree on it
    from_api = mo.check(_as_api(*scenario))
    assert from_api == from_text.program
    # and the API program prints as text that parses back to its own AST
    api_program = _as_api(*scenario)
    assert parse(api_program.to_source()).module == api_program.ast


def test_scenario_generator_builds_checkable_programs():
    scenario = (1, [("e0", "10.0.0.1", True, 0), ("e1", "10.0.1.1", False, 0)],
                [("svc0", "e1", [("Blocklist", {"prefixes": ["203.0.113.0/24"]}),
                                 ("DualQ", {"classic_target": "15ms"})], [80], True, "drop")])
    program = check_module(parse(_as_text(*scenario)).module)
    assert program.ok, program.diagnostics
    (svc,) = program.program.services
    assert [f.name for f in svc.chain] == ["Blocklist", "DualQ", "Forward"]
    assert not svc.replies  # `reply drop`
    assert svc.chain[1].args["classic_target"].ms == 15
    assert Decimal(str(svc.chain[1].args["alpha"])).quantize(Decimal("0.001")) == Decimal("0.150")
