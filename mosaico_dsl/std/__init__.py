"""The standard library as Python objects: ``from mosaico_dsl.std import l4s, security``.

The modules are read from ``stdlib/std/*.mosaico`` — the single source of truth — so every
stdlib function is callable from Python with its real signature (shown by ``help()`` and
completed by IPython) and its documentation comment as docstring.
"""

from __future__ import annotations

import inspect
from functools import cache
from types import ModuleType
from typing import Any

from .._resources import stdlib_dir
from ..api import Step, _caller_span, _FunctionRef
from ..lang import _ast as A
from ..lang.parser import parse
from ..lang.printer import format_expr, format_type

__all__ = ["modules", "header_fields", "StdFunction", "StdModule"]


@cache
def _parsed(name: str) -> A.Module:
    path = stdlib_dir() / "std" / f"{name}.mosaico"
    result = parse(path.read_text(encoding="utf-8"), str(path))
    if result.module is None:  # pragma: no cover - the shipped stdlib parses (tested)
        raise RuntimeError(f"the standard library module std.{name} does not parse")
    return result.module


@cache
def modules() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in (stdlib_dir() / "std").glob("*.mosaico")))


@cache
def header_fields() -> dict[str, tuple[str, ...]]:
    return {h.name: tuple(fd.name for fd in h.fields)
            for h in _parsed("net").items if isinstance(h, A.HeaderDecl)}


def _doc_comment(module: A.Module, decl: A.Node) -> str:
    """The ``//`` comment lines directly above a declaration."""
    lines: list[str] = []
    line = decl.span.line - 1 if decl.span else 0
    by_line = {c.line: c.text for c in module.comments}
    while line in by_line:
        lines.insert(0, by_line[line].lstrip("/#").strip())
        line -= 1
    return "\n".join(lines)


class StdFunction(_FunctionRef):
    """A stdlib function; calling it with keyword arguments makes a chain :class:`Step`."""

    def __init__(self, module: str, decl: A.FunctionDecl, doc: str) -> None:
        self.module = ("std", module)
        self.name = decl.name
        self.kind = decl.kind
        self.decl = decl
        params = [inspect.Parameter(
            p.name, inspect.Parameter.KEYWORD_ONLY,
            default=format_expr(p.default) if p.default is not None else inspect.Parameter.empty,
            annotation=format_type(p.type)) for p in decl.params]
        params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None,
                                     annotation="'p4' | 'vnf'") for n in ("place", "prefer")]
        self.__signature__ = inspect.Signature(params)
        self.__doc__ = doc or f"std.{module}.{decl.name}"
        self.__name__ = self.__qualname__ = decl.name

    def __call__(self, **kwargs: Any) -> Step:
        return Step(self, kwargs, _caller_span())

    def __repr__(self) -> str:
        return f"<mosaico function {self.qualname}{self.__signature__} : {self.kind}>"


class StdModule(ModuleType):
    def __init__(self, name: str) -> None:
        super().__init__(f"{__name__}.{name}")
        module = _parsed(name)
        self.__doc__ = f"std.{name} (from {module.path})"
        for item in module.items:
            if isinstance(item, A.FunctionDecl):
                setattr(self, item.name, StdFunction(name, item, _doc_comment(module, item)))


@cache
def _module(name: str) -> StdModule:
    return StdModule(name)


def __getattr__(name: str) -> StdModule:
    if name in modules():
        return _module(name)
    raise AttributeError(f"mosaico has no standard module std.{name}; "
                         f"modules: {', '.join(modules())}")


def __dir__() -> list[str]:
    return [*__all__, *modules()]
