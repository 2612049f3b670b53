"""The BMv2 launch script: ports, queue rates and depths derived from the topology.

BMv2 paces egress queues in packets per second, so a bandwidth is converted with an assumed
packet size (:data:`PACKET_BYTES`, stated in the script); depths are the queue function's
buffer (a time) at that packet rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._version import __version__
from ...ir import _ir as I
from .plan import SwitchPlan
from .render import environment

__all__ = ["PACKET_BYTES", "QueueSetting", "queue_settings", "run_script"]

PACKET_BYTES = 1500  # MTU-sized packets: what bulk TCP transfers send


@dataclass(frozen=True, slots=True)
class QueueSetting:
    port: int
    rate_pps: int
    depth: int | None
    rate_comment: str
    depth_comment: str


def _pps(bps: int) -> int:
    return max(1, -(-bps // (8 * PACKET_BYTES)))


def _links(plan: SwitchPlan) -> list[tuple[int, I.Link]]:
    name = plan.switch.name
    out = [(lk.end(name).port, lk) for lk in plan.topology.links_of(name)]
    return sorted((p, lk) for p, lk in out if p is not None)


def queue_settings(plan: SwitchPlan) -> tuple[QueueSetting, ...]:
    sw = plan.switch
    buffers = dict(plan.queue_buffers)
    out = []
    for port, link in _links(plan):
        bps = link.bandwidth.bps
        rate_comment = f"{link.bandwidth} link"
        if sw.queue_rate is not None:
            bps = sw.queue_rate.bps
            rate_comment = f"switch queue_rate {sw.queue_rate}"
        pps = _pps(bps)
        depth, depth_comment = None, ""
        if sw.queue_depth is not None:
            depth, depth_comment = sw.queue_depth, "switch queue_depth"
        elif port in buffers:
            us = buffers[port]
            depth = max(1, us * pps // 1_000_000)
            depth_comment = f"{us} us of buffer at {pps} pps"
        out.append(QueueSetting(port, pps, depth, f"{rate_comment} / {PACKET_BYTES} B",
                                depth_comment))
    return tuple(out)


def run_script(plan: SwitchPlan) -> str:
    sw = plan.switch
    return environment().get_template("bmv2/run-bmv2.sh.j2").render(
        plan=plan, version=__version__, links=_links(plan), packet_bytes=PACKET_BYTES,
        grpc_address=sw.p4runtime or "0.0.0.0:9559",
        rate_source="the switch's queue_rate" if sw.queue_rate is not None else "the link's")
