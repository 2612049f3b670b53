"""The canonical printer behind `mosaico fmt` and `Program.to_source()`."""

from __future__ import annotations

from pathlib import Path

import pytest

from mosaico_dsl._resources import stdlib_dir
from mosaico_dsl.lang import _ast as A
from mosaico_dsl.lang.parser import parse
from mosaico_dsl.lang.printer import format_expr, format_module

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def fmt(text: str) -> str:
    result = parse(text)
    assert result.ok, result.diagnostics
    return format_module(result.module)


@pytest.mark.parametrize("path", [*sorted(EXAMPLES.glob("*.mosaico")),
                                  *sorted((stdlib_dir() / "std").glob("*.mosaico"))],
                         ids=lambda p: p.name)
def test_shipped_sources_are_canonically_formatted(path):
    text = path.read_text()
    assert fmt(text) == text, f"run `mosaico fmt {path}`"


@pytest.mark.parametrize("source, printed", [
    ("(a or b) and c", "(a or b) and c"),
    ("a or (b and c)", "a or b and c"),
    ("not (x == 1 or y == 2)", "not (x == 1 or y == 2)"),
    ("not not x", "not not x"),
    ("(1 + 2) * 3", "(1 + 2) * 3"),
    ("1 - (2 - 3)", "1 - (2 - 3)"),
    ("(1 - 2) - 3", "1 - 2 - 3"),
    ("-(-5)", "-(-5)"),
    ("-(1 + 2)", "-(1 + 2)"),
    ("(a == 1) == true", "(a == 1) == true"),
    ("(1..2)..3", "(1..2)..3"),  # parses; the checker rejects ranges of ranges
    ("{1, 2..4}", "{1, 2..4}"),
    ("x in (1..3)", "x in 1..3"),
    ("len([1, 2]) * 2", "len([1, 2]) * 2"),
    ("1.50", "1.50"),
    ("1e-3", "0.001"),
    ("0.5ms", "0.5ms"),
    ("0xff", "0xff"),
    ('"tab\\there"', '"tab\\there"'),
])
def test_expressions_print_with_minimal_parentheses(source, printed):
    result = parse(f"const X = {source}")
    e = result.module.items[0].value
    assert format_expr(e) == printed
    assert parse(f"const X = {printed}").module.items[0].value == e


def test_values_the_parser_cannot_produce_still_round_trip():
    # The API builds negative literals as UnaryOp; attribute access on a number needs parens.
    e = A.Attribute(A.IntLit(1), "x")
    assert parse(f"const X = {format_expr(e)}").module.items[0].value == e


def test_layout_aligns_topology_columns():
    out = fmt("topology t { switch s1 : bmv2 {ports:4} endpoint client {ip:1.2.3.4} "
              "link client -- s1.1 {bandwidth: 1Gbps} link s1.2 -- client2 }")
    assert out == (
        "topology t {\n"
        "  switch   s1     : bmv2 { ports: 4 }\n"
        "  endpoint client        { ip: 1.2.3.4 }\n"
        "  link client -- s1.1    { bandwidth: 1Gbps }\n"
        "  link s1.2   -- client2\n"
        "}\n")


def test_long_attribute_blocks_break_into_lines():
    attrs = ", ".join(f"attribute_{i}: {i}" for i in range(12))
    out = fmt(f"topology t {{ switch s1 : bmv2 {{ {attrs} }} }}")
    assert "  switch   s1 : bmv2 {\n    attribute_0: 0\n" in out
    assert fmt(out) == out


def test_comments_survive_formatting_in_place():
    source = """// file header

import std.l4s  // why we import it

# about the topology
topology t {
  // the switch
  switch s1 : bmv2   # trailing
  endpoint e { ip: 1.2.3.4 }
  // before the closing brace
}

service s on t {
  chain {
    // first step
    std.l4s.DualQ()
    -> Forward(to: e)  // last
  }
}
// at the end
"""
    out = fmt(source)
    for line in ("// file header", "import std.l4s  // why we import it", "# about the topology",
                 "  // the switch", "  switch   s1 : bmv2  # trailing",
                 "  // before the closing brace", "    // first step",
                 "    -> Forward(to: e)  // last", "// at the end"):
        assert line in out.splitlines(), (line, out)
    assert out.index("// file header") < out.index("import std.l4s")
    assert out.index("// before the closing brace") < out.index("}\n\nservice")
    assert fmt(out) == out  # idempotent
    assert parse(out).module == parse(source).module


def test_blank_line_after_a_leading_comment_block_is_kept():
    out = fmt("// a\n// b\n\nconst A = 1\n")
    assert out == "// a\n// b\n\nconst A = 1\n"


def test_empty_module_prints_nothing():
    assert fmt("") == ""
    assert fmt("// only a comment\n") == "// only a comment\n"
