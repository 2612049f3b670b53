"""``mosaico place FILE``: check, place optimally, print the placement, write its JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..cli import _SEARCH, _emit, _guard
from ..diagnostics import CompileError, warning

__all__ = ["place_cmd"]


@click.command("place")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write placement.json here (`-` for stdout): the document "
                   "`mosaico compile` writes.")
@click.option("--search-limit", type=click.FloatRange(min=0.1), default=None,
              help="CP-SAT deterministic time per solve (default 60); the result does "
                   "not depend on the machine's speed.")
@click.option("--quiet", "-q", is_flag=True, help="Do not print the table.")
@click.option("--force", is_flag=True,
              help="Overwrite -o's file even if it is not a placement mosaico wrote.")
@_SEARCH
@_guard
def place_cmd(file: str, output: str | None, search_limit: float | None, quiet: bool,
              force: bool, search: tuple[str, ...]) -> None:
    """Place every function on a P4 switch or VNF host, optimally, and explain failures."""
    from rich.console import Console

    from .._atomic import check_file, write_file
    from ..compiler import _check
    from . import Options, PlacementError, place
    from .report import placement_document, primary_optimal, render

    if output and output != "-":
        check_file(output, _placement_json, force)  # refuse before placing, not after
    program, diagnostics, _, sources = _check(Path(file), [Path(s) for s in search])
    options = Options() if search_limit is None else Options(deterministic_time=search_limit)
    try:
        placement = place(program, options=options)
    except PlacementError as e:
        raise CompileError([*diagnostics, *e.diagnostics], sources) from None
    if not primary_optimal(placement) and program.services:
        groups = placement.search.groups if placement.search else 1
        why = "the search limit ran out" if groups == 1 else \
            f"it was solved in {groups} groups (docs/placement.md, \"Large programs\")"
        diagnostics = (*diagnostics, warning(
            "W0801", f"the placement is valid but not proven optimal: {why}", program.span,
            "raise `--search-limit`" + ("; the gap of each level is in placement.json's "
                                        "`search`" if groups > 1 else "")))
    _emit(diagnostics, sources)
    if not quiet:
        Console(file=sys.stdout if output != "-" else sys.stderr, soft_wrap=True).print(
            render(program, placement))
    if output == "-":
        sys.stdout.buffer.write(placement_document(placement))
    elif output:
        write_file(Path(output), placement_document(placement), ours=_placement_json,
                   force=force)
        click.echo(f"wrote {output}", err=True)


_PLACEMENT_KEYS = {"assignments", "objective", "routes", "search"}


def _placement_json(data: bytes) -> bool:
    """Whether a file is a placement document (what ``-o`` may overwrite)."""
    try:
        doc = json.loads(data)
    except ValueError:
        return False
    return isinstance(doc, dict) and set(doc) == _PLACEMENT_KEYS
