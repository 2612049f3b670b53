"""The embedded Python API: build mosaico programs with Python objects.

Everything here builds the *same AST* as the ``.mosaico`` parser, so the checker, the
placement and the backends cannot tell the two front ends apart, and ``to_source()`` prints
an API-built program as text that parses back to an equal program.

Every object records where the user created it (file, line, column of the call), so a
diagnostic about an API-built program points at the user's Python line::

    import mosaico_dsl as mo
    from mosaico_dsl.std import security as sec, l4s, fwd

    lab = mo.Topology("lab")
    s1 = lab.switch("s1", ports=5, queue_rate="12Mbps")
    server = lab.endpoint("server", ip="10.0.2.1")
    lab.link(s1.port(0), server, bandwidth="12Mbps", delay="5ms")
    web = mo.Service("web", on=lab, match=mo.f.tcp.dport.isin({80, 443}),
                     latency="20ms", secure=True,
                     chain=sec.Blocklist(prefixes=["203.0.113.0/24"])
                           >> l4s.DualQ() >> fwd.Forward(to=server))
    program = mo.Program(lab, web)
"""

from __future__ import annotations

import inspect
import ipaddress
import math
import re
import sys
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from .diagnostics import CompileError, Span, error
from .lang import _ast as A
from .lang.printer import format_module
from .units import Quantity, split_quantity

__all__ = [
    "Topology", "NodeHandle", "PortHandle", "Service", "Program", "Chain", "Step", "Const",
    "Composite", "Param", "f", "lit", "ms", "us", "s", "Mbps", "Gbps", "kpps", "KiB", "MiB",
    "percent", "Predicate", "FieldRef",
]

_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def _caller_span() -> Span | None:
    """The span of the first frame outside mosaico_dsl: the user's call site."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:  # pragma: no cover - called from inside the package only
        return None
    info = inspect.getframeinfo(frame, context=0)
    pos = info.positions
    if pos is not None and pos.lineno is not None and pos.col_offset is not None:
        return Span(info.filename, pos.lineno, pos.col_offset + 1, pos.end_lineno,
                    (pos.end_col_offset or pos.col_offset) + 1)
    return Span(info.filename, info.lineno, 1)


def _fail(message: str, hint: str | None = None, code: str = "E0301") -> CompileError:
    return CompileError([error(code, message, _caller_span(), hint)])


# ----------------------------------------------------------------------------- values

_IPV4 = re.compile(r"\d+\.\d+\.\d+\.\d+")
_PREFIX = re.compile(r"\d+\.\d+\.\d+\.\d+/\d+")
_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


def lit(value: Any) -> A.Expr:
    """A Python value as a mosaico expression, as the parser would build it.

    Strings that read as mosaico literals become them (``"15ms"`` a time, ``"10.0.2.1"`` an
    address, ``"10.0.0.0/8"`` a prefix); other strings stay strings.
    """
    return _expr(value, _caller_span())


def _expr(value: Any, span: Span | None) -> A.Expr:
    if isinstance(value, _AstLike):
        return value._expr(span)
    if isinstance(value, A.Node):
        return value  # type: ignore[return-value]
    if isinstance(value, bool):
        return A.BoolLit(value, span=span)
    if isinstance(value, int):
        node = A.IntLit(abs(value), span=span)
        return A.UnaryOp("-", node, span=span) if value < 0 else node
    if isinstance(value, (float, Decimal)):
        if isinstance(value, float) and not math.isfinite(value):
            raise CompileError([error("E0104", f"{value} is not a number mosaico can write",
                                      span)])
        d = Decimal(repr(value)) if isinstance(value, float) else value
        node = A.FloatLit(abs(d), span=span)
        return A.UnaryOp("-", node, span=span) if d < 0 else node
    if isinstance(value, Quantity):
        magnitude, unit = split_quantity(str(value)) or (Decimal(str(value.base)),
                                                          value.base_unit)
        return A.QuantityLit(magnitude, unit, span=span)
    if isinstance(value, ipaddress.IPv4Address):
        return A.IPv4Lit(value, span=span)
    if isinstance(value, ipaddress.IPv4Network):
        return A.PrefixLit(value.network_address, value.prefixlen, span=span)
    if isinstance(value, str):
        return _string(value, span)
    if isinstance(value, range):
        if value.step != 1 or len(value) == 0:
            raise CompileError([error("E0301", "only ranges with step 1 and at least one "
                                      "value are mosaico ranges", span)])
        return A.RangeExpr(_expr(value.start, span), _expr(value.stop - 1, span), span=span)
    if isinstance(value, (list, tuple)):
        return A.ListLit(tuple(_expr(v, span) for v in value), span=span)
    if isinstance(value, (set, frozenset)):
        # Python sets have no order; sort for a deterministic program.
        from .lang.printer import format_expr
        items = [_expr(v, span) for v in value]
        return A.SetLit(tuple(sorted(items, key=lambda e: (type(e).__name__, _sort_key(e),
                                                            format_expr(e)))), span=span)
    raise CompileError([error("E0301", f"a Python {type(value).__name__} is not a mosaico "
                              "value", span, "use numbers, strings such as \"15ms\" or "
                              "\"10.0.0.0/8\", lists, sets, or mosaico objects")])


def _sort_key(e: A.Expr) -> Any:
    return e.value if isinstance(e, A.IntLit) else 0  # numbers in numeric order


def _string(value: str, span: Span | None) -> A.Expr:
    text = value.strip()
    q = split_quantity(text)
    if q is not None:
        return A.QuantityLit(q[0], q[1], span=span)
    try:
        if _PREFIX.fullmatch(text):
            addr, _, n = text.partition("/")
            return A.PrefixLit(ipaddress.IPv4Address(addr), int(n), span=span)
        if _IPV4.fullmatch(text):
            return A.IPv4Lit(ipaddress.IPv4Address(text), span=span)
    except ValueError as e:
        raise CompileError([error("E0104", f"{text!r} is not an IPv4 address or prefix: {e}",
                                  span)]) from None
    if _MAC.fullmatch(text):
        return A.MacLit(text.lower(), span=span)
    return A.StringLit(value, span=span)


def _quantity_helper(unit: str):
    def make(value: int | float | str) -> A.QuantityLit:
        return A.QuantityLit(Decimal(str(value)), unit, span=_caller_span())
    make.__name__ = make.__qualname__ = unit
    make.__doc__ = f"``{unit}(15)`` is the mosaico literal ``15{unit}``."
    return make


ms, us, s = _quantity_helper("ms"), _quantity_helper("us"), _quantity_helper("s")
Mbps, Gbps, kpps = _quantity_helper("Mbps"), _quantity_helper("Gbps"), _quantity_helper("kpps")
KiB, MiB, percent = _quantity_helper("KiB"), _quantity_helper("MiB"), _quantity_helper("%")


class _AstLike:
    """Objects that stand for a mosaico expression (fields, predicates, nodes, consts)."""

    def _expr(self, span: Span | None) -> A.Expr:  # pragma: no cover - abstract
        raise NotImplementedError


# ----------------------------------------------------------------------------- predicates


class Predicate(_AstLike):
    """A boolean condition on packet fields; combine with ``&``, ``|`` and ``~``."""

    def __init__(self, node: A.Expr) -> None:
        self._node = node

    def _expr(self, span: Span | None = None) -> A.Expr:
        return self._node

    def _combine(self, op: str, other: Any) -> Predicate:
        if not isinstance(other, Predicate):
            raise _fail(f"`{'&' if op == 'and' else '|'}` combines predicates, not "
                        f"{type(other).__name__}", "e.g. (f.ipv4.dst == ...) & (f.tcp.dport == 80)")
        operands: list[A.Expr] = []
        for p in (self._node, other._node):  # and/or are kept flat, as the parser does
            operands.extend(p.operands if isinstance(p, A.BoolOp) and p.op == op else [p])
        return Predicate(A.BoolOp(op, tuple(operands), span=_caller_span()))

    def __and__(self, other: Any) -> Predicate:
        return self._combine("and", other)

    def __or__(self, other: Any) -> Predicate:
        return self._combine("or", other)

    def __invert__(self) -> Predicate:
        return Predicate(A.Not(self._node, span=_caller_span()))

    def __bool__(self) -> bool:
        raise TypeError("a mosaico predicate has no truth value in Python: use & | ~ "
                        "instead of and/or/not")

    def __repr__(self) -> str:
        from .lang.printer import format_expr
        return f"<mosaico predicate {format_expr(self._node)}>"


class FieldRef(_AstLike):
    """``f.ipv4.dst``: a packet field; comparing it builds a :class:`Predicate`."""

    __hash__ = None  # type: ignore[assignment]  # == builds predicates

    def __init__(self, header: str, name: str) -> None:
        self.header, self.name = header, name

    def _expr(self, span: Span | None) -> A.Expr:
        return A.Attribute(A.Name(self.header, span=span), self.name, span=span)

    def _cmp(self, op: str, other: Any) -> Predicate:
        span = _caller_span()
        left = A.Attribute(A.Name(self.header, span=span), self.name, span=span)
        return Predicate(A.Compare(op, left, _expr(other, span), span=span))

    def __eq__(self, other: Any) -> Predicate:  # type: ignore[override]
        return self._cmp("==", other)

    def __ne__(self, other: Any) -> Predicate:  # type: ignore[override]
        return self._cmp("!=", other)

    def __lt__(self, other: Any) -> Predicate:
        return self._cmp("<", other)

    def __le__(self, other: Any) -> Predicate:
        return self._cmp("<=", other)

    def __gt__(self, other: Any) -> Predicate:
        return self._cmp(">", other)

    def __ge__(self, other: Any) -> Predicate:
        return self._cmp(">=", other)

    def isin(self, values: Any) -> Predicate:
        """``f.tcp.dport.isin({80, 443})`` is ``tcp.dport in {80, 443}``."""
        return self._cmp("in", values)

    def __repr__(self) -> str:
        return f"<packet field {self.header}.{self.name}>"


class _Header:
    def __init__(self, name: str, fields: tuple[str, ...]) -> None:
        self._name, self._fields = name, fields

    def __getattr__(self, name: str) -> FieldRef:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._fields:
            raise _fail(f"header `{self._name}` has no field `{name}`",
                        f"its fields are {', '.join(self._fields)}", code="E0209")
        return FieldRef(self._name, name)

    def __dir__(self) -> list[str]:
        return list(self._fields)


class _Fields:
    """``f``: the packet headers of std.net (``f.ipv4.dst``, ``f.tcp.dport``)."""

    def _headers(self) -> dict[str, tuple[str, ...]]:
        from .std import header_fields
        return header_fields()

    def __getattr__(self, name: str) -> _Header:
        if name.startswith("_"):
            raise AttributeError(name)
        headers = self._headers()
        if name not in headers:
            raise _fail(f"unknown packet header `{name}`",
                        f"headers are {', '.join(headers)}", code="E0209")
        return _Header(name, headers[name])

    def __dir__(self) -> list[str]:
        return list(self._headers())


f = _Fields()

# ----------------------------------------------------------------------------- topology


class NodeHandle(_AstLike):
    """A switch, host or endpoint of a :class:`Topology`; usable as a value (``to=server``)."""

    def __init__(self, topology: Topology, kind: str, name: str) -> None:
        self.topology, self.kind, self.name = topology, kind, name

    def _expr(self, span: Span | None) -> A.Expr:
        return A.Name(self.name, span=span)

    def port(self, number: int) -> PortHandle:
        if self.kind != "switch":
            raise _fail(f"{self.kind} `{self.name}` has no numbered ports", code="E0704")
        return PortHandle(self, number)

    __getitem__ = port

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}>"


class PortHandle:
    def __init__(self, node: NodeHandle, number: int) -> None:
        self.node, self.number = node, number

    def __repr__(self) -> str:
        return f"<port {self.node.name}.{self.number}>"


def _attrs(attrs: Mapping[str, Any], span: Span | None) -> tuple[A.Attr, ...]:
    return tuple(A.Attr(k, _expr(v, span), span=span) for k, v in attrs.items()
                 if v is not None)


class Topology:
    """Switches, hosts, endpoints and links; mirrors ``topology NAME { ... }``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._span = _caller_span()
        self._nodes: list[A.NodeDecl] = []
        self._links: list[A.LinkDecl] = []
        self._handles: dict[str, NodeHandle] = {}

    def _add(self, kind: str, name: str, target: str | None, attrs: Mapping[str, Any]
             ) -> NodeHandle:
        span = _caller_span()
        self._nodes.append(A.NodeDecl(kind, name, target, _attrs(attrs, span), span=span))
        handle = NodeHandle(self, kind, name)
        self._handles[name] = handle
        return handle

    def switch(self, name: str, target: str = "bmv2", **attrs: Any) -> NodeHandle:
        """``switch NAME : bmv2 { ports: .., priority_queues: .., queue_rate: .. }``."""
        return self._add("switch", name, target, attrs)

    def host(self, name: str, platform: str = "openstack", **attrs: Any) -> NodeHandle:
        """``host NAME : openstack { vcpus: .., ram: .., trusted: .. }``."""
        return self._add("host", name, platform, attrs)

    def endpoint(self, name: str, **attrs: Any) -> NodeHandle:
        """``endpoint NAME { ip: .., trusted: .. }``."""
        return self._add("endpoint", name, None, attrs)

    def link(self, a: NodeHandle | PortHandle | str, b: NodeHandle | PortHandle | str,
             **attrs: Any) -> None:
        """``link a -- b { bandwidth: .., delay: .. }``; a switch end is ``s1.port(2)``."""
        span = _caller_span()
        self._links.append(A.LinkDecl(self._end(a, span), self._end(b, span),
                                      _attrs(attrs, span), span=span))

    def _end(self, x: NodeHandle | PortHandle | str, span: Span | None) -> A.LinkEnd:
        if isinstance(x, PortHandle):
            return A.LinkEnd(x.node.name, x.number, span=span)
        if isinstance(x, NodeHandle):
            return A.LinkEnd(x.name, None, span=span)
        if isinstance(x, str):
            m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:\.(\d+))?", x)
            if m:
                return A.LinkEnd(m[1], int(m[2]) if m[2] else None, span=span)
        raise CompileError([error("E0706", f"{x!r} is not a link end", span,
                                  'use a node, `s1.port(2)`, or a string like "s1.2"')])

    def __getitem__(self, name: str) -> NodeHandle:
        return self._handles[name]

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self._handles]

    @property
    def ast(self) -> A.TopologyDecl:
        return A.TopologyDecl(self.name, tuple(self._nodes), tuple(self._links),
                              span=self._span)

    def __repr__(self) -> str:
        return f"<Topology {self.name}: {len(self._nodes)} nodes, {len(self._links)} links>"

    # Rich displays (notebooks): drawn by mosaico_dsl.display, imported on first use.
    def _repr_html_(self) -> str:
        from .display import topology_view
        return topology_view(self)._repr_html_()

    def _repr_svg_(self) -> str | None:
        from .display import topology_view
        return topology_view(self)._repr_svg_()


# ----------------------------------------------------------------------------- chains


class Step:
    """One invocation in a chain, e.g. ``sec.RateLimit(rate="20kpps")``; chain with ``>>``."""

    def __init__(self, function: _FunctionRef, args: Mapping[str, Any], span: Span | None,
                 pin: str | None = None) -> None:
        self.function, self.args, self.span, self.pin = function, dict(args), span, pin

    def at(self, node: NodeHandle | str) -> Step:
        """Pin the step to a node: ``.at(s1)`` is ``@ s1``."""
        name = node.name if isinstance(node, NodeHandle) else node
        return Step(self.function, self.args, self.span, name)

    def __rshift__(self, other: Step | Chain) -> Chain:
        return Chain([self]) >> other

    def _ast(self, path: tuple[str, ...]) -> A.Invocation:
        args = tuple(A.Arg(k, _meta(k, v, self.span) if k in ("place", "prefer")
                           else _expr(v, self.span), span=self.span)
                     for k, v in self.args.items())
        return A.Invocation(path, args, self.pin, span=self.span)

    def __repr__(self) -> str:
        return f"<step {self.function.qualname}({', '.join(self.args)})>"


def _meta(key: str, value: Any, span: Span | None) -> A.Expr:
    return A.Name(str(value), span=span)


class Chain:
    """Steps in order; ``a >> b >> c``."""

    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps = list(steps)

    def __rshift__(self, other: Step | Chain) -> Chain:
        if isinstance(other, Step):
            return Chain([*self.steps, other])
        if isinstance(other, Chain):
            return Chain([*self.steps, *other.steps])
        raise _fail(f"`>>` chains steps, not {type(other).__name__}",
                    "e.g. sec.Blocklist(prefixes=...) >> fwd.Forward(to=server)")

    def __repr__(self) -> str:
        return " >> ".join(map(repr, self.steps))


class _FunctionRef:
    """A function a step calls: a stdlib function or a :class:`Composite`."""

    module: tuple[str, ...] | None
    name: str

    @property
    def qualname(self) -> str:
        return ".".join((*self.module, self.name)) if self.module else self.name


# ----------------------------------------------------------------------------- consts, composites


class Const(_AstLike):
    """A named constant: ``Const("ATTACKERS", [...])`` is ``const ATTACKERS = [...]``."""

    def __init__(self, name: str, value: Any) -> None:
        self.name = name
        self.span = _caller_span()
        self.value = _expr(value, self.span)

    def _expr(self, span: Span | None) -> A.Expr:
        return A.Name(self.name, span=span)

    @property
    def ast(self) -> A.Const:
        return A.Const(self.name, None, self.value, span=self.span)


class Param(_AstLike):
    """A parameter of a :class:`Composite`; used inside its chain as a value."""

    def __init__(self, name: str, type: str, default: Any = None) -> None:
        self.name, self.type = name, type
        self.span = _caller_span()
        self.default = None if default is None else _expr(default, self.span)

    def _expr(self, span: Span | None) -> A.Expr:
        return A.Name(self.name, span=span)

    @property
    def ast(self) -> A.Param:
        from .lang.parser import parse
        result = parse(f"function _(x: {self.type}) {{ }}")
        if result.module is None:
            raise CompileError([error("E0303", f"{self.type!r} is not a mosaico type",
                                      self.span, "e.g. \"rate\", \"list<prefix>\"")])
        tref = result.module.items[0].params[0].type
        return A.Param(self.name, tref, self.default, None, span=self.span)


class Composite(_FunctionRef):
    """A user function built from others: ``function NAME(params) { chain { ... } }``."""

    module = None

    def __init__(self, name: str, params: Iterable[Param], chain: Chain | Step,
                 kind: str | None = None) -> None:
        self.name = name
        self.params = list(params)
        self.chain = chain if isinstance(chain, Chain) else Chain([chain])
        self.kind = kind
        self.span = _caller_span()

    def __call__(self, **kwargs: Any) -> Step:
        return Step(self, kwargs, _caller_span())


# ----------------------------------------------------------------------------- services


class Service:
    """``service NAME on TOPOLOGY { match ...; require ...; chain { ... } }``.

    ``reply="drop"`` is ``reply drop`` (replies are not forwarded back); ``"forward"``, the
    language's default, is written out only when given.
    """

    def __init__(self, name: str, on: Topology, *, chain: Chain | Step,
                 match: Predicate | None = None, latency: Any = None, bandwidth: Any = None,
                 secure: bool = False, sources: Iterable[NodeHandle | str] | None = None,
                 reply: str | None = None) -> None:
        if not isinstance(on, Topology):
            raise _fail("`on=` takes the Topology the service runs on", code="E0206")
        self.name, self.topology = name, on
        self.span = _caller_span()
        self.chain = chain if isinstance(chain, Chain) else Chain([chain])
        self.match, self.latency, self.bandwidth, self.secure = match, latency, bandwidth, secure
        self.sources = None if sources is None else [
            s.name if isinstance(s, NodeHandle) else str(s) for s in sources]
        self.reply = reply

    def _statements(self, paths: Mapping[int, tuple[str, ...]]) -> tuple:
        span = self.span
        out: list = []
        if self.match is not None:
            if not isinstance(self.match, Predicate):
                raise CompileError([error("E0607", "`match=` takes a predicate such as "
                                          "mo.f.ipv4.dst == \"10.0.2.1\"", span)])
            out.append(A.MatchStmt(self.match._expr(span), span=span))
        if self.sources is not None:
            out.append(A.FromStmt(tuple(self.sources), span=span))
        if self.latency is not None:
            out.append(A.RequireStmt("latency", "<=", _expr(self.latency, span), span=span))
        if self.bandwidth is not None:
            out.append(A.RequireStmt("bandwidth", ">=", _expr(self.bandwidth, span), span=span))
        if self.secure:
            out.append(A.RequireStmt("secure", span=span))
        if self.reply is not None:
            out.append(A.ReplyStmt(str(self.reply), span=span))
        steps = tuple(step._ast(paths[id(step.function)]) for step in self.chain.steps)
        out.append(A.Chain(steps, span=span))
        return tuple(out)

    def __repr__(self) -> str:
        return f"<Service {self.name} on {self.topology.name}: {self.chain!r}>"


class Program:
    """Topologies, composites, constants and services: one mosaico module.

    ``Program(lab, web, video)`` or ``Program(lab, [web, video])``; the stdlib functions the
    services use are imported automatically (``from std.security import Blocklist``).
    """

    def __init__(self, *items: Any) -> None:
        self.span = _caller_span()
        flat: list[Any] = []
        for item in items:
            flat.extend(item if isinstance(item, (list, tuple)) else [item])
        for item in flat:
            if not isinstance(item, (Topology, Service, Composite, Const)):
                raise _fail(f"a Program holds topologies, services, composites and consts, "
                            f"not {type(item).__name__}")
        self.items = flat

    def _functions(self) -> list[_FunctionRef]:
        seen: dict[int, _FunctionRef] = {}

        def visit(chain: Chain) -> None:
            for step in chain.steps:
                if id(step.function) not in seen:
                    seen[id(step.function)] = step.function
                    if isinstance(step.function, Composite):
                        visit(step.function.chain)

        for item in self.items:
            if isinstance(item, (Service, Composite)):
                visit(item.chain)
        return list(seen.values())

    @property
    def ast(self) -> A.Module:
        functions = self._functions()
        # Import each stdlib function by its name, unless two modules share the name.
        by_name: dict[str, set[str]] = {}
        for fn in functions:
            if fn.module is not None:
                by_name.setdefault(fn.name, set()).add(fn.qualname)
        paths: dict[int, tuple[str, ...]] = {}
        from_imports: dict[tuple[str, ...], list[str]] = {}
        plain_imports: list[tuple[str, ...]] = []
        for fn in functions:
            if fn.module is None:
                paths[id(fn)] = (fn.name,)
            elif len(by_name[fn.name]) == 1:
                paths[id(fn)] = (fn.name,)
                names = from_imports.setdefault(fn.module, [])
                if fn.name not in names:
                    names.append(fn.name)
            else:
                paths[id(fn)] = (*fn.module, fn.name)
                if fn.module not in plain_imports:
                    plain_imports.append(fn.module)
        span = self.span
        items: list[A.Item] = [A.Import(m, span=span) for m in sorted(plain_imports)]
        items += [A.FromImport(m, tuple(A.ImportName(n, span=span) for n in names), span=span)
                  for m, names in sorted(from_imports.items())]
        consts = [i for i in self.items if isinstance(i, Const)]
        items += [c.ast for c in consts]
        items += [i.ast for i in self.items if isinstance(i, Topology)]
        for fn in functions:
            if isinstance(fn, Composite):
                body = A.Chain(tuple(step._ast(paths[id(step.function)])
                                     for step in fn.chain.steps), span=fn.span)
                items.append(A.FunctionDecl(fn.name, tuple(p.ast for p in fn.params), fn.kind,
                                            body=body, span=fn.span))
        items += [A.ServiceDecl(i.name, i.topology.name, i._statements(paths), span=i.span)
                  for i in self.items if isinstance(i, Service)]
        return A.Module(tuple(items), path=span.file if span else "<api>", span=span)

    def to_source(self) -> str:
        """The program as ``.mosaico`` text (parses back to an equal program)."""
        return format_module(self.ast)

    def check(self):
        """Check the program; returns the IR or raises :class:`CompileError`."""
        from .compiler import check
        return check(self)

    def compile(self, **options: Any):
        from .compiler import compile
        return compile(self, **options)

    def __repr__(self) -> str:
        kinds = {}
        for i in self.items:
            kinds[type(i).__name__] = kinds.get(type(i).__name__, 0) + 1
        return "<Program " + ", ".join(f"{n} {k.lower()}" for k, n in kinds.items()) + ">"

    # Rich displays (notebooks): drawn by mosaico_dsl.display, imported on first use.
    def _repr_html_(self) -> str:
        from .display import program_view
        return program_view(self)._repr_html_()

    def _repr_svg_(self) -> str | None:
        from .display import program_view
        return program_view(self)._repr_svg_()
