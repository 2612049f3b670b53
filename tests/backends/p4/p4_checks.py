"""Checks shared by the P4 backend tests: P4Info against the program text, entries against
P4Info."""

from __future__ import annotations

from google.protobuf import json_format, text_format
from p4model import (
    annotations,
    control_params,
    controls,
    declarations,
    parse_files,
    path_of,
    types_of,
)

from mosaico_dsl.backends.p4.model import qualified
from mosaico_dsl.p4proto import p4i as P
from mosaico_dsl.p4proto import p4r as R

PREFIX = {"table": 0x02, "action": 0x01, "counter": 0x12, "direct_counter": 0x13,
          "meter": 0x14, "register": 0x16}


def p4info_of(files) -> P.P4Info:
    return text_format.Parse(files["p4info.txtpb"].decode(), P.P4Info())


def _program(switch, files):
    texts = {k: v.decode() for k, v in files.items() if k.endswith(".p4")}
    return parse_files(texts, f"{switch}.p4")


def _key_bits(expr, types, params) -> int:
    if expr.data == "call":  # hdr.x.isValid()
        return 1
    path = path_of(expr)
    return types.path_bits(params[path[0]], path[1:])


def check_against_program(switch: str, files) -> None:
    """P4Info (ids, names, kinds, widths) against the P4 text of one switch directory."""
    info = p4info_of(files)
    tree = _program(switch, files)
    types = types_of(tree)
    declared = {}
    for d in declarations(tree):
        if d.kind in PREFIX:
            declared[qualified(d.control, d.annotations["name"])] = d
    params = {name: control_params(c) for name, c in controls(tree).items()}

    entities = {
        "table": info.tables, "action": info.actions, "counter": info.counters,
        "direct_counter": info.direct_counters, "meter": info.meters,
        "register": info.registers,
    }
    ids = [e.preamble.id for group in entities.values() for e in group]
    assert len(ids) == len(set(ids)), "P4Info ids must be unique"
    names = [e.preamble.name for group in entities.values() for e in group]
    assert len(names) == len(set(names))
    seen = set()
    for kind, group in entities.items():
        for e in group:
            assert e.preamble.id >> 24 == PREFIX[kind], e.preamble
            d = declared[e.preamble.name]
            seen.add(e.preamble.name)
            assert d.kind == kind
            assert d.annotations["id"] == e.preamble.id
            assert qualified(d.control, d.annotations["name"]) == e.preamble.name
    # ... and nothing the control plane could see is missing from the P4Info.
    assert seen == set(declared)

    for t in info.tables:
        node = declared[t.preamble.name].node
        control = declared[t.preamble.name].control
        keys = [k for prop in node.children if getattr(prop, "data", "") == "table_key"
                for k in prop.children]
        assert [m.id for m in t.match_fields] == list(range(1, len(keys) + 1))
        for m, k in zip(t.match_fields, keys, strict=True):
            expr, kind = k.children[0], str(k.children[1])
            assert annotations(k)["name"] == m.name
            assert P.MatchField.MatchType.Name(m.match_type).lower() == kind
            assert _key_bits(expr, types, params[control]) == m.bitwidth, m.name
    for a in info.actions:
        node = declared[a.preamble.name].node
        params_node = next((c for c in node.children if getattr(c, "data", "") == "params"),
                           None)
        p4_params = params_node.children if params_node is not None else []
        assert [p.name for p in a.params] == [str(p.children[-1]) for p in p4_params]
        for p, n in zip(a.params, p4_params, strict=True):
            assert types.bits(n.children[0]) == p.bitwidth
    for r in info.registers:
        node = declared[r.preamble.name].node
        t = node.children[1] if node.children[0].data == "annotations" else node.children[0]
        assert types.bits(t.children[1]) == r.type_spec.bitstring.bit.bitwidth




def _canonical(value: bytes) -> bool:
    """P4Runtime §8.3: the shortest string that fits the value (one byte for 0)."""
    return len(value) == max(1, (int.from_bytes(value, "big").bit_length() + 7) // 8)


def _check_match_rules(fm, kind: str, bits: int) -> None:
    """P4Runtime §9.1.1: don't-care fields are omitted, masked-off bits are zero."""
    def num(b: bytes) -> int:
        return int.from_bytes(b, "big")

    if kind == "ternary":
        value, mask = num(fm.ternary.value), num(fm.ternary.mask)
        assert mask != 0, (fm, "a wildcard ternary field must be omitted")
        assert value & ~mask == 0, (fm, "value bits outside the mask")
    elif kind == "lpm":
        assert 0 < fm.lpm.prefix_len <= bits, (fm, "a /0 field must be omitted")
        assert num(fm.lpm.value) & ((1 << (bits - fm.lpm.prefix_len)) - 1) == 0, fm
    elif kind == "range":
        low, high = num(fm.range.low), num(fm.range.high)
        assert low <= high, fm
        assert (low, high) != (0, (1 << bits) - 1), (fm, "a full range must be omitted")


def check_entries(files) -> list:
    """entries.json loads as P4Runtime Updates that only use ids and widths of the P4Info."""
    import json

    info = p4info_of(files)
    tables = {t.preamble.id: t for t in info.tables}
    actions = {a.preamble.id: a for a in info.actions}
    meters = {m.preamble.id: m for m in info.meters}
    out = []
    for doc in json.loads(files["entries.json"]):
        u = json_format.ParseDict(doc, R.Update())
        out.append(u)
        which = u.entity.WhichOneof("entity")
        if which == "table_entry":
            te = u.entity.table_entry
            t = tables[te.table_id]
            fields = {m.id: m for m in t.match_fields}
            for fm in te.match:
                mf = fields[fm.field_id]
                kind = fm.WhichOneof("field_match_type")
                assert kind == P.MatchField.MatchType.Name(mf.match_type).lower()
                for v in (getattr(fm, kind).ListFields()):
                    if isinstance(v[1], bytes):
                        assert int.from_bytes(v[1], "big") < 1 << mf.bitwidth
                        assert _canonical(v[1]), (fm, "not the shortest bytestring")
                _check_match_rules(fm, kind, mf.bitwidth)
            needs_priority = any(m.match_type in (P.MatchField.TERNARY, P.MatchField.RANGE)
                                 for m in t.match_fields)
            assert (te.priority > 0) == needs_priority
            action = te.action.action
            assert action.action_id in {r.id for r in t.action_refs}
            a = actions[action.action_id]
            assert [p.param_id for p in action.params] == [p.id for p in a.params]
            for p, spec in zip(action.params, a.params, strict=True):
                assert int.from_bytes(p.value, "big") < 1 << spec.bitwidth
        elif which == "meter_entry":
            me = u.entity.meter_entry
            assert me.index.index < meters[me.meter_id].size
            assert me.config.cir == me.config.pir > 0
        else:
            assert which == "packet_replication_engine_entry"
    return out
