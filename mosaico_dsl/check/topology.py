"""Topology declarations → :class:`ir.Topology`, with typed, defaulted node attributes.

Defaults are chosen for safety: hosts and endpoints are untrusted unless declared
``trusted: true`` (mitigations may only run on trusted nodes), switches are the operator's
own and trusted by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from ..diagnostics import Diagnostic, Note, error, warning
from ..ir import _ir as I
from ..ir.values import ValueRange
from ..lang import _ast as A
from ..units import Size, Time
from . import types as T
from .addresses import endpoint_ip_problem, endpoint_mac_problem, hostport_problem, text_problem
from .evaluate import Evaluator, did_you_mean
from .limits import HOST_RAM, LINK_BANDWIDTH, LINK_DELAY, Limit

__all__ = ["AttrSpec", "NODE_SCHEMAS", "LINK_SCHEMA", "SWITCH_TARGETS", "HOST_PLATFORMS",
           "check_topology"]

Report = Callable[[Diagnostic], None]


@dataclass(frozen=True)
class AttrSpec:
    name: str
    type: T.Type
    default: Any = None
    required: bool = False
    range: ValueRange | Limit | None = None
    doc: str = ""


SWITCH_TARGETS = {"bmv2": "v1model"}
HOST_PLATFORMS = ("openstack", "linux")


def _specs(*specs: AttrSpec) -> dict[str, AttrSpec]:
    return {s.name: s for s in specs}


NODE_SCHEMAS: dict[str, dict[str, AttrSpec]] = {
    "switch": _specs(
        AttrSpec("ports", T.INT, 8, range=ValueRange(1, 512), doc="number of ports, 0..N-1"),
        AttrSpec("priority_queues", T.INT, 2, range=ValueRange(1, 8),
                 doc="egress priority queues (BMv2 --priority-queues)"),
        AttrSpec("queue_rate", T.BANDWIDTH, None, range=LINK_BANDWIDTH,
                 doc="egress queue rate; default: link rate"),
        AttrSpec("queue_depth", T.INT, None, range=ValueRange(1, 1_000_000),
                 doc="egress queue depth in packets; default: the DualQ buffer"),
        AttrSpec("stages", T.INT, 32, range=ValueRange(1, 1024),
                 doc="pipeline stages available to functions"),
        AttrSpec("table_entries", T.INT, 65536, range=ValueRange(1, 1 << 30),
                 doc="table entries available to functions"),
        AttrSpec("register_bits", T.INT, 1 << 24, range=ValueRange(0, 1 << 40),
                 doc="register memory in bits"),
        AttrSpec("meters", T.INT, 65536, range=ValueRange(0, 1 << 24), doc="meter cells"),
        AttrSpec("trusted", T.BOOL, True, doc="may run mitigation functions"),
        AttrSpec("p4runtime", T.STRING, None, doc="P4Runtime address HOST:PORT"),
        AttrSpec("device_id", T.INT, 1, range=ValueRange(0, 1 << 32), doc="P4Runtime device id"),
        AttrSpec("thrift_port", T.INT, 9090, range=ValueRange(1, 65535),
                 doc="simple_switch_CLI port"),
    ),
    "host": _specs(
        AttrSpec("vcpus", T.INT, 4, range=ValueRange(1, 4096)),
        AttrSpec("ram", T.SIZE, Size(8 * 2**30), range=HOST_RAM),
        AttrSpec("trusted", T.BOOL, False, doc="may run mitigation functions"),
        AttrSpec("cloud", T.STRING, None, doc="clouds.yaml cloud name (openstack)"),
        AttrSpec("image", T.STRING, None, doc="VM image for VNFs (openstack)"),
    ),
    "endpoint": _specs(
        AttrSpec("ip", T.IPV4, required=True),
        AttrSpec("mac", T.MAC, None),
        AttrSpec("trusted", T.BOOL, False, doc="traffic from it needs no mitigation"),
    ),
}

LINK_SCHEMA = _specs(
    AttrSpec("bandwidth", T.BANDWIDTH, required=True, range=LINK_BANDWIDTH),
    AttrSpec("delay", T.TIME, Time(0), range=LINK_DELAY),
)

# String attributes and what they must be: they reach generated scripts and API calls.
_ADDRESS_ATTRS = {"p4runtime"}
_TEXT_ATTRS = {"cloud", "image"}


def _attrs(kind: str, owner: str, attrs: tuple[A.Attr, ...], schema: dict[str, AttrSpec],
           ev: Evaluator, report: Report, node: A.Node) -> dict[str, Any] | None:
    values: dict[str, Any] = {}
    given: set[str] = set()  # attributes written, valid or not (no "missing" after an error)
    ok = True
    for a in attrs:
        spec = schema.get(a.name)
        if spec is None:
            report(error("E0701", f"{kind} `{owner}` has no attribute `{a.name}`", a.span,
                         did_you_mean(a.name, schema) or f"{kind} attributes: {', '.join(schema)}"))
            ok = False
            continue
        if a.name in given:
            report(error("E0204", f"attribute `{a.name}` is given twice", a.span))
            ok = False
            continue
        given.add(a.name)
        v = ev.value(a.value, spec.type)
        if v is None:
            ok = False
            continue
        if spec.range is not None and v.value not in spec.range:
            report(error("E0304", spec.range.message(f"`{a.name}`", v.value)
                         if isinstance(spec.range, Limit)
                         else f"`{a.name}` must be in {spec.range}, not {v.value}", a.span))
            ok = False
            continue
        problem = _string_problem(a.name, v.value, a.span)
        if problem is not None:
            report(problem)
            ok = False
            continue
        values[a.name] = v.value
    for spec in schema.values():
        if spec.name not in given:
            if spec.required:
                report(error("E0702", f"{kind} `{owner}` needs `{spec.name}`", node.span,
                             f"add `{spec.name}: ...` ({T.describe(spec.type)})"))
                ok = False
            else:
                values[spec.name] = spec.default
    return values if ok else None


def _string_problem(name: str, value: Any, span) -> Diagnostic | None:
    if name in _ADDRESS_ATTRS:
        problem = hostport_problem(value)
        if problem is not None:
            return error("E0709", f"`{name}`: {problem}", span,
                         "write HOST:PORT, e.g. \"127.0.0.1:9559\" or \"s1.lab:9559\"")
    if name in _TEXT_ATTRS:
        problem = text_problem(value)
        if problem is not None:
            return error("E0710", f"`{name}` {value!r}: {problem}", span,
                         "write the name as it appears in the cloud, on one line")
    return None


def _endpoint_addresses(endpoints: list[I.Endpoint], report: Report) -> bool:
    """Every endpoint needs a host address of its own: classification, routes and ARP
    entries are keyed by it."""
    ok = True
    first: dict[Any, I.Endpoint] = {}
    for e in endpoints:
        for problem in (endpoint_ip_problem(e.ip),
                        endpoint_mac_problem(e.mac) if e.mac is not None else None):
            if problem is not None:
                report(error("E0707", f"endpoint `{e.name}`: {problem}", e.span,
                             "give it the address the host really has, e.g. 10.0.2.1"))
                ok = False
        for key, what in ((e.ip, f"address {e.ip}"), (e.mac, f"MAC {e.mac}")):
            if key is None:
                continue
            other = first.setdefault(key, e)
            if other is not e:
                report(error("E0708", f"endpoints `{other.name}` and `{e.name}` both have "
                             f"{what}", e.span, "give each endpoint its own address",
                             [Note(f"`{other.name}` is declared here", other.span)]))
                ok = False
    return ok


def check_topology(t: A.TopologyDecl, ev: Evaluator, report: Report) -> I.Topology | None:
    ok = True
    seen: dict[str, A.NodeDecl] = {}
    switches, hosts, endpoints = [], [], []
    for n in t.nodes:
        if n.name in seen:
            report(error("E0204", f"node `{n.name}` is defined twice", n.span, "rename one",
                         [Note("first defined here", seen[n.name].span)]))
            ok = False
            continue
        seen[n.name] = n
        built = _node(n, ev, report)
        if built is None:
            ok = False
        elif isinstance(built, I.Switch):
            switches.append(built)
        elif isinstance(built, I.Host):
            hosts.append(built)
        else:
            endpoints.append(built)
    links = []
    used_ports: dict[tuple[str, int], A.LinkEnd] = {}
    pairs: dict[frozenset, A.LinkDecl] = {}
    switch_named = {s.name: s for s in reversed(switches)}  # the first of a name, as before
    for link in t.links:
        ends = []
        for end in (link.a, link.b):
            decl = seen.get(end.node)
            if decl is None:
                report(error("E0703", f"link to unknown node `{end.node}`", end.span,
                             did_you_mean(end.node, seen)))
                ok = False
                continue
            if decl.kind == "switch":
                built = switch_named.get(end.node)
                if end.port is None:
                    report(error("E0704", f"switch `{end.node}` needs a port number here",
                                 end.span, f"write `{end.node}.1` for port 1"))
                    ok = False
                elif built is not None and not 0 <= end.port < built.ports:
                    report(error("E0704", f"`{end.node}` has no port {end.port}", end.span,
                                 f"its ports are 0..{built.ports - 1}; raise `ports:` to add more"))
                    ok = False
                elif (end.node, end.port) in used_ports:
                    report(error("E0704", f"port {end.node}.{end.port} is linked twice",
                                 end.span, "each switch port has one link",
                                 [Note("first used here", used_ports[(end.node, end.port)].span)]))
                    ok = False
                else:
                    used_ports[(end.node, end.port)] = end
            elif end.port is not None:
                report(error("E0704", f"{decl.kind} `{end.node}` has no numbered ports",
                             end.span, f"write `{end.node}` without `.{end.port}`"))
                ok = False
            ends.append(end)
        if len(ends) != 2:
            continue
        if link.a.node == link.b.node:
            report(error("E0706", f"link from `{link.a.node}` to itself", link.span))
            ok = False
            continue
        key = frozenset((link.a.node, link.b.node))
        if key in pairs:
            report(error("E0706", f"second link between `{link.a.node}` and `{link.b.node}`",
                         link.span, "merge them into one link with the summed bandwidth",
                         [Note("first link here", pairs[key].span)]))
            ok = False
            continue
        pairs[key] = link
        attrs = _attrs("link", f"{link.a.node} -- {link.b.node}", link.attrs, LINK_SCHEMA, ev,
                       report, link)
        if attrs is None:
            ok = False
            continue
        links.append(I.Link(I.PortRef(link.a.node, link.a.port), I.PortRef(link.b.node,
                            link.b.port), attrs["bandwidth"], attrs["delay"], span=link.span))
    ok &= _endpoint_addresses(endpoints, report)
    linked = {n for lk in t.links for n in (lk.a.node, lk.b.node)}
    for n in t.nodes:
        if n.name not in linked:
            report(warning("W0701", f"{n.kind} `{n.name}` is not linked to anything", n.span,
                           "add a `link` or remove the node"))
    if not ok:
        return None
    return I.Topology(t.name, tuple(switches), tuple(hosts), tuple(endpoints), tuple(links),
                      span=t.span)


def _node(n: A.NodeDecl, ev: Evaluator, report: Report) -> I.NodeIR | None:
    if n.kind == "switch":
        if n.target not in SWITCH_TARGETS:
            report(error("E0705", f"switch `{n.name}` needs a target: "
                         f"{'unknown target `' + n.target + '`' if n.target else 'none given'}",
                         n.span, f"supported: {', '.join(SWITCH_TARGETS)} "
                         f"(e.g. `switch {n.name} : bmv2`)"))
            return None
    elif n.kind == "host":
        if n.target not in HOST_PLATFORMS:
            report(error("E0705", f"host `{n.name}` needs a platform: "
                         f"{'unknown platform `' + n.target + '`' if n.target else 'none given'}",
                         n.span, f"supported: {', '.join(HOST_PLATFORMS)}"))
            return None
    elif n.target is not None:
        report(error("E0705", f"endpoint `{n.name}` takes no target", n.span,
                     f"write `endpoint {n.name} {{ ip: ... }}`"))
        return None
    a = _attrs(n.kind, n.name, n.attrs, NODE_SCHEMAS[n.kind], ev, report, n)
    if a is None:
        return None
    if n.kind == "switch":
        return I.Switch(n.name, n.target, SWITCH_TARGETS[n.target], a["ports"],
                        a["priority_queues"], a["queue_rate"], a["queue_depth"],
                        I.P4Capacity(a["stages"], a["table_entries"], a["register_bits"],
                                     a["meters"]),
                        a["trusted"], a["p4runtime"], a["device_id"], a["thrift_port"],
                        span=n.span)
    if n.kind == "host":
        return I.Host(n.name, n.target, a["vcpus"], a["ram"], a["trusted"], a["cloud"],
                      a["image"], span=n.span)
    ip: IPv4Address = a["ip"]
    return I.Endpoint(n.name, ip, a["mac"], a["trusted"], span=n.span)

