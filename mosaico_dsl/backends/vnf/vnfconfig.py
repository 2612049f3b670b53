"""The Linux configuration of each VNF: its nftables ruleset and its host's ``tc.sh``.

One place computes them, so the files the backend writes, the cloud-init ``user_data`` in
the Heat stack and the local target load byte-identical configurations.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...ir import _ir as I
from ...place import Placement
from .model import Vnf, VnfHost
from .nftables import Ruleset, render_ruleset, vnf_ruleset
from .tc import QUEUE_FUNCTIONS, bottleneck, queue_config, render_tc

__all__ = ["VnfConfig", "vnf_config", "host_tc", "nft_path", "tc_path"]


@dataclass(frozen=True, slots=True)
class VnfConfig:
    vnf: Vnf
    ruleset: Ruleset
    nft: str  # the ruleset text
    queue: bool  # configured by tc.sh too


def nft_path(vnf: Vnf) -> str:
    return f"{vnf.host}/{vnf.name}.nft"


def tc_path(host: str) -> str:
    return f"{host}/tc.sh"


def vnf_config(vnf: Vnf, program: I.Program) -> VnfConfig:
    """Raises :class:`.nftables.Unsupported` for a function Linux cannot run."""
    service = program.service(vnf.service)
    topology = program.topology(service.topology)
    rs = vnf_ruleset(vnf.instance, service, topology, vnf.name)
    return VnfConfig(vnf, rs, render_ruleset(rs), vnf.instance.function in QUEUE_FUNCTIONS)


def host_tc(host: VnfHost, placement: Placement) -> str | None:
    """``tc.sh`` for the queueing VNFs of ``host`` (None when it runs none)."""
    queues = tuple(
        queue_config(v.instance, v.name, bottleneck(host.topology, placement, v.instance.id))
        for v in host.vnfs if v.instance.function in QUEUE_FUNCTIONS)
    if not queues:
        return None
    return render_tc(f"Queueing VNFs on host {host.name}", queues)
