"""The P4Info of a generated program, built from the same plan the templates print.

Ids and names are the ones the program's ``@id``/``@name`` annotations carry, so p4c's
``--p4runtime-files`` output and this agree; aliases follow p4c (the shortest unique
dotted suffix of the name).
"""

from __future__ import annotations

from collections import Counter

from google.protobuf import text_format

from ...p4proto import p4i as P
from .plan import SwitchPlan

__all__ = ["build_p4info", "p4info_text"]

_MATCH = {"exact": P.MatchField.EXACT, "lpm": P.MatchField.LPM,
          "ternary": P.MatchField.TERNARY, "range": P.MatchField.RANGE}
_COUNTER_UNIT = {"packets": P.CounterSpec.PACKETS, "bytes": P.CounterSpec.BYTES,
                 "packets_and_bytes": P.CounterSpec.BOTH}


def _aliases(names: list[str]) -> dict[str, str]:
    """Each name's shortest dotted suffix that no other name ends with."""
    ending = Counter(".".join(parts[-n:]) for parts in (name.split(".") for name in names)
                     for n in range(1, len(parts) + 1))
    out = {}
    for name in names:
        parts = name.split(".")
        for n in range(1, len(parts) + 1):
            alias = ".".join(parts[-n:])
            if ending[alias] == 1:
                out[name] = alias
                break
        else:  # pragma: no cover - names are unique
            out[name] = name
    return out


def build_p4info(plan: SwitchPlan) -> P.P4Info:
    info = P.P4Info()
    info.pkg_info.arch = "v1model"
    names = ([t.fqname for t in plan.tables] + [a.fqname for a in plan.actions]
             + [c.fqname for c in plan.counters] + [d.fqname for d, _ in plan.direct_counters]
             + [m.fqname for m in plan.meters] + [r.fqname for r in plan.registers])
    alias = _aliases(names)

    def preamble(msg, obj) -> None:
        msg.preamble.id = obj.id
        msg.preamble.name = obj.fqname
        msg.preamble.alias = alias[obj.fqname]

    for t in plan.tables:
        msg = info.tables.add()
        preamble(msg, t)
        for i, k in enumerate(t.keys, start=1):
            mf = msg.match_fields.add()
            mf.id, mf.name, mf.bitwidth, mf.match_type = i, k.name, k.bits, _MATCH[k.kind]
        for a in t.all_actions:
            ref = msg.action_refs.add()
            ref.id = a.id
            if t.default_only(a):
                ref.scope = P.ActionRef.DEFAULT_ONLY
                ref.annotations.append("@defaultonly")
        if t.counter is not None:
            msg.direct_resource_ids.append(t.counter.id)
        msg.size = t.size
    for a in plan.actions:
        msg = info.actions.add()
        preamble(msg, a)
        for i, p in enumerate(a.params, start=1):
            param = msg.params.add()
            param.id, param.name, param.bitwidth = i, p.name, p.bits
    for c in plan.counters:
        msg = info.counters.add()
        preamble(msg, c)
        msg.spec.unit = _COUNTER_UNIT[c.unit]
        msg.size = c.size
    for d, table in plan.direct_counters:
        msg = info.direct_counters.add()
        preamble(msg, d)
        msg.spec.unit = _COUNTER_UNIT[d.unit]
        msg.direct_table_id = table.id
    for m in plan.meters:
        msg = info.meters.add()
        preamble(msg, m)
        msg.spec.unit = P.MeterSpec.PACKETS if m.unit == "packets" else P.MeterSpec.BYTES
        msg.size = m.size
    for r in plan.registers:
        msg = info.registers.add()
        preamble(msg, r)
        msg.type_spec.bitstring.bit.bitwidth = r.bits
        msg.size = r.size
    return info


def p4info_text(plan: SwitchPlan) -> str:
    """``p4info.txtpb``: the text format of :func:`build_p4info`."""
    return text_format.MessageToString(build_p4info(plan))
