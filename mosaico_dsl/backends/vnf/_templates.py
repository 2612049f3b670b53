"""The Jinja2 environment of the VNF backends: templates hold target syntax, Python decides."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jinja2

from ..._resources import codegen_dir

__all__ = ["render"]


def _yaml_str(value: Any) -> str:
    """A YAML scalar for any string: JSON strings are valid YAML flow scalars."""
    return json.dumps(str(value), ensure_ascii=False)


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(codegen_dir() / "vnf")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["q"] = _yaml_str
    return env


def render(template: str, **context: Any) -> str:
    """Render ``codegen/vnf/<template>`` with ``context`` (missing names are errors)."""
    return _env().get_template(template).render(**context)
