"""The IPython / Jupyter extension: ``%load_ext mosaico_dsl``.

It registers

* ``%%mosaico NAME`` — the cell is ``.mosaico`` source; it is parsed and checked, and the
  program is bound to ``NAME`` as a :class:`SourceProgram` (a :class:`mosaico_dsl.Program`,
  so ``mo.compile(NAME)``, ``simulate(NAME)`` and the magics below all take it);
* ``%mosaico check|place|compile|sim|deploy ...`` — the pipeline's steps on a program named
  by a variable (or a ``.mosaico`` file), long ones with a progress bar;
* a handler that shows :class:`~mosaico_dsl.CompileError` (and placement errors) as the
  diagnostics they carry — source line and caret, HTML in notebooks, text in a terminal —
  never as a traceback, with line numbers counted in the cell (``In[3]:5:12``);
* displays for IR programs and topologies, compile results and simulation results
  (:mod:`mosaico_dsl.display`).

The functions :func:`place`, :func:`compile`, :func:`simulate` and :func:`deploy` are what
the magics run — the pipeline with progress shown — for use from Python cells.
"""

from __future__ import annotations

import argparse
import asyncio
import linecache
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display

from . import api
from .diagnostics import (
    CompileError,
    Diagnostic,
    Note,
    Span,
    render_html,
    render_text,
)
from .display import PlacementTable, PlacementView, SimView
from .display import progress as _progress
from .display.program import summary
from .ir import _ir as I
from .lang import _ast as A
from .lang.parser import parse

__all__ = ["load_ipython_extension", "unload_ipython_extension", "MosaicoMagics",
           "SourceProgram", "CheckReport", "check", "place", "compile", "simulate", "deploy",
           "show_diagnostics"]


# ----------------------------------------------------------------------------- programs


def _register_source(file: str, text: str) -> None:
    """Make ``text`` the source of ``file`` for diagnostics rendered later (no mtime: the
    entry survives ``linecache.checkcache``, as IPython's own cells do)."""
    linecache.cache[file] = (len(text), None, text.splitlines(True), file)


class SourceProgram(api.Program):
    """A program written as ``.mosaico`` text — what ``%%mosaico NAME`` binds.

    It is a :class:`mosaico_dsl.Program` whose module comes from the parser instead of
    Python objects, so every API that takes a program takes it. ``first_line`` is the
    line number of the text's first line (a cell's body starts on line 2, below the
    ``%%mosaico`` line), so diagnostics count lines as the cell shows them.
    """

    def __init__(self, text: str, *, file: str = "<input>", first_line: int = 1,
                 name: str | None = None) -> None:
        padded = "\n" * (first_line - 1) + text
        # Diagnostics of later passes (compile, simulate) find the text here by file name.
        _register_source(file, padded)
        result = parse(padded, file)
        if result.module is None:
            raise CompileError(result.diagnostics, {file: padded})
        self.text, self.file, self.name = text, file, name or file
        self.module: A.Module = result.module
        self.items = []  # the API's items: none, the module is the program
        self.span = Span(file, first_line, 1)

    @property
    def ast(self) -> A.Module:
        return self.module

    def to_source(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<Program {self.name} ({self.file}): .mosaico source>"

    def _repr_pretty_(self, p, cycle: bool) -> None:
        from .display import program_view

        program_view(self)._repr_pretty_(p, cycle)


def _as_program(source: Any) -> Any:
    """Names a user passes: a path string becomes a Path (compile() reads it)."""
    if isinstance(source, str) and "\n" not in source and source.endswith(".mosaico"):
        return Path(source)
    return source


def _checked(source: Any) -> I.Program:
    from .compiler import CompileResult, check

    if isinstance(source, CompileResult):
        return source.program
    return source if isinstance(source, I.Program) else check(_as_program(source))


class CheckReport:
    """The outcome of ``%mosaico check``: the IR (``.program``) and any warnings."""

    def __init__(self, name: str, program: I.Program, warnings: Sequence[Diagnostic],
                 sources: Mapping[str, str]) -> None:
        self.name, self.program = name, program
        self.warnings, self.sources = tuple(warnings), dict(sources)

    def _headline(self) -> str:
        w = len(self.warnings)
        tail = f", {w} warning{'s' if w != 1 else ''}" if w else ""
        return f"{self.name}: ok — {summary(self.program)}{tail}"

    def __repr__(self) -> str:
        return f"<CheckReport {self._headline()}>"

    def _repr_pretty_(self, p, cycle: bool) -> None:
        text = self._headline()
        if self.warnings:
            text += "\n" + render_text(self.warnings, self.sources)
        p.text(text)

    def _repr_html_(self) -> str:
        from .display._media import esc

        html = f'<div class="mosaico-check"><p>✓ <b>{esc(self._headline())}</b></p>'
        if self.warnings:
            html += render_html(self.warnings, self.sources)
        return html + "</div>"


# ----------------------------------------------------------------------------- pipeline


def check(source: Any, name: str = "program") -> CheckReport:
    """Check ``source`` (a program, text or a ``.mosaico`` path) and report warnings."""
    from .compiler import _check

    program, diagnostics, _, sources = _check(_as_program(source), ())
    return CheckReport(name, program, [d for d in diagnostics if not d.is_error], sources)


def place(source: Any, *, options: Any = None) -> PlacementView:
    """Place a program with a progress display; returns the view (``.placement``)."""
    from .place import PlacementError
    from .place import place as _place

    program = _checked(source)

    def work(_: _progress.Reporter):
        try:
            return _place(program, options=options)
        except PlacementError as e:
            raise CompileError(e.diagnostics) from None

    return PlacementView(program, _progress.run("placing", work))


def compile(source: Any, *, output: str | Path | None = None,
            emit: Sequence[str] | None = None, force: bool = False, **options: Any):
    """Compile (check, place, generate) with a progress display; optionally write (an
    existing directory only if it is a previous build, or with ``force``)."""
    from ._atomic import check_target
    from .compiler import compile as _compile

    if output is not None:
        check_target(output, "build", force)
    result = _progress.run("compiling", lambda _: _compile(_as_program(source), emit=emit,
                                                          options=options or None))
    if output is not None:
        result.write(output, force=force)
    return result


def simulate(source: Any, **kwargs: Any):
    """:func:`mosaico_dsl.sim.simulate` with a progress bar (simulated seconds)."""
    from .sim import simulate as _simulate

    def work(r: _progress.Reporter):
        return _simulate(_as_program(source), progress=lambda done, total: r.update(
            done / 1e9, total / 1e9), **kwargs)

    return _progress.run("simulating", work, unit="s")


def deploy(build_dir: str | Path, *, targets: Sequence[str] = ("local",),
           addresses: Mapping[str, str] | None = None, state: str | Path | None = None,
           dry_run: bool = False):
    """Deploy a build directory to its targets (``local``, ``p4runtime``, ``openstack``,
    ``osm``) with progress; returns the runtime's plan (``dry_run``) or deploy result.

    For TLS and the other transport options use the ``mosaico deploy`` command.
    """
    from .runtime import (
        LocalTarget,
        OpenStackTarget,
        OsmTarget,
        P4RuntimeTarget,
        StateStore,
        load_build,
    )
    from .runtime.deployment import apply, begin, plan
    from .runtime.state import default_state_path

    address_map = dict(addresses or {})
    build = load_build(build_dir, address_map)
    kinds = {"local": lambda: LocalTarget(build),
             "p4runtime": lambda: P4RuntimeTarget(build, addresses=address_map),
             "openstack": lambda: OpenStackTarget(build),
             "osm": lambda: OsmTarget(build)}
    unknown = [t for t in targets if t not in kinds]
    if unknown:
        raise UsageError(f"unknown target {', '.join(unknown)}; choose from "
                         f"{', '.join(kinds)}")
    ts = [kinds[t]() for t in dict.fromkeys(targets)]

    def work(r: _progress.Reporter):
        with StateStore(Path(state) if state else default_state_path()) as store:
            if dry_run:
                store.lock()
            else:  # lock, check the store can be written, undo an interrupted run's steps
                asyncio.run(begin(ts, store, progress=r.message))
            r.message("planning")
            the_plan = asyncio.run(plan(ts, store))
            if dry_run:
                return the_plan
            return asyncio.run(apply(the_plan, ts, store, build=build, progress=r.message))

    # asyncio.run needs a thread without a running loop (a kernel's has one): run() uses
    # a worker thread.
    return _progress.run("deploying", work)


# ----------------------------------------------------------------------------- diagnostics


def _cell_files(shell: Any) -> Mapping[str, int]:
    """File names IPython compiled cells under, mapped to their execution count."""
    return getattr(getattr(shell, "compile", None), "_filename_map", {}) or {}


def _running_cell(shell: Any) -> int:
    """The number of the cell being run (``In[N]``): found from the cell's own frame, as
    IPython versions differ on when they advance ``execution_count``."""
    import sys

    cells = _cell_files(shell)
    frame = sys._getframe(1)
    while frame is not None:
        number = cells.get(frame.f_code.co_filename)
        if number is not None:
            return number
        frame = frame.f_back
    return shell.execution_count


def _relabel(diagnostics: Sequence[Diagnostic], sources: Mapping[str, str], shell: Any
             ) -> tuple[list[Diagnostic], dict[str, str]]:
    """Point spans in IPython cells at ``In[N]`` (as IPython's tracebacks do), keeping
    their source text so the excerpt and caret still show."""
    cells = _cell_files(shell)
    out_sources = dict(sources)

    def fix(span: Span | None) -> Span | None:
        if span is None or span.file not in cells:
            return span
        label = f"In[{cells[span.file]}]"
        if label not in out_sources:
            text = out_sources.get(span.file) or "".join(linecache.getlines(span.file))
            out_sources[label] = text
        return replace(span, file=label)

    out = [replace(d, span=fix(d.span),
                   notes=tuple(Note(n.message, fix(n.span)) for n in d.notes))
           for d in diagnostics]
    return out, out_sources


def show_diagnostics(diagnostics: Sequence[Diagnostic], sources: Mapping[str, str] | None = None,
                     shell: Any = None) -> None:
    """Display diagnostics: HTML in a notebook, text in a terminal (one display call)."""
    diagnostics, srcs = _relabel(diagnostics, sources or {}, shell)
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    count = ", ".join(f"{n} {w}{'s' if n != 1 else ''}" for n, w in
                      ((errors, "error"), (warnings, "warning")) if n)
    text = render_text(diagnostics, srcs) + (f"\n\n{count}" if count else "")
    html = render_html(diagnostics, srcs) + (f"<p><b>{count}</b></p>" if count else "")
    display({"text/plain": text, "text/html": html}, raw=True)


def _diagnostics_of(error: BaseException) -> tuple[Sequence[Diagnostic], Mapping[str, str]]:
    return tuple(getattr(error, "diagnostics", ())), dict(getattr(error, "sources", {}) or {})


def _handled() -> tuple[type[BaseException], ...]:
    from .place import PlacementError

    return (CompileError, PlacementError)


# ----------------------------------------------------------------------------- magics


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as IPython usage errors instead of exiting."""

    def error(self, message: str):
        raise UsageError(f"%mosaico: {message}\n{self.format_usage()}")

    def exit(self, status: int = 0, message: str | None = None):
        raise _HelpShown(message or "")


class _HelpShown(Exception):
    pass


def _parser() -> _Parser:
    p = _Parser(prog="%mosaico", add_help=True,
                description="mosaico's pipeline on a program: a variable holding a "
                            "program (from %%mosaico NAME or the Python API) or a "
                            ".mosaico file.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    c = sub.add_parser("check", help="check names, types, units, chains and requirements")
    c.add_argument("source")
    c = sub.add_parser("place", help="place every function; show where and the latency "
                                     "budget per service")
    c.add_argument("source")
    c.add_argument("--search-limit", type=float, default=None, metavar="SECONDS",
                   help="CP-SAT deterministic time per objective level")
    c.add_argument("--workers", type=int, default=None)
    c = sub.add_parser("compile", help="check, place and generate every artifact")
    c.add_argument("source")
    c.add_argument("-o", "--output", default=None, help="write the artifacts to this "
                                                        "directory (replaced atomically)")
    c.add_argument("--force", action="store_true", help="replace the output directory even "
                                                        "if it holds files mosaico did not write")
    c.add_argument("--emit", action="append", default=None, help="only this artifact kind "
                                                                 "(repeatable)")
    c = sub.add_parser("sim", help="simulate the placed chain; show the CDF and throughput")
    c.add_argument("source")
    c.add_argument("--duration", default="10s")
    c.add_argument("--traffic", default=None)
    c.add_argument("--seed", type=int, default=None)
    c.add_argument("--bin", default=None)
    c.add_argument("-o", "--output", default=None, help="also write metrics, traces and "
                                                        "plots to this directory")
    c.add_argument("--force", action="store_true", help="replace the output directory even "
                                                        "if it holds files mosaico did not write")
    c = sub.add_parser("deploy", help="deploy a build directory (see `mosaico deploy`)")
    c.add_argument("build_dir")
    c.add_argument("-t", "--target", action="append", default=None,
                   choices=("local", "p4runtime", "openstack", "osm"))
    c.add_argument("--address", action="append", default=[], metavar="SWITCH=HOST:PORT")
    c.add_argument("--state", default=None)
    c.add_argument("--dry-run", action="store_true")
    return p


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@magics_class
class MosaicoMagics(Magics):
    """``%%mosaico NAME`` and ``%mosaico check|place|compile|sim|deploy``."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._previous_exc: tuple[tuple, Any] | None = None
        self._formatters: list[tuple[Any, tuple[str, str]]] = []

    @line_cell_magic
    def mosaico(self, line: str, cell: str | None = None) -> Any:
        """Write, check, place, compile, simulate and deploy mosaico programs.

        Cell magic — the cell is a ``.mosaico`` program, checked and bound to NAME::

            %%mosaico NAME [--quiet]

        Line magic — SOURCE is a variable holding a program or a ``.mosaico`` path::

            %mosaico check SOURCE
            %mosaico place SOURCE [--search-limit SECONDS] [--workers N]
            %mosaico compile SOURCE [-o DIR] [--emit KIND ...]
            %mosaico sim SOURCE [--duration 10s] [--traffic SPEC] [--seed N] [-o DIR]
            %mosaico deploy BUILD_DIR [-t local|p4runtime|openstack|osm] [--address S=H:P]
                            [--state PATH] [--dry-run]

        Errors in the program are shown as diagnostics (line, caret, hint), not tracebacks.
        """
        if cell is not None:
            return self._cell(line, cell)
        try:
            args = _parser().parse_args(shlex.split(line))
        except _HelpShown:
            print(_parser().format_help())
            return None
        return getattr(self, f"_{args.command}")(args)

    # -- the cell magic

    def _cell(self, line: str, cell: str) -> SourceProgram | None:
        words = shlex.split(line)
        quiet = any(w in ("-q", "--quiet") for w in words)
        names = [w for w in words if w not in ("-q", "--quiet")]
        if len(names) != 1 or not _IDENT.fullmatch(names[0]):
            raise UsageError("usage: %%mosaico NAME [--quiet] — NAME is the Python "
                             "variable the program is bound to")
        name = names[0]
        label = f"In[{_running_cell(self.shell)}]"
        program = SourceProgram(cell, file=label, first_line=2, name=name)
        report = check(program, name)
        self.shell.user_ns[name] = program
        if report.warnings:
            show_diagnostics(report.warnings, report.sources, self.shell)
        return None if quiet else program

    # -- the line magics

    def _source(self, expr: str) -> tuple[Any, str]:
        from .compiler import CompileResult

        path = Path(expr).expanduser()
        if expr.endswith(".mosaico") and path.is_file():
            return path, expr
        try:
            value = self.shell.ev(expr)
        except Exception as e:  # NameError, SyntaxError (a path), AttributeError, ...
            if path.is_dir():
                problem = f"`{expr}` is a directory, not a .mosaico file"
            elif path.is_file():
                problem = f"`{expr}` is not a .mosaico file"
            elif isinstance(e, NameError) or expr.endswith(".mosaico") or "/" in expr:
                problem = f"no variable `{expr}` (and no file {expr!r})"
            else:
                problem = f"cannot evaluate `{expr}` ({type(e).__name__}: {e})"
            raise UsageError(f"%mosaico: {problem}; define a program with %%mosaico NAME "
                             "or the Python API") from None
        if not isinstance(value, (api.Program, I.Program, A.Module, CompileResult, str, Path)):
            raise UsageError(f"%mosaico: `{expr}` is of type {type(value).__name__}, not a "
                             "program; pass a variable bound by %%mosaico NAME, a "
                             "mosaico_dsl.Program or a .mosaico file")
        return value, expr

    def _check(self, args: argparse.Namespace) -> CheckReport:
        source, name = self._source(args.source)
        return check(source, name)

    def _place(self, args: argparse.Namespace) -> PlacementView:
        from .place import Options

        source, _ = self._source(args.source)
        options = Options()
        if args.search_limit is not None:
            options = replace(options, deterministic_time=args.search_limit)
        if args.workers is not None:
            options = replace(options, workers=args.workers)
        return place(source, options=options)

    def _compile(self, args: argparse.Namespace):
        from .compiler import BACKENDS

        unknown = [e for e in args.emit or () if e not in BACKENDS]
        if unknown:
            raise UsageError(f"%mosaico compile: unknown --emit {', '.join(unknown)}; "
                             f"choose from {', '.join(BACKENDS)}")
        source, _ = self._source(args.source)
        result = compile(source, output=args.output, emit=args.emit, force=args.force)
        if result.warnings:
            show_diagnostics(result.warnings, result.sources, self.shell)
        if args.output:
            print(f"wrote {len(result.artifacts)} files to {args.output}/")
        return result

    def _sim(self, args: argparse.Namespace):
        source, name = self._source(args.source)
        kwargs = {k: getattr(args, k) for k in ("duration", "traffic", "seed", "bin")
                  if getattr(args, k) is not None}
        if args.output:
            from ._atomic import check_target

            check_target(args.output, "simulation", args.force)  # before, not after, the run
        result = simulate(source, **kwargs)
        if result.program.startswith("<"):  # "<api>": the variable's name says more
            result = replace(result, program=name)
        if result.warnings:
            show_diagnostics(result.warnings, {}, self.shell)
        if args.output:
            result.write(args.output, force=args.force)
            print(f"wrote {args.output}/")
        return result

    def _deploy(self, args: argparse.Namespace):
        from .runtime.build import parse_addresses

        result = deploy(args.build_dir, targets=args.target or ("local",),
                        addresses=parse_addresses(args.address), state=args.state,
                        dry_run=args.dry_run)
        from .runtime import Plan

        if isinstance(result, Plan):
            print(result.render())
            return result
        print(result.plan.render())
        print(f"Applied (deployment {result.deployment})." if result.changed else
              "Nothing to do: the targets already run this build.")
        return result

    # -- installing into a shell

    def _show_error(self, shell: Any, etype: type, value: BaseException, tb: Any,
                    tb_offset: int | None = None) -> list[str] | None:
        if isinstance(value, _handled()):
            diagnostics, sources = _diagnostics_of(value)
            show_diagnostics(diagnostics, sources, shell)
            return []
        # Someone else's exception type: hand it to the handler installed before ours.
        previous = self._previous_exc[1] if self._previous_exc else None
        if previous is not None:
            return previous(etype, value, tb, tb_offset=tb_offset)
        return shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)

    def install(self) -> None:
        shell = self.shell
        self._previous_exc = (tuple(shell.custom_exceptions), getattr(shell, "CustomTB", None))
        shell.set_custom_exc(tuple(dict.fromkeys((*shell.custom_exceptions, *_handled()))),
                             self._show_error)
        from . import display as views

        html = shell.display_formatter.formatters["text/html"]
        svg = shell.display_formatter.formatters["image/svg+xml"]
        plain = shell.display_formatter.formatters["text/plain"]
        # By name: registering must not import what the session has not used yet.
        kinds = {
            ("mosaico_dsl.ir._ir", "Program"): views.program_view,
            ("mosaico_dsl.ir._ir", "Topology"): views.topology_view,
            ("mosaico_dsl.compiler", "CompileResult"): views.CompileView,
            ("mosaico_dsl.sim.metrics", "SimResult"): SimView,
            ("mosaico_dsl.place.placement", "Placement"): PlacementTable,
        }
        for (module, name), make in kinds.items():
            html.for_type_by_name(module, name, lambda obj, make=make: make(obj)._repr_html_())
            plain.for_type_by_name(module, name, lambda obj, p, cycle, make=make:
                                   make(obj)._repr_pretty_(p, cycle))
            self._formatters += [(html, (module, name)), (plain, (module, name))]
        for module, name in (("mosaico_dsl.ir._ir", "Program"),
                             ("mosaico_dsl.ir._ir", "Topology")):
            make = kinds[(module, name)]
            svg.for_type_by_name(module, name,
                                 lambda obj, make=make: make(obj)._repr_svg_())
            self._formatters.append((svg, (module, name)))
        # API objects draw themselves in HTML and SVG; in a terminal, show their text form.
        for name, make in (("Program", views.program_view), ("Topology", views.topology_view)):
            plain.for_type_by_name("mosaico_dsl.api", name, lambda obj, p, cycle, make=make:
                                   make(obj)._repr_pretty_(p, cycle))
            self._formatters.append((plain, ("mosaico_dsl.api", name)))

    def uninstall(self) -> None:
        shell = self.shell
        if self._previous_exc is not None:
            exc, handler = self._previous_exc
            shell.custom_exceptions = exc
            if handler is not None:
                shell.CustomTB = handler
        for formatter, key in self._formatters:
            formatter.deferred_printers.pop(key, None)
            for typ in list(formatter.type_printers):
                if (typ.__module__, typ.__name__) == key:
                    formatter.type_printers.pop(typ)
        self._formatters.clear()


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext mosaico_dsl``: magics, diagnostics display, rich displays."""
    if "MosaicoMagics" in ipython.magics_manager.registry:
        return  # loaded already
    magics = MosaicoMagics(ipython)
    ipython.register_magics(magics)
    magics.install()


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext mosaico_dsl``: remove everything the extension added."""
    magics = ipython.magics_manager.registry.pop("MosaicoMagics", None)
    if magics is None:
        return
    magics.uninstall()
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("mosaico", None)
