"""A P4_16 syntax checker for the programs mosaico generates (p4c is not always at hand).

:func:`preprocess` resolves ``#include "file"`` (system includes such as ``<v1model.p4>``
are recorded, not read), include guards and object-like ``#define``s, keeping every line's
origin; :func:`check_source` parses the result with ``p4.lark`` and reports an error with
the *original* file and line. :func:`parse` returns the tree for tests that inspect the
program (declared objects, their annotations).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path, PurePosixPath

import lark

from ..._cache import lark_cache

__all__ = ["P4SyntaxError", "Preprocessed", "preprocess", "parse", "check_source",
           "check_file", "KEYWORDS"]

_DIRECTIVE = re.compile(r"^\s*#\s*(\w+)\s*(.*?)\s*$")
#: The words the grammar spells out (``control``, ``apply``, ``bit``, …): a parser tells
#: them from names, so they are kept when a fragment is reduced to its shape.
KEYWORDS = frozenset(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"',
                                (Path(__file__).parent / "p4.lark").read_text(encoding="utf-8")))
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class P4SyntaxError(Exception):
    """A syntax error at ``file:line:column`` of the original (unpreprocessed) sources."""

    def __init__(self, message: str, file: str, line: int, column: int = 0) -> None:
        self.message, self.file, self.line, self.column = message, file, line, column
        super().__init__(f"{file}:{line}:{column}: {message}")


@dataclass(frozen=True)
class Preprocessed:
    text: str
    origins: tuple[tuple[str, int], ...]  # (file, line) of each output line
    system_includes: tuple[str, ...]
    files: tuple[str, ...]  # every quoted include read, in order


class _Pre:
    def __init__(self, files: Mapping[str, str]) -> None:
        self.files = files
        self.lines: list[str] = []
        self.origins: list[tuple[str, int]] = []
        self.macros: dict[str, str] = {}
        self.system: list[str] = []
        self.read: list[str] = []

    def run(self, name: str, stack: tuple[str, ...] = ()) -> None:
        if name in stack:
            raise P4SyntaxError(f"#include cycle: {' -> '.join((*stack, name))}", name, 1)
        self.read.append(name)
        text = self.files[name]
        active: list[bool] = []  # one per open conditional: is its current branch on?
        for n, raw in enumerate(text.splitlines(), start=1):
            m = _DIRECTIVE.match(raw)
            on = all(active)
            if m is None:
                self.lines.append(self._expand(raw) if on else "")
                self.origins.append((name, n))
                continue
            self.lines.append("")
            self.origins.append((name, n))
            word, rest = m.group(1), m.group(2)
            if word in ("ifndef", "ifdef"):
                defined = rest.split()[0] in self.macros if rest else False
                active.append(defined if word == "ifdef" else not defined)
            elif word == "else":
                if not active:
                    raise P4SyntaxError("#else without #if", name, n)
                active[-1] = not active[-1]
            elif word == "endif":
                if not active:
                    raise P4SyntaxError("#endif without #if", name, n)
                active.pop()
            elif not on:
                continue
            elif word == "define":
                parts = rest.split(None, 1)
                if not parts or "(" in parts[0]:
                    raise P4SyntaxError("only object-like #define is supported", name, n)
                self.macros[parts[0]] = parts[1] if len(parts) > 1 else ""
            elif word == "undef":
                self.macros.pop(rest.split()[0], None)
            elif word == "include":
                if rest.startswith("<") and rest.endswith(">"):
                    self.system.append(rest[1:-1])
                elif rest.startswith('"') and rest.endswith('"'):
                    target = str(PurePosixPath(name).parent / rest[1:-1])
                    target = target[2:] if target.startswith("./") else target
                    if target not in self.files:
                        raise P4SyntaxError(f"cannot find include file {rest}", name, n)
                    self.run(target, (*stack, name))
                else:
                    raise P4SyntaxError(f"malformed #include {rest}", name, n)
            else:
                raise P4SyntaxError(f"unsupported preprocessor directive #{word}", name, n)
        if active:
            raise P4SyntaxError("unterminated #if", name, len(text.splitlines()))

    def _expand(self, line: str) -> str:
        if not self.macros:
            return line
        return _WORD.sub(lambda m: self.macros.get(m.group(0), m.group(0)), line)


def preprocess(main: str, files: Mapping[str, str]) -> Preprocessed:
    """Resolve ``main`` (a key of ``files``: relative POSIX path → text) and its includes."""
    pre = _Pre(files)
    pre.run(main)
    return Preprocessed("\n".join(pre.lines) + "\n", tuple(pre.origins), tuple(pre.system),
                        tuple(pre.read))


@cache
def _parser() -> lark.Lark:
    grammar = (Path(__file__).parent / "p4.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                     maybe_placeholders=False, cache=lark_cache("p4-grammar"))


@cache
def _fast_parser() -> lark.Lark:
    """The same grammar without positions, on lark-cython when installed: it only has to
    say yes — a no is parsed again by :func:`_parser` to say where."""
    grammar = (Path(__file__).parent / "p4.lark").read_text(encoding="utf-8")
    options = dict(parser="lalr", lexer="contextual", maybe_placeholders=False,
                   cache=lark_cache("p4-grammar-fast"))
    try:
        import lark_cython
    except ImportError:
        return lark.Lark(grammar, **options)
    return lark.Lark(grammar, **options, _plugins=lark_cython.plugins)


@lru_cache(maxsize=256)
def _declarations_parse(text: str) -> bool:
    """Whether ``text`` is a sequence of whole declarations that parses and passes the
    statement check (remembered: every switch's program includes the same library)."""
    try:
        tree = _fast_parser().parse(text)
    except lark.exceptions.UnexpectedInput:
        return False
    return not any(_bad_statement(node) for node in tree.find_data("expr_stmt"))


def _located(e: Exception, pre: Preprocessed) -> P4SyntaxError:
    line = getattr(e, "line", None) or 1
    column = getattr(e, "column", None) or 0
    file, orig = pre.origins[min(line, len(pre.origins)) - 1]
    if isinstance(e, lark.UnexpectedToken):
        expected = ", ".join(sorted(e.accepts or e.expected)[:8])
        message = f"unexpected {e.token!r}; expected one of: {expected}"
    elif isinstance(e, lark.UnexpectedCharacters):
        message = f"unexpected character {e.char!r}"
    elif isinstance(e, lark.UnexpectedEOF):
        message = "unexpected end of input"
    else:  # pragma: no cover - lark raises only the three above
        message = str(e)
    return P4SyntaxError(message, file, orig, column)


def _bad_statement(node: lark.Tree) -> bool:
    """A statement without `=` must be a call: p4c rejects `t.apply;` or `x;`."""
    return len(node.children) == 1 and getattr(node.children[0], "data", None) != "call"


def _check_statements(tree: lark.Tree, pre: Preprocessed) -> None:
    for node in tree.find_data("expr_stmt"):
        if _bad_statement(node):
            file, line = pre.origins[node.meta.line - 1]
            raise P4SyntaxError("a statement must be an assignment or a method call "
                                "(missing `(...)`?)", file, line, node.meta.column)


def parse(main: str, files: Mapping[str, str]) -> tuple[lark.Tree, Preprocessed]:
    """Preprocess and parse; raises :class:`P4SyntaxError` with the original location."""
    pre = preprocess(main, files)
    try:
        tree = _parser().parse(pre.text)
    except lark.exceptions.UnexpectedInput as e:
        raise _located(e, pre) from None
    _check_statements(tree, pre)
    return tree, pre


def check_source(main: str, files: Mapping[str, str]) -> Preprocessed:
    """Check a program; returns the preprocessed text on success.

    The program is checked file by file — each run of lines from one file is a sequence of
    whole declarations, and the grammar is a sequence of declarations — so the library
    every switch includes is parsed once per process. Anything that does not parse that way
    is parsed whole, which reports the error where it is (or finds none)."""
    pre = preprocess(main, files)
    lines = pre.text.split("\n")
    start = 0
    for end in range(1, len(pre.origins) + 1):
        if end == len(pre.origins) or pre.origins[end][0] != pre.origins[start][0]:
            if not _declarations_parse("\n".join(lines[start:end]) + "\n"):
                return parse(main, files)[1]
            start = end
    return pre


def check_file(path: str | Path) -> Preprocessed:
    """Check a program on disk, resolving quoted includes relative to its directory."""
    path = Path(path)
    root = path.parent
    files = {str(p.relative_to(root).as_posix()): p.read_text(encoding="utf-8")
             for p in root.rglob("*.p4")}
    return check_source(path.name, files)
