"""Text → AST.

The grammar lives in ``mosaico.lark``; :class:`_ToAst` builds the AST as Lark's LALR parser
reduces each rule (no parse tree in between), so nothing after this module sees a Lark
object. Syntax errors become
diagnostics with the expected tokens as a hint. After an error every top-level item is
parsed on its own, so a file with several broken items reports all of them in one run.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache
from importlib.resources import files
from ipaddress import IPv4Address, IPv6Network

from lark import Lark, Token, Transformer
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
)

from .._cache import lark_cache
from .._perf import gc_paused
from ..diagnostics import Diagnostic, Span, error
from ..units import QUANTITY_RE
from . import _ast as A

__all__ = ["parse", "ParseResult", "TOP_LEVEL_KEYWORDS"]

TOP_LEVEL_KEYWORDS = ("import", "from", "const", "topology", "function", "header", "service")
MAX_NESTING = 200  # later passes recurse over expressions; this keeps them far from limits


@dataclass(frozen=True)
class ParseResult:
    module: A.Module | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return self.module is not None and not self.diagnostics


@cache
def _lark() -> tuple[Lark, str, _Inline]:
    """The parser, which engine runs it — ``lark-cython`` (the `fast` extra) or ``lark`` —
    and the callbacks it builds the AST with while it parses (:class:`_Inline`)."""
    grammar = files(__package__).joinpath("mosaico.lark").read_text(encoding="utf-8")
    inline = _Inline()
    # Every token is kept (keep_all_tokens) so that the callbacks see where each rule starts
    # and ends — keywords and brackets included — and compute the spans Lark's
    # propagate_positions would, at a third of its cost; they drop the punctuation.
    options = dict(parser="lalr", lexer="contextual", keep_all_tokens=True,
                   maybe_placeholders=True, transformer=inline,
                   cache=lark_cache("mosaico-grammar"))
    try:  # Lark's LALR parser and lexer compiled with Cython: same results, faster
        import lark_cython
    except ImportError:
        lark, engine = Lark(grammar, **options), "lark"
    else:
        lark, engine = Lark(grammar, **options, _plugins=lark_cython.plugins), "lark-cython"
    inline.learn(lark, grammar)
    return lark, engine, inline


def parser_backend() -> str:
    return _lark()[1]


_TERMINAL_DEFINITION = re.compile(r"^([A-Z_][A-Z0-9_]*)(?:\.\d+)?\s*:", re.M)
_KEEP_TOKENS = re.compile(r"^!\s*([a-z_][a-z0-9_]*)\s*:", re.M)


Extent = tuple[int, int, int, int]  # line, column, end line, end column


class _Built:
    """What a rule's callback returns: the AST value, where its text is, its rule, how deep
    it is and where its deepest part is (E0105 points there)."""

    __slots__ = ("value", "extent", "rule", "depth", "deep")

    def __init__(self, value, extent: Extent | None, rule: str, depth: int,
                 deep: Extent | None) -> None:
        self.value, self.extent, self.rule = value, extent, rule
        self.depth, self.deep = depth, deep


# Rules whose left-recursive chains are one level, as in the AST (`a or b or c` is one
# BoolOp): Lark nests them, the AST does not.
_FLAT = frozenset({"or_op", "and_op"})


def _callback(rule: str, method):
    """The callback of one rule: the span from its first to its last token (or child), the
    children without punctuation, then the :class:`_ToAst` method of the rule."""

    flat = rule in _FLAT

    def build(self: _Inline, children: list):
        first = last = None
        depth, deep = 0, None
        values = []
        drop = self.punctuation if rule not in self.keep else ()
        for c in children:
            if c is None:
                values.append(None)
            elif type(c) is _Built:
                if c.extent is not None:
                    if first is None:
                        first = c.extent
                    last = c.extent
                d = c.depth - 1 if flat and c.rule == rule else c.depth
                if d > depth:
                    depth, deep = d, c.deep
                values.append(c.value)
            else:  # a token
                extent = (c.line, c.column, c.end_line, c.end_column)
                if first is None:
                    first = extent
                last = extent
                if c.type not in drop:
                    values.append(c)
        extent = None if first is None else (first[0], first[1], last[2], last[3])
        return _Built(method(self.ast, extent, values), extent, rule, depth + 1,
                      deep or extent)

    build.__name__ = rule
    return build


class _Inline(Transformer):
    """Lark calls these as it reduces each rule (no parse tree is built): one per rule of
    :class:`_ToAst`, made by :func:`_callback`. ``ast`` is the parse in progress."""

    def __init__(self) -> None:
        super().__init__(visit_tokens=False)
        self.ast: _ToAst | None = None
        self.punctuation: frozenset[str] = frozenset()
        self.keep: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def learn(self, lark: Lark, grammar: str) -> None:
        """Which tokens are punctuation — the anonymous ones, written as strings in the
        rules: Lark drops them unless a rule is marked ``!`` — and which rules keep them."""
        named = set(_TERMINAL_DEFINITION.findall(grammar))
        self.punctuation = frozenset(t.name for t in lark.terminals if t.name not in named)
        self.keep = frozenset(_KEEP_TOKENS.findall(grammar))

    @contextmanager
    def parsing(self, ast: _ToAst):
        with self._lock:
            self.ast = ast
            try:
                yield ast
            finally:
                self.ast = None

    def atom(self, children: list):
        """``( expr )``: the expression itself; the parentheses widen only where it sits."""
        open_, inner, close = children
        return _Built(inner.value, (open_.line, open_.column, close.end_line, close.end_column),
                      inner.rule, inner.depth, inner.deep)


# ----------------------------------------------------------------------------- transformer


def _present(items) -> tuple:
    return tuple(x for x in items if x is not None)


def _v(tok) -> str:
    """A token's text (works for Lark's and lark-cython's token types alike)."""
    return tok.value


class _ToAst:
    """One method per grammar rule, called bottom-up as the parser reduces (through
    :class:`_Inline`) with the rule's span and its children; optional parts arrive as
    ``None`` placeholders. Nothing recurses, so deep nesting cannot overflow the stack.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[Diagnostic] = []
        self.names: set[str] = set()  # every identifier referenced (for unused-import checks)

    def _span(self, extent: tuple[int, int, int, int] | None) -> Span | None:
        if extent is None:
            return None
        return Span(self.file, *extent)

    def _bad(self, message: str, tok, hint: str | None = None) -> None:
        span = Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column)
        self.errors.append(error("E0104", message, span, hint))

    # -- module
    def start(self, meta, items):
        return A.Module(_present(items), path=self.file, span=self._span(meta))

    def dotted_name(self, meta, names):
        return tuple(_v(n) for n in names)

    def alias(self, meta, c):
        return _v(c[0])

    def import_stmt(self, meta, c):
        module, alias = c
        return A.Import(module, alias, span=self._span(meta))

    def import_name(self, meta, c):
        name, alias = c
        return A.ImportName(_v(name), alias, span=self._span(meta))

    def from_import(self, meta, c):
        module, *names = _present(c)
        return A.FromImport(module, tuple(names), span=self._span(meta))

    def type_annotation(self, meta, c):
        return c[0]

    def const_decl(self, meta, c):
        name, type_, value = c
        return A.Const(_v(name), type_, value, span=self._span(meta))

    # -- topology
    def topology_decl(self, meta, c):
        name, *items = _present(c)
        nodes = tuple(i for i in items if isinstance(i, A.NodeDecl))
        links = tuple(i for i in items if isinstance(i, A.LinkDecl))
        return A.TopologyDecl(_v(name), nodes, links, span=self._span(meta))

    def node_kind(self, meta, c):
        return _v(c[0])

    def node_target(self, meta, c):
        return _v(c[0])

    def node_decl(self, meta, c):
        kind, name, target, attrs = c
        return A.NodeDecl(kind, _v(name), target, attrs or (), span=self._span(meta))

    def link_port(self, meta, c):
        return int(_v(c[0]))

    def link_end(self, meta, c):
        node, port = c
        return A.LinkEnd(_v(node), port, span=self._span(meta))

    def link_decl(self, meta, c):
        a, b, attrs = c
        return A.LinkDecl(a, b, attrs or (), span=self._span(meta))

    def attrs(self, meta, c):
        return _present(c)

    def attr(self, meta, c):
        name, value = c
        return A.Attr(_v(name), value, span=self._span(meta))

    # -- functions and headers
    def function_kind(self, meta, c):
        return _Kind(_v(c[0]))

    def function_decl(self, meta, c):
        name, *sections = c
        params = tuple(x for x in sections if isinstance(x, A.Param))
        kind = next((x.name for x in sections if isinstance(x, _Kind)), None)
        targets = next((x for x in sections if isinstance(x, _Targets)), _Targets(())).items
        latency = next((x for x in sections if isinstance(x, _Latency)), _Latency(())).items
        asserts = tuple(x for x in sections if isinstance(x, A.Assert))
        body = next((x for x in sections if isinstance(x, A.Chain)), None)
        return A.FunctionDecl(_v(name), params, kind, targets, latency, asserts, body,
                              span=self._span(meta))

    def default(self, meta, c):
        return c[0]

    def constraint(self, meta, c):
        return c[0]

    def param(self, meta, c):
        name, type_, default, constraint = c
        return A.Param(_v(name), type_, default, constraint, span=self._span(meta))

    def type(self, meta, c):
        name, *args = c
        return A.TypeRef(_v(name), _present(args), span=self._span(meta))

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
        return A.HeaderDecl(_v(name), tuple(fields), span=self._span(meta))

    def field_decl(self, meta, c):
        name, type_, constraint = c
        return A.FieldDecl(_v(name), type_, constraint, span=self._span(meta))

    # -- services
    def service_decl(self, meta, c):
        name, topo, *stmts = _present(c)
        return A.ServiceDecl(_v(name), _v(topo), tuple(stmts), span=self._span(meta))

    def match_stmt(self, meta, c):
        return A.MatchStmt(c[0], span=self._span(meta))

    def require_stmt(self, meta, c):
        name, op, value = c
        return A.RequireStmt(_v(name), op, value, span=self._span(meta))

    def from_stmt(self, meta, c):
        return A.FromStmt(tuple(_v(n) for n in c), span=self._span(meta))

    def reply_stmt(self, meta, c):
        return A.ReplyStmt(_v(c[0]), span=self._span(meta))

    def chain_block(self, meta, c):
        return A.Chain(tuple(c), span=self._span(meta))

    def pin(self, meta, c):
        return _Pin(_v(c[0]))

    def invocation(self, meta, c):
        func, *rest = c
        self.names.add(func[0])
        pin = next((x.node for x in rest if isinstance(x, _Pin)), None)
        args = tuple(x for x in rest if isinstance(x, A.Arg))
        return A.Invocation(func, args, pin, span=self._span(meta))

    def arg(self, meta, c):
        name, value = c
        return A.Arg(_v(name), value, span=self._span(meta))

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
        return _v(c[0])

    def range_op(self, meta, c):
        return A.RangeExpr(c[0], c[1], span=self._span(meta))

    def _bin(op):
        def method(self, meta, c):
            return A.BinOp(op, c[0], c[1], span=self._span(meta))
        return method

    add, sub, mul, div = _bin("+"), _bin("-"), _bin("*"), _bin("/")

    def neg(self, meta, c):
        return A.UnaryOp("-", c[0], span=self._span(meta))

    def getattr(self, meta, c):
        return A.Attribute(c[0], _v(c[1]), span=self._span(meta))

    def call(self, meta, c):
        func, *args = c
        return A.Call(func, _present(args), span=self._span(meta))

    def name(self, meta, c):
        text = _v(c[0])
        self.names.add(text)
        return A.Name(text, span=self._span(meta))

    def list_lit(self, meta, c):
        return A.ListLit(_present(c), span=self._span(meta))

    def set_lit(self, meta, c):
        return A.SetLit(_present(c), span=self._span(meta))

    # -- literals
    def int_lit(self, meta, c):
        return A.IntLit(int(_v(c[0])), span=self._span(meta))

    def hex_lit(self, meta, c):
        return A.IntLit(int(_v(c[0]), 16), hex=True, span=self._span(meta))

    def float_lit(self, meta, c):
        return A.FloatLit(Decimal(_v(c[0])), span=self._span(meta))

    def quantity_lit(self, meta, c):
        m = QUANTITY_RE.fullmatch(_v(c[0]))
        assert m is not None  # the terminal and QUANTITY_RE accept the same texts
        return A.QuantityLit(Decimal(m["num"]), m["unit"], span=self._span(meta))

    def _address(self, text: str, tok) -> IPv4Address:
        try:
            return IPv4Address(text)
        except ValueError:
            self._bad(f"{text} is not an IPv4 address", tok,
                      "each of the four parts is a number from 0 to 255, without leading zeros")
            return IPv4Address(0)

    def ipv4_lit(self, meta, c):
        return A.IPv4Lit(self._address(_v(c[0]), c[0]), span=self._span(meta))

    def prefix_lit(self, meta, c):
        addr, _, length = _v(c[0]).partition("/")
        n = int(length)
        if n > 32:
            self._bad(f"prefix length /{n} is longer than 32 bits", c[0],
                      "an IPv4 prefix length is 0 to 32")
            n = 32
        return A.PrefixLit(self._address(addr, c[0]), n, span=self._span(meta))

    def mac_lit(self, meta, c):
        return A.MacLit(_v(c[0]).lower(), span=self._span(meta))

    def string_lit(self, meta, c):
        return A.StringLit(self._string(c[0]), span=self._span(meta))

    def _string(self, tok) -> str:
        body = _v(tok)[1:-1]
        try:
            return _unescape(body)
        except ValueError as e:
            self._bad(f"bad escape in string: {e}", tok, r"use \\, \", \n or \t")
            return body

    def true_lit(self, meta, c):
        return A.BoolLit(True, span=self._span(meta))

    def false_lit(self, meta, c):
        return A.BoolLit(False, span=self._span(meta))


for _rule, _method in list(vars(_ToAst).items()):
    if not _rule.startswith("_") and callable(_method):
        setattr(_Inline, _rule, _callback(_rule, _method))


@dataclass(frozen=True)
class _Targets:
    items: tuple


@dataclass(frozen=True)
class _Latency:
    items: tuple


@dataclass(frozen=True)
class _Kind:
    name: str


@dataclass(frozen=True)
class _Pin:
    node: str


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
        pattern = _lark()[0].get_terminal(term).pattern
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
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return "expected " + listed


def _token_desc(tok: Token) -> str:
    if tok.type == "$END":
        return "end of input"
    return f"`{tok}`"


_IPV6_RUN = re.compile(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(/\d+)?")


def _ipv6_at(file: str, text: str, line: int, col: int) -> Diagnostic | None:
    """E0107 if the error at ``line:col`` sits in an IPv6 address or prefix: the lexer
    knows no such literal, and "unexpected `:`" would not tell the user why."""
    lines = text.split("\n")
    if not 0 < line <= len(lines):
        return None
    for m in _IPV6_RUN.finditer(lines[line - 1]):
        if m.start() < col <= m.end() + 1 and m.group().count(":") >= 2:
            try:
                IPv6Network(m.group(), strict=False)
            except ValueError:
                continue
            return error("E0107", f"IPv6 is not supported yet: {m.group()}",
                         Span(file, line, m.start() + 1, line, m.end() + 1),
                         "mosaico's addresses and prefixes are IPv4, e.g. 10.0.2.1 or "
                         "10.0.0.0/8")
    return None


def _syntax_diagnostic(e: UnexpectedInput, file: str, text: str) -> Diagnostic:
    line, col = getattr(e, "line", -1), getattr(e, "column", -1)
    if isinstance(e, UnexpectedToken):
        line, col = e.token.line, e.token.column
    v6 = _ipv6_at(file, text, line, col) if isinstance(line, int) and line > 0 else None
    if v6 is not None:
        return v6
    if isinstance(e, UnexpectedToken) and e.token.type != "$END":
        tok = e.token
        span = Span(file, tok.line, tok.column, tok.end_line, tok.end_column)
        return error("E0101", f"unexpected {_token_desc(tok)}", span, _expected_hint(e.expected))
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        span = Span(file, e.line, e.column, e.line, e.column + 1)
        rest = text[e.pos_in_stream + 1:].split("\n", 1)[0]
        if ch == '"' and '"' not in rest:  # no closing quote on this line
            return error("E0102", "unterminated string", span,
                         'close it with `"` on the same line (strings cannot span lines)')
        hint = _expected_hint(e.allowed) if e.allowed else None
        return error("E0102", f"unexpected character {ch!r}", span, hint)
    lines = text.splitlines() or [""]
    line = len(lines)
    span = Span(file, line, len(lines[-1]) + 1, line, len(lines[-1]) + 2)
    expected = getattr(e, "expected", ()) or ()
    return error("E0103", "unexpected end of input", span,
                 _expected_hint(expected) or "a `}` or `)` may be missing")


_ITEM_START = re.compile(rf"^({'|'.join(TOP_LEVEL_KEYWORDS)})\b", re.M)


# ----------------------------------------------------------------------------- comments


def _scan_comments(text: str) -> tuple[A.Comment, ...]:
    """Find ``//`` and ``#`` comments outside strings (strings never span lines)."""
    found = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if "#" not in line and "//" not in line:
            continue
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
    with gc_paused():
        return _parse(text, file)


def _parse(text: str, file: str) -> ParseResult:
    lark, _, inline = _lark()
    with inline.parsing(_ToAst(file)) as ast:
        try:
            built = lark.parse(text)
        except UnexpectedInput as e:
            first = e
        else:
            first = None
    if first is not None:
        return ParseResult(None, tuple(_recover(text, file, first)))
    module = built.value
    diagnostics = list(ast.errors)
    if built.depth > MAX_NESTING:
        span = Span(file, *built.deep) if built.deep is not None else Span(file, 1, 1)
        diagnostics.append(error("E0105", "expressions are nested too deeply", span,
                                 f"mosaico accepts up to {MAX_NESTING} levels of nesting; "
                                 "name intermediate values with `const`"))
    if diagnostics:
        return ParseResult(None, tuple(diagnostics))
    return ParseResult(
        A.Module(module.items, path=file, comments=_scan_comments(text),
                 names_used=frozenset(ast.names), span=module.span),
        (),
    )


def _recover(text: str, file: str, first: UnexpectedInput) -> list[Diagnostic]:
    """Report every broken top-level item: parse each one on its own.

    Items start with a top-level keyword at the beginning of a line. Each chunk is padded
    with the newlines before it, so positions stay those of the whole file.
    """
    lark, _, inline = _lark()
    starts = [m.start() for m in _ITEM_START.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    diagnostics: list[Diagnostic] = []
    for begin, end in zip(starts, [*starts[1:], len(text)], strict=True):
        padded = "\n" * text.count("\n", 0, begin) + text[begin:end].rstrip()
        with inline.parsing(_ToAst(file)) as ast:
            try:
                lark.parse(padded)
            except UnexpectedInput as e:
                d = _syntax_diagnostic(e, file, padded)
                if d.code == "E0103" and end < len(text):
                    d = replace(d, message="this declaration ends too early")
                diagnostics.append(d)
                continue
        diagnostics.extend(ast.errors)
    if not any(d.code in ("E0101", "E0102", "E0103", "E0107") for d in diagnostics):
        diagnostics.insert(0, _syntax_diagnostic(first, file, text))  # the split misled us
    return _dedupe(diagnostics)


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen, out = set(), []
    for d in diags:
        key = (d.code, d.span and (d.span.line, d.span.col), d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out

