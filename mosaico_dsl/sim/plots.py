"""The figures of a run, as PNG bytes (matplotlib's Agg canvas, no pyplot global state).

* ``qdelay_cdf`` — CDF of the queue delay per class at each queueing port (the MOSAICO
  figure);
* ``queue_occupancy`` — queue length per class over time;
* ``marks_drops`` — CE marks and drops per time bin;
* ``throughput`` — goodput per flow and per class over time.

PNG metadata carries no software version or date, so equal runs give equal bytes.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .metrics import SimResult, _queue_series
from .ports import AQM_DROP, MARK, OVERFLOW

__all__ = ["figures", "render", "to_png", "qdelay_cdf", "queue_occupancy", "marks_drops",
           "throughput"]

_COLOURS = {"l4s": "#1f77b4", "classic": "#d62728"}
_LABELS = {"l4s": "L4S (ECT(1)/CE)", "classic": "Classic (Not-ECT/ECT(0))"}
_CLS = {"classic": 0, "l4s": 1}  # drawing order: L4S on top


def to_png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes (Agg, 110 dpi, no software-version metadata)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return buf.getvalue()


def _ports(result: SimResult) -> list[str]:
    """The ports to draw: those a queue function governs, else the busiest switch port."""
    if result.traces is None:
        return []
    governed = [p.name for p in result.queue_ports if p.function]
    if governed:
        return governed
    return [result.bottleneck.name] if result.bottleneck else []


def qdelay_cdf(result: SimResult) -> Figure:
    ports = _ports(result)
    fig = Figure(figsize=(6.4 * max(1, len(ports)), 4.2))
    for i, name in enumerate(ports or ["(no queueing port)"]):
        ax = fig.add_subplot(1, max(1, len(ports)), i + 1)
        rec = result.traces.queue.get(name) if result.traces else None
        for klass, cls in _CLS.items():
            if rec is None or not len(rec):
                continue
            left = rec[(rec[:, 4] == cls) & (rec[:, 1] >= 0) & (rec[:, 7] != AQM_DROP)]
            if not len(left):
                continue
            d = np.sort((left[:, 1] - left[:, 0]) / 1e6)
            d = np.maximum(d, 1e-3)  # deq_timedelta resolution: 1 µs
            y = np.arange(1, len(d) + 1) / len(d)
            p50, p99 = np.percentile(d, [50, 99])
            if len(d) > 4000:  # 4000 evenly spaced ranks, plus the tail: the same curve
                keep = np.unique(np.concatenate([np.linspace(0, len(d) - 1, 4000).astype(int),
                                                 np.arange(max(0, len(d) - 200), len(d))]))
                d, y = d[keep], y[keep]
            ax.step(d, y, where="post", color=_COLOURS[klass],
                    label=f"{_LABELS[klass]}: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        ax.set_xscale("log")
        ax.set_xlabel("queue delay (ms, log scale; < 1 µs shown at 1 µs)")
        ax.set_ylabel("CDF")
        ax.set_ylim(0, 1.01)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"Queue delay per class — {name}")
        ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def queue_occupancy(result: SimResult) -> Figure:
    ports = _ports(result)
    fig = Figure(figsize=(9, 3.2 * max(1, len(ports))))
    end = result.duration_s
    for i, name in enumerate(ports or ["(no queueing port)"]):
        ax = fig.add_subplot(max(1, len(ports)), 1, i + 1)
        rec = result.traces.queue.get(name) if result.traces else None
        nb = 4000  # the largest length within each of nb bins keeps every peak visible
        for klass, cls in _CLS.items():
            if rec is None or not len(rec):
                continue
            t, q = _queue_series(rec, cls)
            if not len(t):
                continue
            b = np.minimum((t / 1e9 / end * nb).astype(np.int64), nb - 1)
            peak = np.zeros(nb, np.int64)
            np.maximum.at(peak, b, q)
            xs = (np.arange(nb) + 0.5) * end / nb
            ax.step(xs, peak, where="mid", color=_COLOURS[klass], label=_LABELS[klass], lw=0.8)
        ax.set_ylabel("queue length (packets)")
        ax.set_title(f"Queue occupancy per class — {name} (peak per {end / nb * 1e3:.3g} ms)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize="small")
    fig.axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def marks_drops(result: SimResult) -> Figure:
    fig = Figure(figsize=(9, 6))
    tr = result.traces
    bin_s = tr.bin_ns / 1e9 if tr else 0.1
    nbins = tr.goodput.shape[1] if tr else 1
    xs = np.arange(nbins) * bin_s
    ax1 = fig.add_subplot(2, 1, 1)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    for name, rec in (tr.queue.items() if tr else ()):
        for klass, cls in _CLS.items():
            mine = rec[rec[:, 4] == cls]
            t = mine[:, 1]
            for ax, code, what in ((ax1, MARK, "CE marks"), (ax2, AQM_DROP, "AQM drops")):
                sel = t[(mine[:, 7] == code) & (t >= 0)] // tr.bin_ns
                counts = np.bincount(sel, minlength=nbins)[:nbins]
                if counts.any():
                    ax.plot(xs, counts, color=_COLOURS[klass], lw=0.9,
                            label=f"{what}, {klass} — {name}")
            over = mine[mine[:, 7] == OVERFLOW][:, 0] // tr.bin_ns
            counts = np.bincount(over, minlength=nbins)[:nbins]
            if counts.any():
                ax2.plot(xs, counts, color=_COLOURS[klass], ls="--", lw=0.9,
                         label=f"buffer overflow, {klass} — {name}")
    if tr and tr.drops:
        others = [t // tr.bin_ns for t, _, _, _, reason in tr.drops if reason == "filter"]
        counts = np.bincount(np.array(others, np.int64), minlength=nbins)[:nbins] \
            if others else np.zeros(nbins)
        if counts.any():
            ax2.plot(xs, counts, color="#7f7f7f", lw=0.9, label="dropped by filters")
    for ax, title in ((ax1, "CE marks"), (ax2, "Drops")):
        ax.set_ylabel(f"packets per {bin_s * 1e3:g} ms")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize="small")
    ax2.set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def throughput(result: SimResult) -> Figure:
    fig = Figure(figsize=(9, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    tr = result.traces
    if tr is not None and len(tr.flow_names):
        bin_s = tr.bin_ns / 1e9
        xs = np.arange(tr.goodput.shape[1]) * bin_s
        mbps = tr.goodput * 8 / bin_s / 1e6
        attack = {f.name for f in result.flows if f.kind in ("flood", "syn")}
        for i, name in enumerate(tr.flow_names):
            if name in attack and not mbps[i].any():
                continue
            ax.plot(xs, mbps[i], lw=0.7, alpha=0.8, label=name)
        for klass in ("l4s", "classic"):
            rows = [i for i, c in enumerate(tr.flow_classes)
                    if c == klass and tr.flow_names[i] not in attack]
            if len(rows) > 1:
                ax.plot(xs, mbps[rows].sum(axis=0), lw=1.8, color=_COLOURS[klass],
                        label=f"all {klass}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("goodput (Mb/s)")
    ax.set_title("Throughput per flow and per class (goodput: payload delivered in order)")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize="small", ncol=2)
    fig.tight_layout()
    return fig


_FIGURES = {"qdelay_cdf": qdelay_cdf, "queue_occupancy": queue_occupancy,
            "marks_drops": marks_drops, "throughput": throughput}


def figures(result: SimResult) -> dict[str, Figure]:
    """Every figure, by name."""
    return {name: make(result) for name, make in _FIGURES.items()}


def render(result: SimResult) -> dict[str, bytes]:
    """Every figure as PNG bytes, by file name."""
    return {f"{name}.png": to_png(make(result)) for name, make in _FIGURES.items()}
