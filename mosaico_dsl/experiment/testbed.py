"""Where the experiment's endpoints and switches live on this machine.

The local target realises every topology node as a network namespace (``local.json``,
:mod:`mosaico_dsl.backends.vnf.localplan`); an endpoint keeps its address on its one
device, and a P4 switch runs BMv2 in its namespace with its Thrift runtime port on that
namespace's loopback. This module reads both from the deployed plan and the build:
which namespace and device each endpoint sends from, and how to reach each switch's
runtime with the metrics map (:mod:`mosaico_dsl.backends.p4.metrics`) that says which
counters and registers hold its marks, drops and queue delays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from ..backends.p4.metrics import SwitchMetrics
from ..backends.vnf.localplan import LocalPlan
from ..ir import _ir as I

__all__ = ["Station", "SwitchAccess", "DualQPort", "Testbed", "testbed_of"]


@dataclass(frozen=True, slots=True)
class Station:
    """An endpoint on the testbed."""

    node: str
    namespace: str  # the real namespace name
    interface: str  # its device towards the network
    address: IPv4Address


@dataclass(frozen=True, slots=True)
class DualQPort:
    """A switch egress port a DualQ governs, named as the simulator names ports."""

    switch: str
    port: int
    name: str  # "s1->server"
    neighbour: str
    rate_bps: int  # the link's bandwidth capped by the switch's queue_rate
    rate_pps: int  # what BMv2 paces each queue at (queue_rate over 1500-byte packets)


@dataclass(frozen=True, slots=True)
class SwitchAccess:
    """A BMv2 switch's runtime, reachable from inside its namespace."""

    node: str
    namespace: str
    thrift_port: int
    metrics: SwitchMetrics = field(repr=False)
    dualq_ports: tuple[DualQPort, ...]


@dataclass(frozen=True)
class Testbed:
    stations: Mapping[str, Station]
    switches: Mapping[str, SwitchAccess]

    __test__ = False  # not a pytest test class, whatever its name

    def station(self, node: str) -> Station:
        return self.stations[node]

    @property
    def dualq_ports(self) -> tuple[DualQPort, ...]:
        return tuple(p for s in self.switches.values() for p in s.dualq_ports)


_MTU_BITS = 1500 * 8


def _port_name(topo: I.Topology, switch: str, port: int, multi: bool) -> tuple[str, I.Link]:
    link = next(lk for lk in topo.links_of(switch) if lk.end(switch).port == port)
    other = link.other(switch).node
    name = f"{switch}->{other}"
    return (f"{topo.name}:{name}" if multi else name), link


def testbed_of(program: I.Program, record: Mapping) -> Testbed:
    """The testbed a local deployment made, from its record in the state store (the
    realised ``local.json``, its namespace prefix, and each BMv2 switch's program — Thrift
    port — and metrics map). Switches running the Linux stand-in have no runtime here."""
    plan = LocalPlan.from_json(record["doc"], record["files"])
    prefix = record["prefix"]
    real = {ns.name: f"{prefix}{ns.name}" for ns in plan.namespaces}
    bmv2 = record.get("bmv2", {})
    stations: dict[str, Station] = {}
    switches: dict[str, SwitchAccess] = {}
    multi = len(program.topologies) > 1
    for topo in program.topologies:
        for ep in topo.endpoints:
            ns = plan.namespace_of(ep.name)
            stations[ep.name] = Station(ep.name, real[ns.name], ns.interfaces[0].name,
                                        IPv4Address(ep.ip))
        for sw in topo.switches:
            run = bmv2.get(sw.name)
            if run is None or not run.get("metrics"):
                continue
            metrics = SwitchMetrics.from_json(run["metrics"])
            ports = []
            for p in sorted({s.port for s in metrics.node.ce_marks if s.port is not None}):
                name, link = _port_name(topo, sw.name, p, multi)
                rate = link.bandwidth.bps
                if sw.queue_rate is not None:
                    rate = min(rate, sw.queue_rate.bps)
                pps = -(-sw.queue_rate.bps // _MTU_BITS) if sw.queue_rate is not None else 0
                ports.append(DualQPort(sw.name, p, name, link.other(sw.name).node, rate, pps))
            switches[sw.name] = SwitchAccess(sw.name, real[plan.namespace_of(sw.name).name],
                                             int(run["program"]["thrift_port"]), metrics,
                                             tuple(ports))
    return Testbed(stations, switches)
