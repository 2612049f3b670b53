"""The runtime: plan, diff, apply, observe and roll back a build on its targets.

Targets: P4 switches over P4Runtime (:class:`P4RuntimeTarget`), OpenStack hosts as Heat
stacks (:class:`OpenStackTarget`) or as OSM network services (:class:`OsmTarget`) and the
local Linux target (:class:`LocalTarget`). What
was deployed where lives in a SQLite :class:`StateStore`; :func:`deploy` applies only the
difference and rolls every target back if any step fails. :class:`ReferenceTarget` is a
conforming P4Runtime server without a data plane, for tests and dry runs.
"""

from .build import Build, load_build
from .deployment import DeployResult, apply, deploy, destroy, plan, status
from .local import LocalTarget
from .openstack import OpenStackTarget
from .osm import OsmTarget
from .p4runtime import Endpoint, P4RuntimeError, SwitchConnection, TlsConfig, connect
from .plan import Change, Plan, UnitPlan
from .server import ReferenceTarget, start_server
from .state import StateStore
from .status import Metrics, StatusRow
from .switches import P4RuntimeTarget

__all__ = [
    "Build", "load_build", "DeployResult", "apply", "deploy", "destroy", "plan", "status",
    "LocalTarget", "OpenStackTarget", "OsmTarget", "P4RuntimeTarget", "Endpoint", "P4RuntimeError",
    "SwitchConnection", "TlsConfig", "connect", "Change", "Plan", "UnitPlan",
    "ReferenceTarget", "start_server", "StateStore", "Metrics", "StatusRow",
]
