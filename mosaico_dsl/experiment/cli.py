"""``mosaico experiment PROGRAM [--build DIR] [--traffic SPEC] [--duration 30s] -o DIR``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..cli import _FORCE, _SEARCH, _emit, _guard
from .run import DEFAULT_DURATION, DEFAULT_TRAFFIC

__all__ = ["experiment_cmd"]


@click.command("experiment")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Output directory (replaced atomically): metrics.json, traces/, plots/, "
                   "comparison.md, sim/.")
@click.option("--build", "build", type=click.Path(exists=True, file_okay=False), default=None,
              help="The build of FILE to deploy or find deployed (default: compile FILE).")
@click.option("--duration", default=DEFAULT_DURATION, show_default=True,
              help="How long the traffic runs, e.g. 30s.")
@click.option("--traffic", default=DEFAULT_TRAFFIC, show_default=True,
              help="Flows, as for `mosaico sim`: kind[:count][[opt=value,...]][@start[-stop]] "
                   "(docs/simulation.md).")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed of the open-loop sources and of the simulation.")
@click.option("--state", type=click.Path(dir_okay=False), default=None,
              help="State store (default $MOSAICO_STATE or .mosaico/state.db).")
@click.option("--local-prefix", "prefix", default=None,
              help="Namespace prefix of the local deployment (default: local.json's).")
@click.option("--keep", is_flag=True,
              help="Leave a deployment the experiment made running afterwards.")
@click.option("--traces/--no-traces", default=True, show_default=True,
              help="Write the per-packet CSV traces.")
@click.option("--plots/--no-plots", default=True, show_default=True, help="Render the plots.")
@_FORCE
@_SEARCH
@_guard
def experiment_cmd(file: str, output: str, build: str | None, duration: str, traffic: str,
                   seed: int, state: str | None, prefix: str | None, keep: bool, traces: bool,
                   plots: bool, force: bool, search: tuple[str, ...]) -> None:
    """Run a program's traffic with real packets on the local BMv2 testbed, measure it,
    and compare it with `mosaico sim` of the same program and traffic."""
    from rich.console import Console

    from .._atomic import check_target
    from ..display.progress import task
    from .report import summary
    from .run import experiment

    check_target(output, "experiment", force)  # refuse before the run, not after it
    with task("experiment", unit="s") as reporter:
        result = experiment(Path(file), build=build, traffic=traffic, duration=duration,
                            seed=seed, state=state, prefix=prefix, keep=keep,
                            progress=reporter, search_paths=[Path(s) for s in search])
    _emit(result.live.result.warnings, {})
    out = result.write(output, traces=traces, plots=plots, force=force)
    out_console = Console(file=sys.stdout)
    console = out_console if out_console.is_terminal else Console(file=sys.stdout, width=200)
    for table in summary(result):
        console.print(table)
    click.echo(f"wrote {out}/", err=True)
