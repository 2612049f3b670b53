"""Loading modules and building their top-level scopes.

``import std.l4s`` finds ``std/l4s.mosaico`` in the standard library; other modules are
looked up next to the importing file, then on the user's search path. ``std.net`` is the
prelude: its headers and constants are visible everywhere without an import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from ..diagnostics import Diagnostic, Note, error, warning
from ..lang import _ast as A
from ..lang.parser import parse
from . import types as T
from .evaluate import Evaluator, did_you_mean
from .scope import (
    Binding,
    FunctionBinding,
    Header,
    HeaderBinding,
    HeaderField,
    ModuleBinding,
    Namespace,
    PackageBinding,
    Scope,
    TopologyBinding,
    ValueBinding,
)

__all__ = ["LoadedModule", "Loader", "PRELUDE"]

PRELUDE = ("std", "net")
Report = Callable[[Diagnostic], None]


class LoadedModule:
    """A parsed module with its exports and top-level scope (built once per compile)."""

    def __init__(self, name: tuple[str, ...], path: str, ast: A.Module) -> None:
        self.name = name
        self.path = path
        self.ast = ast
        self.exports: dict[str, Binding] = {}
        self.scope: Scope = Scope()

    @property
    def dotted(self) -> str:
        return ".".join(self.name)

    def __repr__(self) -> str:
        return f"<module {self.dotted} from {self.path}>"


@lru_cache(maxsize=64)
def _parse_file(path: str, mtime_ns: int, size: int):
    """Parse a library file once per process (keyed by path and modification stamp)."""
    text = Path(path).read_text(encoding="utf-8")
    return text, parse(text, path)


def _field_of(decl: A.FieldDecl, ev: Evaluator, report: Report) -> HeaderField | None:
    t = T.SCALARS.get(decl.type.name)
    widths = {T.IPV4: 32, T.PORT: 16, T.MAC: 48}
    if t in widths and decl.constraint is None:
        return HeaderField(decl.name, t, widths[t], None)
    if t == T.INT and decl.constraint is not None:
        r = ev.value(decl.constraint, T.range_of(T.INT))
        if r is None:
            return None
        if r.value.lo != 0:
            report(error("E0405", "header field ranges start at 0", decl.constraint.span))
            return None
        return HeaderField(decl.name, T.INT, max(1, r.value.hi.bit_length()), r.value.hi)
    report(error("E0303", f"header field type must be ipv4, port, mac or `int in 0..N`, "
                 f"not {decl.type.name}", decl.type.span))
    return None


def _unparsed_header(decl: A.HeaderDecl, parsed: list[str]) -> Diagnostic:
    """Only std.net's headers can be matched: each backend extracts exactly those (the P4
    parser's states, nftables' selectors, the simulator's packets). A new header would need
    its place in the parse graph (which ether_type or protocol leads to it), which a
    declaration does not say — so it is refused here, not at compile time."""
    return error("E0210", f"header `{decl.name}` cannot be matched: the targets parse only "
                 f"std.net's headers ({', '.join(parsed)})", decl.span,
                 "match on std.net's fields; user-declared headers are not supported yet")


class Loader:
    def __init__(self, stdlib: Path, search: Sequence[Path], report: Report,
                 sources: dict[str, str]) -> None:
        self.stdlib = stdlib
        self.search = list(search)
        self.report = report
        self.sources = sources
        self.modules: dict[tuple[str, ...], LoadedModule] = {}
        self._loading: list[tuple[str, ...]] = []
        self._prelude: LoadedModule | None = None

    # ------------------------------------------------------------------ finding files

    def _find(self, name: tuple[str, ...], importer: Path | None) -> Path | None:
        rel = Path(*name).with_suffix(".mosaico")
        roots = [self.stdlib] if name[0] == "std" else \
            ([importer] if importer else []) + self.search
        for root in roots:
            candidate = root / rel
            if candidate.is_file():
                return candidate
        return None

    def prelude(self) -> LoadedModule | None:
        if self._prelude is None:
            self._prelude = self.import_module(PRELUDE, None, None)
        return self._prelude

    def import_module(self, name: tuple[str, ...], node: A.Node | None,
                      importer: Path | None) -> LoadedModule | None:
        span = getattr(node, "span", None)
        if name in self._loading:
            cycle = " → ".join(".".join(n) for n in [*self._loading, name])
            self.report(error("E0208", f"import cycle: {cycle}", span,
                              "move the shared declarations into a module both can import"))
            return None
        if name in self.modules:
            return self.modules[name]
        path = self._find(name, importer)
        if path is None:
            known = sorted(p.stem for p in self.stdlib.joinpath("std").glob("*.mosaico"))
            hint = did_you_mean(name[-1], known) if name[0] == "std" else None
            self.report(error("E0201", f"no module named `{'.'.join(name)}`", span,
                              hint or ("the standard library has " + ", ".join(
                                  f"std.{k}" for k in known) if name[0] == "std" else
                                       f"looked for {Path(*name).with_suffix('.mosaico')} "
                                       "next to the importing file and on the search path")))
            return None
        stat = path.stat()
        text, result = _parse_file(str(path), stat.st_mtime_ns, stat.st_size)
        self.sources[str(path)] = text
        for d in result.diagnostics:
            self.report(d)
        if result.module is None:
            return None
        self._loading.append(name)
        try:
            module = self.load(result.module, name, str(path))
        finally:
            self._loading.pop()
        return module

    # ------------------------------------------------------------------ building scopes

    def load(self, ast: A.Module, name: tuple[str, ...], path: str) -> LoadedModule:
        module = LoadedModule(name, path, ast)
        self.modules[name] = module
        if name == PRELUDE:
            base = Scope()
        else:
            prelude = self.prelude()
            base = Scope(MappingProxyType(dict(prelude.exports))) if prelude else Scope()
        importer = Path(path).parent if not path.startswith("<") else None
        namespace = Namespace()
        names = namespace.names  # read-only here: `define` adds
        spans: dict[str, A.Node] = {}
        packages: dict[tuple[str, ...], LoadedModule] = {}

        def define(n: str, binding: Binding, node: A.Node, export: bool = True) -> None:
            if n in names:
                first = spans[n]
                self.report(error("E0204", f"`{n}` is defined twice", node.span,
                                  "rename one of them",
                                  [Note("first defined here", first.span)]))
                return
            namespace.define(n, binding)
            spans[n] = node
            if export:
                module.exports[n] = binding

        ev = Evaluator(self.report, base)
        for item in ast.items:
            match item:
                case A.Import(module=mod, alias=alias):
                    target = self.import_module(mod, item, importer)
                    if target is None:
                        continue
                    if alias:
                        define(alias, ModuleBinding(target), item, export=False)
                    else:
                        packages[mod] = target
                        if len(mod) == 1:
                            define(mod[0], ModuleBinding(target), item, export=False)
                        elif mod[0] not in names:
                            define(mod[0], PackageBinding((mod[0],), packages), item,
                                   export=False)
                case A.FromImport(module=mod, names=imported):
                    target = self.import_module(mod, item, importer)
                    if target is None:
                        continue
                    for imp in imported:
                        b = target.exports.get(imp.name)
                        if b is None:
                            self.report(error("E0202", f"`{'.'.join(mod)}` has no `{imp.name}`",
                                              imp.span, did_you_mean(imp.name, target.exports)))
                            continue
                        define(imp.alias or imp.name, b, imp, export=False)
                case A.Const(name=n, type=tref, value=expr):
                    ev = ev.with_scope(base.child(namespace.defined()))
                    expected = self.type_of(tref) if tref is not None else None
                    if tref is not None and expected is None:
                        continue
                    v = ev.value(expr, expected)
                    if v is not None:
                        define(n, ValueBinding(v.type, v.value, item.span), item)
                case A.FunctionDecl(name=n):
                    define(n, FunctionBinding(f"{module.dotted}.{n}", item, module), item)
                case A.HeaderDecl(name=n, fields=fields):
                    if name != PRELUDE:
                        prelude = self.prelude()
                        self.report(_unparsed_header(item, [
                            h for h, b in (prelude.exports.items() if prelude else ())
                            if isinstance(b, HeaderBinding)]))
                    ev = ev.with_scope(base.child(namespace.defined()))
                    hfs = {}
                    for fd in fields:
                        hf = _field_of(fd, ev, self.report)
                        if hf is not None:
                            if fd.name in hfs:
                                self.report(error("E0204", f"field `{fd.name}` is defined twice",
                                                  fd.span))
                            hfs[fd.name] = hf
                    define(n, HeaderBinding(Header(n, MappingProxyType(hfs), item.span)), item)
                case A.TopologyDecl(name=n):
                    define(n, TopologyBinding(item, module), item)
                case A.ServiceDecl():
                    pass  # services are checked by the caller, in the module's scope
        module.scope = base.child(namespace.defined())
        self._warn_unused_imports(ast, names)
        return module

    def _warn_unused_imports(self, ast: A.Module, names: dict[str, Binding]) -> None:
        if ast.path.startswith(str(self.stdlib)):
            return
        used = ast.names_used if ast.names_used is not None else _used_names(ast)
        for item in ast.items:
            if isinstance(item, A.Import):
                bound = item.alias or item.module[0]
                if bound not in used:
                    self.report(warning("W0201", f"`import {'.'.join(item.module)}` is unused",
                                        item.span, "remove it"))
            elif isinstance(item, A.FromImport):
                for imp in item.names:
                    if (imp.alias or imp.name) not in used:
                        self.report(warning("W0201", f"`{imp.name}` is imported but unused",
                                            imp.span, "remove it"))

    def type_of(self, ref: A.TypeRef) -> T.Type | None:
        if ref.name in T.GENERICS:
            if len(ref.args) != 1:
                self.report(error("E0303", f"{ref.name} takes one element type, e.g. "
                                  f"{ref.name}<prefix>", ref.span))
                return None
            inner = self.type_of(ref.args[0])
            return None if inner is None else T.Type(ref.name, (inner,))
        t = T.SCALARS.get(ref.name)
        if t is None or ref.args:
            self.report(error("E0303", f"unknown type `{ref.name}`", ref.span,
                              did_you_mean(ref.name, [*T.SCALARS, *T.GENERICS])))
            return None
        return t


def _used_names(ast: A.Module) -> set[str]:
    """Every identifier used as a reference (first component of dotted names)."""
    used: set[str] = set()

    def walk(x) -> None:
        if isinstance(x, A.Name):
            used.add(x.id)
        elif isinstance(x, A.Invocation):
            used.add(x.func[0])
        if isinstance(x, A.Node):
            for slot in type(x).__slots__:
                walk(getattr(x, slot, None))
        elif isinstance(x, tuple):
            for i in x:
                walk(i)

    for item in ast.items:
        if not isinstance(item, (A.Import, A.FromImport)):
            walk(item)
    return used
