"""What a name can mean, and where names are looked up.

A :class:`Scope` is an immutable chain of frames: the prelude (``std.net``), a module's
top level, a function's parameters, a topology's nodes. Lookup walks outward.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..diagnostics import Span
from ..lang import _ast as A
from .types import Type

if TYPE_CHECKING:
    from .modules import LoadedModule

__all__ = ["Namespace", "Defined", "ValueBinding", "ModuleBinding", "PackageBinding",
           "FunctionBinding", "HeaderBinding", "TopologyBinding", "NodeBinding", "Binding",
           "Scope", "HeaderField", "Header"]


@dataclass(frozen=True)
class ValueBinding:
    """A constant or a bound parameter, already evaluated."""

    type: Type
    value: Any
    span: Span | None = None


@dataclass(frozen=True)
class ModuleBinding:
    module: LoadedModule


@dataclass(frozen=True)
class PackageBinding:
    """``std`` after ``import std.l4s``: a namespace whose members are imported modules."""

    path: tuple[str, ...]
    modules: Mapping[tuple[str, ...], LoadedModule]


@dataclass(frozen=True)
class FunctionBinding:
    qualname: str
    decl: A.FunctionDecl
    module: LoadedModule


@dataclass(frozen=True)
class HeaderField:
    name: str
    type: Type
    bits: int
    max: int | None  # the largest value for `int in 0..N` fields


@dataclass(frozen=True)
class Header:
    name: str
    fields: Mapping[str, HeaderField]
    span: Span | None = None


@dataclass(frozen=True)
class HeaderBinding:
    header: Header


@dataclass(frozen=True)
class TopologyBinding:
    decl: A.TopologyDecl
    module: LoadedModule


@dataclass(frozen=True)
class NodeBinding:
    """A node of the topology a service runs on, usable as a value (``to: server``)."""

    name: str
    kind: str  # switch | host | endpoint
    ip: Any = None  # IPv4Address for endpoints


Binding = (ValueBinding | ModuleBinding | PackageBinding | FunctionBinding | HeaderBinding
           | TopologyBinding | NodeBinding)


@dataclass(frozen=True)
class Scope:
    names: Mapping[str, Binding] = field(default_factory=lambda: MappingProxyType({}))
    parent: Scope | None = None

    def lookup(self, name: str) -> Binding | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def child(self, names: Mapping[str, Binding]) -> Scope:
        if isinstance(names, Defined):
            return Scope(names, self)  # already a read-only view that never changes
        return Scope(MappingProxyType(dict(names)), self)

    def visible(self) -> list[str]:
        """Every name in scope (for did-you-mean hints)."""
        out: dict[str, None] = {}
        scope: Scope | None = self
        while scope is not None:
            out.update(dict.fromkeys(scope.names))
            scope = scope.parent
        return list(out)


class Namespace:
    """A module's top-level names, defined one after another and never redefined.

    :meth:`defined` is what an item sees — the names defined before it — without copying
    them: with a copy per constant, 50,000 constants cost 50,000² / 2 name copies."""

    def __init__(self) -> None:
        self.names: dict[str, Binding] = {}
        self._position: dict[str, int] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def define(self, name: str, binding: Binding) -> None:
        if name in self.names:
            raise KeyError(f"{name!r} is already defined")
        self._position[name] = len(self.names)
        self.names[name] = binding

    def defined(self) -> Defined:
        return Defined(self.names, self._position, len(self.names))


class Defined(Mapping[str, Binding]):
    """The first ``count`` names of a :class:`Namespace`: a name defined later is not
    visible, however the namespace grows."""

    __slots__ = ("_names", "_position", "_count")

    def __init__(self, names: dict[str, Binding], position: dict[str, int], count: int
                 ) -> None:
        self._names, self._position, self._count = names, position, count

    def __getitem__(self, name: str) -> Binding:
        if self._position[name] >= self._count:
            raise KeyError(name)
        return self._names[name]

    def __contains__(self, name: object) -> bool:
        return self._position.get(name, self._count) < self._count  # type: ignore[arg-type]

    def __iter__(self):
        return islice(self._names, self._count)

    def __len__(self) -> int:
        return self._count
