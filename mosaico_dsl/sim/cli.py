"""``mosaico sim FILE [--duration 60s] [--traffic SPEC] [--seed N] -o DIR``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..cli import _FORCE, _SEARCH, _emit, _guard
from .run import DEFAULT_DURATION, DEFAULT_SEED, DEFAULT_TRAFFIC, MAX_PACKETS, simulate

__all__ = ["sim"]


@click.command("sim")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Output directory (replaced atomically if it is empty or a previous "
                   "mosaico simulation): metrics.json, traces/, plots/.")
@click.option("--duration", default=DEFAULT_DURATION, show_default=True,
              help="Simulated time, e.g. 60s or 500ms.")
@click.option("--traffic", default=DEFAULT_TRAFFIC, show_default=True,
              help="Flows: kind[:count][[opt=value,...]][@start[-stop]], comma-separated; "
                   "kinds prague, reno, cubic, cbr, onoff, flood, syn (docs/simulation.md).")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
              help="Random seed; the same seed gives the same results.")
@click.option("--traces/--no-traces", default=True, show_default=True,
              help="Write the per-packet CSV traces.")
@click.option("--plots/--no-plots", default=True, show_default=True,
              help="Render the PNG plots.")
@click.option("--max-packets", type=click.IntRange(min=1), default=MAX_PACKETS,
              show_default=True,
              help="Refuse a run whose flows could send more packets than this (E1108).")
@_FORCE
@_SEARCH
@_guard
def sim(file: str, output: str, duration: str, traffic: str, seed: int, traces: bool,
        plots: bool, max_packets: int, force: bool, search: tuple[str, ...]) -> None:
    """Simulate a program's placed chain and report per-class delay, marks, drops, throughput."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .._atomic import check_target
    from .report import summary_tables

    check_target(output, "simulation", force)  # refuse before simulating, not after

    err = Console(stderr=True)
    with Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.fields[at]}"),
                  TimeElapsedColumn(), console=err, transient=True,
                  disable=not err.is_terminal) as bar:
        task = bar.add_task("sim", total=1.0, at="")

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done / total,
                       at=f"{done / 1e9:.1f} of {total / 1e9:g} s simulated")

        result = simulate(Path(file), duration=duration, traffic=traffic, seed=seed,
                          progress=progress, search_paths=[Path(s) for s in search],
                          max_packets=max_packets)
    _emit(result.warnings, {})
    out = result.write(output, traces=traces, plots=plots, force=force)
    out_console = Console(file=sys.stdout)
    # In a terminal rich fits the tables to it; piped, nothing is cut.
    console = out_console if out_console.is_terminal else Console(file=sys.stdout, width=200)
    for table in summary_tables(result):
        console.print(table)
    click.echo(f"wrote {out}/ ({result.events} events simulated)", err=True)
