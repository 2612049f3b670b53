"""The P4_16 backend for BMv2 (v1model): programs, P4Info, runtime entries, launch scripts.

``generate(compilation)`` is the ``p4`` entry of :data:`mosaico_dsl.compiler.BACKENDS`;
``plan_switches`` exposes the decisions (for tools and tests), and ``syntax`` the P4_16
syntax checker used on every generated program.
"""

from .backend import generate, switch_files
from .plan import SwitchPlan, plan_switches
from .syntax import P4SyntaxError, check_file, check_source

__all__ = ["generate", "switch_files", "SwitchPlan", "plan_switches", "P4SyntaxError",
           "check_file", "check_source"]
