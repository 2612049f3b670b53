"""AST → canonical ``.mosaico`` text (``mosaico fmt`` and the API's ``to_source()``).

The output parses back to an equal AST: expressions are parenthesised by precedence,
numbers and quantities are printed exactly, and comments of a parsed module are kept —
own-line comments before the statement that follows them, trailing ones after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from . import _ast as A

__all__ = ["format_module", "format_expr", "format_type"]

_WIDTH = 100
_INDENT = "  "

# Binding strength, loosest first; must agree with the grammar's rule nesting.
_OR, _AND, _NOT, _CMP, _RANGE, _SUM, _PRODUCT, _UNARY, _POSTFIX, _ATOM = range(1, 11)


def _prec(e: A.Expr) -> int:
    match e:
        case A.BoolOp(op="or"):
            return _OR
        case A.BoolOp(op="and"):
            return _AND
        case A.Not():
            return _NOT
        case A.Compare():
            return _CMP
        case A.RangeExpr():
            return _RANGE
        case A.BinOp(op="+" | "-"):
            return _SUM
        case A.BinOp():
            return _PRODUCT
        case A.UnaryOp():
            return _UNARY
        case A.Attribute() | A.Call():
            return _POSTFIX
    return _ATOM


def _decimal(d: Decimal, *, float_lit: bool) -> str:
    text = format(d, "f")
    if float_lit and "." not in text:
        text += ".0"
    return text


_ESCAPE = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def _string(s: str) -> str:
    return '"' + "".join(_ESCAPE.get(ch, ch) for ch in s) + '"'


def format_expr(e: A.Expr, min_prec: int = 0) -> str:
    """Print an expression; wraps it in parentheses if it binds looser than ``min_prec``."""
    text = _expr(e)
    return f"({text})" if _prec(e) < min_prec else text


def _expr(e: A.Expr) -> str:
    match e:
        case A.IntLit(value=v, hex=h):
            return f"0x{v:x}" if h and v >= 0 else str(v)
        case A.FloatLit(value=v):
            return _decimal(v, float_lit=True)
        case A.QuantityLit(magnitude=m, unit=u):
            return f"{_decimal(m, float_lit=False)}{u}"
        case A.BoolLit(value=v):
            return "true" if v else "false"
        case A.StringLit(value=v):
            return _string(v)
        case A.IPv4Lit(address=a):
            return str(a)
        case A.PrefixLit(address=a, length=n):
            return f"{a}/{n}"
        case A.MacLit(value=v):
            return v
        case A.Name(id=i):
            return i
        case A.Attribute(value=v, attr=a):
            inner = format_expr(v, _POSTFIX)
            if isinstance(v, (A.IntLit, A.FloatLit, A.QuantityLit)):
                inner = f"({inner})"
            return f"{inner}.{a}"
        case A.Call(func=f, args=args):
            return f"{format_expr(f, _POSTFIX)}({', '.join(format_expr(a) for a in args)})"
        case A.ListLit(items=items):
            return "[" + ", ".join(format_expr(i) for i in items) + "]"
        case A.SetLit(items=items):
            return "{" + ", ".join(format_expr(i) for i in items) + "}"
        case A.RangeExpr(lo=lo, hi=hi):
            return f"{format_expr(lo, _SUM)}..{format_expr(hi, _SUM)}"
        case A.BinOp(op=op, left=l, right=r):
            p = _prec(e)
            return f"{format_expr(l, p)} {op} {format_expr(r, p + 1)}"
        case A.UnaryOp(op=op, operand=o):
            inner = format_expr(o, _UNARY)
            if isinstance(o, A.UnaryOp):
                inner = f"({inner})"
            return f"{op}{inner}"
        case A.Compare(op=op, left=l, right=r):
            return f"{format_expr(l, _RANGE)} {op} {format_expr(r, _RANGE)}"
        case A.BoolOp(op=op, operands=ops):
            return f" {op} ".join(format_expr(o, _prec(e) + 1) for o in ops)
        case A.Not(operand=o):
            return f"not {format_expr(o, _NOT)}"
    raise TypeError(f"not an expression: {e!r}")


def format_type(t: A.TypeRef) -> str:
    if not t.args:
        return t.name
    return f"{t.name}<{', '.join(format_type(a) for a in t.args)}>"


# ----------------------------------------------------------------------------- statements


@dataclass
class _Out:
    """Line buffer that interleaves the module's comments with the statements printed."""

    comments: list[A.Comment]
    lines: list[str] = field(default_factory=list)

    def leading(self, node: A.Node, indent: str) -> None:
        span = getattr(node, "span", None)
        if span is None or not self.comments:
            return
        self._comments_before(span.line, indent)

    def _comments_before(self, line: int, indent: str) -> None:
        """Own-line comments before ``line``; a blank line that followed one is kept."""
        last = None
        while self.comments and self.comments[0].line < line:
            c = self.comments.pop(0)
            if last is not None and c.line > last + 1:
                self.lines.append("")
            self.lines.append(indent + c.text)
            last = c.line
        if last is not None and line > last + 1:
            self.lines.append("")

    def trailing(self, node: A.Node) -> None:
        span = getattr(node, "span", None)
        if span is None or not self.comments or not self.lines:
            return
        c = self.comments[0]
        if c.line == span.end_line and c.col >= (span.end_col or 0):
            self.comments.pop(0)
            self.lines[-1] += "  " + c.text

    def emit(self, node: A.Node, indent: str, text: str | Iterable[str]) -> None:
        self.leading(node, indent)
        block = [text] if isinstance(text, str) else list(text)
        self.lines.extend(indent + t if t else "" for t in block)
        self.trailing(node)

    def before_end(self, node: A.Node, indent: str) -> None:
        """Comments after a block's last statement stay inside the block."""
        span = getattr(node, "span", None)
        if span is None:
            return
        self._comments_before(span.end_line or span.line, indent)

    def flush(self, indent: str = "") -> None:
        self.lines.extend(indent + c.text for c in self.comments)
        self.comments.clear()


def _attrs_inline(attrs: tuple[A.Attr, ...]) -> str:
    return "{ " + ", ".join(f"{a.name}: {format_expr(a.value)}" for a in attrs) + " }" \
        if attrs else "{}"


def _attr_block(out: _Out, head: str, attrs: tuple[A.Attr, ...], indent: str,
                node: A.Node, *, braces: bool = False) -> None:
    """``head { a: 1, b: 2 }`` on one line if it fits and has no comments inside.

    Without attributes the braces are left out, unless the grammar needs them (``braces``).
    """
    inline = f"{head} {_attrs_inline(attrs)}" if attrs or braces else head
    span = getattr(node, "span", None)
    inside = span is not None and any(_within(c, span) for c in out.comments)
    if not attrs or (len(indent) + len(inline) <= _WIDTH and not inside):
        out.emit(node, indent, inline)
        return
    out.leading(node, indent)
    out.lines.append(f"{indent}{head.rstrip()} {{")
    for a in attrs:
        out.emit(a, indent + _INDENT, f"{a.name}: {format_expr(a.value)}")
    out.before_end(node, indent + _INDENT)
    out.lines.append(f"{indent}}}")


def _within(c: A.Comment, span) -> bool:
    """Is the comment inside the node's text (not trailing after its end)?"""
    end_line = span.end_line or span.line
    if not span.line <= c.line <= end_line:
        return False
    return not (c.line == end_line and c.col >= (span.end_col or 0))


def _invocation(inv: A.Invocation) -> str:
    args = ", ".join(f"{a.name}: {format_expr(a.value)}" for a in inv.args)
    pin = f" @ {inv.pin}" if inv.pin else ""
    return f"{'.'.join(inv.func)}({args}){pin}"


def _chain(out: _Out, chain: A.Chain, indent: str) -> None:
    out.leading(chain, indent)
    out.lines.append(f"{indent}chain {{")
    for i, step in enumerate(chain.steps):
        out.emit(step, indent + _INDENT, ("-> " if i else "") + _invocation(step))
    out.before_end(chain, indent + _INDENT)
    out.lines.append(f"{indent}}}")
    out.trailing(chain)


def _topology(out: _Out, t: A.TopologyDecl) -> None:
    out.leading(t, "")
    out.lines.append(f"topology {t.name} {{")
    name_w = max((len(n.name) for n in t.nodes), default=0)
    target_w = max((len(n.target) for n in t.nodes if n.target), default=0)
    for n in t.nodes:
        head = f"{n.kind:<8} {n.name:<{name_w}}"
        if target_w:
            head += f" : {n.target:<{target_w}}" if n.target else " " * (target_w + 3)
        head = head.rstrip() if not n.attrs else head
        _attr_block(out, head, n.attrs, _INDENT, n)
    a_w = max((len(_link_end(link.a)) for link in t.links), default=0)
    b_w = max((len(_link_end(link.b)) for link in t.links), default=0)
    for link in t.links:
        head = f"link {_link_end(link.a):<{a_w}} -- {_link_end(link.b):<{b_w}}"
        head = head.rstrip() if not link.attrs else head
        _attr_block(out, head, link.attrs, _INDENT, link)
    out.before_end(t, _INDENT)
    out.lines.append("}")
    out.trailing(t)


def _link_end(e: A.LinkEnd) -> str:
    return e.node if e.port is None else f"{e.node}.{e.port}"


def _param(p: A.Param) -> str:
    text = f"{p.name}: {format_type(p.type)}"
    if p.default is not None:
        text += f" = {format_expr(p.default, _RANGE)}"
    if p.constraint is not None:
        text += f" in {format_expr(p.constraint, _RANGE)}"
    return text


def _function(out: _Out, f: A.FunctionDecl) -> None:
    out.leading(f, "")
    kind = f" : {f.kind}" if f.kind else ""
    params = [_param(p) for p in f.params]
    one_line = f"function {f.name}({', '.join(params)}){kind} {{"
    if len(one_line) <= _WIDTH:
        out.lines.append(one_line)
    else:
        out.lines.append(f"function {f.name}(")
        for p, text in zip(f.params, params, strict=True):
            out.emit(p, _INDENT, text + ",")
        out.lines.append(f"){kind} {{")
    inner = _INDENT
    if f.targets:
        out.lines.append(f"{inner}targets {{")
        for t in f.targets:
            _attr_block(out, ".".join(t.target), t.attrs, inner + _INDENT, t, braces=True)
        out.lines.append(f"{inner}}}")
    if f.latency:
        out.lines.append(f"{inner}latency {{")
        for entry in f.latency:
            out.emit(entry, inner + _INDENT,
                     f"{'.'.join(entry.target)}: {format_expr(entry.value)}")
        out.lines.append(f"{inner}}}")
    for a in f.asserts:
        out.emit(a, inner, f"assert {format_expr(a.condition)}, {_string(a.message)}")
    if f.body is not None:
        _chain(out, f.body, inner)
    out.before_end(f, inner)
    out.lines.append("}")
    out.trailing(f)


def _header(out: _Out, h: A.HeaderDecl) -> None:
    out.leading(h, "")
    out.lines.append(f"header {h.name} {{")
    for fd in h.fields:
        text = f"{fd.name}: {format_type(fd.type)}"
        if fd.constraint is not None:
            text += f" in {format_expr(fd.constraint, _RANGE)}"
        out.emit(fd, _INDENT, text)
    out.before_end(h, _INDENT)
    out.lines.append("}")
    out.trailing(h)


def _service(out: _Out, s: A.ServiceDecl) -> None:
    out.leading(s, "")
    out.lines.append(f"service {s.name} on {s.topology} {{")
    for st in s.statements:
        match st:
            case A.MatchStmt(predicate=p):
                out.emit(st, _INDENT, f"match {format_expr(p)}")
            case A.RequireStmt(name=n, op=None):
                out.emit(st, _INDENT, f"require {n}")
            case A.RequireStmt(name=n, op=op, value=v):
                out.emit(st, _INDENT, f"require {n} {op} {format_expr(v, _RANGE)}")
            case A.FromStmt(sources=srcs):
                out.emit(st, _INDENT, f"from {', '.join(srcs)}")
            case A.ReplyStmt(mode=mode):
                out.emit(st, _INDENT, f"reply {mode}")
            case A.Chain():
                _chain(out, st, _INDENT)
    out.before_end(s, _INDENT)
    out.lines.append("}")
    out.trailing(s)


def _item(out: _Out, item: A.Item) -> None:
    match item:
        case A.Import(module=m, alias=alias):
            out.emit(item, "", f"import {'.'.join(m)}" + (f" as {alias}" if alias else ""))
        case A.FromImport(module=m, names=names):
            parts = [n.name + (f" as {n.alias}" if n.alias else "") for n in names]
            out.emit(item, "", f"from {'.'.join(m)} import {', '.join(parts)}")
        case A.Const(name=n, type=t, value=v):
            typed = f": {format_type(t)}" if t is not None else ""
            out.emit(item, "", f"const {n}{typed} = {format_expr(v)}")
        case A.TopologyDecl():
            _topology(out, item)
        case A.FunctionDecl():
            _function(out, item)
        case A.HeaderDecl():
            _header(out, item)
        case A.ServiceDecl():
            _service(out, item)
        case _:
            raise TypeError(f"not a top-level item: {item!r}")


def _blank_between(a: A.Item, b: A.Item, comment_lines: set[int]) -> bool:
    """Did the source separate two imports or consts by a blank line? (Kept: it groups.)"""
    if a.span is None or b.span is None:
        return False
    between = range((a.span.end_line or a.span.line) + 1, b.span.line)
    return any(line not in comment_lines for line in between)


def _group(item: A.Item) -> str:
    if isinstance(item, (A.Import, A.FromImport)):
        return "import"
    return "const" if isinstance(item, A.Const) else type(item).__name__


def format_module(module: A.Module) -> str:
    """Print a module canonically; the result ends with exactly one newline."""
    out = _Out(sorted(module.comments, key=lambda c: (c.line, c.col)))
    comment_lines = {c.line for c in module.comments}
    previous: A.Item | None = None
    for item in module.items:
        group = _group(item)
        if previous is not None and (group != _group(previous)
                                     or group not in ("import", "const")
                                     or _blank_between(previous, item, comment_lines)):
            out.lines.append("")
        _item(out, item)
        previous = item
    out.flush()
    text = "\n".join(out.lines).rstrip("\n")
    return text + "\n" if text else ""
