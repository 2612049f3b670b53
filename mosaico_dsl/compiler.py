"""The pipeline driver: source (text, file or API program) → checked IR → artifacts.

Each stage is a pass with one input and one output type; this module only sequences them
and collects their diagnostics. Backends are functions ``(Compilation) -> {path: bytes}``
listed in :data:`BACKENDS`, so adding a target does not touch the driver.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._atomic import manifest, write_tree
from .check import check_module
from .diagnostics import CompileError, Diagnostic, has_errors
from .ir import Program as IRProgram
from .ir import program_to_json
from .lang import _ast as A
from .lang.parser import parse
from .place import Placement, PlacementError, place

__all__ = ["Source", "Compilation", "CompileResult", "load", "check", "compile", "BACKENDS"]

Source = Any  # str (text), Path (file), A.Module, or api.Program


@dataclass(frozen=True)
class _Loaded:
    module: A.Module
    sources: dict[str, str]
    text: str | None


def read_source(path: Path) -> str:
    """The text of a source file; a file that cannot be read or is not UTF-8 is the user's
    error (E0101, exit 1) with the same words whichever command read it, and one too large
    to check in the memory available is refused before it is read (E0108)."""
    from .diagnostics import error

    try:
        _refuse_if_too_large(path.stat().st_size, str(path))
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CompileError([error(
            "E0101", f"{path} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset "
            f"{e.start})", hint="save it as UTF-8")]) from None
    except OSError as e:
        raise CompileError([error("E0101", f"cannot read {path}: {e.strerror or e}")]) from None


def _refuse_if_too_large(size: int, name: str) -> None:
    from .limits import estimate_check, format_bytes, memory_limit, over_memory

    too_large = over_memory("E0108", f"checking {name} ({format_bytes(size)})",
                            estimate_check(size), memory_limit(),
                            hint="split the program into smaller ones")
    if too_large is not None:
        raise CompileError([too_large])


def load(source: Source, *, file: str | None = None) -> _Loaded:
    """Parse ``source`` into a module; raises :class:`CompileError` on syntax errors."""
    from .api import Program as ApiProgram

    if isinstance(source, ApiProgram):
        return _Loaded(source.ast, {}, None)
    if isinstance(source, A.Module):
        return _Loaded(source, {}, None)
    if isinstance(source, Path):
        text, file = read_source(source), str(source)
    elif isinstance(source, str):
        text, file = source, file or "<input>"
        _refuse_if_too_large(len(text), file)
    else:
        raise TypeError(f"cannot compile a {type(source).__name__}")
    result = parse(text, file)
    sources = {file: text}
    if result.module is None:
        raise CompileError(result.diagnostics, sources)
    return _Loaded(result.module, sources, text)


def check(source: Source, *, search_paths: Sequence[Path] = ()) -> IRProgram:
    """Check a program and return its IR; raises :class:`CompileError` with all errors."""
    return _check(source, search_paths)[0]


def _check(source: Source, search_paths: Sequence[Path], file: str | None = None
           ) -> tuple[IRProgram, tuple[Diagnostic, ...], _Loaded, dict[str, str]]:
    loaded = load(source, file=file)
    paths = list(search_paths)
    if loaded.module.path and not loaded.module.path.startswith("<"):
        paths.insert(0, Path(loaded.module.path).parent)
    result = check_module(loaded.module, search_paths=paths, sources=loaded.sources)
    if result.program is None or has_errors(result.diagnostics):
        raise CompileError(result.diagnostics, result.sources)
    return result.program, result.diagnostics, loaded, result.sources


@dataclass(frozen=True)
class Compilation:
    """What backends read: the IR and where each function runs."""

    program: IRProgram
    placement: Placement
    source_path: str
    source_text: str | None
    options: Mapping[str, Any] = field(default_factory=dict)


Backend = Callable[[Compilation], Mapping[str, bytes]]


def _ir_backend(c: Compilation) -> Mapping[str, bytes]:
    return {"ir.json": program_to_json(c.program).encode()}


def _placement_backend(c: Compilation) -> Mapping[str, bytes]:
    from .place.report import placement_document  # the document `mosaico place` writes

    return {"placement.json": placement_document(c.placement)}


def _p4_backend(c: Compilation) -> Mapping[str, bytes]:
    from .backends.p4 import generate

    out = generate(c)
    if c.options.get("p4c"):  # `mosaico compile --p4c`: p4c's BMv2 JSON joins the build
        from .backends.p4.p4c import bmv2_json

        out = {**out, **bmv2_json(out)}
    return out


def _vnf_backend(c: Compilation) -> Mapping[str, bytes]:
    from .backends.vnf import generate

    return generate(c)


# Artifact kinds in the order they are generated; `mosaico compile --emit KIND` selects.
BACKENDS: dict[str, Backend] = {
    "ir": _ir_backend,
    "placement": _placement_backend,
    "p4": _p4_backend,
    "vnf": _vnf_backend,
}


@dataclass(frozen=True)
class CompileResult:
    program: IRProgram
    placement: Placement
    diagnostics: tuple[Diagnostic, ...]
    artifacts: Mapping[str, bytes]
    sources: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"<CompileResult: {len(self.artifacts)} artifacts, "
                f"{len(self.warnings)} warnings; {self.placement!r}>")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if not d.is_error)

    def write(self, out_dir: str | Path, *, force: bool = False) -> Path:
        """Write every artifact to ``out_dir`` atomically. An existing directory is
        replaced only if it is empty or an unchanged mosaico build (or if ``force``);
        otherwise :class:`CompileError` E1301 says which files are in the way."""
        out = Path(out_dir)
        modes = {p: 0o755 for p in self.artifacts if p.endswith(".sh")}
        write_tree(out, self.artifacts, modes, force=force)
        return out


def _manifest(c: Compilation, artifacts: Mapping[str, bytes], emit: Sequence[str]) -> bytes:
    from .backends.p4.bmv2 import derived_files

    return manifest(
        "build", artifacts, derived_files(artifacts),
        source={
            "path": Path(c.source_path).name,
            "sha256": hashlib.sha256(c.source_text.encode()).hexdigest()
            if c.source_text is not None else None,
        },
        emit=list(emit),
        services=[s.name for s in c.program.services],
    )


def _nothing_to_compile(program: IRProgram, module: A.Module) -> list[Diagnostic]:
    """E0711 for a program no backend can realise: it needs a topology with nodes (checking
    a library of constants is fine; compiling one produces nothing to deploy)."""
    from .diagnostics import Span, error

    if not program.topologies:
        span = module.span or (Span(module.path, 1, 1) if module.path else None)
        return [error("E0711", "nothing to compile: the program declares no topology", span,
                      "declare `topology NAME { ... }` with the switches, hosts and endpoints "
                      "the services run on")]
    return [error("E0711", f"nothing to compile: topology `{t.name}` has no nodes", t.span,
                  "declare its switches, hosts and endpoints, or remove it")
            for t in program.topologies if not t.nodes]


def compile(source: Source, *, emit: Sequence[str] | None = None,
            search_paths: Sequence[Path] = (), options: Mapping[str, Any] | None = None
            ) -> CompileResult:
    """Check and generate every artifact; raises :class:`CompileError` on any error."""
    program, diagnostics, loaded, sources = _check(source, search_paths)
    empty = _nothing_to_compile(program, loaded.module)
    if empty:
        raise CompileError([*diagnostics, *empty], sources)
    emit = list(emit) if emit is not None else list(BACKENDS)
    unknown = [e for e in emit if e not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown --emit {', '.join(unknown)}; choose from "
                         f"{', '.join(BACKENDS)}")
    try:
        placement = place(program)
    except PlacementError as e:
        raise CompileError(e.diagnostics, sources) from None
    c = Compilation(program, placement, loaded.module.path, loaded.text, dict(options or {}))
    artifacts: dict[str, bytes] = {}
    for name in emit:
        produced = BACKENDS[name](c)
        diagnostics = (*diagnostics, *getattr(produced, "warnings", ()))
        clash = set(produced) & set(artifacts)
        if clash:  # pragma: no cover - backends write disjoint paths by construction
            raise RuntimeError(f"backend {name} overwrites {sorted(clash)}")
        artifacts.update(produced)
    artifacts["manifest.json"] = _manifest(c, artifacts, emit)
    return CompileResult(program, placement, diagnostics, dict(sorted(artifacts.items())),
                         sources)
