"""Realise a :class:`~.localplan.LocalPlan` on this machine, change it in place, remove it.

Plain ``ip``, ``nft`` and ``tc`` through :mod:`subprocess` (iproute2 and nftables are all
a Linux host needs; no Python netlink dependency), run as root.

A realised plan is a set of *resources*: namespaces, veth pairs, each namespace's
addressing (interface addresses, link routes, destination routes, policy routes, the
forwarding sysctls), nftables rulesets, and each device's queueing discipline (HTB shaping
or a ``tc.sh`` queue). :func:`diff` compares two plans resource by resource and returns the
:class:`Step`\\ s that turn one realisation into the other — only what differs, nothing
when nothing does. :func:`apply_changes` runs them; every step knows its inverse, so a
failure part-way undoes what was done, newest first, or hands each undo to the caller's
journal (the runtime's transaction).

* :func:`apply` builds a whole plan (the difference from nothing); :func:`destroy` deletes
  its namespaces (which takes their veths, rulesets and qdiscs with them) after stopping
  any process still running inside them. It is idempotent.
* :func:`reload_ruleset` replaces a namespace's ruleset *in place*: one nft transaction
  flushes the table's rules, deletes the objects that changed or left, and adds the
  definition again, so named counters, limits and sets whose definition is unchanged keep
  their state.
* :func:`inspect` finds drift: namespaces and tables deleted, tables changed by hand.
* :func:`read_counters` reads the named nftables counters the plan lists.

Two deployments of one plan can coexist by giving each its own ``prefix``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from ...units import Bandwidth, Time
from . import localswitch
from ._shell import LocalTargetError, NothingDone, netns_exec, run
from ._templates import render
from .localplan import LocalPlan, PolicyRoute, RouteEntry
from .localswitch import RunningSwitch, SwitchProgram
from .nftlive import delete_tables, differs, live_tables, reload_ruleset, ruleset_tables

__all__ = ["Deployment", "LocalTargetError", "Step", "Changes", "Drift", "ADD", "MODIFY",
           "DELETE", "apply", "apply_changes", "diff", "undo", "step_to_json",
           "step_from_json", "inspect", "reload_ruleset",
           "destroy", "read_counters", "load_plan", "namespace_names", "netns_exec",
           "switch_programs", "port_mac"]

_TOOLS = ("ip", "nft", "tc")
ADD, MODIFY, DELETE = "add", "modify", "delete"


@dataclass(frozen=True, slots=True)
class Deployment:
    prefix: str
    namespaces: tuple[str, ...]  # namespaces created, in creation order
    qdiscs: tuple[tuple[str, str, str], ...]  # (namespace, device, qdisc) installed by tc.sh
    warnings: tuple[str, ...]
    switches: tuple[RunningSwitch, ...] = ()  # BMv2 switches started


def load_plan(build_dir: str | Path) -> LocalPlan:
    """Read ``build_dir/local.json`` and the files it refers to (checked by hash)."""
    root = Path(build_dir)
    doc = json.loads((root / "local.json").read_text(encoding="utf-8"))
    files = {p: (root / p).read_text(encoding="utf-8") for p in doc.get("files", {})
             if (root / p).is_file()}
    return LocalPlan.from_json(doc, files)


def switch_programs(build_dir: str | Path) -> dict[str, SwitchProgram]:
    """Every switch of the build that has a P4 program (``<switch>/<switch>.p4``), ready to
    run on BMv2: ``apply(plan, switches=switch_programs(build))``."""
    root = Path(build_dir)
    ir = json.loads((root / "ir.json").read_text(encoding="utf-8"))
    return {sw["name"]: localswitch.load_program(
                root / sw["name"], device_id=int(sw.get("device_id") or 0),
                thrift_port=int(sw.get("thrift_port") or 9090),
                priority_queues=int(sw.get("priority_queues") or 1))
            for topo in ir.get("topologies", []) for sw in topo.get("switches", [])
            if (root / sw["name"] / f"{sw['name']}.p4").is_file()}


def namespace_names(plan: LocalPlan, prefix: str | None = None) -> dict[str, str]:
    """Plan namespace name → the real namespace name."""
    p = plan.prefix if prefix is None else prefix
    return {ns.name: f"{p}{ns.name}" for ns in plan.namespaces}


def _existing() -> set[str]:
    out = run(["ip", "netns", "list"]).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _preflight() -> None:
    if os.geteuid() != 0:
        raise LocalTargetError("the local target needs root (network namespaces, veth, nft)")
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    if missing:
        raise LocalTargetError(f"missing tools: {', '.join(missing)} "
                               "(install iproute2 and nftables)")


def _sysctl(ns: str, key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    run(netns_exec(ns, "sh", "-c", f"echo {value} > {path}"))


# --------------------------------------------------------------------------- resources


@dataclass(frozen=True, slots=True)
class _Netns:
    name: str  # the real namespace name
    label: str  # "switch s1"
    # Set when the namespace is created; a kept namespace's forwarding changes with its
    # addressing (a switch going from the stand-in to BMv2 stops forwarding).
    forwarding: bool = field(compare=False)


@dataclass(frozen=True, slots=True)
class _Veth:
    a: tuple[str, str]  # (namespace, interface)
    b: tuple[str, str]

    @property
    def key(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((self.a, self.b)))

    def __str__(self) -> str:
        return f"{self.a[0]}:{self.a[1]} — {self.b[0]}:{self.b[1]}"


@dataclass(frozen=True, slots=True)
class _Addressing:
    """Everything ``ip`` configures inside one namespace."""

    namespace: str
    forwarding: bool
    interfaces: tuple[tuple[str, str, str], ...]  # (device, address/32, peer address)
    routes: tuple[RouteEntry, ...]
    policy_routes: tuple[PolicyRoute, ...]
    # A BMv2 switch's ports: up, with a fixed MAC address and no IP address (device, MAC).
    ports: tuple[tuple[str, str], ...] = ()
    # Devices facing a BMv2 port, which answers no ARP: a permanent neighbour entry for the
    # port's address (device, address, MAC); the device also accepts every unicast frame
    # and sends complete checksums (BMv2 forwards what a packet socket reads).
    neighbours: tuple[tuple[str, str, str], ...] = ()

    @property
    def facing(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d for d, _, _ in self.neighbours))

    def without(self, devices: set[str]) -> _Addressing:
        """What is left when ``devices`` disappear (the kernel drops what used them)."""
        return _Addressing(self.namespace, self.forwarding,
                           tuple(i for i in self.interfaces if i[0] not in devices),
                           tuple(r for r in self.routes if r.device not in devices),
                           tuple(p for p in self.policy_routes if p.device not in devices),
                           tuple(p for p in self.ports if p[0] not in devices),
                           tuple(n for n in self.neighbours if n[0] not in devices))


@dataclass(frozen=True, slots=True)
class _Ruleset:
    namespace: str
    path: str  # relative to the build directory
    text: str


@dataclass(frozen=True, slots=True)
class _Qdisc:
    """The root queueing discipline of one device: HTB shaping, or ``tc.sh`` queues."""

    namespace: str
    device: str
    rate_bps: int | None
    delay_ns: int
    scripts: tuple[tuple[str, str, str], ...] = ()  # tc.sh runs: (path, text, NAME)

    def __str__(self) -> str:
        if self.scripts:
            return "tc.sh " + ", ".join(name for _, _, name in self.scripts)
        if self.rate_bps is None:  # a BMv2 port: BMv2 paces, netem only delays
            return f"netem {Time(self.delay_ns)}"
        shaped = f"HTB {Bandwidth(self.rate_bps)}"
        return shaped + (f" + netem {Time(self.delay_ns)}" if self.delay_ns > 0 else "")


@dataclass(frozen=True, slots=True)
class _Switch:
    """A BMv2 switch running the P4 program in a switch namespace."""

    namespace: str
    node: str
    ports: tuple[tuple[int, str], ...]  # (BMv2 port, interface)
    program: SwitchProgram

    def __str__(self) -> str:
        return f"bmv2 {self.node} in {self.namespace}"


_Resource = _Netns | _Veth | _Addressing | _Ruleset | _Qdisc | _Switch


@dataclass(frozen=True, slots=True)
class Step:
    """One change of a realisation: a resource goes from ``old`` to ``new`` (``None``:
    absent). A *deferred* step has no action of its own — the resource goes away with its
    namespace or device — but its undo restores it, so it is journaled all the same."""

    op: str  # ADD | MODIFY | DELETE
    what: str
    old: _Resource | None = field(repr=False)
    new: _Resource | None = field(repr=False)
    before: str | None = None  # MODIFY: the value being replaced, when one line says it
    deferred: bool = False
    shown: bool = True  # worth a line of its own in a plan (not implied by another)

    @property
    def creates(self) -> str | None:
        """The namespace this step creates, if it creates one."""
        return self.new.name if self.op == ADD and isinstance(self.new, _Netns) else None

    @property
    def undo_what(self) -> str:
        return {ADD: "remove", DELETE: "restore", MODIFY: "restore the previous"}[self.op] \
            + " " + self.what


@dataclass(frozen=True)
class Changes:
    """The steps from one realisation to another, in the order they must run."""

    prefix: str  # the prefix of the realisation the steps lead to
    steps: tuple[Step, ...]

    @property
    def empty(self) -> bool:
        return all(s.deferred for s in self.steps)

    @property
    def shown(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.shown and not s.deferred)

    @property
    def created(self) -> tuple[str, ...]:
        """Namespaces the steps create."""
        return tuple(s.creates for s in self.steps if s.creates is not None)


@dataclass(frozen=True, slots=True)
class Drift:
    """Where the machine departed from a realised plan (real namespace names)."""

    missing_namespaces: tuple[str, ...] = ()
    missing_tables: tuple[tuple[str, str, str], ...] = ()  # (namespace, ruleset, "ip T")
    changed_tables: tuple[tuple[str, str, str], ...] = ()
    tables_checked: bool = True  # False: not root, or nft missing
    stopped_switches: tuple[tuple[str, str], ...] = ()  # (namespace, switch): BMv2 not running

    @property
    def empty(self) -> bool:
        return not (self.missing_namespaces or self.missing_tables or self.changed_tables
                    or self.stopped_switches)


@dataclass(frozen=True)
class _View:
    netns: Mapping[str, _Netns] = field(default_factory=dict)
    veths: Mapping[tuple, _Veth] = field(default_factory=dict)
    addressing: Mapping[str, _Addressing] = field(default_factory=dict)
    rulesets: Mapping[tuple[str, str], _Ruleset] = field(default_factory=dict)
    qdiscs: Mapping[tuple[str, str], _Qdisc] = field(default_factory=dict)
    switches: Mapping[str, _Switch] = field(default_factory=dict)


# --------------------------------------------------------------------------- steps as data


def step_to_json(step: Step) -> dict:
    """A step as JSON (the runtime's write-ahead record): enough to :func:`undo` it in
    another process, after the one that applied it was killed."""
    return {"op": step.op, "what": step.what, "old": _resource_json(step.old),
            "new": _resource_json(step.new), "deferred": step.deferred}


def step_from_json(doc: Mapping[str, Any]) -> Step:
    """The inverse of :func:`step_to_json` (``ValueError`` for anything else)."""
    try:
        return Step(doc["op"], doc["what"], _resource_from(doc["old"]),
                    _resource_from(doc["new"]), deferred=bool(doc.get("deferred")))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not a local target step: {e!r}") from None


def _resource_json(r: _Resource | None) -> dict | None:
    if r is None:
        return None
    if isinstance(r, _Netns):
        body = {"name": r.name, "label": r.label, "forwarding": r.forwarding}
    elif isinstance(r, _Veth):
        body = {"a": list(r.a), "b": list(r.b)}
    elif isinstance(r, _Addressing):
        body = {"namespace": r.namespace, "forwarding": r.forwarding,
                "interfaces": [list(i) for i in r.interfaces],
                "routes": [[x.destination, x.via, x.device] for x in r.routes],
                "policy_routes": [[x.mark, x.table, x.via, x.device, x.comment]
                                  for x in r.policy_routes],
                "ports": [list(x) for x in r.ports],
                "neighbours": [list(x) for x in r.neighbours]}
    elif isinstance(r, _Ruleset):
        body = {"namespace": r.namespace, "path": r.path, "text": r.text}
    elif isinstance(r, _Qdisc):
        body = {"namespace": r.namespace, "device": r.device, "rate_bps": r.rate_bps,
                "delay_ns": r.delay_ns, "scripts": [list(x) for x in r.scripts]}
    else:
        body = {"namespace": r.namespace, "node": r.node, "ports": [list(x) for x in r.ports],
                "program": r.program.to_json()}
    return {"type": type(r).__name__.lstrip("_").lower(), **body}


def _resource_from(doc: Mapping[str, Any] | None) -> _Resource | None:
    if doc is None:
        return None
    kind = doc["type"]
    if kind == "netns":
        return _Netns(str(doc["name"]), str(doc["label"]), bool(doc["forwarding"]))
    if kind == "veth":
        return _Veth(_pair(doc["a"]), _pair(doc["b"]))
    if kind == "addressing":
        return _Addressing(
            str(doc["namespace"]), bool(doc["forwarding"]),
            tuple((str(d), str(a), str(p)) for d, a, p in doc["interfaces"]),
            tuple(RouteEntry(str(d), str(v), str(dev)) for d, v, dev in doc["routes"]),
            tuple(PolicyRoute(int(m), int(t), str(v), str(d), str(c))
                  for m, t, v, d, c in doc["policy_routes"]),
            tuple(_pair(x) for x in doc["ports"]),
            tuple((str(d), str(a), str(m)) for d, a, m in doc["neighbours"]))
    if kind == "ruleset":
        return _Ruleset(str(doc["namespace"]), str(doc["path"]), str(doc["text"]))
    if kind == "qdisc":
        rate = doc["rate_bps"]
        return _Qdisc(str(doc["namespace"]), str(doc["device"]),
                      None if rate is None else int(rate), int(doc["delay_ns"]),
                      tuple((str(p), str(t), str(n)) for p, t, n in doc["scripts"]))
    if kind == "switch":
        return _Switch(str(doc["namespace"]), str(doc["node"]),
                       tuple((int(p), str(d)) for p, d in doc["ports"]),
                       SwitchProgram.from_json(doc["program"]))
    raise ValueError(f"unknown resource type {kind!r}")


def _pair(x) -> tuple[str, str]:
    a, b = x
    return (str(a), str(b))


def port_mac(address: str) -> str:
    """The MAC address mosaico gives a BMv2 port with transit address ``address``: locally
    administered, ``02:6d`` and the four bytes of the address (unique per address)."""
    packed = IPv4Address(address.partition("/")[0]).packed
    return ":".join(f"{b:02x}" for b in (0x02, 0x6D, *packed))


def _bmv2_view(ns, real: str, program: SwitchProgram, shape: bool, view: dict) -> None:
    """A switch namespace whose switch runs BMv2: no addresses, routes, rulesets or tc
    queues of its own — BMv2 forwards, filters and queues — only ports that are up, the
    switch process on them, and netem delays where links have them (BMv2 paces the rate)."""
    view["netns"][real] = _Netns(real, f"{ns.role} {ns.node}", False)
    view["addressing"][real] = _Addressing(
        real, False, (), (), (), tuple((i.name, port_mac(i.address)) for i in ns.interfaces))
    if shape:
        for itf in ns.interfaces:
            if itf.delay_ns > 0:
                view["qdiscs"][(real, itf.name)] = _Qdisc(real, itf.name, None, itf.delay_ns)
    view["switches"][real] = _Switch(real, ns.node, ns.bmv2_ports, program)


def _view(plan: LocalPlan, prefix: str | None, shape: bool,
          switches: Mapping[str, SwitchProgram] | None = None) -> _View:
    names = namespace_names(plan, prefix)
    switches = switches or {}
    bmv2 = {ns.name for ns in plan.namespaces if ns.role == "switch" and ns.node in switches}
    netns, addressing, rulesets, qdiscs, running = {}, {}, {}, {}, {}
    parts = {"netns": netns, "addressing": addressing, "qdiscs": qdiscs, "switches": running}
    for ns in plan.namespaces:
        real = names[ns.name]
        if ns.name in bmv2:
            _bmv2_view(ns, real, switches[ns.node], shape, parts)
            continue
        netns[real] = _Netns(real, f"{ns.role} {ns.node}", ns.forwarding)
        addressing[real] = _Addressing(
            real, ns.forwarding, tuple((i.name, i.address, i.peer_address)
                                       for i in ns.interfaces), ns.routes, ns.policy_routes,
            neighbours=tuple((i.name, i.peer_address, port_mac(i.peer_address))
                             for i in ns.interfaces if i.peer_namespace in bmv2))
        for path in ns.nftables:
            rulesets[(real, path)] = _Ruleset(real, path, plan.files[path])
        scripts: dict[str, list[tuple[str, str, str]]] = {}
        for t in ns.tc:
            scripts.setdefault(t.device, []).append((t.script, plan.files[t.script], t.name))
        for itf in ns.interfaces:
            if itf.name in scripts:
                qdiscs[(real, itf.name)] = _Qdisc(real, itf.name, None, 0,
                                                  tuple(scripts[itf.name]))
            elif shape and itf.rate_bps:
                qdiscs[(real, itf.name)] = _Qdisc(real, itf.name, itf.rate_bps, itf.delay_ns)
    veths = {}
    for lk in plan.links:
        v = _Veth((names[lk.a_namespace], lk.a_interface), (names[lk.b_namespace],
                                                            lk.b_interface))
        veths[v.key] = v
    return _View(netns, veths, addressing, rulesets, qdiscs, running)


def _live(view: _View, drift: Drift) -> _View:
    """``view`` as the machine has it: without the namespaces and tables deleted by hand
    (and without what vanished with them: the peer ends of their veths, the switches running
    inside), and without the switches that stopped."""
    gone = set(drift.missing_namespaces)
    stopped = {ns for ns, _ in drift.stopped_switches}
    vanished = {side for v in view.veths.values() if v.a[0] in gone or v.b[0] in gone
                for side in (v.a, v.b)}
    tables = {(ns, path) for ns, path, _ in drift.missing_tables}
    return _View(
        {k: n for k, n in view.netns.items() if k not in gone},
        {k: v for k, v in view.veths.items() if v.a[0] not in gone and v.b[0] not in gone},
        {k: a.without({d for ns, d in vanished if ns == k})
         for k, a in view.addressing.items() if k not in gone},
        {k: r for k, r in view.rulesets.items() if k[0] not in gone and k not in tables},
        {k: q for k, q in view.qdiscs.items() if k[0] not in gone and k not in vanished},
        {k: w for k, w in view.switches.items() if k not in gone and k not in stopped})


# --------------------------------------------------------------------------- diff


def diff(old: LocalPlan | None, new: LocalPlan | None, *, old_prefix: str | None = None,
         new_prefix: str | None = None, drift: Drift | None = None, shape: bool = True,
         old_switches: Mapping[str, SwitchProgram] | None = None,
         new_switches: Mapping[str, SwitchProgram] | None = None) -> Changes:
    """The steps that turn the realisation of ``old`` (with ``old_prefix``, as ``drift``
    says the machine has it) into that of ``new``; ``None`` is nothing. The switches named
    in ``old_switches``/``new_switches`` run their P4 program on BMv2; the others are the
    Linux stand-in.

    Removals run first (switches that stop or restart, queues, rulesets and addresses on
    what goes away, then veths, then namespaces), additions after (namespaces, veths,
    addressing, rulesets, queues, switches). A kept namespace is touched only where it
    differs; a device whose veth is replaced is reconfigured; a ruleset whose text changed
    is reloaded in place; a switch whose program or ports changed is restarted.
    """
    a = _view(old, old_prefix, shape, old_switches) if old is not None else _View()
    if drift is not None:
        a = _live(a, drift)
    b = _view(new, new_prefix, shape, new_switches) if new is not None else _View()
    forced = {(ns, path) for ns, path, _ in drift.changed_tables} if drift else set()
    if new is not None:
        prefix = new.prefix if new_prefix is None else new_prefix
    else:
        prefix = old.prefix if old is not None and old_prefix is None else old_prefix or ""
    leaving = [k for k in a.veths if k not in b.veths]
    going = {side for k in leaving for side in (a.veths[k].a, a.veths[k].b)}
    kept = set(a.netns) & set(b.netns)

    def devices(ns: str) -> set[str]:
        return {d for n, d in going if n == ns}

    out: list[Step] = []
    # -- removals: a switch stops before its ports or namespace go
    restart: dict[str, str] = {}
    for key, w in a.switches.items():
        n = b.switches.get(key) if key in kept else None
        if n is None:
            out.append(Step(DELETE, str(w), w, None))
            continue
        why = "program changed" if n.program != w.program else \
            "ports changed" if n.ports != w.ports else \
            "a port's link is replaced" if devices(key) & {d for _, d in w.ports} else None
        if why is not None:
            restart[key] = why
            out.append(Step(DELETE, str(w), w, None, shown=False))
    for key, q in a.qdiscs.items():
        if key[0] not in kept or key in going:
            out.append(Step(DELETE, f"queue of {key[0]}:{key[1]} ({q})", q, None,
                            deferred=True))
        elif key not in b.qdiscs:
            out.append(Step(DELETE, f"queue of {key[0]}:{key[1]} ({q})", q, None))
    for key, r in a.rulesets.items():
        if key not in b.rulesets:
            out.append(Step(DELETE, f"nftables {r.path} in {r.namespace}", r, None,
                            deferred=key[0] not in kept))
    partial_addressing: dict[str, _Addressing] = {}
    for ns, ad in a.addressing.items():
        if ns not in kept:
            out.append(Step(DELETE, f"addressing of {ns}", ad, None, deferred=True))
            continue
        m = ad.without(devices(ns))
        partial_addressing[ns] = m
        if m != ad:
            out.append(Step(MODIFY, f"addressing of {ns}: {_detail(ad, m)}", ad, m,
                            shown=m == b.addressing[ns]))
    for key in leaving:
        v = a.veths[key]
        inside = v.a[0] in kept and v.b[0] in kept
        out.append(Step(DELETE, f"link {v}", v, None, deferred=not inside,
                        shown=inside))
    for ns, n in a.netns.items():
        if ns not in b.netns:
            out.append(Step(DELETE, f"namespace {ns} ({n.label})", n, None))
    # -- additions
    for ns, n in b.netns.items():
        if ns not in a.netns:
            out.append(Step(ADD, f"namespace {ns} ({n.label})", None, n))
    for key, v in b.veths.items():
        if key not in a.veths:
            out.append(Step(ADD, f"link {v}", None, v,
                            shown=v.a[0] in kept or v.b[0] in kept))
    for ns, bd in b.addressing.items():
        start = partial_addressing.get(ns)
        if start != bd:
            what = f"addressing of {ns}" + (f": {_detail(a.addressing[ns], bd)}"
                                            if ns in kept else "")
            out.append(Step(ADD if start is None else MODIFY, what, start, bd,
                            shown=ns in kept))
    for key, r in b.rulesets.items():
        o = a.rulesets.get(key)
        if o is None:
            out.append(Step(ADD, f"nftables {r.path} in {r.namespace}", None, r,
                            shown=key[0] in kept))
        elif o.text != r.text or key in forced:
            out.append(Step(MODIFY, f"nftables {r.path} in {r.namespace} (reloaded in place)",
                            o, r))
    for key, q in b.qdiscs.items():
        o = a.qdiscs.get(key) if key[0] in kept and key not in going else None
        if o != q:
            out.append(Step(ADD if o is None else MODIFY, f"queue of {key[0]}:{key[1]} ({q})",
                            o, q, before=str(o) if o is not None else None,
                            shown=key[0] in kept))
    for key, w in b.switches.items():
        program = f"program {w.program.digest[:12]}"
        if key in restart:  # stopped above; the undo of that stop starts the old one
            out.append(Step(MODIFY, f"{w} ({program}; restarted: {restart[key]})", None, w,
                            before=f"program {a.switches[key].program.digest[:12]}"))
        elif key not in a.switches or key not in kept:
            out.append(Step(ADD, f"{w} ({program})", None, w))
    return Changes(prefix, tuple(out))


def _detail(a: _Addressing, b: _Addressing) -> str:
    """What differs between two addressings, briefly."""
    parts: list[str] = []
    if a.forwarding != b.forwarding:
        parts.append(f"forwarding {'on' if b.forwarding else 'off'}")
    old_if = {d: (addr, peer) for d, addr, peer in a.interfaces}
    new_if = {d: (addr, peer) for d, addr, peer in b.interfaces}
    for d in sorted(set(old_if) | set(new_if)):
        if d not in new_if:
            parts.append(f"- {d}")
        elif d not in old_if:
            parts.append(f"+ {d} {new_if[d][0]}")
        elif old_if[d] != new_if[d]:
            parts.append(f"~ {d} {new_if[d][0]} (peer {new_if[d][1]})")
    parts += [f"- route {r.destination} via {r.via}" for r in a.routes if r not in b.routes]
    parts += [f"+ route {r.destination} via {r.via} dev {r.device}" for r in b.routes
              if r not in a.routes]
    parts += [f"- policy route mark {p.mark:#x}" for p in a.policy_routes
              if p not in b.policy_routes]
    parts += [f"+ policy route mark {p.mark:#x} via {p.via} dev {p.device}"
              for p in b.policy_routes if p not in a.policy_routes]
    parts += [f"- BMv2 port {d}" for d, _ in a.ports if d not in dict(b.ports)]
    parts += [f"+ BMv2 port {d}" for d, _ in b.ports if d not in dict(a.ports)]
    parts += [f"- neighbour {n[1]} dev {n[0]}" for n in a.neighbours if n not in b.neighbours]
    parts += [f"+ neighbour {n[1]} lladdr {n[2]} dev {n[0]} (BMv2 port)"
              for n in b.neighbours if n not in a.neighbours]
    return "; ".join(parts) or "reapplied"


# --------------------------------------------------------------------------- apply


@dataclass
class _Outcome:
    qdiscs: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    switches: list[RunningSwitch] = field(default_factory=list)


# Announces a step before it runs and marks it done after (the runtime's transaction: its
# write-ahead record); a step that raises stays announced, and its undo covers a partial step.
Journal = Callable[[Step], AbstractContextManager]


def apply(plan: LocalPlan, *, prefix: str | None = None, shape: bool = True,
          switches: Mapping[str, SwitchProgram] | None = None) -> Deployment:
    """Build the plan's namespaces (the ``switches`` named run BMv2); on failure everything
    created is removed again."""
    return apply_changes(diff(None, plan, new_prefix=prefix, shape=shape,
                              new_switches=switches))


def apply_changes(changes: Changes, *, journal: Journal | None = None) -> Deployment:
    """Run ``changes``. With a ``journal``, each step runs inside ``journal(step)`` (the
    caller rolls back, with :func:`undo`); without, a failure undoes every step begun so
    far, newest first, and re-raises. Namespaces to create must not exist yet."""
    _preflight()
    clash = sorted(set(changes.created) & _existing())
    if clash:
        raise LocalTargetError(f"namespaces already exist: {', '.join(clash)} "
                               "(destroy the previous deployment or use another prefix)")
    out = _Outcome()
    done: list[Step] = []  # without a journal: the steps begun, undone on a failure
    journal = journal or (lambda step: _begun(done, step))
    try:
        for step in changes.steps:
            _precheck(step)
            with journal(step) as handle:
                try:
                    if not step.deferred:
                        _converge(step.old, step.new, out)
                except NothingDone:
                    handle.discard()
                    raise
    except BaseException as e:
        failed = []
        for step in reversed(done):
            try:
                undo(step)
            except Exception as u:  # keep undoing the rest; say what could not be
                failed.append(f"{step.undo_what}: {u}")
        if failed and isinstance(e, LocalTargetError):
            raise LocalTargetError(f"{e}; and could not {'; '.join(failed)}") from None
        raise
    return Deployment(changes.prefix, changes.created, tuple(out.qdiscs),
                      tuple(dict.fromkeys(out.warnings)), tuple(out.switches))


class _Handle:
    def __init__(self) -> None:
        self.discarded = False

    def discard(self) -> None:
        self.discarded = True


@contextmanager
def _begun(done: list[Step], step: Step):
    """The journal when the caller gives none: a step begun is undone on a failure (its
    undo also covers a step that failed part-way), unless it did nothing."""
    done.append(step)
    handle = _Handle()
    try:
        yield handle
    finally:
        if handle.discarded:
            done.remove(step)


def _precheck(step: Step) -> None:
    """Refuse, before a step is announced, what would make its undo remove something
    mosaico did not create: a link whose device name is taken already. (A namespace to
    create was checked to be absent before the first step.) An undo of an announced step
    can then take what it finds for its own, even after the run was killed."""
    if step.op == ADD and isinstance(step.new, _Veth):
        # A namespace whose last process just exited (a BMv2 switch stopped in a namespace
        # deleted by hand) is destroyed asynchronously: its veths' peer ends go a moment
        # later. Wait for them; a device still there after that is someone else's.
        deadline = time.monotonic() + 5
        while taken := [(ns, dev) for ns, dev in (step.new.a, step.new.b)
                        if _has_device(ns, dev)]:
            if time.monotonic() > deadline:
                ns, dev = taken[0]
                raise LocalTargetError(f"cannot add link {step.new}: {ns} holds a device "
                                       f"{dev} mosaico did not create (File exists)")
            time.sleep(0.05)


def undo(step: Step) -> None:
    """Return the resource of ``step`` to its previous state. Idempotent, and safe for a
    step that ran part-way or not at all (a run killed after announcing it): what is
    already as it was is left alone."""
    if step.new is None and isinstance(step.old, _Netns) and step.old.name in _existing():
        return  # the namespace to restore is still there: it was never removed
    if step.new is None and isinstance(step.old, _Veth) and _has_device(*step.old.a):
        return  # the link to restore is still there
    if step.new is None and isinstance(step.old, _Switch) and \
            localswitch.running_program(step.old.namespace) == step.old.program.digest:
        return  # the switch to restore still runs its program
    _converge(step.new, step.old, _Outcome())


def _has_device(namespace: str, device: str) -> bool:
    return run(["ip", "-n", namespace, "link", "show", "dev", device], check=False
               ).returncode == 0


def _converge(old: _Resource | None, new: _Resource | None, out: _Outcome) -> None:
    r = new if new is not None else old
    if isinstance(r, _Netns):
        _converge_netns(old, new)
    elif isinstance(r, _Veth):
        _converge_veth(old, new)
    elif isinstance(r, _Addressing):
        _converge_addressing(old, new)
    elif isinstance(r, _Ruleset):
        _converge_ruleset(old, new)
    elif isinstance(r, _Qdisc):
        _converge_qdisc(old, new, out)
    elif isinstance(r, _Switch):
        _converge_switch(old, new, out)


def _converge_netns(old: _Netns | None, new: _Netns | None) -> None:
    if new is None:
        if old is not None:
            _delete([old.name])
        return
    if old is not None:
        return
    real = new.name
    # A BMv2 switch outlives its namespace deleted by hand (its process keeps the namespace
    # alive, unnamed, with the veths inside): stop it, so the kernel can release them.
    localswitch.stop(real)
    run(["ip", "netns", "add", real], error=NothingDone)
    run(["ip", "-n", real, "link", "set", "lo", "up"])
    # New devices copy `default`; the effective rp_filter is max(all, device): policy-routed
    # detours come back on other interfaces than the reverse path. Set before any veth.
    for scope in ("all", "default"):
        _sysctl(real, f"net.ipv4.conf.{scope}.rp_filter", "0")
        if new.forwarding:
            _sysctl(real, f"net.ipv4.conf.{scope}.send_redirects", "0")
        # mosaico's networks are IPv4: no link-local addresses, router solicitations or
        # MLD reports on the links (a BMv2 switch would count each as unclassified).
        _sysctl(real, f"net.ipv6.conf.{scope}.disable_ipv6", "1")
    _sysctl(real, "net.ipv4.ip_forward", "1" if new.forwarding else "0")


def _converge_veth(old: _Veth | None, new: _Veth | None) -> None:
    if new is None and old is not None:
        run(["ip", "-n", old.a[0], "link", "del", old.a[1]], check=False)
    elif new is not None and old is None:
        cmd = ["ip", "link", "add", new.a[1], "netns", new.a[0], "type", "veth",
               "peer", "name", new.b[1], "netns", new.b[0]]
        # A namespace whose last process just exited is destroyed asynchronously: its veths'
        # peer ends go a moment later. Wait for them rather than fail on "File exists".
        deadline = time.monotonic() + 5
        while (proc := run(cmd, check=False)).returncode != 0:
            if "File exists" not in proc.stderr or time.monotonic() > deadline:
                raise NothingDone(f"`{' '.join(cmd)}` failed ({proc.returncode}): "
                                  f"{proc.stderr.strip()}")
            time.sleep(0.05)


def _converge_addressing(old: _Addressing | None, new: _Addressing | None) -> None:
    """Remove what ``old`` has and ``new`` has not, then (re)apply all of ``new`` with
    idempotent commands: correct whatever part of ``old`` is really there."""
    if new is None:
        return  # the namespace goes away, and everything inside with it
    ip = ["ip", "-n", new.namespace]
    if old is not None:
        if old.forwarding != new.forwarding:
            value = "0" if new.forwarding else "1"
            for scope in ("all", "default", *(d for d, _, _ in new.interfaces)):
                _sysctl(new.namespace, f"net.ipv4.conf.{scope}.send_redirects", value)
            _sysctl(new.namespace, "net.ipv4.ip_forward", "1" if new.forwarding else "0")
        for p in old.policy_routes:
            if p not in new.policy_routes:
                run([*ip, "rule", "del", "fwmark", hex(p.mark), "lookup", str(p.table),
                     "priority", str(1000 + p.mark)], check=False)
                if all(q.table != p.table for q in new.policy_routes):
                    run([*ip, "route", "flush", "table", str(p.table)], check=False)
        wanted = {r.destination for r in new.routes} | \
            {f"{peer}/32" for _, _, peer in new.interfaces}
        for r in old.routes:
            if r.destination not in wanted:
                run([*ip, "route", "del", r.destination, "via", r.via, "dev", r.device],
                    check=False)
        for dev, address, peer in old.interfaces:
            if (dev, address, peer) in new.interfaces:
                continue
            if f"{peer}/32" not in wanted:
                run([*ip, "route", "del", f"{peer}/32", "dev", dev], check=False)
            if all((d, a) != (dev, address) for d, a, _ in new.interfaces):
                run([*ip, "addr", "del", address, "dev", dev], check=False)
    for dev, address, peer in new.interfaces:
        run([*ip, "addr", "replace", address, "dev", dev])
        run([*ip, "link", "set", dev, "up"])
        run([*ip, "route", "replace", f"{peer}/32", "dev", dev, "scope", "link"])
    for r in new.routes:
        run([*ip, "route", "replace", r.destination, "via", r.via, "dev", r.device])
    for p in new.policy_routes:
        run([*ip, "route", "replace", "default", "via", p.via, "dev", p.device,
             "table", str(p.table)])
        proc = run([*ip, "rule", "add", "fwmark", hex(p.mark), "lookup", str(p.table),
                    "priority", str(1000 + p.mark)], check=False)
        if proc.returncode != 0 and "File exists" not in proc.stderr:
            raise LocalTargetError(f"`ip rule add fwmark {p.mark:#x}` in {new.namespace} "
                                   f"failed: {proc.stderr.strip()}")
    _converge_bmv2_links(old, new)


_FACING_TABLE = ("netdev", "mosaico_bmv2")


def _converge_bmv2_links(old: _Addressing | None, new: _Addressing) -> None:
    """The links to BMv2 ports: a switch's own ports (up, fixed MAC, no address) and, on
    the other side, permanent neighbour entries, every unicast frame accepted (BMv2 rewrites
    no destination MAC unless the program says so) and checksums computed in software (a
    packet socket reads a veth's partial checksums as they are, and BMv2 would forward
    them)."""
    ip = ["ip", "-n", new.namespace]
    if old is not None:
        for dev, address, mac in old.neighbours:
            if (dev, address, mac) not in new.neighbours:
                run([*ip, "neigh", "del", address, "dev", dev], check=False)
        for dev in set(old.facing) - set(new.facing):
            _offload(new.namespace, dev, True, check=False)
        if old.facing and not new.facing:
            run(netns_exec(new.namespace, "nft", "delete", "table", *_FACING_TABLE),
                check=False)
    for dev, mac in new.ports:
        run([*ip, "link", "set", dev, "address", mac])
        run([*ip, "link", "set", dev, "up"])
        _offload(new.namespace, dev, False)
    for dev, address, mac in new.neighbours:
        run([*ip, "neigh", "replace", address, "lladdr", mac, "dev", dev, "nud", "permanent"])
    for dev in new.facing:
        _offload(new.namespace, dev, False)
    if new.facing:
        run(netns_exec(new.namespace, "nft", "-f", "-"),
            stdin=render("nftables/bmv2_facing.nft.j2", family=_FACING_TABLE[0],
                         table=_FACING_TABLE[1], devices=new.facing))


def _offload(namespace: str, dev: str, on: bool, check: bool = True) -> None:
    if shutil.which("ethtool") is None:
        if check:
            raise LocalTargetError("ethtool is needed to turn off checksum offload on the "
                                   "links to BMv2 (Debian package ethtool)")
        return
    run(netns_exec(namespace, "ethtool", "-K", dev, "tx", "on" if on else "off"), check=check)


def _converge_ruleset(old: _Ruleset | None, new: _Ruleset | None) -> None:
    if new is None:
        if old is not None:
            delete_tables(old.namespace, old.text)
    elif old is None:  # one nft transaction: all of it or nothing
        run(netns_exec(new.namespace, "nft", "-f", "-"), stdin=new.text, error=NothingDone)
    else:
        reload_ruleset(new.namespace, new.text)


def _converge_qdisc(old: _Qdisc | None, new: _Qdisc | None, out: _Outcome) -> None:
    target = new if new is not None else old
    assert target is not None
    ns, dev = target.namespace, target.device
    # Whatever root the device has goes first — the old queue, or one already there when
    # an undo repeats a step (a run killed after announcing it): then the new one.
    run(netns_exec(ns, "tc", "qdisc", "del", "dev", dev, "root"), check=False)
    if new is None:
        return
    if new.rate_bps is None and not new.scripts:
        out.warnings.extend(_delay(netns_exec(ns, "tc"), dev, "root", new.delay_ns))
        return
    if not new.scripts:
        out.warnings.extend(_shape(ns, dev, new.rate_bps, new.delay_ns))
        return
    for path, text, name in new.scripts:
        proc = run(netns_exec(ns, "sh", "-s", "--", name, dev), stdin=text)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("mosaico-tc:")]
        if not lines:
            raise LocalTargetError(f"{path} {name} {dev} did not report a qdisc: "
                                   f"{proc.stdout.strip()!r}")
        out.qdiscs.append((ns, dev, lines[-1].split()[-1]))
        out.warnings.extend(line for line in proc.stderr.splitlines() if line.strip())


def _shape(ns: str, dev: str, rate_bps: int, delay_ns: int) -> list[str]:
    tc = netns_exec(ns, "tc")
    run([*tc, "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "1"])
    # A burst of 1 ms at the link rate (at least two full frames): HTB's default burst at
    # high rates makes it wait for timers and caps small packets far below the rate.
    burst = max(3028, rate_bps // 8000)
    run([*tc, "class", "replace", "dev", dev, "parent", "1:", "classid", "1:1", "htb",
         "rate", f"{rate_bps}bit", "ceil", f"{rate_bps}bit",
         "burst", str(burst), "cburst", str(burst)])
    return _delay(tc, dev, "parent 1:1", delay_ns)


def _delay(tc: list[str], dev: str, where: str, delay_ns: int) -> list[str]:
    """netem's delay ``where`` ("root", "parent 1:1") on ``dev``; warnings if it cannot."""
    if delay_ns <= 0:
        return []
    proc = run([*tc, "qdisc", "replace", "dev", dev, *where.split(), "handle", "10:",
                "netem", "delay", f"{max(1, delay_ns // 1000)}us"], check=False)
    if proc.returncode != 0:
        return ["link delays are not emulated: netem is unavailable "
                f"({proc.stderr.strip() or 'tc failed'})"]
    return []


def _converge_switch(old: _Switch | None, new: _Switch | None, out: _Outcome) -> None:
    if old is not None:
        localswitch.stop(old.namespace)
    if new is not None:
        out.switches.append(localswitch.start(new.namespace, new.program, new.ports))


def inspect(plan: LocalPlan, *, prefix: str | None = None,
            switches: Mapping[str, SwitchProgram] | None = None) -> Drift:
    """Compare the machine with the realisation of ``plan`` (the ``switches`` named running
    BMv2): namespaces that are missing, BMv2 switches not running, ruleset tables that are
    missing or whose rules or objects differ from their file (counter values and dynamic
    set elements are not differences). Tables are checked only as root."""
    names = namespace_names(plan, prefix)
    switches = switches or {}
    live = _existing() if shutil.which("ip") else set()
    missing = tuple(names[ns.name] for ns in plan.namespaces if names[ns.name] not in live)
    bmv2 = [ns for ns in plan.namespaces if ns.role == "switch" and ns.node in switches]
    stopped = tuple((names[ns.name], ns.node) for ns in bmv2 if names[ns.name] not in missing
                    and localswitch.running(names[ns.name]) is None)
    if os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("unshare") is None:
        return Drift(missing, tables_checked=False, stopped_switches=stopped)
    absent: list[tuple[str, str, str]] = []
    changed: list[tuple[str, str, str]] = []
    for ns in plan.namespaces:
        real = names[ns.name]
        if real in missing or not ns.nftables or ns in bmv2:
            continue
        have = live_tables(real)
        for path in ns.nftables:
            for table, objects in ruleset_tables(plan.files[path]).items():
                label = f"{table[0]} {table[1]}"
                if table not in have:
                    absent.append((real, path, label))
                elif differs(have[table], objects):
                    changed.append((real, path, label))
    return Drift(missing, tuple(absent), tuple(changed), stopped_switches=stopped)


# --------------------------------------------------------------------------- teardown


def destroy(plan: LocalPlan, *, prefix: str | None = None) -> None:
    """Remove a deployment: stop its BMv2 switches (and remove their run directories),
    stop every other process inside its namespaces, then delete them."""
    names = namespace_names(plan, prefix)
    for ns in plan.namespaces:
        if ns.role == "switch":
            localswitch.stop(names[ns.name])
    _delete(list(names.values()))


def _delete(namespaces: list[str]) -> None:
    present = _existing() if shutil.which("ip") else set()
    for ns in namespaces:
        if ns not in present:
            continue
        pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            alive = [int(p) for p in pids if _alive(int(p))]
            for pid in alive:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            if alive:
                time.sleep(0.2)
        run(["ip", "netns", "del", ns], check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def read_counters(plan: LocalPlan, *, prefix: str | None = None,
                  skip: set[str] | frozenset[str] = frozenset()
                  ) -> dict[tuple[str, str], tuple[int, int]]:
    """``(plan namespace, counter name) → (packets, bytes)`` for every listed counter, but
    in the namespaces (real names) to ``skip`` — those known to be gone."""
    names = namespace_names(plan, prefix)
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for ns in plan.namespaces:
        if not ns.counters or names[ns.name] in skip:
            continue
        doc = json.loads(run(netns_exec(names[ns.name], "nft", "-j", "list",
                                        "counters")).stdout)
        have = {(c["table"], c["name"]): (c["packets"], c["bytes"])
                for item in doc.get("nftables", []) if (c := item.get("counter"))}
        for ref in ns.counters:
            if (ref.table, ref.name) in have:
                out[(ns.name, ref.name)] = have[(ref.table, ref.name)]
    return out
