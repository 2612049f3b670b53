"""Jinja2 rendering of plans: the templates in ``codegen/`` hold all P4 and shell syntax;
values enter them through the quoting filters of :mod:`..quoting`."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from ipaddress import IPv4Address

import jinja2

from ..._resources import codegen_dir
from ..._version import __version__
from ..quoting import FILTERS
from .plan import SwitchPlan

__all__ = ["environment", "render_program", "fragments", "Fragments"]


def _mac(value: int) -> str:
    return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))


def _per_us(pps: int) -> str:
    """BMv2 meter rates are per microsecond."""
    return format(Decimal(pps) / Decimal(10**6), "f")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(codegen_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(FILTERS)
    env.filters.update(ipv4=lambda v: str(IPv4Address(v)), mac=_mac, per_us=_per_us)
    return env


def _module(name: str):
    return environment().get_template(name).module


@dataclass(frozen=True)
class Fragments:
    """What each function step and DualQ unit contributes to a program (its declarations,
    and its statements in the apply blocks), rendered by its own template."""

    step_declarations: list[str]
    step_applications: dict[str, str]
    unit_shared: list[str]
    unit_arrivals: list[str]
    unit_declarations: list[str]
    unit_applications: list[str]

    def all(self) -> list[str]:
        return [*self.step_declarations, *self.step_applications.values(),
                *self.unit_shared, *self.unit_arrivals,
                *self.unit_declarations, *self.unit_applications]


def fragments(plan: SwitchPlan) -> Fragments:
    steps = plan.steps
    functions = {s.template: _module(f"p4/v1model/functions/{s.template}.p4.j2") for s in steps}
    egress = _module("p4/v1model/dualq_egress.p4.j2")
    return Fragments([str(functions[s.template].declare(s)) for s in steps],
                     {s.prefix: str(functions[s.template].apply(s)) for s in steps},
                     [str(egress.shared(u)) for u in plan.dualq_units],
                     [str(egress.arrive(u)) for u in plan.dualq_units],
                     [str(egress.declare(u)) for u in plan.dualq_units],
                     [str(egress.apply(u)) for u in plan.dualq_units])


def render_program(plan: SwitchPlan, source: str, parts: Fragments | None = None) -> str:
    """The switch's ``<switch>.p4`` (``parts``: its :func:`fragments`, if already made)."""
    parts = parts or fragments(plan)
    return environment().get_template("p4/v1model/program.p4.j2").render(
        plan=plan,
        version=__version__,
        source=source,
        step_declarations=parts.step_declarations,
        step_applications=parts.step_applications,
        unit_shared=parts.unit_shared,
        unit_arrivals=parts.unit_arrivals,
        unit_declarations=parts.unit_declarations,
        unit_applications=parts.unit_applications,
    )
