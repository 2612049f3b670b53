"""OpenStack: one Heat (HOT) stack per VNF host, with the chain as networking-sfc resources.

The stack of host ``H``:

* a *transit* network and subnet per switch ``H`` is linked to — the wire between the
  switch and the cloud — with port security disabled: service traffic carries the
  clients' and servers' addresses, which anti-spoofing rules would drop; the switch's side
  is a port of its own (``<switch>_uplink``), the classifiers' logical source port;
* the management network is a *parameter* (an existing network), reached with SSH from
  ``mgmt_cidr`` through a security group;
* one ``OS::Nova::Server`` per VNF, its flavour sized from the function's ``VnfCost``
  (parameters naming existing flavours, or created by the stack with ``create_flavors``),
  its cloud-init ``user_data`` installing nftables/iproute2 and loading the VNF's ruleset
  (and ``tc.sh`` for queues) on the data interface, found by its Neutron MAC address;
* the chain: a ``PortPair`` per VNF (ingress = egress: a one-armed VNF routes the packets
  back to the switch), a ``PortPairGroup`` per VNF, ``FlowClassifier``s from the service's
  ``match`` (see :mod:`.classifier`) and one ``PortChain`` per segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from ipaddress import IPv4Network

from ...ir import _ir as I
from ._templates import render
from .classifier import FlowRule, classify
from .model import Segment, Vnf, VnfHost
from .vnfconfig import VnfConfig

__all__ = ["Flavor", "Transit", "HeatVnf", "HeatChain", "HostStack", "host_stack",
           "render_stack", "cloud_config", "destinations", "DATA_MAC"]

# Heat fills the data port's MAC address in here (str_replace); the OSM descriptors leave it
# empty and the VNF then takes its second interface.
DATA_MAC = "__MOSAICO_DATA_MAC__"
_TRANSIT_POOLS = ("100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16")
_DISK_GB = 4


@dataclass(frozen=True, slots=True)
class Flavor:
    ident: str  # the stack parameter naming an existing flavour
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int

    @property
    def resource(self) -> str:
        """The ``OS::Nova::Flavor`` created with ``create_flavors``: Heat keeps parameters
        and resources in one namespace and refuses a stack where two share a name."""
        return f"created_{self.ident}"


@dataclass(frozen=True, slots=True)
class Transit:
    ident: str
    switch: str
    port: int | None
    cidr: str
    prefixlen: int
    uplink_ip: str
    bandwidth_bps: int  # the topology link's


@dataclass(frozen=True, slots=True)
class HeatVnf:
    vnf: Vnf
    ident: str
    flavor: Flavor
    transit: Transit
    data_ip: str
    user_data: str
    description: str


@dataclass(frozen=True, slots=True)
class HeatClassifier:
    ident: str
    rule: FlowRule


@dataclass(frozen=True, slots=True)
class HeatChain:
    ident: str
    description: str
    vnfs: tuple[str, ...]  # HeatVnf idents, in chain order
    classifiers: tuple[HeatClassifier, ...]
    transit: Transit
    exact: bool


@dataclass(frozen=True, slots=True)
class HostStack:
    host: VnfHost
    flavors: tuple[Flavor, ...]
    transits: tuple[Transit, ...]
    vnfs: tuple[HeatVnf, ...]
    chains: tuple[HeatChain, ...]

    def transit_of(self, switch: str) -> Transit | None:
        return next((t for t in self.transits if t.switch == switch), None)


def _flavor(cost: I.VnfCost) -> Flavor:
    ram_mb = max(1, int(Fraction(cost.ram.bytes, 2**20)))
    name = f"mosaico.{cost.vcpu}c.{ram_mb}m"
    return Flavor(f"flavor_{cost.vcpu}c_{ram_mb}m", name, cost.vcpu, ram_mb, _DISK_GB)


def transits(host: VnfHost) -> tuple[Transit, ...]:
    """The transit subnets of ``host``: one /24 per switch link, from a private pool that
    holds no endpoint address."""
    topo = host.topology
    used = [e.ip for e in topo.endpoints]
    pool = next((IPv4Network(p) for p in _TRANSIT_POOLS
                 if not any(a in IPv4Network(p) for a in used)), IPv4Network("100.64.0.0/10"))
    nets = pool.subnets(new_prefix=24)
    out: list[Transit] = []
    for lk in topo.links_of(host.name):
        other = lk.other(host.name)
        if not isinstance(topo.node(other.node), I.Switch) or \
                any(t.switch == other.node for t in out):
            continue
        net = next(nets)
        out.append(Transit(f"transit_{other.node}", other.node, other.port, str(net),
                           net.prefixlen, str(net.network_address + 1), lk.bandwidth.bps))
    return tuple(out)


def cloud_config(cfg: VnfConfig, tc_script: str | None, data_ip: str, prefixlen: int,
                 gateway: str, destinations: tuple[str, ...], data_mac: str) -> str:
    """The cloud-init ``#cloud-config`` that turns a plain Linux VM into ``cfg.vnf``."""
    return render("heat/cloud-config.yaml.j2", cfg=cfg, vnf=cfg.vnf,
                  tc_script=tc_script if cfg.queue else None, data_ip=data_ip,
                  prefixlen=prefixlen, gateway=gateway, destinations=destinations,
                  data_mac=data_mac)


def destinations(topology: I.Topology, service: I.Service) -> tuple[str, ...]:
    """The prefixes a VNF of ``service`` routes back towards (its destination endpoint)."""
    ep = topology.node(service.destination)
    return (f"{ep.ip}/32",) if isinstance(ep, I.Endpoint) else ()


def host_stack(host: VnfHost, program: I.Program, configs: dict[str, VnfConfig],
               tc_script: str | None) -> HostStack:
    nets = transits(host)
    flavors: dict[str, Flavor] = {}
    vnfs: list[HeatVnf] = []
    for n, vnf in enumerate(host.vnfs):
        seg = next((s for s in host.segments if vnf in s.vnfs), None)
        transit = next((t for t in nets if seg is not None and t.switch == seg.entry),
                       nets[0] if nets else None)
        if transit is None:
            continue  # a host with no switch link carries no service traffic
        flavor = _flavor(vnf.cost)
        flavors.setdefault(flavor.ident, flavor)
        data_ip = str(IPv4Network(transit.cidr).network_address + 10 + n)
        user_data = cloud_config(configs[vnf.instance.id], tc_script, data_ip,
                                 transit.prefixlen, transit.uplink_ip,
                                 destinations(host.topology,
                                              program.service(vnf.service)), DATA_MAC)
        vnfs.append(HeatVnf(vnf, vnf.ident, flavor, transit, data_ip, user_data,
                            f"{vnf.instance.function} ({vnf.instance.id})"))
    chains = tuple(_chain(seg, program, host, nets) for seg in host.segments)
    return HostStack(host, tuple(sorted(flavors.values(), key=lambda f: f.ident)), nets,
                     tuple(vnfs), tuple(c for c in chains if c is not None))


def _chain(seg: Segment, program: I.Program, host: VnfHost,
           nets: tuple[Transit, ...]) -> HeatChain | None:
    transit = next((t for t in nets if t.switch == seg.entry), None)
    if transit is None:
        return None
    svc = program.service(seg.service)
    cls = classify(svc.match)
    ident = f"chain_{seg.ident}"
    classifiers = tuple(HeatClassifier(f"{ident}_fc{k}", r) for k, r in enumerate(cls.rules))
    return HeatChain(ident, f"service {svc.name} from {seg.entry}: "
                     + " -> ".join(v.name for v in seg.vnfs),
                     tuple(v.ident for v in seg.vnfs), classifiers, transit, cls.exact)


def render_stack(stack: HostStack) -> str:
    return render("heat/stack.yaml.j2", s=stack, host=stack.host, DATA_MAC=DATA_MAC)
