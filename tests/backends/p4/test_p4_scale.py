"""The P4 backend on many switches: its syntax self-check parses every program of the
first few switches and after them only programs with a fragment of a shape it has not
parsed — and still catches a broken fragment wherever it first appears."""

from __future__ import annotations

import pytest

import mosaico_dsl as mo
from mosaico_dsl.backends.p4 import backend as B
from mosaico_dsl.backends.p4 import syntax
from mosaico_dsl.compiler import BACKENDS, Compilation


def _line(n: int) -> str:
    """n switches in a row, each with a client and a server; a service per switch, with
    per-source meters (many meter cells) and every fourth a mirror to port 0."""
    lines = ["import std.security as sec", "from std.fwd import Forward, Mirror",
             "topology t {"]
    for i in range(n):
        lines += [f"  switch s{i} : bmv2 {{ ports: 8 }}",
                  f"  endpoint c{i} {{ ip: 10.0.{i}.1, trusted: true }}",
                  f"  endpoint v{i} {{ ip: 10.1.{i}.1 }}",
                  f"  link c{i} -- s{i}.0 {{ bandwidth: 1Gbps }}",
                  f"  link s{i}.1 -- v{i} {{ bandwidth: 1Gbps }}"]
        if i:
            lines.append(f"  link s{i - 1}.2 -- s{i}.3 {{ bandwidth: 10Gbps }}")
    lines.append("}")
    for i in range(n):
        # A mirror back to the client, on its switch: a clone session to port 0.
        mirror = f"Mirror(to: c{i}) @ s{i} -> " if i % 4 == 0 else ""
        lines.append(f"service svc{i} on t {{ from c{i} chain {{ "
                     f"sec.RateLimit(rate: {i + 1}kpps, per: \"source\", buckets: 64) -> "
                     f"{mirror}Forward(to: v{i}) }} }}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def many():
    text = _line(B.FULL_CHECKS + 8)
    program = mo.check(text)
    return Compilation(program, mo.place.place(program), "line.mosaico", text)


def test_shapes_keep_what_a_parser_sees():
    a = B._shape("// s3 meter\n@id(0x0100000b) meter<bit<32>>(32w1024, x_s3) s3_m; apply { }")
    b = B._shape("// other\n@id(0x0100002f) meter<bit<32>>(32w2048, x_s17) s17_m; apply { }")
    assert a == b == '\n@x(0x00000000) x<bit<00>>(00w0000, x) x; apply { }'
    assert B._shape("t.apply();") != B._shape("t.apply;")


def test_only_new_shapes_are_parsed_after_the_first_programs(many, monkeypatch):
    parsed = []
    real = B.check_source
    monkeypatch.setattr(B, "check_source", lambda main, files: parsed.append(main)
                        or real(main, files))
    files = BACKENDS["p4"](many)
    switches = {p.split("/")[0] for p in files}
    assert len(switches) == B.FULL_CHECKS + 8
    assert B.FULL_CHECKS <= len(parsed) < len(switches)


def test_a_broken_fragment_is_caught_where_it_first_appears(many, monkeypatch):
    """The last switch's RateLimit declaration loses a semicolon: a shape no earlier
    program had, so its program is parsed, and the generator bug is reported."""
    real = B.fragments
    last = f"s{B.FULL_CHECKS + 7}"

    def broken(plan):
        parts = real(plan)
        if plan.switch.name == last:
            parts.step_declarations[0] = parts.step_declarations[0].replace(";", "", 1)
        return parts

    monkeypatch.setattr(B, "fragments", broken)
    with pytest.raises(RuntimeError, match="does not parse"):
        BACKENDS["p4"](many)
    assert syntax.KEYWORDS >= {"control", "apply", "table", "action"}


def test_entries_json_is_protobufs_json_mapping(example, many):
    """entries.json is written without json_format, but means exactly what it writes: the
    documents equal ``MessageToDict`` of the P4Runtime updates, for every example program
    and a line of switches with per-source meters (hundreds of meter cells)."""
    from google.protobuf import json_format
    from p4_support import compiled

    from mosaico_dsl.backends.p4.entries import update_docs, updates
    from mosaico_dsl.backends.p4.plan import plan_switches

    for c in (Compilation(compiled(example).program, compiled(example).placement, "x", None),
              many):
        plans, _ = plan_switches(c.program, c.placement)
        for plan in plans:
            assert update_docs(plan) == [json_format.MessageToDict(u) for u in updates(plan)]
