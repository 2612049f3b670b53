"""Jinja2 rendering of plans: the templates in ``codegen/`` hold all P4 and shell syntax."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from ipaddress import IPv4Address

import jinja2

from ..._resources import codegen_dir
from ..._version import __version__
from .plan import SwitchPlan

__all__ = ["environment", "render_program"]


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
    env.filters.update(ipv4=lambda v: str(IPv4Address(v)), mac=_mac, per_us=_per_us)
    return env


def _module(name: str):
    return environment().get_template(name).module


def render_program(plan: SwitchPlan, source: str) -> str:
    """The switch's ``<switch>.p4``."""
    env = environment()
    steps = plan.steps
    functions = {s.template: _module(f"p4/v1model/functions/{s.template}.p4.j2") for s in steps}
    egress = _module("p4/v1model/dualq_egress.p4.j2")
    return env.get_template("p4/v1model/program.p4.j2").render(
        plan=plan,
        version=__version__,
        source=source,
        step_declarations=[str(functions[s.template].declare(s)) for s in steps],
        step_applications={s.prefix: str(functions[s.template].apply(s)) for s in steps},
        unit_shared=[str(egress.shared(u)) for u in plan.dualq_units],
        unit_arrivals=[str(egress.arrive(u)) for u in plan.dualq_units],
        unit_declarations=[str(egress.declare(u)) for u in plan.dualq_units],
        unit_applications=[str(egress.apply(u)) for u in plan.dualq_units],
    )
