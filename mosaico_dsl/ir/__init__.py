"""The intermediate representation: what the checker produces and every later pass reads."""

from ._ir import *  # noqa: F403
from ._ir import __all__ as _ir_all
from .predicate import And, Cmp, Field, Not, Or, Predicate, evaluate, to_dnf
from .serialize import program_to_json
from .values import AclRule, MacAddress, NodeRef, ValueRange, ValueSet, format_value

__all__ = [*_ir_all, "And", "Cmp", "Field", "Not", "Or", "Predicate", "evaluate", "to_dnf",
           "program_to_json", "AclRule", "MacAddress", "NodeRef", "ValueRange", "ValueSet",
           "format_value"]
