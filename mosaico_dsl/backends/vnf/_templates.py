"""The Jinja2 environment of the VNF backends: templates hold target syntax, Python decides;
values enter the text through the quoting filters of :mod:`..quoting` (``q`` is YAML's)."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from ..._resources import codegen_dir
from ..quoting import FILTERS

__all__ = ["render"]


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
    env.filters.update(FILTERS)
    return env


def render(template: str, **context: Any) -> str:
    """Render ``codegen/vnf/<template>`` with ``context`` (missing names are errors)."""
    return _env().get_template(template).render(**context)
