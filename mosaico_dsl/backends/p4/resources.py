"""What a generated program uses of its switch, checked against the declared capacity.

Memory (table entries, register bits, meter cells) is shared by the whole program, so it is
accumulated in program order and the first function that crosses the capacity is the one
named. Pipeline stages are an estimate: the classifier, plus the longest service segment's
functions at the stage cost the stdlib declares (segments are exclusive branches, so they
can share stages), plus nothing for egress beyond what DualQ's cost already counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..._json import dumps
from ...diagnostics import Diagnostic, Note, error
from ...ir import _ir as I
from .plan import P4_TARGET, Step, SwitchPlan

__all__ = ["Usage", "usage_of", "check_capacity", "resources_json"]


@dataclass(frozen=True, slots=True)
class Usage:
    tables: int = 0
    table_entries: int = 0  # declared table sizes (what the target reserves)
    entries_installed: int = 0
    registers: int = 0
    register_bits: int = 0
    counters: int = 0
    meters: int = 0  # meter cells
    stages: int = 0

    def __add__(self, o: Usage) -> Usage:
        mine, theirs = asdict(self), asdict(o)
        return Usage(**{k: mine[k] + theirs[k] for k in mine})


def _step_usage(plan: SwitchPlan, step: Step) -> Usage:
    option = step.instance.option(P4_TARGET)
    stages = option.cost.stages if option is not None and isinstance(option.cost, I.P4Cost) \
        else 1
    tables = step.tables
    regs = list(step.registers)
    counters = len(step.counters) + sum(1 for t in tables if t.counter)
    if step.template == "dualq":
        unit = next(u for u in plan.dualq_units if u.unit == step.c("unit"))
        if unit.instances[0] == step.instance.id:  # the unit's state is counted once
            regs += unit.registers
            counters += len(unit.counters)
    return Usage(
        tables=len(tables),
        table_entries=sum(t.size for t in tables),
        entries_installed=sum(1 for e in plan.entries if e.table in tables),
        registers=len(regs),
        register_bits=sum(r.size * r.bits for r in regs),
        counters=counters,
        meters=sum(m.size for m in step.meters),
        stages=max(1, stages),
    )


def _shared_usage(plan: SwitchPlan) -> Usage:
    t = plan.classifier.table
    return Usage(tables=1, table_entries=t.size,
                 entries_installed=sum(1 for e in plan.entries if e.table == t),
                 counters=2, stages=1)


def usage_of(plan: SwitchPlan) -> tuple[Usage, tuple[tuple[Step, Usage], ...], Usage]:
    """(shared, per step in program order, total)."""
    shared = _shared_usage(plan)
    per = tuple((s, _step_usage(plan, s)) for s in plan.steps)
    total = shared
    for _, u in per:
        total = total + u
    longest = max((sum(_step_usage(plan, s).stages for s in seg.steps)
                   for seg in plan.segments), default=0)
    total = Usage(**{**asdict(total), "stages": shared.stages + longest})
    return shared, per, total


_MEMORY = (("table_entries", "table entries"), ("register_bits", "register bits"),
           ("meters", "meter cells"))


def check_capacity(plan: SwitchPlan) -> tuple[Diagnostic, ...]:
    """E0901 for every resource the program overflows, naming the function that overflows."""
    cap = plan.switch.capacity
    shared, per, _ = usage_of(plan)
    name = plan.switch.name
    out: list[Diagnostic] = []
    for attr, label in _MEMORY:
        limit = getattr(cap, attr)
        used = getattr(shared, attr)
        if used > limit:
            out.append(error("E0901", f"the service classifier of `{name}` needs {used} "
                             f"{label}; the switch has {limit}", plan.switch.span,
                             f"raise `{attr}` of `{name}` or split the services"))
            continue
        for step, u in per:
            before, used = used, used + getattr(u, attr)
            if used > limit:
                fi = step.instance
                out.append(error(
                    "E0901", f"{fi.name} ({fi.id}) does not fit on `{name}`: it needs "
                    f"{getattr(u, attr)} {label}, {limit - before} are left of {limit}",
                    fi.span, f"raise `{attr}` of `{name}`, shrink the function (its `size` or "
                    "`buckets`), or place it elsewhere",
                    [Note(f"used before it: {before} (classifier {getattr(shared, attr)})")]))
                break
    for seg in plan.segments:
        used = shared.stages
        for step in seg.steps:
            u = _step_usage(plan, step)
            before, used = used, used + u.stages
            if used > cap.stages:
                fi = step.instance
                out.append(error(
                    "E0901", f"{fi.name} ({fi.id}) does not fit on `{name}`: the pipeline "
                    f"would need {used} stages, the switch has {cap.stages}", fi.span,
                    f"raise `stages` of `{name}` or move functions of `{seg.service}` to "
                    "another node", [Note(f"{before} stages before it in `{seg.service}`")]))
                break
    return tuple(dict.fromkeys(out))


def resources_json(plan: SwitchPlan) -> str:
    shared, per, total = usage_of(plan)
    cap = plan.switch.capacity
    doc = {
        "switch": plan.switch.name,
        "capacity": {"stages": cap.stages, "table_entries": cap.table_entries,
                     "register_bits": cap.register_bits, "meters": cap.meters},
        "used": asdict(total),
        "shared": {"classifier": asdict(shared)},
        "functions": [{"instance": s.instance.id, "function": s.instance.function,
                       **asdict(u)} for s, u in per],
        "notes": [
            "table_entries counts declared table sizes (what the target reserves); "
            "entries_installed counts the entries mosaico writes",
            "stages is an estimate: classifier + the longest service segment at the stdlib's "
            "declared stage cost",
        ],
    }
    return dumps(doc, 2) + "\n"
