"""ETSI OSM descriptors (SOL006): a VNFD per VNF, a PNFD per switch, an NSD per service.

Written against ETSI NFV-SOL006 v2.6.1 (YANG module ``etsi-nfv-descriptors``) in the form
OSM's information model reads it — SOL006 v2.6.1 plus OSM's augmentations, built with
pyang/pyangbind as OSM's ``osm/IM`` does (the tests load every descriptor into it): VNFD
files are ``vnfd: {...}``, NSD files ``nsd: {nsd: [...]}``; the VNF's cloud-init is a file
of its own (``cloud_init/<vnf>.cfg``) that the VNF package carries.

**No VNFFGD.** OSM's model has SOL006 v2.6.1's forwarding graph (``cpd-pool``,
``nfpd/rule``, ``position-desc-id/cp-profile-id/constituent-profile-elements {id,
cpd-id}``), but the NBI's onboarding check of a forwarding path reads
``nfp-position-element-id`` and ``match-attributes``, which that model lacks (a path with
positions is refused), and RO's instantiation reads ``position-desc-id[0]`` and its
``match-attributes`` (a graph without them fails the deployment). So no forwarding graph
that OSM accepts can be instantiated, and the NSD carries none: OSM deploys the VNFs, their
networks and addresses; the chain's steering is what is lost (docs/vnf.md says what to do).

Strict SOL006 where OSM allows it: ``vnfm-info``, the image's ``min-disk``, one
``network-interface-requirements`` per interface, a ``df`` on every virtual link, the
VNF profiles' ``flavour-id``/``instantiation-level``, the transit links' bit rates and an
``ns-instantiation-level``. Left out, on purpose: the image's ``checksum`` and ``size``
(mosaico names an image it does not ship; OSM's RO looks an image up *by* its checksum
when one is given, so a guessed one breaks the deployment).
"""

from __future__ import annotations

from fractions import Fraction

from ...ir import _ir as I
from ._templates import render
from .heat import HostStack, cloud_config, destinations
from .vnfconfig import VnfConfig

__all__ = ["render_vnfd", "render_pnfd", "render_nsd", "render_cloud_init", "pnfd_id",
           "nsd_id", "vnfd_path", "pnfd_path", "nsd_path", "cloud_init_path",
           "cloud_init_file", "IMAGE", "IMAGE_MIN_DISK_GB"]

# The image the VNFs boot (Heat's default ``image`` parameter too): Debian 12's generic cloud
# image, whose disk is 2 GiB.
IMAGE = "debian-12-genericcloud-amd64"
IMAGE_MIN_DISK_GB = 2


def vnfd_path(host: str, vnf_name: str) -> str:
    return f"{host}/vnfd-{vnf_name}.yaml"


def pnfd_path(host: str, switch: str) -> str:
    return f"{host}/pnfd-{switch}.yaml"


def nsd_path(host: str, service: str) -> str:
    return f"{host}/nsd-{service}.yaml"


def cloud_init_file(vnf_name: str) -> str:
    """The VDU's ``cloud-init-file``: OSM reads it from the package's ``cloud_init/``."""
    return f"{vnf_name}.cfg"


def cloud_init_path(host: str, vnf_name: str) -> str:
    return f"{host}/cloud_init/{cloud_init_file(vnf_name)}"


def pnfd_id(topology: I.Topology, switch: str) -> str:
    return f"mosaico-{topology.name}-{switch}"


def nsd_id(topology: I.Topology, service: str, host: str) -> str:
    return f"mosaico-{topology.name}-{service}-{host}"


def _gb(size_bytes: int) -> str:
    """SOL006 sizes are decimal64 gigabytes (OSM: GB = 2^30 bytes)."""
    f = Fraction(size_bytes, 2**30)
    text = f"{float(f):.6f}".rstrip("0").rstrip(".")
    return text if Fraction(text) == f else f"{float(f):.9f}"


def _mbps(bps: int) -> int:
    """SOL006 bit rates are whole Mbps; a link is never described as slower than it is
    rounded down to nothing."""
    return max(1, bps // 1_000_000)


def render_cloud_init(stack: HostStack, cfg: VnfConfig, tc_script: str | None) -> str:
    """The cloud-config of ``cfg.vnf`` without a MAC address (the VNF then takes its
    second interface as the data interface, which is OSM's interface ``position`` 2)."""
    hv = next(v for v in stack.vnfs if v.vnf == cfg.vnf)
    svc = next(s for s in stack.host.services if s.name == cfg.vnf.service)
    return cloud_config(cfg, tc_script, hv.data_ip, hv.transit.prefixlen,
                        hv.transit.uplink_ip, destinations(stack.host.topology, svc), "")


def render_vnfd(stack: HostStack, cfg: VnfConfig) -> str:
    hv = next(v for v in stack.vnfs if v.vnf == cfg.vnf)
    cost = cfg.vnf.cost
    return render("osm/vnfd.yaml.j2", v=hv, vnf=cfg.vnf, cost=cost,
                  ram_gb=_gb(cost.ram.bytes), image=IMAGE, min_disk=IMAGE_MIN_DISK_GB,
                  cloud_init=cloud_init_file(cfg.vnf.name))


def render_pnfd(topology: I.Topology, switch: I.Switch) -> str:
    numbered = sorted({lk.end(switch.name).port for lk in topology.links_of(switch.name)
                       if lk.end(switch.name).port is not None})
    ports = [f"port{p}" for p in numbered]
    if any(lk.end(switch.name).port is None for lk in topology.links_of(switch.name)):
        ports.append("port")
    return render("osm/pnfd.yaml.j2", id=pnfd_id(topology, switch.name), switch=switch,
                  ports=ports)


def render_nsd(stack: HostStack, service: I.Service) -> str:
    host = stack.host
    topo = host.topology
    segments = [s for s in host.segments if s.service == service.name]
    vnfs = [v for v in stack.vnfs if v.vnf.service == service.name]
    switches = sorted({s.entry for s in segments if isinstance(topo.node(s.entry), I.Switch)}
                      | {v.transit.switch for v in vnfs})
    transits = [(sw, pnfd_id(topo, sw), stack.transit_of(sw)) for sw in switches]
    chains = [f"from {s.entry}: " + " -> ".join(v.name for v in s.vnfs) for s in segments]
    return render("osm/nsd.yaml.j2", host=host, service=service, vnfs=vnfs,
                  switches=transits, chains=chains,
                  mbps={sw: _mbps(t.bandwidth_bps) for sw, _p, t in transits if t},
                  nsd_id=nsd_id(topo, service.name, host.name))
