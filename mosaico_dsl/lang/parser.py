"""Text → AST.

The grammar lives in ``mosaico.lark``; one :class:`_ToAst` transformer turns Lark's tree into
AST nodes, so nothing after this module sees a Lark object. Syntax errors become
diagnostics with the expected tokens as a hint. After an error the parser blanks the broken
top-level item (keeping line breaks, so positions stay true) and parses the rest again, so a
file with several broken items reports all of them in one run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib.resources import files
from ipaddress import IPv4Address

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from ..diagnostics import Diagnostic, Span, error
from ..units import QUANTITY_RE
from . import _ast as A

__all__ = ["parse", "ParseResult", "TOP_LEVEL_KEYWORDS"]

TOP_LEVEL_KEYWORDS = ("import", "from", "const", "topology", "function", "header", "service")
_MAX_RECOVERIES = 50


@dataclass(frozen=True)
class ParseResult:
    module: A.Module | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return self.module is not None and not self.diagnostics


@cache
def _lark() -> Lark:
    grammar = files(__package__).joinpath("mosaico.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                maybe_placeholders=True)


# ----------------------------------------------------------------------------- transformer


class _LiteralError(Exception):
    def __init__(self, message: str, token: Token, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.token, self.hint = message, token, hint


def _present(items):
    return tuple(x for x in items if x is not None)


@v_args(meta=True)
class _ToAst(Transformer):
    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file
        self.errors: list[Diagnostic] = []

    def _span(self, meta) -> A.Span | None:
        if getattr(meta, "empty", True):
            return None
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok_span(self, tok: Token) -> Span:
        return Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column)

    def _bad(self, message: str, tok: Token, hint: str | None = None) -> None:
        self.errors.append(error("E0104", message, self._tok_span(tok), hint))

    # -- module
    def start(self, meta, items):
        return A.Module(_present(items), path=self.file, span=self._span(meta))

    def dotted_name(self, meta, names):
        return tuple(str(n) for n in names)

    def import_stmt(self, meta, c):
        module, alias = c
        return A.Import(module, str(alias) if alias else None, span=self._span(meta))

    def import_name(self, meta, c):
        name, alias = c
        return A.ImportName(str(name), str(alias) if alias else None, span=self._span(meta))

    def from_import(self, meta, c):
        module, *names = _present(c)
        return A.FromImport(module, tuple(names), span=self._span(meta))

    def const_decl(self, meta, c):
        name, type_, value = c
        return A.Const(str(name), type_, value, span=self._span(meta))

    # -- topology
    def topology_decl(self, meta, c):
        name, *items = _present(c)
        nodes = tuple(i for i in items if isinstance(i, A.NodeDecl))
        links = tuple(i for i in items if isinstance(i, A.LinkDecl))
        return A.TopologyDecl(str(name), nodes, links, span=self._span(meta))

    def node_kind(self, meta, c):
        return str(c[0])

    def node_decl(self, meta, c):
        kind, name, target, attrs = c
        return A.NodeDecl(kind, str(name), str(target) if target else None, attrs or (),
                          span=self._span(meta))

    def link_end(self, meta, c):
        node, port = c
        return A.LinkEnd(str(node), int(port) if port is not None else None,
                         span=self._span(meta))

    def link_decl(self, meta, c):
        a, b, attrs = c
        return A.LinkDecl(a, b, attrs or (), span=self._span(meta))

    def attrs(self, meta, c):
        return _present(c)

    def attr(self, meta, c):
        name, value = c
        return A.Attr(str(name), value, span=self._span(meta))

    # -- functions and headers
    def function_decl(self, meta, c):
        name, *sections = c
        params = tuple(x for x in sections if isinstance(x, A.Param))
        kind = next((str(x) for x in sections if isinstance(x, Token)), None)
        targets = next((x for x in sections if isinstance(x, _Targets)), _Targets(())).items
        latency = next((x for x in sections if isinstance(x, _Latency)), _Latency(())).items
        asserts = tuple(x for x in sections if isinstance(x, A.Assert))
        body = next((x for x in sections if isinstance(x, A.Chain)), None)
        return A.FunctionDecl(str(name), params, kind, targets, latency, asserts, body,
                              span=self._span(meta))

    def param(self, meta, c):
        name, type_, default, constraint = c
        return A.Param(str(name), type_, default, constraint, span=self._span(meta))

    def type(self, meta, c):
        name, *args = c
        return A.TypeRef(str(name), _present(args), span=self._span(meta))

    def targets_block(self, meta, c):
        return _Targets(_present(c))

    def target_cost(self, meta, c):
        target, attrs = c
        return A.TargetCost(target, attrs, span=self._span(meta))

    def latency_block(self, meta, c):
        return _Latency(_present(c))

    def latency_entry(self, meta, c):
        target, value = c
        return A.LatencyEntry(target, value, span=self._span(meta))

    def assert_stmt(self, meta, c):
        cond, message = c
        return A.Assert(cond, self._string(message), span=self._span(meta))

    def header_decl(self, meta, c):
        name, *fields = _present(c)
        return A.HeaderDecl(str(name), tuple(fields), span=self._span(meta))

    def field_decl(self, meta, c):
        name, type_, constraint = c
        return A.FieldDecl(str(name), type_, constraint, span=self._span(meta))

    # -- services
    def service_decl(self, meta, c):
        name, topo, *stmts = _present(c)
        return A.ServiceDecl(str(name), str(topo), tuple(stmts), span=self._span(meta))

    def match_stmt(self, meta, c):
        return A.MatchStmt(c[0], span=self._span(meta))

    def require_stmt(self, meta, c):
        name, op, value = c
        return A.RequireStmt(str(name), op, value, span=self._span(meta))

    def from_stmt(self, meta, c):
        return A.FromStmt(tuple(str(n) for n in c), span=self._span(meta))

    def chain_block(self, meta, c):
        return A.Chain(tuple(c), span=self._span(meta))

    def invocation(self, meta, c):
        func, *rest = c
        pin = rest.pop() if rest else None
        return A.Invocation(func, _present(rest), str(pin) if pin else None,
                            span=self._span(meta))

    def arg(self, meta, c):
        name, value = c
        return A.Arg(str(name), value, span=self._span(meta))

    # -- expressions
    def or_op(self, meta, c):
        return self._boolop("or", c, meta)

    def and_op(self, meta, c):
        return self._boolop("and", c, meta)

    def _boolop(self, op, c, meta):
        operands: list = []
        for x in c:  # `and`/`or` are associative: the AST keeps them flat, as the API does
            if isinstance(x, A.BoolOp) and x.op == op:
                operands.extend(x.operands)
            else:
                operands.append(x)
        return A.BoolOp(op, tuple(operands), span=self._span(meta))

    def not_op(self, meta, c):
        return A.Not(c[0], span=self._span(meta))

    def compare(self, meta, c):
        left, op, right = c
        return A.Compare(op, left, right, span=self._span(meta))

    def in_op(self, meta, c):
        left, right = c
        return A.Compare("in", left, right, span=self._span(meta))

    def comp_op(self, meta, c):
        return str(c[0])

    def range_op(self, meta, c):
        return A.RangeExpr(c[0], c[1], span=self._span(meta))

    def _bin(op):  # noqa: N805 - factory used in the class body
        def method(self, meta, c):
            return A.BinOp(op, c[0], c[1], span=self._span(meta))
        return method

    add, sub, mul, div = _bin("+"), _bin("-"), _bin("*"), _bin("/")

    def neg(self, meta, c):
        return A.UnaryOp("-", c[0], span=self._span(meta))

    def getattr(self, meta, c):
        return A.Attribute(c[0], str(c[1]), span=self._span(meta))

    def call(self, meta, c):
        func, *args = c
        return A.Call(func, _present(args), span=self._span(meta))

    def name(self, meta, c):
        return A.Name(str(c[0]), span=self._span(meta))

    def list_lit(self, meta, c):
        return A.ListLit(_present(c), span=self._span(meta))

    def set_lit(self, meta, c):
        return A.SetLit(_present(c), span=self._span(meta))

    # -- literals
    def int_lit(self, meta, c):
        return A.IntLit(int(c[0]), span=self._span(meta))

    def hex_lit(self, meta, c):
        return A.IntLit(int(c[0], 16), hex=True, span=self._span(meta))

    def float_lit(self, meta, c):
        return A.FloatLit(Decimal(str(c[0])), span=self._span(meta))

    def quantity_lit(self, meta, c):
        m = QUANTITY_RE.fullmatch(str(c[0]))
        assert m is not None  # the terminal and QUANTITY_RE accept the same texts
        return A.QuantityLit(Decimal(m["num"]), m["unit"], span=self._span(meta))

    def _address(self, text: str, tok: Token) -> IPv4Address:
        try:
            return IPv4Address(text)
        except ValueError:
            self._bad(f"{text} is not an IPv4 address", tok,
                      "each of the four parts is a number from 0 to 255, without leading zeros")
            return IPv4Address(0)

    def ipv4_lit(self, meta, c):
        return A.IPv4Lit(self._address(str(c[0]), c[0]), span=self._span(meta))

    def prefix_lit(self, meta, c):
        addr, _, length = str(c[0]).partition("/")
        n = int(length)
        if n > 32:
            self._bad(f"prefix length /{n} is longer than 32 bits", c[0],
                      "an IPv4 prefix length is 0 to 32")
            n = 32
        return A.PrefixLit(self._address(addr, c[0]), n, span=self._span(meta))

    def mac_lit(self, meta, c):
        return A.MacLit(str(c[0]).lower(), span=self._span(meta))

    def string_lit(self, meta, c):
        return A.StringLit(self._string(c[0]), span=self._span(meta))

    def _string(self, tok: Token) -> str:
        try:
            return _unescape(str(tok)[1:-1])
        except ValueError as e:
            self._bad(f"bad escape in string: {e}", tok, r"use \\, \", \n or \t")
            return str(tok)[1:-1]

    def true_lit(self, meta, c):
        return A.BoolLit(True, span=self._span(meta))

    def false_lit(self, meta, c):
        return A.BoolLit(False, span=self._span(meta))


@dataclass(frozen=True)
class _Targets:
    items: tuple


@dataclass(frozen=True)
class _Latency:
    items: tuple


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}


def _unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _ESCAPES:
                raise ValueError(f"\\{nxt}")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# ----------------------------------------------------------------------------- errors

_TOKEN_TEXT = {
    "NAME": "a name", "INT": "an integer", "HEX": "a hex integer", "FLOAT": "a number",
    "QUANTITY": "a quantity such as 15ms", "IPV4": "an IPv4 address",
    "PREFIX": "an IPv4 prefix", "MAC": "a MAC address", "STRING": "a string",
    "$END": "end of input",
}


def _describe(term: str) -> str:
    if term in _TOKEN_TEXT:
        return _TOKEN_TEXT[term]
    try:
        pattern = _lark().get_terminal(term).pattern
    except KeyError:
        return term.lower()
    return f"`{pattern.value}`" if pattern.type == "str" else term.lower()


_EXPRESSION_START = {"NAME", "INT", "LPAR", "LSQB"}


def _expected_hint(expected) -> str | None:
    expected = set(expected)
    if _EXPRESSION_START <= expected:
        return "expected an expression (a value, a name, or a parenthesised expression)"
    names = sorted({_describe(t) for t in expected})
    if not names:
        return None
    if len(names) > 8:
        names = names[:8] + ["…"]
    return "expected " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1])


def _token_desc(tok: Token) -> str:
    if tok.type == "$END":
        return "end of input"
    return f"`{tok}`"


def _syntax_diagnostic(e: UnexpectedInput, file: str, text: str) -> Diagnostic:
    if isinstance(e, UnexpectedToken) and e.token.type != "$END":
        tok = e.token
        span = Span(file, tok.line, tok.column, tok.end_line, tok.end_column)
        return error("E0101", f"unexpected {_token_desc(tok)}", span, _expected_hint(e.expected))
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        span = Span(file, e.line, e.column, e.line, e.column + 1)
        hint = _expected_hint(e.allowed) if e.allowed else None
        return error("E0102", f"unexpected character {ch!r}", span, hint)
    lines = text.splitlines() or [""]
    line = len(lines)
    span = Span(file, line, len(lines[-1]) + 1, line, len(lines[-1]) + 2)
    expected = getattr(e, "expected", ()) or ()
    return error("E0103", "unexpected end of input", span,
                 _expected_hint(expected) or "a `}` or `)` may be missing")


_ITEM_START = re.compile(rf"^({'|'.join(TOP_LEVEL_KEYWORDS)})\b", re.M)


def _blank_item(text: str, offset: int) -> str | None:
    """Blank out (keeping newlines) the top-level item containing ``offset``."""
    starts = [m.start() for m in _ITEM_START.finditer(text)]
    begin = max((s for s in starts if s <= offset), default=0)
    end = min((s for s in starts if s > offset), default=len(text))
    if begin == end:
        return None
    chunk = re.sub(r"[^\n]", " ", text[begin:end])
    return text[:begin] + chunk + text[end:]


def _offset(e: UnexpectedInput, text: str) -> int:
    pos = getattr(e, "pos_in_stream", None)
    if isinstance(e, UnexpectedToken):
        pos = e.token.start_pos if e.token.type != "$END" else len(text)
    return len(text) if pos is None else pos


# ----------------------------------------------------------------------------- comments


def _scan_comments(text: str) -> tuple[A.Comment, ...]:
    """Find ``//`` and ``#`` comments outside strings (strings never span lines)."""
    found = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        in_string = escaped = False
        for col, ch in enumerate(line):
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "#" or line.startswith("//", col):
                found.append(A.Comment(line[col:].rstrip(), lineno, col + 1, lineno))
                break
    return tuple(found)


# ----------------------------------------------------------------------------- entry point


def parse(text: str, file: str = "<input>") -> ParseResult:
    """Parse one ``.mosaico`` source. Never raises on bad input: errors are diagnostics."""
    diagnostics: list[Diagnostic] = []
    current = text
    tree = None
    for _ in range(_MAX_RECOVERIES):
        try:
            tree = _lark().parse(current)
            break
        except UnexpectedInput as e:
            diagnostics.append(_syntax_diagnostic(e, file, text))
            blanked = _blank_item(current, _offset(e, current))
            if blanked is None or blanked == current:
                break
            current = blanked
        except LarkError as e:  # pragma: no cover - defensive: Lark internals
            diagnostics.append(error("E0101", f"could not parse: {e}", Span(file, 1, 1)))
            break
    if tree is None:
        return ParseResult(None, tuple(_dedupe(diagnostics)))
    # Transform even after syntax errors: the recovered parts may hold bad literals too.
    transformer = _ToAst(file)
    try:
        module = transformer.transform(tree)
    except VisitError as e:  # pragma: no cover - a transformer bug, not a user error
        raise e.orig_exc from e
    diagnostics.extend(transformer.errors)
    if diagnostics:
        ordered = sorted(_dedupe(diagnostics), key=lambda d: (d.span.line, d.span.col)
                         if d.span else (0, 0))
        return ParseResult(None, tuple(ordered))
    return ParseResult(
        A.Module(module.items, path=file, comments=_scan_comments(text), span=module.span),
        (),
    )


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen, out = set(), []
    for d in diags:
        key = (d.code, d.span and (d.span.line, d.span.col), d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out

