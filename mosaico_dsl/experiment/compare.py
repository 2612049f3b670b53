"""Prediction against measurement: the simulator's figures beside the live run's.

Per class (L4S, Classic) at the bottleneck DualQ port: queue delay p50 and p99 — the live
one-way-delay estimate and the switch's own ``deq_timedelta`` samples —, goodput, CE marks
and drops; for the port, its utilisation and the Classic : L4S goodput ratio. Each row has
the relative difference ``(live − sim) / |sim|``. The figure overlays, per class, the CDFs
of the simulated and the measured queue delay, and of throughput, CE marks and drops per
time bin (the same bins for both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..sim.metrics import SimResult
from ..sim.ports import AQM_DROP, MARK, OVERFLOW
from .analysis import LiveResult

__all__ = ["Row", "Comparison", "compare", "overlay_figure", "CLASSES"]

CLASSES = ("l4s", "classic")
_COLOURS = {"l4s": "#1f77b4", "classic": "#d62728"}
_LABEL = {"l4s": "L4S", "classic": "Classic"}


@dataclass(frozen=True, slots=True)
class Row:
    figure: str
    klass: str  # l4s | classic | port
    unit: str
    sim: float | None
    live: float | None

    @property
    def relative(self) -> float | None:
        """``(live − sim) / |sim|``; None when either is missing or the prediction is 0."""
        if self.sim is None or self.live is None or self.sim == 0 or math.isnan(self.sim) \
                or math.isnan(self.live):
            return None
        return (self.live - self.sim) / abs(self.sim)

    def to_json(self) -> dict[str, Any]:
        def r(x):
            return None if x is None or math.isnan(x) else round(x, 6)

        return {"figure": self.figure, "class": self.klass, "unit": self.unit,
                "sim": r(self.sim), "live": r(self.live), "relative_difference": r(self.relative)}


@dataclass(frozen=True)
class Comparison:
    port: str | None
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = ()

    def row(self, figure: str, klass: str) -> Row:
        return next(r for r in self.rows if r.figure == figure and r.klass == klass)

    def to_json(self) -> dict[str, Any]:
        return {"port": self.port, "rows": [r.to_json() for r in self.rows],
                "notes": list(self.notes)}

    def table(self) -> list[list[str]]:
        """Header and rows as text (figures to 3 significant digits)."""
        out = [["class", "figure", "sim", "live", "live vs sim"]]
        for r in self.rows:
            out.append([_LABEL.get(r.klass, r.klass), f"{r.figure} ({r.unit})" if r.unit
                        else r.figure, _fmt(r.sim), _fmt(r.live),
                        "–" if r.relative is None else f"{r.relative:+.0%}"])
        return out

    def markdown(self) -> str:
        rows = self.table()
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(lines) + "\n"


def _fmt(x: float | None) -> str:
    if x is None or math.isnan(x):
        return "–"
    if x == 0 or abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def compare(sim: SimResult, live: LiveResult) -> Comparison:
    port = live.result.bottleneck
    name = port.name if port is not None else None
    sport = next((p for p in sim.ports if p.name == name), sim.bottleneck)
    rows: list[Row] = []
    for k in CLASSES:
        s = sport.cls(k) if sport is not None and sport.classes else None
        lv = port.cls(k) if port is not None else None
        reg = live.switch_delay_ms.get(name, {}).get(k, np.zeros(0)) if name else np.zeros(0)

        def pick(c, attr):
            return None if c is None else getattr(c.delay_ms, attr)

        rows += [
            Row("queue delay p50", k, "ms", pick(s, "p50"), pick(lv, "p50")),
            Row("queue delay p99", k, "ms", pick(s, "p99"), pick(lv, "p99")),
            Row("queue delay p50, switch samples", k, "ms", pick(s, "p50"),
                float(np.percentile(reg, 50)) if len(reg) else None),
            Row("queue delay p99, switch samples", k, "ms", pick(s, "p99"),
                float(np.percentile(reg, 99)) if len(reg) else None),
            Row("goodput", k, "Mb/s", sim.goodput_bps(k) / 1e6,
                live.result.goodput_bps(k) / 1e6),
            Row("CE marks", k, "packets", None if s is None else float(s.marks),
                None if lv is None else float(lv.marks)),
            Row("drops", k, "packets",
                None if s is None else float(s.aqm_drops + s.overflow_drops),
                None if lv is None else float(lv.aqm_drops + lv.overflow_drops)),
        ]
    rows += [
        Row("utilisation", "port", "", None if sport is None else sport.utilisation,
            None if port is None else port.utilisation),
        Row("Classic : L4S goodput", "port", "", sim.classic_l4s_ratio,
            live.result.classic_l4s_ratio),
    ]
    return Comparison(name, tuple(rows))


# ---------------------------------------------------------------------------- the figure

def _cdf(ax, values: np.ndarray, colour: str, style: str, label: str) -> None:
    if not len(values):
        return
    v = np.sort(values)
    y = np.arange(1, len(v) + 1) / len(v)
    if len(v) > 4000:
        keep = np.unique(np.concatenate([np.linspace(0, len(v) - 1, 4000).astype(int),
                                         np.arange(len(v) - 100, len(v))]))
        v, y = v[keep], y[keep]
    ax.step(v, y, where="post", color=colour, ls=style, lw=1.2, label=label)


def _sim_series(sim: SimResult, port: str, klass: str) -> dict[str, np.ndarray]:
    tr = sim.traces
    out = {"delay": np.zeros(0), "goodput": np.zeros(0), "marks": np.zeros(0),
           "drops": np.zeros(0)}
    if tr is None:
        return out
    nb = tr.goodput.shape[1]
    rec = tr.queue.get(port)
    cls = 1 if klass == "l4s" else 0
    if rec is not None and len(rec):
        mine = rec[rec[:, 4] == cls]
        left = mine[(mine[:, 1] >= 0) & (mine[:, 7] != AQM_DROP) & (mine[:, 7] != OVERFLOW)]
        out["delay"] = (left[:, 1] - left[:, 0]) / 1e6
        marks = mine[(mine[:, 7] == MARK) & (mine[:, 1] >= 0)][:, 1] // tr.bin_ns
        out["marks"] = np.bincount(marks.astype(np.int64), minlength=nb)[:nb]
        dropped = np.concatenate([mine[(mine[:, 7] == AQM_DROP) & (mine[:, 1] >= 0)][:, 1],
                                  mine[mine[:, 7] == OVERFLOW][:, 0]]) // tr.bin_ns
        out["drops"] = np.bincount(dropped.astype(np.int64), minlength=nb)[:nb]
    out["goodput"] = _class_goodput(sim, klass)
    return out


def _class_goodput(result: SimResult, klass: str) -> np.ndarray:
    tr = result.traces
    if tr is None:
        return np.zeros(0)
    attack = {f.name for f in result.flows if f.kind in ("flood", "syn")}
    rows = [i for i, (n, c) in enumerate(zip(tr.flow_names, tr.flow_classes, strict=True))
            if c == klass and n not in attack]
    if not rows:
        return np.zeros(0)
    return tr.goodput[rows].sum(axis=0) * 8 / (tr.bin_ns / 1e9) / 1e6


def overlay_figure(sim: SimResult, live: LiveResult, comparison: Comparison) -> Figure:
    fig = Figure(figsize=(12, 8.4))
    axes = [fig.add_subplot(2, 2, i + 1) for i in range(4)]
    port = comparison.port
    bin_ms = (live.result.traces.bin_ns / 1e6) if live.result.traces else 0
    for k in CLASSES:
        c = _COLOURS[k]
        s = _sim_series(sim, port, k) if port else {}
        lv = _sim_series(live.result, port, k) if port else {}
        reg = live.switch_delay_ms.get(port, {}).get(k, np.zeros(0)) if port else np.zeros(0)
        _cdf(axes[0], np.maximum(s.get("delay", np.zeros(0)), 1e-3), c, "--",
             f"{_LABEL[k]}, simulated")
        _cdf(axes[0], np.maximum(lv.get("delay", np.zeros(0)), 1e-3), c, "-",
             f"{_LABEL[k]}, live (one-way delay − base)")
        _cdf(axes[0], np.maximum(reg, 1e-3), c, ":", f"{_LABEL[k]}, live (switch samples)")
        _cdf(axes[1], s.get("goodput", np.zeros(0)), c, "--", f"{_LABEL[k]}, simulated")
        _cdf(axes[1], _class_goodput(live.result, k), c, "-", f"{_LABEL[k]}, live")
        _cdf(axes[2], s.get("marks", np.zeros(0)), c, "--", f"{_LABEL[k]}, simulated")
        _cdf(axes[2], lv.get("marks", np.zeros(0)), c, "-", f"{_LABEL[k]}, live")
        _cdf(axes[3], s.get("drops", np.zeros(0)), c, "--", f"{_LABEL[k]}, simulated")
        _cdf(axes[3], lv.get("drops", np.zeros(0)), c, "-", f"{_LABEL[k]}, live")
    titles = ("Queue delay (ms, log scale)", f"Goodput per {bin_ms:g} ms bin (Mb/s)",
              f"CE marks per {bin_ms:g} ms bin", f"Drops per {bin_ms:g} ms bin")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title)
        ax.set_ylabel("CDF")
        ax.set_ylim(0, 1.01)
        ax.grid(True, alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize="x-small")
    axes[0].set_xscale("log")
    fig.suptitle(f"Simulated (dashed) and measured (solid) — {port or 'no DualQ port'}")
    fig.tight_layout()
    return fig
