"""Diagnostics are values.

Every pass reports problems as :class:`Diagnostic` values carrying a stable code, a message,
the source :class:`Span` (for the Python API: the user's call site), and a hint. They are
collected, never raised one by one, and rendered by one function per medium: terminal text,
JSON, and HTML for notebooks.
"""

from __future__ import annotations

import html
import json
import linecache
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ._codes import CODES

__all__ = [
    "Severity",
    "Span",
    "Note",
    "Diagnostic",
    "CompileError",
    "error",
    "warning",
    "render_text",
    "render_json",
    "render_html",
    "has_errors",
    "Collector",
]


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file; lines and columns are 1-based, ``end_col`` exclusive."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Note:
    message: str
    span: Span | None = None


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    hint: str | None = None
    severity: Severity = Severity.ERROR
    notes: tuple[Note, ...] = ()

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"diagnostic code {self.code} is not registered in _codes.py")

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def to_dict(self) -> dict:
        def span(s: Span | None) -> dict | None:
            if s is None:
                return None
            return {"file": s.file, "line": s.line, "col": s.col,
                    "end_line": s.end_line, "end_col": s.end_col}

        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "span": span(self.span),
            "hint": self.hint,
            "notes": [{"message": n.message, "span": span(n.span)} for n in self.notes],
        }


def error(code: str, message: str, span: Span | None = None, hint: str | None = None,
          notes: Iterable[Note] = ()) -> Diagnostic:
    return Diagnostic(code, message, span, hint, Severity.ERROR, tuple(notes))


def warning(code: str, message: str, span: Span | None = None, hint: str | None = None,
            notes: Iterable[Note] = ()) -> Diagnostic:
    return Diagnostic(code, message, span, hint, Severity.WARNING, tuple(notes))


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


class CompileError(Exception):
    """Raised by the Python API when a program has errors; carries every diagnostic."""

    def __init__(self, diagnostics: Sequence[Diagnostic],
                 sources: Mapping[str, str] | None = None) -> None:
        self.diagnostics = tuple(diagnostics)
        self.sources = dict(sources or {})
        super().__init__(render_text(self.diagnostics, self.sources))

    def _repr_html_(self) -> str:
        return render_html(self.diagnostics, self.sources)


class Collector:
    """Runs independent steps and keeps their :class:`CompileError` diagnostics, so that
    every mistake of one request (its program, its options) is reported at once."""

    def __init__(self, sources: Mapping[str, str] | None = None) -> None:
        self.errors: list[Diagnostic] = []
        self.sources: dict[str, str] = dict(sources or {})

    def __call__(self, step: Callable[[], Any]) -> Any:
        """``step()``'s value, or None (its diagnostics kept) if it raised CompileError."""
        try:
            return step()
        except CompileError as e:
            self.errors.extend(e.diagnostics)
            self.sources.update(e.sources)
            return None

    def check(self) -> None:
        """Raise one CompileError carrying everything collected, if anything was."""
        if self.errors:
            raise CompileError(self.errors, self.sources)


SourceLookup = Callable[[str, int], str | None]


def _line_getter(sources: Mapping[str, str] | None) -> SourceLookup:
    split: dict[str, list[str]] = {}

    def get(file: str, line: int) -> str | None:
        if sources is not None and file in sources:
            lines = split.setdefault(file, sources[file].splitlines())
            return lines[line - 1] if 0 < line <= len(lines) else None
        text = linecache.getline(file, line)
        return text.rstrip("\n") if text else None

    return get


def _excerpt(span: Span, get: SourceLookup) -> list[str]:
    text = get(span.file, span.line)
    if text is None:
        return []
    text = text.expandtabs(4) if "\t" not in text[: span.col] else text
    width = len(str(span.line))
    if span.end_line == span.line and span.end_col and span.end_col > span.col:
        length = span.end_col - span.col
    else:
        length = max(1, len(text.rstrip()) - span.col + 1)
    pad = " " * width
    return [
        f"{pad} |",
        f"{span.line} | {text}",
        f"{pad} | {' ' * (span.col - 1)}{'^' * length}",
    ]


def render_text(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str] | None = None
                ) -> str:
    """Render diagnostics as plain text, rustc-style: header, location, caret, hint."""
    get = _line_getter(sources)
    blocks = []
    for d in diagnostics:
        lines = [f"{d.severity.value}[{d.code}]: {d.message}"]
        if d.span is not None:
            lines.append(f"  --> {d.span}")
            lines.extend("  " + x for x in _excerpt(d.span, get))
        for note in d.notes:
            where = f" ({note.span})" if note.span else ""
            lines.append(f"  = note: {note.message}{where}")
        if d.hint:
            lines.append(f"  = hint: {d.hint}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    return json.dumps([d.to_dict() for d in diagnostics], indent=2, sort_keys=True)


def render_html(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str] | None = None
                ) -> str:
    """Render diagnostics for notebooks: the same content as the text form, styled."""
    get = _line_getter(sources)
    parts = ['<div class="mosaico-diagnostics" style="font-family: monospace">']
    for d in diagnostics:
        colour = "#c0392b" if d.is_error else "#b7950b"
        parts.append(
            f'<div style="margin-bottom: 0.8em"><b style="color: {colour}">'
            f"{d.severity.value}[{html.escape(d.code)}]</b>: {html.escape(d.message)}"
        )
        if d.span is not None:
            excerpt = "\n".join(_excerpt(d.span, get))
            parts.append(f"<div>--&gt; {html.escape(str(d.span))}</div>")
            if excerpt:
                parts.append(f'<pre style="margin: 0">{html.escape(excerpt)}</pre>')
        for note in d.notes:
            parts.append(f"<div>= note: {html.escape(note.message)}</div>")
        if d.hint:
            parts.append(f"<div><i>= hint: {html.escape(d.hint)}</i></div>")
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)
