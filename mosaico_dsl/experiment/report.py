"""The output directory of ``mosaico experiment`` and its terminal summary.

=============================  ==============================================================
``metrics.json``               the live run in the simulator's schema, plus ``experiment``:
                               what only a live run has (base one-way delay, the switch's own
                               delay samples, capture losses, achieved sending rates)
``traces/``, ``plots/``        the simulator's traces and plots, of the live run
``traces/switch_<s>.csv``      every sample of the switch's counters and registers
``comparison.md``, ``.json``   simulated against measured, per class, with relative differences
``plots/comparison.png``       the overlaid CDFs
``sim/``                       the simulation of the same program and traffic (as ``mosaico sim``)
=============================  ==============================================================
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .._atomic import MANIFEST, manifest
from ..sim.plots import render, to_png
from ..sim.report import port_file_name, summary_tables, traces_csv
from .compare import overlay_figure
from .sampling import SwitchSamples

if TYPE_CHECKING:
    from .run import ExperimentResult

__all__ = ["artifacts", "switch_csv", "comparison_table"]


def _json(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def switch_csv(samples: SwitchSamples) -> bytes:
    """One row per sample: time, then each cell (counters: packets; registers: value)."""
    head = ["t_ns", *(f"{r.cell.name}[{r.cell.index}]" for r in samples.roles)]
    lines = [",".join(head)]
    lines += [",".join(str(int(x)) for x in (t, *row))
              for t, row in zip(samples.t_ns.tolist(), samples.values.tolist(), strict=True)]
    return ("\n".join(lines) + "\n").encode()


def artifacts(result: ExperimentResult, *, traces: bool = True, plots: bool = True
              ) -> dict[str, bytes]:
    live = result.live
    files: dict[str, bytes] = {
        "metrics.json": _json(live.to_json()),
        "comparison.json": _json(result.comparison.to_json()),
        "comparison.md": result.comparison.markdown().encode(),
    }
    if traces:
        files.update(traces_csv(live.result))
        for sw, samples in live.samples.items():
            files[f"traces/switch_{port_file_name(sw)}.csv"] = switch_csv(samples)
    if plots:
        files.update({f"plots/{k}": v for k, v in render(live.result).items()})
        files["plots/comparison.png"] = to_png(overlay_figure(result.sim, live,
                                                              result.comparison))
    files.update({f"sim/{k}": v for k, v in result.sim.artifacts(traces=traces,
                                                                 plots=plots).items()})
    files[MANIFEST] = manifest("experiment", files, program=result.sim.program)
    return dict(sorted(files.items()))


def comparison_table(result: ExperimentResult) -> Any:
    """The comparison as a rich Table."""
    from rich.table import Table

    rows = result.comparison.table()
    t = Table(title=f"simulated vs measured — {result.comparison.port}", title_justify="left")
    for i, h in enumerate(rows[0]):
        t.add_column(h, justify="left" if i < 2 else "right")
    for r in rows[1:]:
        t.add_row(*r)
    return t


def summary(result: ExperimentResult) -> list[Any]:
    """The live run's tables (as ``mosaico sim`` prints them), then the comparison."""
    return [*summary_tables(result.live.result), comparison_table(result)]
