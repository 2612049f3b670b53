"""Plans: what a deploy (or destroy) would change, per target and unit, and drift.

Each target computes a :class:`UnitPlan` by comparing three things: what the build wants,
what the state store recorded at the last deploy, and what the device holds *now*. The
changes turn the device into the build; *drift* lists where the device departed from the
record behind our back (an entry modified out of band, a stack deleted by hand), so an
operator sees it before it is overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Change", "UnitPlan", "Plan", "ADD", "MODIFY", "DELETE", "REPLACE"]

ADD, MODIFY, DELETE, REPLACE = "+", "~", "-", "!"
_WORD = {ADD: "add", MODIFY: "modify", DELETE: "delete", REPLACE: "replace"}


@dataclass(frozen=True, slots=True)
class Change:
    op: str  # ADD | MODIFY | DELETE | REPLACE
    what: str  # one readable line: the entry, the stack, the namespace
    before: str | None = None  # MODIFY: the value being replaced
    drift: str | None = None  # why the device differs from the record, if it does

    def render(self) -> list[str]:
        lines = [f"  {self.op} {self.what}"]
        if self.before is not None:
            lines.append(f"      was: {self.before}")
        if self.drift:
            lines.append(f"      drift: {self.drift}")
        return lines


@dataclass(frozen=True)
class UnitPlan:
    """The plan for one unit of one target: a switch, an OpenStack host, the local target."""

    target: str  # p4runtime | openstack | osm | local
    unit: str
    changes: tuple[Change, ...]
    drift: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()
    # What apply needs (updates with their inverses, templates, ...): target-specific.
    payload: Any = field(default=None, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, int]:
        out = {ADD: 0, MODIFY: 0, DELETE: 0, REPLACE: 0}
        for c in self.changes:
            out[c.op] += 1
        return out

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{n} to {_WORD[op]}" for op, n in c.items() if n]
        return ", ".join(parts) if parts else "no changes"


@dataclass(frozen=True)
class Plan:
    units: tuple[UnitPlan, ...]

    @property
    def empty(self) -> bool:
        return all(u.empty for u in self.units)

    @property
    def drift(self) -> tuple[tuple[UnitPlan, Change], ...]:
        return tuple((u, d) for u in self.units for d in u.drift)

    def render(self, limit: int = 200, units: int = 10, few: int = 10) -> str:
        """The plan as a readable diff (``+`` add, ``~`` modify, ``-`` delete, ``!`` replace),
        drift first so it is not missed. Beyond ``units`` units (a thousand switches), the
        first ``units`` with something to say are shown, ``few`` items each, and the others
        counted."""
        out: list[str] = []
        shown = list(self.units)
        if len(shown) > units:
            limit = min(limit, few)
            telling = [u for u in shown if u.changes or u.drift]
            shown = telling[:units]
            ids = {id(u) for u in shown}
            rest = [u for u in self.units if id(u) not in ids]
        else:
            rest = []
        for u in shown:
            out.append(f"{u.target} {u.unit}: {u.summary()}")
            for n in u.notes:
                out.append(f"  note: {n}")
            if u.drift:
                out.append(f"  drift since the last deploy ({len(u.drift)}):")
                out.extend("  " + line for d in u.drift[:limit] for line in d.render())
            for c in u.changes[:limit]:
                out.extend(c.render())
            if len(u.changes) > limit:
                out.append(f"  ... and {len(u.changes) - limit} more")
        if rest:
            changed = [u for u in rest if u.changes]
            counts = {op: sum(u.counts()[op] for u in changed) for op in _WORD}
            what = ", ".join(f"{n} to {_WORD[op]}" for op, n in counts.items() if n)
            out.append(f"... and {len(rest)} more units: {len(changed)} with changes"
                       + (f" ({what})" if what else "")
                       + f", {len(rest) - len(changed)} unchanged"
                       + " (`mosaico plan --format json` lists every unit)")
        total = sum(len(u.changes) for u in self.units)
        drift = sum(len(u.drift) for u in self.units)
        out.append(f"Plan: {total} change{'s' if total != 1 else ''} on "
                   f"{sum(not u.empty for u in self.units)} of {len(self.units)} units"
                   + (f"; drift on {drift} item{'s' if drift != 1 else ''}" if drift else ""))
        return "\n".join(out)

    def to_json(self) -> dict:
        return {"units": [{
            "target": u.target, "unit": u.unit, "summary": u.summary(), "notes": list(u.notes),
            "changes": [{"op": _WORD[c.op], "what": c.what, "before": c.before,
                         "drift": c.drift} for c in u.changes],
            "drift": [{"op": _WORD[c.op], "what": c.what, "before": c.before,
                       "drift": c.drift} for c in u.drift],
        } for u in self.units]}


def merge(plans: Sequence[UnitPlan]) -> Plan:
    return Plan(tuple(plans))
