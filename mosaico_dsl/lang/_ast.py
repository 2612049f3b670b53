"""The mosaico abstract syntax tree.

Both front ends — the ``.mosaico`` parser and the embedded Python API — build these nodes,
so everything after parsing is shared. Nodes are frozen dataclasses; ``span`` is excluded
from equality so that a program parsed from text equals the same program built in Python.
Values are kept as written (``1.5ms`` stays ``1.5`` and ``ms``) so the formatter can print
them back unchanged; the checker converts them to typed base-unit values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from ipaddress import IPv4Address

from ..diagnostics import Span

__all__ = [
    "Node", "Expr", "IntLit", "FloatLit", "BoolLit", "StringLit", "QuantityLit", "IPv4Lit",
    "PrefixLit", "MacLit", "Name", "Attribute", "ListLit", "SetLit", "RangeExpr", "BinOp",
    "UnaryOp", "Compare", "BoolOp", "Not", "Call", "Arg", "Invocation", "Chain", "Import",
    "ImportName", "FromImport", "Const", "Attr", "NodeDecl", "LinkEnd", "LinkDecl",
    "TopologyDecl", "TypeRef", "Param", "TargetCost", "LatencyEntry", "Assert",
    "FunctionDecl", "HeaderDecl", "FieldDecl", "MatchStmt", "RequireStmt", "FromStmt",
    "ReplyStmt", "ServiceDecl", "Item", "Comment", "Module",
]


def _span() -> Span | None:
    return field(default=None, compare=False, repr=False, kw_only=True)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Node:
    """Base of every AST node."""


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class IntLit(Node):
    value: int
    hex: bool = field(default=False, compare=False)  # written 0x..; printing keeps it
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class FloatLit(Node):
    value: Decimal
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class BoolLit(Node):
    value: bool
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class StringLit(Node):
    value: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class QuantityLit(Node):
    """``15ms``: the magnitude and unit as written (``Decimal`` keeps ``1.5`` exact)."""

    magnitude: Decimal
    unit: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class IPv4Lit(Node):
    address: IPv4Address
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class PrefixLit(Node):
    """``203.0.113.0/24``; host bits are kept as written and rejected by the checker."""

    address: IPv4Address
    length: int
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class MacLit(Node):
    value: str  # lower-case, colon separated
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Name(Node):
    id: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Attribute(Node):
    """``value.attr``: module members (``sec.Blocklist``) and packet fields (``ipv4.dst``)."""

    value: Expr
    attr: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class ListLit(Node):
    items: tuple[Expr, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class SetLit(Node):
    items: tuple[Expr, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class RangeExpr(Node):
    """``lo..hi``, inclusive at both ends."""

    lo: Expr
    hi: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class BinOp(Node):
    op: str  # + - * /
    left: Expr
    right: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class UnaryOp(Node):
    op: str  # -
    operand: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Compare(Node):
    op: str  # == != < <= > >= in
    left: Expr
    right: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class BoolOp(Node):
    op: str  # and | or
    operands: tuple[Expr, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Not(Node):
    operand: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A builtin call inside an expression, e.g. ``len(prefixes)`` in a cost model."""

    func: Expr
    args: tuple[Expr, ...]
    span: Span | None = _span()


Expr = (IntLit | FloatLit | BoolLit | StringLit | QuantityLit | IPv4Lit | PrefixLit | MacLit
        | Name | Attribute | ListLit | SetLit | RangeExpr | BinOp | UnaryOp | Compare | BoolOp
        | Not | Call)

# --------------------------------------------------------------------------- chains


@dataclass(frozen=True, slots=True)
class Arg(Node):
    name: str
    value: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Invocation(Node):
    """One chain step: ``sec.RateLimit(rate: 20kpps) @ s1``.

    ``func`` is the dotted name as written; ``pin`` is the node after ``@``. The meta
    arguments ``place:`` and ``prefer:`` stay in ``args``; the checker separates them.
    """

    func: tuple[str, ...]
    args: tuple[Arg, ...]
    pin: str | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Chain(Node):
    steps: tuple[Invocation, ...]
    span: Span | None = _span()


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True)
class Import(Node):
    module: tuple[str, ...]
    alias: str | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class ImportName(Node):
    name: str
    alias: str | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class FromImport(Node):
    module: tuple[str, ...]
    names: tuple[ImportName, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class TypeRef(Node):
    """``int``, ``time``, ``list<prefix>``."""

    name: str
    args: tuple[TypeRef, ...] = ()
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Const(Node):
    name: str
    type: TypeRef | None
    value: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Attr(Node):
    name: str
    value: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class NodeDecl(Node):
    """``switch s1 : bmv2 { ports: 4 }``; ``kind`` is switch, host or endpoint."""

    kind: str
    name: str
    target: str | None
    attrs: tuple[Attr, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class LinkEnd(Node):
    node: str
    port: int | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class LinkDecl(Node):
    a: LinkEnd
    b: LinkEnd
    attrs: tuple[Attr, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class TopologyDecl(Node):
    name: str
    nodes: tuple[NodeDecl, ...]
    links: tuple[LinkDecl, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Param(Node):
    """``coupling: float = 2 in 0..16`` — a typed, defaulted, range-checked parameter."""

    name: str
    type: TypeRef
    default: Expr | None = None
    constraint: Expr | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class TargetCost(Node):
    """``p4.v1model { tables: 1, entries: 1024, stages: 1 }`` in a ``targets`` block."""

    target: tuple[str, ...]
    attrs: tuple[Attr, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class LatencyEntry(Node):
    target: tuple[str, ...]
    value: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Assert(Node):
    """``assert l4s_min_th < classic_target, "why"`` — a cross-parameter rule."""

    condition: Expr
    message: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class FunctionDecl(Node):
    """A stdlib primitive (``targets`` + ``latency``) or a composite (``chain``)."""

    name: str
    params: tuple[Param, ...]
    kind: str | None
    targets: tuple[TargetCost, ...] = ()
    latency: tuple[LatencyEntry, ...] = ()
    asserts: tuple[Assert, ...] = ()
    body: Chain | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class FieldDecl(Node):
    name: str
    type: TypeRef
    constraint: Expr | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class HeaderDecl(Node):
    """``header ipv4 { src: ipv4, proto: int in 0..255 }`` — packet fields for ``match``."""

    name: str
    fields: tuple[FieldDecl, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class MatchStmt(Node):
    predicate: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class RequireStmt(Node):
    """``require latency <= 20ms`` / ``require secure``."""

    name: str
    op: str | None = None
    value: Expr | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class FromStmt(Node):
    """``from client, attacker`` — the sources whose traffic the service carries."""

    sources: tuple[str, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class ReplyStmt(Node):
    """``reply forward`` / ``reply drop`` — what happens to the replies of the service's
    traffic (the checker validates ``mode``)."""

    mode: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class ServiceDecl(Node):
    name: str
    topology: str
    statements: tuple[MatchStmt | RequireStmt | FromStmt | ReplyStmt | Chain, ...]
    span: Span | None = _span()

    @property
    def match(self) -> MatchStmt | None:
        return next((s for s in self.statements if isinstance(s, MatchStmt)), None)

    @property
    def requires(self) -> tuple[RequireStmt, ...]:
        return tuple(s for s in self.statements if isinstance(s, RequireStmt))

    @property
    def sources(self) -> FromStmt | None:
        return next((s for s in self.statements if isinstance(s, FromStmt)), None)

    @property
    def reply(self) -> ReplyStmt | None:
        return next((s for s in self.statements if isinstance(s, ReplyStmt)), None)

    @property
    def chain(self) -> Chain | None:
        return next((s for s in self.statements if isinstance(s, Chain)), None)


Item = Import | FromImport | Const | TopologyDecl | FunctionDecl | HeaderDecl | ServiceDecl


@dataclass(frozen=True, slots=True)
class Comment(Node):
    text: str
    line: int
    col: int
    end_line: int


@dataclass(frozen=True, slots=True)
class Module(Node):
    """One ``.mosaico`` file (or one API-built program)."""

    items: tuple[Item, ...]
    path: str = field(default="<input>", compare=False)
    comments: tuple[Comment, ...] = field(default=(), compare=False, repr=False)
    # Identifiers referenced anywhere (the parser records them; None: walk the tree).
    names_used: frozenset[str] | None = field(default=None, compare=False, repr=False)
    span: Span | None = _span()
