"""The IR's stable JSON form (``mosaico compile --emit ir``).

Keys are sorted and values tagged by type (see :func:`values.value_to_json`); source spans
are left out so that a program built with the Python API and the same program parsed from
text serialise identically.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .._json import dumps
from ..units import Quantity
from ._ir import Args, Program
from .predicate import And, Cmp, Not, Or
from .values import AclRule, MacAddress, NodeRef, ValueRange, ValueSet, value_to_json

__all__ = ["IR_FORMAT_VERSION", "program_to_json", "to_jsonable"]

IR_FORMAT_VERSION = 1
_VALUE_TYPES = (Quantity, AclRule, MacAddress, NodeRef, ValueRange, ValueSet)


def to_jsonable(obj: Any) -> Any:
    """IR node → JSON-ready data; leaves (typed values) go through ``value_to_json``."""
    if isinstance(obj, (Cmp, And, Or, Not)):
        return obj.to_json()
    if isinstance(obj, Args):
        return {k: to_jsonable(v) for k, v in obj.items}
    if isinstance(obj, _VALUE_TYPES):
        return value_to_json(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_jsonable(getattr(obj, f.name))
               for f in dataclasses.fields(obj)
               if f.name != "span" and not f.name.startswith("_")}
        kind = getattr(type(obj), "kind", None)  # Switch/Host/Endpoint say what they are
        if isinstance(kind, str) and "kind" not in out:
            out["kind"] = kind
        return out
    if isinstance(obj, tuple):
        return [to_jsonable(i) for i in obj]
    return value_to_json(obj)


def program_to_json(program: Program) -> str:
    doc = {"mosaico_ir": IR_FORMAT_VERSION, **to_jsonable(program)}
    return dumps(doc, 2) + "\n"
