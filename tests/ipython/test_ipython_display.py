"""The rich displays: diagrams laid out by Graphviz, plots by matplotlib, P4 by Pygments."""

from __future__ import annotations

import base64
import io
import re
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mosaico_dsl as mo
from mosaico_dsl.display import (
    CompileView,
    DiagnosticsView,
    P4Lexer,
    P4Source,
    PlacementView,
    ProgramView,
    SimView,
    _media,
    p4_sources,
    view,
)
from mosaico_dsl.display.graphs import (
    chain_graph,
    chain_text,
    node_colours,
    shown_args,
    topology_graph,
)
from mosaico_dsl.display.placement import latencies, latency_waterfall
from mosaico_dsl.place import place

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.mosaico"))
FLAGSHIP = ROOT / "examples" / "secure_l4s.mosaico"
GOLDEN_P4 = sorted((ROOT / "tests" / "backends" / "p4" / "golden").rglob("*.p4"))
LIBRARY_P4 = sorted((ROOT / "p4").rglob("*.p4"))


@pytest.fixture(scope="module")
def placed() -> dict[str, tuple]:
    out = {}
    for path in EXAMPLES:
        program = mo.check(path)
        out[path.stem] = (program, place(program))
    return out


def pngs(html: str, css_class: str) -> list[bytes]:
    found = re.findall(rf'<img class="[^"]*{css_class}[^"]*"[^>]*src="data:image/png;base64,'
                       r'([^"]+)"', html)
    return [base64.b64decode(b) for b in found]


def image_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(data)).size


# ----------------------------------------------------------------------------- graphs


@pytest.mark.parametrize("name", [p.stem for p in EXAMPLES])
def test_chain_graph_has_every_service_step_source_and_destination(placed, name):
    program, placement = placed[name]
    source = chain_graph(program).source
    for s in program.services:
        assert f"service {s.name}" in source.replace("<b>", "").replace("</b>", "")
        for src in s.sources:
            assert f'"{s.name}/src/{src}"' in source
        steps = [f'"{s.name}/step/{fi.id}"' for fi in s.chain]
        ends = [f'"{s.name}/src/{src}"' for src in s.sources]
        # The chain's order is the edges' order: each step follows the one before.
        for a, b in pairwise(steps):
            assert f"{a} -> {b}" in source
        for e in ends:
            assert f"{e} -> {steps[0]}" in source
        assert f'{steps[-1]} -> "{s.name}/dst/{s.destination}"' in source


def test_chain_graph_colours_steps_by_kind_then_by_node(placed):
    program, placement = placed["two_services"]
    unplaced = chain_graph(program).source
    assert 'fillcolor="#f9d6d5"' in unplaced  # filters
    assert 'fillcolor="#d5e5f6"' in unplaced  # queues
    colours = node_colours(placement)
    assert set(colours) == {"s1", "nfvi1"} and len(set(colours.values())) == 2
    placed_src = chain_graph(program, placement).source
    for a in placement.assignments:
        s, _ = a.instance.split("/")
        line = next(x for x in placed_src.splitlines() if f'"{s}/step/{a.instance}"' in x
                    and "->" not in x)
        assert f'fillcolor="{colours[a.node]}"' in line
        assert f"on {a.node} · {a.target}" in line


def test_arguments_shown_are_the_ones_that_differ_from_literal_defaults(placed):
    program, _ = placed["two_services"]
    by_name = {fi.name: dict(shown_args(fi)) for s in program.services for fi in s.chain}
    assert by_name["DualQ"] == {"classic_target": "10ms", "rtt_max": "60ms"}  # tupdate etc.
    assert by_name["RateLimit"] == {"rate": "5kpps", "burst": "50", "per": '"source"',
                                    "buckets": "256"}
    assert by_name["Forward"] == {"to": "game"} or by_name["Forward"] == {"to": "web"}
    text = chain_text(program)
    assert "DualQ(classic_target=10ms, rtt_max=60ms)" in text


def test_topology_graph_nodes_links_and_placement(placed):
    program, placement = placed["two_services"]
    topo = program.topologies[0]
    plain = topology_graph(topo).source
    for n in topo.nodes:
        assert re.search(rf"^\s*{n.name} \[", plain, re.M), n.name
    for lk in topo.links:
        assert f"{lk.a.node} -- {lk.b.node}" in plain
        assert f"{lk.bandwidth} · {lk.delay}" in plain
    src = topology_graph(topo, placement, program).source
    colours = node_colours(placement)
    for name, colour in colours.items():
        line = next(x for x in src.splitlines() if re.match(rf"\s*{name} \[", x))
        assert f'fillcolor="{colour}"' in line
    nfvi = next(x for x in src.splitlines() if re.match(r"\s*nfvi1 \[", x))
    assert "SynGuard (gaming/1, linux)" in nfvi
    routed = {frozenset(p) for r in placement.routes for p in pairwise(r.nodes)}
    for lk in topo.links:
        line = next(x for x in src.splitlines() if f"{lk.a.node} -- {lk.b.node}" in x)
        bold = frozenset((lk.a.node, lk.b.node)) in routed
        assert ("penwidth=2.5" in line) == bold and ("dashed" in line) == (not bold)


@pytest.mark.graphviz
def test_diagrams_are_svg_and_deterministic(placed):
    program, placement = placed["secure_l4s"]
    a = PlacementView(program, placement)._repr_html_()
    b = PlacementView(program, placement)._repr_html_()
    assert a == b
    assert a.count("<svg") == 2  # the topology and the chains
    svg = ProgramView(program)._repr_svg_()
    assert svg.startswith("<svg") and "Blocklist" in svg and "l4s_client" in svg


def test_without_graphviz_diagrams_fall_back_to_text(placed, monkeypatch):
    monkeypatch.setattr(_media, "graphviz_available", lambda: False)
    program, placement = placed["secure_l4s"]
    html = ProgramView(program)._repr_html_()
    assert "<svg" not in html and "mosaico-no-dot" in html and "Install Graphviz" in html
    assert "Blocklist" in html
    assert ProgramView(program)._repr_svg_() is None
    assert "<svg" not in PlacementView(program, placement)._repr_html_()


# ----------------------------------------------------------------------------- placement


@pytest.mark.parametrize("name", [p.stem for p in EXAMPLES])
def test_waterfall_items_add_up_to_the_placed_route_latency(placed, name):
    program, placement = placed[name]
    rows = latencies(program, placement)
    assert {r.service for r in rows} == {s.name for s in program.services}
    for row in rows:
        # The placer's own figure for the route, and the slowest of the service's routes.
        assert row.breakdown.total == row.route.latency
        assert row.route.latency == max(r.latency for r in placement.routes_of(row.service))
        assert sum(i.delay.ns for i in row.breakdown.items) == row.breakdown.total.ns
    fig = latency_waterfall(program, placement)
    axes = [ax for ax in fig.axes if ax.patches]
    assert len(axes) == len(rows)
    for ax, row in zip(axes, rows, strict=True):
        assert len(ax.patches) == len(row.breakdown.items) + 1  # each item, and the total
        budget_lines = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
        assert len(budget_lines) == (row.budget is not None)


def test_placement_view(placed):
    program, placement = placed["two_services"]
    v = PlacementView(program, placement)
    html = v._repr_html_()
    for a in placement.assignments:
        assert f"<td>{a.instance}</td>" in html
        assert a.instance in v.text()
    (wf,) = pngs(html, "mosaico-waterfall")
    width, height = image_size(wf)
    assert width > 300 and height > 300
    assert "detour s1→nfvi1→s1" in v.text()
    assert "cp-sat" in v.text()


# ----------------------------------------------------------------------------- programs


def test_api_program_and_topology_display_themselves():
    import sys

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from secure_l4s import lab, program
    finally:
        sys.path.remove(str(ROOT / "examples"))
    html = program._repr_html_()
    assert "mosaico-chain" in html and "1 service" in html
    assert "mosaico-topology" in lab._repr_html_()
    if _media.graphviz_available():
        assert program._repr_svg_().startswith("<svg")
        assert "l4s_client" in lab._repr_svg_()


def test_a_program_with_errors_shows_its_diagnostics():
    lab = mo.Topology("lab")
    s1 = lab.switch("s1")
    lab.link(s1.port(1), "ghost", bandwidth="1Gbps", delay="1ms")
    v = view(mo.Program(lab))
    assert isinstance(v, DiagnosticsView)
    assert "E0703" in v._repr_html_() and "ghost" in v.text()
    assert mo.Program(lab)._repr_svg_() is None
    assert "has errors" in lab._repr_html_()


# ----------------------------------------------------------------------------- P4


@pytest.mark.parametrize("path", GOLDEN_P4 + LIBRARY_P4, ids=lambda p: str(p.relative_to(ROOT)))
def test_p4_lexer_reads_generated_and_library_p4_without_errors(path):
    from pygments.token import Error

    tokens = list(P4Lexer().get_tokens(path.read_text()))
    assert not [v for t, v in tokens if t in Error]


def test_p4_lexer_knows_p4_words():
    from pygments.token import Keyword, Name, Number

    code = ('@name("x") control C(inout h_t hdr) { table t { key = { hdr.a : exact; } '
            "actions = { NoAction; } } apply { bit<16> v = 16w0x0800; hdr.ipv4.setValid(); "
            "t.apply(); } }")
    kinds = {v: t for t, v in P4Lexer().get_tokens(code) if v.strip()}
    assert kinds["control"] in Keyword and kinds["table"] in Keyword
    assert kinds["inout"] in Keyword and kinds["apply"] in Keyword and kinds["key"] in Keyword
    assert kinds["bit"] in Keyword.Type
    assert kinds["exact"] in Name.Builtin and kinds["setValid"] in Name.Builtin
    assert kinds["NoAction"] in Name.Builtin
    assert kinds["@name"] in Name.Decorator
    assert kinds["16w0x0800"] in Number


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcxyz019 _@w{}();<>.&|=+-*/\"'\n#\t")),
               max_size=120))
def test_p4_lexer_loses_no_text(text):
    lexer = P4Lexer(stripnl=False, ensurenl=False)
    assert "".join(v for _, v in lexer.get_tokens(text)) == text


def test_p4_sources_and_view():
    result = mo.compile(FLAGSHIP)
    sources = p4_sources(result.artifacts)
    assert list(sources) == ["s1"]  # the program, not the library files it includes
    src = sources["s1"]
    assert isinstance(src, P4Source) and str(src) == result.artifacts["s1/s1.p4"].decode()
    html = src._repr_html_()
    assert "mosaico-p4" in html and 'style="' in html and "class=" not in html.split(
        "<pre")[1].split(">")[0]  # inline styles: survives HTML export without CSS
    assert "MosaicoIngress" in re.sub(r"<[^>]+>", "", html)
    from rich.syntax import Syntax

    assert isinstance(src.__rich__(), Syntax)
    cv = CompileView(result)
    assert cv.p4["s1"].text == src.text
    page = cv._repr_html_()
    assert "mosaico-placement" in page and "mosaico-p4" in page and "s1/s1.p4" in page
    assert "s1/p4info.txtpb" in cv.text()


# ----------------------------------------------------------------------------- simulation


@pytest.mark.slow
def test_sim_view_shows_the_cdf_and_throughput():
    from mosaico_dsl.sim import simulate

    result = simulate(FLAGSHIP, duration="300ms", seed=1)
    v = SimView(result)
    html = v._repr_html_()
    for name in SimView.INLINE:
        (data,) = pngs(html, f"mosaico-{name}")
        width, height = image_size(data)
        assert width > 300 and height > 200
    assert "prague#1" in html and "prague#1" in v.text()
    assert v.figure("marks_drops").axes


def test_view_dispatches_on_what_it_is_given(placed):
    from mosaico_dsl.display import PlacementTable, TopologyView

    program, placement = placed["secure_l4s"]
    assert isinstance(view(program), ProgramView)
    assert isinstance(view(program.topologies[0]), TopologyView)
    assert isinstance(view(placement), PlacementTable)
    v = view(FLAGSHIP, placement)  # a program in any form, with where it runs
    assert isinstance(v, PlacementView) and v.program == program
    table = view(placement).text()
    assert "l4s_client → s1 → server" in table and "web_ll/2  s1  p4.v1model" in table
    with pytest.raises(TypeError, match="no view of a object"):
        view(object())
