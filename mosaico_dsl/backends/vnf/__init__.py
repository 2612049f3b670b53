"""VNF backends: OpenStack Heat + networking-sfc, ETSI OSM SOL006, Linux nftables/tc, and
the local target (the whole topology in network namespaces on one machine).

``generate`` is the ``vnf`` entry of ``compiler.BACKENDS``. The runtime realises the local
target with :func:`apply` / :func:`destroy` on a plan from :func:`load_plan` (or
:func:`plan_local`), changes a realisation into another with :func:`diff` and
:func:`apply_changes` (only what differs), finds drift with :func:`inspect`, and reads the
data plane's named counters with :func:`read_counters`. ``apply(plan,
switches=switch_programs(build))`` runs each switch's P4 program on BMv2 instead of the
Linux stand-in.
"""

from .backend import generate
from .local import (
    Changes,
    Deployment,
    Drift,
    LocalTargetError,
    Step,
    apply,
    apply_changes,
    destroy,
    diff,
    inspect,
    load_plan,
    read_counters,
    reload_ruleset,
    switch_programs,
)
from .localplan import LocalPlan, LocalPlanError, plan_local
from .localswitch import SwitchProgram
from .schema import validate

__all__ = ["generate", "LocalPlan", "LocalPlanError", "plan_local", "load_plan", "apply",
           "destroy", "read_counters", "Deployment", "LocalTargetError", "validate", "diff",
           "apply_changes", "inspect", "reload_ruleset", "Changes", "Step", "Drift",
           "switch_programs", "SwitchProgram"]
