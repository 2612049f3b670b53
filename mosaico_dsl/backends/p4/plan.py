"""Compilation → one :class:`SwitchPlan` per switch: every decision the P4 program embodies.

Which services a switch serves and in which *segments* (a route visits a switch once per
pass: a detour to a VNF host comes back as a new segment that continues the chain), which
function instances run in each segment, which P4 objects they declare, the entries those
objects need and where the packet goes next. Templates only print a plan.

The plan reads :class:`~mosaico_dsl.place.Placement` only through its public model
(``assignments``, ``routes``, ``Visit``), so any placement strategy works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from ...aqm.dualq import DualQConstants, fold_steps
from ...diagnostics import Diagnostic, Note, error
from ...ir import _ir as I
from ...ir.graph import shortest_path
from ...ir.predicate import Predicate
from ...ir.reply import reply_match
from ...ir.values import AclRule, NodeRef
from ...place import Placement
from . import matching
from .model import (
    EGRESS,
    INGRESS,
    TOP,
    Action,
    CloneSession,
    Counter,
    DirectCounter,
    IdAllocator,
    Key,
    Match,
    Meter,
    MeterConfig,
    Param,
    Prefix,
    Register,
    Table,
    TableEntry,
)

__all__ = [
    "P4_TARGET", "SUPPORTED", "Step", "Segment", "Classifier", "DualQUnit", "SwitchPlan",
    "plan_switches",
]

P4_TARGET = "p4.v1model"
MAX_SERVICES = 255  # meta.mosaico.service is bit<8>; 0 means "no service"
PORT_BITS = 9


@dataclass(frozen=True, slots=True)
class Step:
    """One function instance in a segment: what the templates declare and apply for it.

    ``template`` names ``codegen/p4/v1model/functions/<template>.p4.j2``; ``const`` holds
    the compile-time constants it prints (already integers).
    """

    instance: I.FunctionInstance
    template: str
    prefix: str  # unique P4 identifier stem of this instance
    library: str  # the p4/ file holding the function's control
    tables: tuple[Table, ...] = ()
    counters: tuple[Counter, ...] = ()
    meters: tuple[Meter, ...] = ()
    registers: tuple[Register, ...] = ()
    const: tuple[tuple[str, int], ...] = ()

    def c(self, name: str) -> int:
        return dict(self.const)[name]

    @property
    def table(self) -> Table:
        return self.tables[0]


@dataclass(frozen=True, slots=True)
class Segment:
    service: str
    service_id: int
    segment_id: int
    steps: tuple[Step, ...]
    next_port: int  # where the packet leaves unless a Forward step routes it
    next_node: str


@dataclass(frozen=True, slots=True)
class Classifier:
    """The ingress classifier: a service's traffic (``classify``), the replies of services
    (``reply_*``, only those this switch uses: onwards on the reply path, or to the source,
    with or without its MAC address) and everything else (``unclassified``: dropped)."""

    table: Table
    classify: Action
    unclassified: Action
    dropped: Counter
    reply_transit: Action | None = None
    reply_route: Action | None = None
    reply_route_port: Action | None = None

    @property
    def delivers_replies(self) -> bool:
        return self.reply_route is not None or self.reply_route_port is not None

    @property
    def reply_actions(self) -> tuple[Action, ...]:
        return tuple(a for a in (self.reply_transit, self.reply_route, self.reply_route_port)
                     if a is not None)


@dataclass(frozen=True, slots=True)
class DualQUnit:
    """One DualQ configuration on a switch; its state is per egress port."""

    unit: int
    prefix: str
    constants: DualQConstants
    instances: tuple[str, ...]
    ports: tuple[int, ...]
    # p, last_update, qdelay_c, qdelay_c_seen, qdelay_c_prev, qdelay_l, c_left (egress);
    # c_arrival (top level: ingress stamps Classic arrivals, egress reads and clears them)
    registers: tuple[Register, ...]
    counters: tuple[Counter, ...]  # packets, marks, drops; index = port * 2 + (1 if L4S)
    users: tuple[tuple[str, int], ...] = ()  # (instance, egress port it manages)

    def register(self, role: str) -> Register:
        return next(r for r in self.registers if r.name == f"{self.prefix}_{role}")

    def counter(self, role: str) -> Counter:
        return next(c for c in self.counters if c.name == f"{self.prefix}_{role}")

    @property
    def fold_saturate(self) -> tuple[int, int] | None:
        """(Tupdate << K, decay << K): n ≥ 2^K missed intervals, which clamp p' to 0."""
        steps = fold_steps(self.constants)
        if steps and steps[0][0] == self.constants.fold_bits:
            return steps[0][1], steps[0][2]
        return None

    @property
    def folds(self) -> tuple[tuple[int, int], ...]:
        """(Tupdate << j, decay << j) for j = K−1 … 0: the binary digits of n missed intervals."""
        return tuple((t, d) for j, t, d in fold_steps(self.constants)
                     if j < self.constants.fold_bits)


@dataclass(frozen=True, slots=True)
class SwitchPlan:
    switch: I.Switch
    topology: I.Topology
    classifier: Classifier
    segments: tuple[Segment, ...]
    dualq_units: tuple[DualQUnit, ...]
    entries: tuple[TableEntry, ...]
    meter_configs: tuple[MeterConfig, ...]
    clone_sessions: tuple[CloneSession, ...]
    queue_buffers: tuple[tuple[int, int], ...]  # (port, buffer in µs) from queue functions
    libraries: tuple[str, ...]  # p4/ files the program includes, in include order
    # Classifier entries where a route *arrives* at the switch (its first pass here), with
    # their service: their hits count each packet of the service once, detours or not.
    arrivals: tuple[tuple[str, TableEntry], ...] = ()

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(s for seg in self.segments for s in seg.steps)

    @property
    def tables(self) -> tuple[Table, ...]:
        return (self.classifier.table, *(t for s in self.steps for t in s.tables))

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(dict.fromkeys(a for t in self.tables for a in t.all_actions))

    @property
    def counters(self) -> tuple[Counter, ...]:
        return (self.classifier.dropped, *(c for s in self.steps for c in s.counters),
                *(c for u in self.dualq_units for c in u.counters))

    @property
    def direct_counters(self) -> tuple[tuple[DirectCounter, Table], ...]:
        return tuple((t.counter, t) for t in self.tables if t.counter is not None)

    @property
    def meters(self) -> tuple[Meter, ...]:
        return tuple(m for s in self.steps for m in s.meters)

    @property
    def registers(self) -> tuple[Register, ...]:
        return (*(r for s in self.steps for r in s.registers),
                *(r for u in self.dualq_units for r in u.registers))


# --------------------------------------------------------------------------- building


class _PlanError(Exception):
    pass


@dataclass
class _Ctx:
    """Mutable state of one switch's planning (never escapes this module)."""

    program: I.Program
    placement: Placement
    switch: I.Switch
    topology: I.Topology
    ids: IdAllocator = field(default_factory=IdAllocator)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    entries: list[TableEntry] = field(default_factory=list)
    meter_configs: list[MeterConfig] = field(default_factory=list)
    clone_sessions: list[CloneSession] = field(default_factory=list)
    queue_buffers: dict[int, int] = field(default_factory=dict)
    dualq: dict[DualQConstants, list[tuple[str, int]]] = field(default_factory=dict)

    def port_to(self, node: str) -> int | None:
        link = self.topology.link_between(self.switch.name, node)
        return None if link is None else link.end(self.switch.name).port

    def action(self, name: str, *params: Param, control: str = INGRESS) -> Action:
        return Action(self.ids(Prefix.ACTION), name, tuple(params), control)

    def counter(self, name: str, size: int, unit: str = "packets",
                control: str = INGRESS) -> Counter:
        return Counter(self.ids(Prefix.COUNTER), name, size, unit, control)

    def direct_counter(self, name: str, unit: str = "packets_and_bytes") -> DirectCounter:
        return DirectCounter(self.ids(Prefix.DIRECT_COUNTER), name, unit)

    def table(self, name: str, keys: tuple[Key, ...], actions: tuple[Action, ...],
              default: Action, size: int, counter: DirectCounter | None = None) -> Table:
        return Table(self.ids(Prefix.TABLE), name, keys, actions, default, max(1, size),
                     counter)

    def register(self, name: str, size: int, bits: int, control: str = INGRESS) -> Register:
        return Register(self.ids(Prefix.REGISTER), name, size, bits, control)

    def meter(self, name: str, size: int) -> Meter:
        return Meter(self.ids(Prefix.METER), name, size)


def _p4_name(text: str) -> str:
    out = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in text)
    return out if not out[:1].isdigit() else f"_{out}"


def _instance_prefix(fi: I.FunctionInstance) -> str:
    return _p4_name(f"{fi.service}_{fi.index}_{fi.name.lower()}")


def _step_error(ctx: _Ctx, code: str, fi: I.FunctionInstance, message: str,
                hint: str | None = None) -> None:
    ctx.diagnostics.append(error(code, message, fi.span, hint))


# -- one builder per stdlib function: (ctx, instance, next_node) -> Step --------------------

Builder = Callable[[_Ctx, I.FunctionInstance, str], Step]


def _prefix_list(ctx: _Ctx, fi: I.FunctionInstance, kind: str) -> Step:
    prefix = _instance_prefix(fi)
    listed = ctx.action(f"{prefix}_listed")
    miss = ctx.action(f"{prefix}_unlisted")
    key = Key("ipv4.src", "hdr.ipv4.src", "lpm", 32, "ipv4")
    table = ctx.table(f"{prefix}_prefixes", (key,), (listed,), miss, int(fi.args["size"]),
                      ctx.direct_counter(f"{prefix}_hits"))
    dropped = ctx.counter(f"{prefix}_dropped", 1)
    prefixes: tuple[IPv4Network, ...] = tuple(fi.args["prefixes"])
    for net in dict.fromkeys(prefixes):
        m = () if net.prefixlen == 0 else (Match(key, int(net.network_address),
                                                 prefix_len=net.prefixlen),)
        ctx.entries.append(TableEntry(table, m, listed, comment=f"{fi.id} {kind} {net}"))
    return Step(fi, kind, prefix, f"std/security/{kind}.p4", (table,), (dropped,))


def _blocklist(ctx: _Ctx, fi: I.FunctionInstance, _next: str) -> Step:
    return _prefix_list(ctx, fi, "blocklist")


def _allowlist(ctx: _Ctx, fi: I.FunctionInstance, _next: str) -> Step:
    return _prefix_list(ctx, fi, "allowlist")


def _acl(ctx: _Ctx, fi: I.FunctionInstance, _next: str) -> Step:
    prefix = _instance_prefix(fi)
    rules: tuple[AclRule, ...] = tuple(fi.args["rules"])
    keys = matching.keys_for(r.predicate for r in rules)
    allow = ctx.action(f"{prefix}_allow")
    deny = ctx.action(f"{prefix}_deny")
    default = deny if fi.args["default"] == "deny" else allow
    entries: list[TableEntry] = []
    table_size = int(fi.args["size"])
    # Placeholder table to build entries against; re-created below with the real size.
    draft = Table(0, "", keys, (allow, deny), default, 1)
    for i, rule in enumerate(rules):
        action = allow if rule.action == "allow" else deny
        for m in matching.matches_for(rule.predicate, keys):
            entries.append(TableEntry(draft, m, action, priority=len(rules) - i,
                                      comment=f"{fi.id} rule {i + 1}: {rule.action}"))
    size = max(table_size, len(entries))
    table = ctx.table(f"{prefix}_rules", keys or (_acl_empty_key(),), (allow, deny), default,
                      size, ctx.direct_counter(f"{prefix}_hits"))
    for e in entries:
        ctx.entries.append(TableEntry(table, e.matches, e.action, priority=e.priority,
                                      comment=e.comment))
    dropped = ctx.counter(f"{prefix}_dropped", 1)
    return Step(fi, "acl", prefix, "std/security/acl.p4", (table,), (dropped,))


def _acl_empty_key() -> Key:
    # An Acl without rules still needs a key for P4: match ipv4 validity (never constrained).
    return matching.valid_key("ipv4")


def _ratelimit(ctx: _Ctx, fi: I.FunctionInstance, _next: str) -> Step:
    prefix = _instance_prefix(fi)
    per_source = fi.args["per"] == "source"
    cells = int(fi.args["buckets"]) if per_source else 1
    meter = ctx.meter(f"{prefix}_meter", cells)
    rate, burst = fi.args["rate"].pps, int(fi.args["burst"])
    label = f"{fi.id} {fi.args['rate']} burst {burst}"
    for i in range(cells):
        ctx.meter_configs.append(MeterConfig(meter, i, rate, burst, label))
    dropped = ctx.counter(f"{prefix}_dropped", 1)
    return Step(fi, "ratelimit", prefix, "std/security/ratelimit.p4", (), (dropped,), (meter,),
                const=(("per_source", int(per_source)), ("cells", cells)))


def _synguard(ctx: _Ctx, fi: I.FunctionInstance, _next: str) -> Step:
    prefix = _instance_prefix(fi)
    buckets = int(fi.args["buckets"])
    syns = ctx.register(f"{prefix}_syns", buckets, 32)
    window = ctx.register(f"{prefix}_window", buckets, 48)
    dropped = ctx.counter(f"{prefix}_dropped", 1)
    interval_us = max(1, round(fi.args["interval"].ns / 1000))
    return Step(fi, "synguard", prefix, "std/security/synguard.p4", (), (dropped,), (),
                (syns, window), (("buckets", buckets), ("max_syns", int(fi.args["max_syns"])),
                                 ("interval_us", interval_us)))


def _forward(ctx: _Ctx, fi: I.FunctionInstance, next_node: str) -> Step:
    prefix = _instance_prefix(fi)
    to = fi.args["to"]
    dest = ctx.topology.node(to.name if isinstance(to, NodeRef) else str(to))
    port_p = Param("port", PORT_BITS)
    route = ctx.action(f"{prefix}_route", port_p, Param("dmac", 48, "mac"))
    route_port = ctx.action(f"{prefix}_route_port", port_p)
    no_route = ctx.action(f"{prefix}_no_route")
    key = Key("ipv4.dst", "hdr.ipv4.dst", "lpm", 32, "ipv4")
    table = ctx.table(f"{prefix}_routes", (key,), (route, route_port), no_route,
                      int(fi.args["routes"]), ctx.direct_counter(f"{prefix}_hits"))
    port = ctx.port_to(next_node)
    if port is None:  # pragma: no cover - routes only list linked neighbours
        raise _PlanError(f"{ctx.switch.name} has no link to {next_node}")
    match = (Match(key, int(dest.ip), prefix_len=32),)
    nxt = ctx.topology.node(next_node)
    if isinstance(nxt, I.Endpoint) and nxt.mac is not None:
        ctx.entries.append(TableEntry(table, match, route, (port, nxt.mac.as_int),
                                      comment=f"{fi.id} {dest.ip}/32 via {next_node}"))
    else:
        ctx.entries.append(TableEntry(table, match, route_port, (port,),
                                      comment=f"{fi.id} {dest.ip}/32 via {next_node}"))
    return Step(fi, "forward", prefix, "std/fwd/forward.p4", (table,))


def _mirror(ctx: _Ctx, fi: I.FunctionInstance, _next: str) -> Step:
    prefix = _instance_prefix(fi)
    to = fi.args["to"]
    name = to.name if isinstance(to, NodeRef) else str(to)
    path = shortest_path(ctx.topology, ctx.switch.name, name)
    session = int(fi.args["session"])
    if path is None or len(path) < 2:
        _step_error(ctx, "E0907", fi, f"{fi.name} on `{ctx.switch.name}` cannot reach `{name}`",
                    "link the collector to the switch")
        port = 0
    else:
        port = ctx.port_to(path[1]) or 0
    ctx.clone_sessions.append(CloneSession(session, port, f"{fi.id} copies to {name}"))
    return Step(fi, "mirror", prefix, "std/fwd/mirror.p4", const=(("session", session),))


def _dualq(ctx: _Ctx, fi: I.FunctionInstance, next_node: str) -> Step:
    prefix = _instance_prefix(fi)
    constants = DualQConstants.from_args(fi.args)
    if ctx.switch.priority_queues < 2:
        _step_error(ctx, "E0903", fi, f"DualQ needs two priority queues but `{ctx.switch.name}` "
                    f"has {ctx.switch.priority_queues}",
                    f"declare `priority_queues: 2` on switch `{ctx.switch.name}`")
    ctx.dualq.setdefault(constants, [])
    unit = list(ctx.dualq).index(constants) + 1
    return Step(fi, "dualq", prefix, "std/l4s/dualq.p4",
                const=(("unit", unit), ("buffer_us", constants.buffer_us)))


def _fifo(ctx: _Ctx, fi: I.FunctionInstance, _next: str) -> Step:
    prefix = _instance_prefix(fi)
    return Step(fi, "fifo", prefix, "std/l4s/fifo.p4",
                const=(("buffer_us", max(1, round(fi.args["buffer"].ns / 1000))),))


def _attach_queue(ctx: _Ctx, step: Step, port: int | None) -> None:
    """A queue function manages the egress port its packets leave by."""
    if port is None or step.template not in ("dualq", "fifo"):
        return
    if step.template == "dualq":
        constants = DualQConstants.from_args(step.instance.args)
        users = ctx.dualq[constants]
        if (step.instance.id, port) not in users:
            users.append((step.instance.id, port))
    ctx.queue_buffers.setdefault(port, step.c("buffer_us"))


SUPPORTED: dict[str, Builder] = {
    "std.security.Blocklist": _blocklist,
    "std.security.Allowlist": _allowlist,
    "std.security.Acl": _acl,
    "std.security.RateLimit": _ratelimit,
    "std.security.SynGuard": _synguard,
    "std.fwd.Forward": _forward,
    "std.fwd.Mirror": _mirror,
    "std.l4s.DualQ": _dualq,
    "std.l4s.Fifo": _fifo,
}

# Library files every program includes, then the per-function ones in this order.
_BASE_LIBRARIES = ("mosaico/headers.p4", "mosaico/parser.p4", "mosaico/checksum.p4",
                   "mosaico/deparser.p4")
_FORWARD_LIBRARY = "std/fwd/forward.p4"  # also delivers replies to their source
_LIBRARY_ORDER = ("std/security/blocklist.p4", "std/security/allowlist.p4",
                  "std/security/acl.p4", "std/security/ratelimit.p4",
                  "std/security/synguard.p4", "std/l4s/dualq.p4", "std/l4s/fifo.p4",
                  "std/fwd/mirror.p4", "std/fwd/forward.p4")


# --------------------------------------------------------------------------- segments


@dataclass(frozen=True, slots=True)
class _Pass:
    """A route's visit to the switch: where packets come from and go, and what runs."""

    service: I.Service
    source: str
    prev_node: str
    next_node: str
    instances: tuple[str, ...]
    first: bool  # the route's first visit to the switch


def _passes(program: I.Program, placement: Placement) -> dict[str, list[_Pass]]:
    """Every switch's passes, in service and route order (one scan of all routes)."""
    out: dict[str, list[_Pass]] = {}
    for svc in program.services:
        for route in placement.routes_of(svc.name):
            visits = route.visits
            seen: set[str] = set()
            for i in range(1, len(visits) - 1):
                v = visits[i]
                switch = v.node
                mine = tuple(x for x in v.instances
                             if placement.assignment(x).node == switch
                             and placement.assignment(x).target == P4_TARGET)
                out.setdefault(switch, []).append(_Pass(
                    svc, route.source, visits[i - 1].node, visits[i + 1].node, mine,
                    switch not in seen))
                seen.add(switch)
    return out


@dataclass(frozen=True, slots=True)
class _ReplyHop:
    """A reply path's visit to the switch: replies of ``service`` to ``source`` come from
    ``prev_node`` and go on to ``next_node`` — the source itself when ``deliver``."""

    service: I.Service
    source: str
    prev_node: str
    next_node: str
    deliver: bool
    predicate: Predicate


def _reply_hops(program: I.Program, placement: Placement, topology: I.Topology,
                switch: str) -> list[_ReplyHop]:
    out: list[_ReplyHop] = []
    for svc in program.services:
        if not svc.replies or svc.topology != topology.name:
            continue
        for route in placement.routes_of(svc.name):
            path = route.reply_nodes
            for i in range(1, len(path) - 1):
                if path[i] == switch:
                    out.append(_ReplyHop(svc, route.source, path[i - 1], path[i + 1],
                                         i + 2 == len(path),
                                         reply_match(svc, topology, (route.source,))))
    return out


def switches_with_programs(program: I.Program, placement: Placement) -> tuple[str, ...]:
    """Switches some route crosses or some P4 function runs on, in topology order."""
    used = {v.node for r in placement.routes for v in r.visits}
    used |= {a.node for a in placement.assignments if a.target == P4_TARGET}
    return tuple(s.name for t in program.topologies for s in t.switches if s.name in used)


def _topology_of(program: I.Program, switch: str) -> I.Topology:
    return next(t for t in program.topologies
                if t.has_node(switch) and isinstance(t.node(switch), I.Switch))


def plan_switches(program: I.Program, placement: Placement
                  ) -> tuple[tuple[SwitchPlan, ...], tuple[Diagnostic, ...]]:
    """A plan per switch, and every diagnostic found on the way (all switches checked)."""
    plans: list[SwitchPlan] = []
    diagnostics: list[Diagnostic] = []
    passes = _passes(program, placement)
    for name in switches_with_programs(program, placement):
        topo = _topology_of(program, name)
        switch = topo.node(name)
        assert isinstance(switch, I.Switch)
        ctx = _Ctx(program, placement, switch, topo)
        plan = _plan_switch(ctx, passes.get(name, []))
        diagnostics.extend(ctx.diagnostics)
        if plan is not None:
            plans.append(plan)
    return tuple(plans), tuple(diagnostics)


def _plan_switch(ctx: _Ctx, passes: list[_Pass]) -> SwitchPlan | None:
    services = list(dict.fromkeys(p.service.name for p in passes))
    if len(services) > MAX_SERVICES:
        ctx.diagnostics.append(error(
            "E0905", f"{len(services)} services cross `{ctx.switch.name}`; one P4 program "
            f"serves at most {MAX_SERVICES}", ctx.switch.span, "split the traffic over more "
            "switches or merge services"))
        return None
    unsupported = [p for p in dict.fromkeys(p.service for p in passes)
                   if matching.unsupported_fields(p.match)]
    for svc in unsupported:
        fields = ", ".join(str(f) for f in matching.unsupported_fields(svc.match))
        ctx.diagnostics.append(error(
            "E0906", f"the P4 parser of `{ctx.switch.name}` does not extract {fields} "
            f"(used by the match of `{svc.name}`)", svc.span,
            f"P4 matches on {', '.join(matching.P4_FIELDS)}"))
    if unsupported:
        return None

    # Segments: one per distinct (service, instances run here), in route order; where the
    # packet goes next is per classifier entry, so routes that part ways share a segment.
    seg_keys: dict[tuple[str, tuple[str, ...]], tuple[int, int]] = {}
    seg_passes: dict[tuple[str, tuple[str, ...]], list[_Pass]] = {}
    for p in passes:
        key = (p.service.name, p.instances)
        if key not in seg_keys:
            sid = services.index(p.service.name) + 1
            segment = sum(1 for k in seg_keys if k[0] == p.service.name)
            seg_keys[key] = (sid, segment)
        seg_passes.setdefault(key, []).append(p)

    # Shared objects first (their ids are stable whatever the services are).
    classifier_id = ctx.ids(Prefix.TABLE)
    classify = ctx.action("classify", Param("service", 8), Param("segment", 8),
                          Param("next_port", PORT_BITS))
    unclassified = ctx.action("unclassified")
    hops = _reply_hops(ctx.program, ctx.placement, ctx.topology, ctx.switch.name)
    pred_keys = matching.keys_for([*(p.service.match for p in passes),
                                   *(h.predicate for h in hops)])
    port_key = Key("ingress_port", "standard_metadata.ingress_port", "exact", PORT_BITS)
    keys = (port_key, *pred_keys)
    dropped = ctx.counter("unclassified_packets", 1)
    classifier_hits = ctx.direct_counter("classifier_hits")

    built: list[tuple[tuple[str, tuple[str, ...]], list[Step]]] = []
    cache: dict[str, Step] = {}
    for key in seg_keys:
        steps: list[Step] = []
        for iid in key[1]:
            fi = ctx.program.instance(iid)
            builder = SUPPORTED.get(fi.function)
            if builder is None:
                if iid not in cache:
                    _step_error(ctx, "E0902", fi, f"`{fi.function}` has no P4 implementation",
                                "P4 implements "
                                f"{', '.join(f.rsplit('.', 1)[1] for f in SUPPORTED)}; place "
                                "this function on a VNF host (`place: \"vnf\"`)")
                    cache[iid] = None  # type: ignore[assignment]
                continue
            if iid not in cache:
                cache[iid] = builder(ctx, fi, seg_passes[key][0].next_node)
            if cache[iid] is not None:
                steps.append(cache[iid])
        built.append((key, steps))
    # Queues manage the port each pass leaves by (all of them, not only the first pass's).
    for key, steps in built:
        for step in steps:
            for p in seg_passes[key]:
                _attach_queue(ctx, step, ctx.port_to(p.next_node))

    # Service traffic takes precedence over replies: a packet some service matches is that
    # service's, even when it also answers another service's traffic.
    n = len(services)
    classifier_entries: list[TableEntry] = []
    arriving: dict[int, str] = {}  # index in classifier_entries -> service
    draft = Table(0, "", keys, (classify,), unclassified, 1)
    for key, _ in built:
        sid, segment = seg_keys[key]
        for p in seg_passes[key]:
            in_port = ctx.port_to(p.prev_node)
            out_port = ctx.port_to(p.next_node)
            if in_port is None or out_port is None:  # pragma: no cover - routes follow links
                raise _PlanError(f"route through {ctx.switch.name} uses a missing link")
            priority = 2 * n - services.index(p.service.name)
            for m in matching.matches_for(p.service.match, pred_keys):
                e = TableEntry(draft, (Match(port_key, in_port), *m), classify,
                               (sid, segment, out_port), priority,
                               f"{p.service.name} from {p.source} (port {in_port}, from "
                               f"{p.prev_node}): segment {segment}")
                same = [i for i, x in enumerate(classifier_entries) if x.matches == e.matches]
                if not same:
                    same = [len(classifier_entries)]
                    classifier_entries.append(e)
                if p.first:
                    arriving[same[0]] = p.service.name
    reply_actions = _reply_actions(ctx, hops)
    reply_entries: list[TableEntry] = []
    for h in hops:
        in_port, out_port = ctx.port_to(h.prev_node), ctx.port_to(h.next_node)
        if in_port is None or out_port is None:  # pragma: no cover - routes follow links
            raise _PlanError(f"reply path through {ctx.switch.name} uses a missing link")
        nxt = ctx.topology.node(h.next_node)
        if not h.deliver:
            action, args = reply_actions["transit"], (out_port,)
        elif isinstance(nxt, I.Endpoint) and nxt.mac is not None:
            action, args = reply_actions["route"], (out_port, nxt.mac.as_int)
        else:
            action, args = reply_actions["route_port"], (out_port,)
        for m in matching.matches_for(h.predicate, pred_keys):
            e = TableEntry(draft, (Match(port_key, in_port), *m), action, args,
                           n - services.index(h.service.name),
                           f"reply of {h.service.name} to {h.source} (port {in_port}, from "
                           f"{h.prev_node}): back towards {h.next_node}")
            if all(x.matches != e.matches for x in reply_entries):
                reply_entries.append(e)
    classifier_entries += reply_entries
    actions = (classify, *(a for a in reply_actions.values() if a is not None))
    table = Table(classifier_id, "classifier", keys, actions, unclassified,
                  max(64, len(classifier_entries)), classifier_hits)
    classifier = Classifier(table, classify, unclassified, dropped, reply_actions["transit"],
                            reply_actions["route"], reply_actions["route_port"])
    entries = [TableEntry(table, e.matches, e.action, e.args, e.priority, e.comment)
               for e in classifier_entries]

    segments = []
    for key, steps in built:
        sid, segment = seg_keys[key]
        first = seg_passes[key][0]
        segments.append(Segment(key[0], sid, segment, tuple(steps),
                                ctx.port_to(first.next_node) or 0, first.next_node))

    units = _dualq_units(ctx)
    used = {s.library for seg in segments for s in seg.steps}
    if classifier.delivers_replies:
        used.add(_FORWARD_LIBRARY)
    libraries = (*_BASE_LIBRARIES, *(lib for lib in _LIBRARY_ORDER if lib in used))
    return SwitchPlan(ctx.switch, ctx.topology, classifier, tuple(segments), units,
                      (*entries, *ctx.entries), tuple(ctx.meter_configs),
                      tuple(ctx.clone_sessions), tuple(sorted(ctx.queue_buffers.items())),
                      libraries, tuple((svc, entries[i]) for i, svc in sorted(arriving.items())))


def _reply_actions(ctx: _Ctx, hops: list[_ReplyHop]) -> dict[str, Action | None]:
    """The classifier's reply actions this switch needs (declared after every other action,
    so a program without replies keeps its ids)."""
    def needs(kind: str) -> bool:
        for h in hops:
            nxt = ctx.topology.node(h.next_node)
            has_mac = isinstance(nxt, I.Endpoint) and nxt.mac is not None
            if kind == ("transit" if not h.deliver else "route" if has_mac else "route_port"):
                return True
        return False

    port = Param("port", PORT_BITS)
    return {
        "transit": ctx.action("reply_transit", port) if needs("transit") else None,
        "route": ctx.action("reply_route", port, Param("dmac", 48, "mac"))
        if needs("route") else None,
        "route_port": ctx.action("reply_route_port", port) if needs("route_port") else None,
    }


def _dualq_units(ctx: _Ctx) -> tuple[DualQUnit, ...]:
    units: list[DualQUnit] = []
    owner: dict[int, tuple[int, str]] = {}
    program = ctx.program
    for n, (constants, users) in enumerate(ctx.dualq.items(), start=1):
        prefix = f"dualq{n}"
        for iid, port in users:
            if port in owner and owner[port][0] != n:
                first = program.instance(owner[port][1])
                fi = program.instance(iid)
                ctx.diagnostics.append(error(
                    "E0904", f"port {ctx.switch.name}.{port} would run two DualQ "
                    f"configurations ({first.id} and {fi.id})", fi.span,
                    "one egress port has one queue: give both DualQs the same parameters",
                    [Note(f"{first.id} configures it here", first.span)]))
            owner.setdefault(port, (n, iid))
        ports = ctx.switch.ports
        regs = tuple(ctx.register(f"{prefix}_{role}", ports, bits, control)
                     for role, bits, control in (
            ("p", 32, EGRESS), ("last_update", 48, EGRESS), ("qdelay_c", 32, EGRESS),
            ("qdelay_c_seen", 48, EGRESS), ("qdelay_c_prev", 32, EGRESS),
            ("qdelay_l", 32, EGRESS), ("c_left", 32, EGRESS), ("c_arrival", 48, TOP)))
        counters = tuple(ctx.counter(f"{prefix}_{role}", ports * 2, "packets", EGRESS)
                         for role in ("packets", "marks", "drops"))
        units.append(DualQUnit(n, prefix, constants, tuple(i for i, _ in users),
                               tuple(sorted({p for _, p in users})), regs, counters,
                               tuple(users)))
    return tuple(units)

