"""The ``mosaico`` command line.

Exit codes: 0 success, 1 the program has errors (diagnostics printed), 2 usage errors
(click's convention), 3 an internal error (a bug in mosaico — never a user mistake).
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path

import click

from ._version import __version__
from .diagnostics import CompileError, Diagnostic, render_json, render_text

__all__ = ["main", "cli"]

EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 1, 2, 3


def _emit(diagnostics: Sequence[Diagnostic], sources, fmt: str = "text") -> None:
    """Text diagnostics go to stderr; ``--format json`` prints them to stdout as one JSON
    document (an array, ``[]`` when there are none): what a program reading stdout parses."""
    if fmt == "json":
        click.echo(render_json(diagnostics))
        return
    if not diagnostics:
        return
    click.echo(render_text(diagnostics, sources), err=True)
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    parts = [f"{n} {w}{'s' if n != 1 else ''}" for n, w in
             ((errors, "error"), (warnings, "warning")) if n]
    click.echo(f"\n{', '.join(parts)}", err=True)


def _guard(fn: Callable) -> Callable:
    """Turn CompileError into diagnostics + exit 1, and bugs into a short report + exit 3."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CompileError as e:
            _emit(e.diagnostics, e.sources, kwargs.get("fmt", "text"))
            # an interrupted deploy exits as the signal would have: 128 + its number
            sys.exit(getattr(e, "exit_code", EXIT_ERRORS))
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as e:
            debug = click.get_current_context().find_root().params.get("debug")
            if debug:
                traceback.print_exc()
            click.echo(f"internal error: {type(e).__name__}: {e}\n"
                       "This is a bug in mosaico, not in your program; rerun with "
                       "`mosaico --debug ...` and report the traceback.", err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper


_FILES = click.argument("files", nargs=-1, required=True,
                        type=click.Path(exists=True, dir_okay=False, allow_dash=True))
_FORCE = click.option("--force", is_flag=True,
                       help="Replace the output directory even if it holds files mosaico "
                            "did not write (they are deleted).")
_SEARCH = click.option("-I", "search", multiple=True, type=click.Path(file_okay=False),
                       help="Extra directory to search for imported modules.")


class _LazyGroup(click.Group):
    """Subcommands of other subsystems load on first use, keeping `mosaico check` fast."""

    lazy: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, _, attr = self.lazy[name].partition(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


def _memory_limit(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    from .limits import ENV, memory_limit

    try:
        memory_limit(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give a size such as 8GiB, or off") from None
    os.environ[ENV] = value  # the limits every stage of this process checks against


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mosaico")
@click.option("--debug", is_flag=True, help="Show Python tracebacks of internal errors.")
@click.option("--memory-limit", metavar="SIZE|off", expose_value=False, is_eager=True,
              callback=_memory_limit,
              help="Memory a command may plan to use (default: what is available); stages "
                   "that would need more refuse before starting. `off`: no check.")
def cli(debug: bool) -> None:
    """mosaico — secure, low-latency service chains for P4 switches and VNFs."""


def _read(path: str) -> tuple[str, str]:
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    from .compiler import read_source

    return read_source(Path(path)), path


@cli.command()
@_FILES
@_SEARCH
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="Diagnostics as text on stderr (default), or as one JSON array on stdout.")
@_guard
def check(files: tuple[str, ...], search: tuple[str, ...], fmt: str) -> None:
    """Check programs: syntax, names, types, units, chains and requirements."""
    from .compiler import _check

    failed = False
    every: list[Diagnostic] = []  # --format json: one document for all the files
    for path in files:
        try:
            text, name = _read(path)
            _, diagnostics, _, sources = _check(text, [Path(s) for s in search], file=name)
        except CompileError as e:
            diagnostics, sources, failed = e.diagnostics, e.sources, True
            name = None
        if fmt == "json":
            every.extend(diagnostics)
            continue
        _emit(diagnostics, sources)
        if name is not None:
            click.echo(f"{name}: ok", err=True)
    if fmt == "json":
        _emit(every, {}, fmt)
    if failed:
        sys.exit(EXIT_ERRORS)


@cli.command()
@_FILES
@click.option("--check", "check_only", is_flag=True,
              help="Do not write; exit 1 if a file is not formatted.")
@click.option("--diff", is_flag=True, help="Print a unified diff instead of writing.")
@_guard
def fmt(files: tuple[str, ...], check_only: bool, diff: bool) -> None:
    """Format programs canonically (in place; `-` formats stdin to stdout)."""
    from .lang.parser import parse
    from .lang.printer import format_module

    failed = would_change = False
    for path in files:
        try:
            text, name = _read(path)
        except CompileError as e:
            _emit(e.diagnostics, e.sources)
            failed = True
            continue
        result = parse(text, name)
        if result.module is None:
            _emit(result.diagnostics, {name: text})
            failed = True
            continue
        out = format_module(result.module)
        if path == "-" and not (check_only or diff):
            click.echo(out, nl=False)
        elif out != text:
            would_change = True
            if diff:
                click.echo("".join(difflib.unified_diff(
                    text.splitlines(True), out.splitlines(True), name,
                    f"{name} (formatted)")), nl=False)
            elif check_only:
                click.echo(f"would reformat {name}", err=True)
            else:
                try:
                    Path(path).write_text(out, encoding="utf-8")
                except OSError as e:
                    raise click.FileError(path, e.strerror or str(e)) from None
                click.echo(f"reformatted {name}", err=True)
    if failed or (would_change and (check_only or diff)):
        sys.exit(EXIT_ERRORS)


@cli.command("compile")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Output directory (replaced atomically if it is empty or a previous "
                   "mosaico build).")
@click.option("--emit", multiple=True, help="Only these artifact kinds (repeatable).")
@click.option("--p4c", is_flag=True,
              help="Also run p4c-bm2-ss on each switch's program: its BMv2 JSON joins the "
                   "build (and its manifest), as deploying to BMv2 needs.")
@_FORCE
@_SEARCH
@_guard
def compile_cmd(file: str, output: str, emit: tuple[str, ...], force: bool,
                search: tuple[str, ...], p4c: bool = False) -> None:
    """Check, place and generate every artifact into a directory."""
    from ._atomic import check_target
    from .compiler import BACKENDS, compile

    unknown = [e for e in emit if e not in BACKENDS]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}; choose from {', '.join(BACKENDS)}",
                                 param_hint="--emit")
    check_target(output, "build", force)  # refuse before the work, not after it
    result = compile(Path(file), emit=list(emit) or None, search_paths=[Path(s) for s in search],
                     options={"p4c": True} if p4c else None)
    _emit(result.warnings, result.sources)
    out = result.write(output, force=force)
    click.echo(f"wrote {len(result.artifacts)} files to {out}/", err=True)


# Commands living with their subsystem: name → "module:click_command".
_LazyGroup.lazy = {
    "deploy": "mosaico_dsl.runtime.cli:deploy_cmd",
    "plan": "mosaico_dsl.runtime.cli:plan_cmd",
    "status": "mosaico_dsl.runtime.cli:status_cmd",
    "destroy": "mosaico_dsl.runtime.cli:destroy_cmd",
    "target": "mosaico_dsl.runtime.cli:target_group",
    "sim": "mosaico_dsl.sim.cli:sim",
    "experiment": "mosaico_dsl.experiment.cli:experiment_cmd",
    "place": "mosaico_dsl.place.cli:place_cmd",
}


def main(argv: Sequence[str] | None = None) -> None:
    # gRPC's C core logs to stderr in glog's format, "E1202 16:43:01.27 ... ]" for an error
    # on 2 December, which reads like mosaico's E1202. mosaico reports what went wrong
    # itself (with the cause of a failed TLS handshake), so the core stays quiet unless
    # the user asks for its logs.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    cli.main(args=list(argv) if argv is not None else None, prog_name="mosaico")


if __name__ == "__main__":  # pragma: no cover
    main()
