"""Rendering a :class:`SimResult`: the output directory, the terminal summary, HTML.

The directory holds ``metrics.json``, ``traces/*.csv``, ``plots/*.png`` and a
``manifest.json`` (the files' hashes: what lets a later run replace the directory, knowing
it holds nothing but this output). Traces are CSV,
not Parquet: they need no extra dependency (pyarrow is not one of mosaico's), every tool
reads them (pandas, spreadsheets, gnuplot, ``awk``), and they are byte-for-byte
reproducible — every column is an integer or a fixed-format decimal, where Parquet files
embed the writer's version. A minute at 12 Mb/s is a few MB; ``traces=False`` skips them.
"""

from __future__ import annotations

import base64
import html
import json
import math
from typing import Any

from .._atomic import MANIFEST, manifest
from .metrics import ClassStats, SimResult
from .ports import VERDICT_NAMES

__all__ = ["artifacts", "summary_tables", "html_summary", "port_file_name"]


def port_file_name(port: str) -> str:
    return port.replace("->", "-").replace(":", "_").replace("/", "_")


def _csv(header: list[str], rows) -> bytes:
    lines = [",".join(header)]
    lines.extend(",".join(str(x) for x in row) for row in rows)
    return ("\n".join(lines) + "\n").encode()


def _fmt(x: float) -> str:
    return "" if math.isnan(x) else f"{x:.6f}"


def traces_csv(result: SimResult) -> dict[str, bytes]:
    tr = result.traces
    if tr is None:
        return {}
    names = tr.flow_names
    out: dict[str, bytes] = {}
    for port, rec in tr.queue.items():
        rows = ((r[0], r[1] if r[1] >= 0 else "", names[r[2]], r[3], "L" if r[4] else "C",
                 r[5], r[6], VERDICT_NAMES[r[7]], r[8], r[9]) for r in rec.tolist())
        out[f"traces/queue_{port_file_name(port)}.csv"] = _csv(
            ["t_enq_ns", "t_deq_ns", "flow", "seq", "queue", "size_bytes", "ecn_in", "verdict",
             "occupancy_pkts", "p_prime_u32"], rows)
    for port, pt in tr.p_prime.items():
        out[f"traces/aqm_{port_file_name(port)}.csv"] = _csv(
            ["t_ns", "p_prime_u32", "p_prime", "p_classic", "p_coupled_l4s"],
            ((t, p, f"{p / 2**32:.9f}", f"{(p / 2**32) ** 2:.9f}",
              f"{min(1.0, 2 * p / 2**32):.9f}") for t, p in pt.tolist()))
    out["traces/drops.csv"] = _csv(["t_ns", "flow", "seq", "where", "reason"],
                                   ((t, names[f], s, w, r) for t, f, s, w, r in tr.drops))
    bins = tr.goodput.shape[1]
    bin_s = tr.bin_ns / 1e9
    mbps = tr.goodput * 8 / bin_s
    out["traces/goodput.csv"] = _csv(
        ["t_ns", *(f"{n}_bps" for n in names)],
        ((b * tr.bin_ns, *(f"{v:.1f}" for v in mbps[:, b])) for b in range(bins)))
    tcp = [f.name for f in result.flows if f.kind in ("prague", "reno", "cubic")]
    if tcp:
        out["traces/cwnd.csv"] = _csv(
            ["t_ns", *(f"{n}_segments" for n in tcp)],
            ((b * tr.bin_ns, *(_fmt(v) for v in tr.cwnd[:, b])) for b in range(bins)))
    return out


def artifacts(result: SimResult, *, traces: bool = True, plots: bool = True
              ) -> dict[str, bytes]:
    files = {"metrics.json": (json.dumps(result.to_json(), indent=2, sort_keys=True)
                              + "\n").encode()}
    if traces:
        files.update(traces_csv(result))
    if plots:
        from .plots import render
        files.update({f"plots/{k}": v for k, v in render(result).items()})
    files[MANIFEST] = manifest("simulation", files, program=result.program)
    return dict(sorted(files.items()))


# ---------------------------------------------------------------------------- summaries

def _ms(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.3f}"


def _mbps(x: float) -> str:
    return f"{x / 1e6:.2f}"


def _class_row(c: ClassStats) -> list[str]:
    return [c.name, str(c.departed), _ms(c.delay_ms.p50), _ms(c.delay_ms.p99),
            _ms(c.delay_ms.max), "–" if c.occupancy.count == 0 else f"{c.occupancy.p99:g}",
            str(c.marks), str(c.aqm_drops + c.overflow_drops), _mbps(c.goodput_bps)]


_CLASS_HEAD = ["class", "packets", "delay p50 ms", "delay p99 ms", "delay max ms",
               "occupancy p99", "CE marks", "drops", "goodput Mb/s"]
_FLOW_HEAD = ["flow", "kind", "class", "from", "sent", "received", "retx", "CE", "dropped",
              "goodput Mb/s", "mean RTT ms"]
_FILTER_HEAD = ["instance", "function", "node", "passed", "dropped"]


def _tables(result: SimResult) -> list[tuple[str, list[str], list[list[str]]]]:
    out = []
    for p in result.queue_ports:
        title = (f"{p.name} — {p.discipline}, {_mbps(p.rate_bps)} Mb/s, "
                 f"utilisation {p.utilisation:.1%}")
        if p.p_prime_mean is not None:
            title += f", mean p' {p.p_prime_mean:.4f}"
        out.append((title, _CLASS_HEAD, [_class_row(c) for c in p.classes]))
    out.append(("flows", _FLOW_HEAD, [
        [f.name, f.kind, f.klass, f.source, str(f.sent), str(f.received), str(f.retransmits),
         str(f.ce_received), str(f.dropped), _mbps(f.goodput_bps),
         "–" if f.mean_rtt_ms is None else f"{f.mean_rtt_ms:.2f}"] for f in result.flows]))
    if result.filters:
        out.append(("filters", _FILTER_HEAD, [
            [f.instance, f.function, f.node, str(f.passed), str(f.dropped)]
            for f in result.filters]))
    return out


def summary_tables(result: SimResult) -> list[Any]:
    """rich Tables: one per queueing port, the flows, the filters, and the headline."""
    from rich.table import Table

    tables = []
    for title, head, rows in _tables(result):
        t = Table(title=title, title_justify="left")
        for i, h in enumerate(head):
            t.add_column(h, justify="left" if i == 0 or h in ("kind", "from", "function", "node",
                                                               "class") else "right")
        for r in rows:
            t.add_row(*r)
        tables.append(t)
    ratio = result.classic_l4s_ratio
    head = Table.grid(padding=(0, 2))
    head.add_row("simulated", f"{result.duration_s:g} s of {result.program}, seed {result.seed},"
                 f" traffic {result.traffic}")
    head.add_row("goodput", f"L4S {_mbps(result.goodput_bps('l4s'))} Mb/s, Classic "
                 f"{_mbps(result.goodput_bps('classic'))} Mb/s, Classic/L4S "
                 f"{'–' if ratio is None else f'{ratio:.2f}'}")
    tables.insert(0, head)
    return tables


def html_summary(result: SimResult, *, figure: bool = True) -> str:
    """The terminal summary as HTML tables, with the queue-delay CDF (for notebooks)."""
    parts = [f"<div class='mosaico-sim'><p><b>{html.escape(result.program)}</b>: "
             f"{result.duration_s:g} s simulated, seed {result.seed}, traffic "
             f"<code>{html.escape(result.traffic)}</code></p>"]
    for title, head, rows in _tables(result):
        parts.append(f"<p><b>{html.escape(title)}</b></p><table><tr>"
                     + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
        for r in rows:
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
        parts.append("</table>")
    if figure and result.traces is not None and result.bottleneck is not None:
        from .plots import qdelay_cdf, to_png
        png = base64.b64encode(to_png(qdelay_cdf(result))).decode()
        parts.append(f"<img alt='queue delay CDF per class' src='data:image/png;base64,{png}'/>")
    parts.append("</div>")
    return "".join(parts)
