"""The checked, resolved program every later pass reads.

All values are typed and in base units; names are resolved (functions are fully qualified,
composite functions are expanded into their primitive steps, defaults are filled in, cost
models are evaluated for the actual arguments). Nothing here refers to the AST except
source spans, kept so that placement, backends and the runtime can point at user code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from ..diagnostics import Span
from ..units import Bandwidth, Size, Time
from .predicate import Predicate
from .values import MacAddress, Value

__all__ = [
    "Args", "P4Capacity", "Switch", "Host", "Endpoint", "NodeIR", "PortRef", "Link", "Topology",
    "P4Cost", "VnfCost", "TargetOption", "FunctionInstance", "Requirements", "Service",
    "Program", "P4_FAMILY", "VNF_FAMILY", "target_family",
]

P4_FAMILY = "p4"
VNF_FAMILY = "vnf"


def target_family(target: str) -> str:
    """``p4.v1model`` → ``p4``; every other target (``linux``) runs as a VNF."""
    return P4_FAMILY if target.split(".")[0] == "p4" else VNF_FAMILY


def _span() -> Any:
    return field(default=None, compare=False, repr=False, kw_only=True)


def _memo() -> Any:
    """A private, lazily built lookup index: not a field of the value (not compared,
    printed, serialised or passed to the constructor)."""
    return field(default=None, init=False, compare=False, repr=False, hash=False)


def _indexed(obj: Any, build: Any) -> Any:
    """``obj._index``, built by ``build(obj)`` on first use: name lookups in programs of
    thousands of nodes and services stay O(1) instead of a scan per lookup."""
    index = obj._index
    if index is None:
        index = build(obj)
        object.__setattr__(obj, "_index", index)
    return index


@dataclass(frozen=True, slots=True)
class Args(Mapping[str, Value]):
    """Immutable, ordered argument mapping (parameter order of the function signature)."""

    items: tuple[tuple[str, Value], ...]

    def __getitem__(self, key: str) -> Value:
        for k, v in self.items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __hash__(self) -> int:
        return hash(self.items)


# --------------------------------------------------------------------------- topology


@dataclass(frozen=True, slots=True)
class P4Capacity:
    """What one P4 switch offers to functions placed on it."""

    stages: int
    table_entries: int
    register_bits: int
    meters: int


@dataclass(frozen=True, slots=True)
class Switch:
    name: str
    target: str  # "bmv2"
    arch: str  # "v1model"
    ports: int
    priority_queues: int
    queue_rate: Bandwidth | None
    queue_depth: int | None
    capacity: P4Capacity
    trusted: bool
    p4runtime: str | None
    device_id: int
    thrift_port: int
    span: Span | None = _span()

    kind = "switch"

    @property
    def p4_target(self) -> str:
        return f"p4.{self.arch}"


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    platform: str  # "openstack" | "linux"
    vcpus: int
    ram: Size
    trusted: bool
    cloud: str | None
    image: str | None
    span: Span | None = _span()

    kind = "host"


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    ip: IPv4Address
    mac: MacAddress | None
    trusted: bool
    span: Span | None = _span()

    kind = "endpoint"


NodeIR = Switch | Host | Endpoint


@dataclass(frozen=True, slots=True, order=True)
class PortRef:
    node: str
    port: int | None = None

    def __str__(self) -> str:
        return self.node if self.port is None else f"{self.node}.{self.port}"


@dataclass(frozen=True, slots=True)
class Link:
    a: PortRef
    b: PortRef
    bandwidth: Bandwidth
    delay: Time
    span: Span | None = _span()

    def other(self, node: str) -> PortRef:
        return self.b if self.a.node == node else self.a

    def end(self, node: str) -> PortRef:
        return self.a if self.a.node == node else self.b


@dataclass(frozen=True, slots=True)
class Topology:
    name: str
    switches: tuple[Switch, ...]
    hosts: tuple[Host, ...]
    endpoints: tuple[Endpoint, ...]
    links: tuple[Link, ...]
    span: Span | None = _span()
    _index: _TopologyIndex | None = _memo()

    def __repr__(self) -> str:  # a summary: the full dataclass dump runs to pages
        return f"<Topology {self.name}: {len(self.nodes)} nodes, {len(self.links)} links>"

    @property
    def nodes(self) -> tuple[NodeIR, ...]:
        return _indexed(self, _TopologyIndex.of).nodes

    def node(self, name: str) -> NodeIR:
        n = _indexed(self, _TopologyIndex.of).by_name.get(name)
        if n is None:
            raise KeyError(f"topology {self.name} has no node {name!r}")
        return n

    def has_node(self, name: str) -> bool:
        return name in _indexed(self, _TopologyIndex.of).by_name

    def links_of(self, name: str) -> tuple[Link, ...]:
        return _indexed(self, _TopologyIndex.of).links_of.get(name, ())

    def link_between(self, a: str, b: str) -> Link | None:
        """The first link declared between ``a`` and ``b`` (None if they are not linked)."""
        return _indexed(self, _TopologyIndex.of).between.get((a, b))


@dataclass(frozen=True, slots=True)
class _TopologyIndex:
    nodes: tuple[NodeIR, ...]
    by_name: dict[str, NodeIR]  # the first node of each name, as a scan would find it
    links_of: dict[str, tuple[Link, ...]]
    between: dict[tuple[str, str], Link]  # both directions; the first declared link

    @staticmethod
    def of(t: Topology) -> _TopologyIndex:
        nodes = (*t.switches, *t.hosts, *t.endpoints)
        by_name: dict[str, NodeIR] = {}
        for n in nodes:
            by_name.setdefault(n.name, n)
        links_of: dict[str, list[Link]] = {}
        between: dict[tuple[str, str], Link] = {}
        for lk in t.links:
            a, b = lk.a.node, lk.b.node
            links_of.setdefault(a, []).append(lk)
            if b != a:
                links_of.setdefault(b, []).append(lk)
            between.setdefault((a, b), lk)
            between.setdefault((b, a), lk)
        return _TopologyIndex(nodes, by_name, {k: tuple(v) for k, v in links_of.items()},
                              between)


# --------------------------------------------------------------------------- functions


@dataclass(frozen=True, slots=True)
class P4Cost:
    tables: int = 0
    entries: int = 0
    registers: int = 0
    register_bits: int = 0
    counters: int = 0
    meters: int = 0
    stages: int = 0


@dataclass(frozen=True, slots=True)
class VnfCost:
    vcpu: int = 1
    ram: Size = Size(512 * 2**20)


@dataclass(frozen=True, slots=True)
class TargetOption:
    """One way to run a function: the target, what it costs there, how long it takes."""

    target: str  # "p4.v1model" | "linux"
    cost: P4Cost | VnfCost
    latency: Time

    @property
    def family(self) -> str:
        return target_family(self.target)


@dataclass(frozen=True, slots=True)
class FunctionInstance:
    """One step of a service chain, with every parameter resolved.

    ``id`` is unique in the program (``web_ll/2`` is the third step of ``web_ll``);
    ``origin`` names the composite functions this step was expanded from, outermost first.
    """

    id: str
    service: str
    index: int
    function: str  # fully qualified: std.l4s.DualQ
    kind: str  # filter | queue | forward | monitor | ...
    args: Args
    targets: tuple[TargetOption, ...]
    pin: str | None = None
    place: str | None = None  # "p4" | "vnf": a hard family constraint written by the user
    prefer: str | None = None  # "p4" | "vnf": a soft preference
    queue_target: Time | None = None  # queueing functions: the delay the queue aims for
    origin: tuple[str, ...] = ()
    span: Span | None = _span()

    @property
    def name(self) -> str:
        return self.function.rsplit(".", 1)[-1]

    def option(self, target: str) -> TargetOption | None:
        for t in self.targets:
            if t.target == target:
                return t
        return None

    def families(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.family for t in self.targets))


# --------------------------------------------------------------------------- services


@dataclass(frozen=True, slots=True)
class Requirements:
    latency: Time | None = None
    bandwidth: Bandwidth | None = None
    secure: bool = False


@dataclass(frozen=True, slots=True)
class Service:
    """One direction of traffic: ``match``ed packets from ``sources`` to ``destination``.

    ``replies``: the reverse 5-tuple of that traffic (``ir.reply``) returns to its source
    along the reverse of the route, through no function (``reply forward``, the default);
    False (``reply drop``) leaves replies to the drop of unmatched traffic.
    """

    name: str
    topology: str
    match: Predicate
    sources: tuple[str, ...]  # endpoint names whose traffic the service carries
    destination: str  # the endpoint the chain forwards to
    requirements: Requirements
    chain: tuple[FunctionInstance, ...]
    replies: bool = True
    span: Span | None = _span()

    @property
    def queueing(self) -> FunctionInstance | None:
        return next((f for f in self.chain if f.kind == "queue"), None)


@dataclass(frozen=True, slots=True)
class Program:
    topologies: tuple[Topology, ...]
    services: tuple[Service, ...]
    span: Span | None = _span()
    _index: _ProgramIndex | None = _memo()

    def __repr__(self) -> str:
        names = ", ".join(s.name for s in self.services[:5]) + \
            (", …" if len(self.services) > 5 else "")
        n = len(self.services)
        topologies = ", ".join(f"{t.name} ({len(t.nodes)} nodes, {len(t.links)} links)"
                               for t in self.topologies)
        return (f"<Program: {n} service{'s' * (n != 1)}{f' ({names})' if n else ''} on "
                f"{topologies or 'no topology'}>")

    def topology(self, name: str) -> Topology:
        t = _indexed(self, _ProgramIndex.of).topologies.get(name)
        if t is None:
            raise KeyError(f"no topology {name!r}")
        return t

    def service(self, name: str) -> Service:
        s = _indexed(self, _ProgramIndex.of).services.get(name)
        if s is None:
            raise KeyError(f"no service {name!r}")
        return s

    def instances(self) -> tuple[FunctionInstance, ...]:
        return _indexed(self, _ProgramIndex.of).instances

    def instance(self, instance_id: str) -> FunctionInstance:
        return _indexed(self, _ProgramIndex.of).by_id[instance_id]


@dataclass(frozen=True, slots=True)
class _ProgramIndex:
    topologies: dict[str, Topology]  # the first of each name, as a scan would find it
    services: dict[str, Service]
    instances: tuple[FunctionInstance, ...]
    by_id: dict[str, FunctionInstance]

    @staticmethod
    def of(p: Program) -> _ProgramIndex:
        topologies: dict[str, Topology] = {}
        for t in p.topologies:
            topologies.setdefault(t.name, t)
        services: dict[str, Service] = {}
        for s in p.services:
            services.setdefault(s.name, s)
        instances = tuple(f for s in p.services for f in s.chain)
        by_id: dict[str, FunctionInstance] = {}
        for f in instances:
            by_id.setdefault(f.id, f)
        return _ProgramIndex(topologies, services, instances, by_id)
