"""The switches' own numbers during a run: counters and registers read at intervals.

Which cells are read comes from each switch's metrics map — the DualQ's packets, CE marks
and drops per port and class, its latest Classic and L4S queue delays, every filter's drop
counter and the unclassified packets — plus the DualQ's base probability p′, the register
next to its delay samples (the unit's registers share one prefix). Every cell is read
before time zero, every ``counter_period`` while the traffic runs and once at the end; the
registers — single samples, not sums — and the DualQ's packet counters every ``period``
(a thread of its own: the reads wait on the switch, not on the CPU). Each read through
the runtime CLI takes the switch a few milliseconds, which is why the other counters,
whose totals are what matters, are read less often.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from .bmv2cli import Cell, RuntimeCli, RuntimeCliError
from .testbed import SwitchAccess

__all__ = ["CellRole", "SwitchSamples", "Sampler", "cells_of"]


@dataclass(frozen=True, slots=True)
class CellRole:
    """What a cell means to the experiment."""

    cell: Cell
    metric: str  # packets | marks | drops | qdelay | p_prime | filter_drops | unclassified
    port: int | None = None
    traffic_class: str | None = None  # l4s | classic
    instance: str | None = None  # filters: the function instance


def cells_of(sw: SwitchAccess) -> tuple[CellRole, ...]:
    out: list[CellRole] = []
    seen: set[Cell] = set()

    def add(role: CellRole) -> None:
        if role.cell not in seen:
            seen.add(role.cell)
            out.append(role)

    for svc in sw.metrics.services:
        for inst in svc.instances:
            sc = inst.scope
            for metric, sources in (("packets", sc.packets), ("marks", sc.ce_marks),
                                    ("drops", sc.drops), ("qdelay", sc.queue_delay)):
                for s in sources:
                    if s.object == "direct_counter" or s.index is None:
                        continue
                    if s.port is None:  # a filter's drops
                        add(CellRole(Cell(s.object, s.name, s.index), "filter_drops",
                                     instance=inst.instance))
                    else:
                        add(CellRole(Cell(s.object, s.name, s.index), metric, s.port,
                                     s.traffic_class))
                        if metric == "qdelay" and s.name.endswith("_qdelay_c"):
                            p = Cell("register", s.name[:-len("_qdelay_c")] + "_p", s.index)
                            add(CellRole(p, "p_prime", s.port))
    for s in sw.metrics.node.drops:
        if s.object == "counter" and s.index is not None and s.port is None \
                and Cell(s.object, s.name, s.index) not in seen:
            add(CellRole(Cell(s.object, s.name, s.index), "unclassified"))
    return tuple(out)


@dataclass(frozen=True)
class SwitchSamples:
    """``values[i, j]``: cell ``j`` at ``t_ns[i]`` — a counter's packets (its bytes in
    ``bytes[i, j]``) or a register's value."""

    switch: str
    roles: tuple[CellRole, ...]
    t_ns: np.ndarray
    values: np.ndarray
    bytes: np.ndarray
    fresh: np.ndarray  # [i, j]: cell j was read in sample i (else carried over)
    errors: tuple[str, ...] = ()

    def column(self, role: CellRole) -> int:
        return self.roles.index(role)

    def find(self, metric: str, port: int | None = None, traffic_class: str | None = None
             ) -> list[int]:
        return [i for i, r in enumerate(self.roles) if r.metric == metric
                and (port is None or r.port == port)
                and (traffic_class is None or r.traffic_class == traffic_class)]

    def total(self, columns: list[int], *, of_bytes: bool = False) -> int:
        """The change of the summed counters over the run (last sample minus first)."""
        if not columns or len(self.t_ns) < 2:
            return 0
        v = self.bytes if of_bytes else self.values
        return int(v[-1, columns].sum() - v[0, columns].sum())


# Read at every sample: the registers, and the DualQ's packet counters that tell whether a
# delay register holds a new sample (a class that sent nothing keeps its last delay).
_FAST = ("qdelay", "p_prime", "packets")


class Sampler:
    """Reads one switch's cells from a thread until stopped. Create it (which opens the
    CLI session and reads the baseline) before time zero; :meth:`start` then samples."""

    def __init__(self, sw: SwitchAccess, *, period: float = 0.02,
                 counter_period: float = 1.0) -> None:
        self.sw = sw
        self.roles = cells_of(sw)
        self.period = period
        self.every = max(1, round(counter_period / period))
        self.registers = [i for i, r in enumerate(self.roles) if r.metric in _FAST]
        self.t0 = 0
        self.cli = RuntimeCli(sw.namespace, sw.thrift_port)
        self.rows: list[tuple[int, list[int], list[tuple[int, int]]]] = []  # t, cells, values
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sample(everything=True)  # the baseline, before the traffic

    def sample(self, *, everything: bool) -> None:
        which = list(range(len(self.roles))) if everything else self.registers
        try:
            values = self.cli.read([self.roles[i].cell for i in which])
        except RuntimeCliError as e:
            self.errors.append(str(e))
            return
        self.rows.append((time.time_ns(), which, values))

    def start(self, t0_ns: int) -> None:
        self.t0 = t0_ns
        self._thread = threading.Thread(target=self._run, name=f"sampler {self.sw.node}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self.period):
            n += 1
            self.sample(everything=n % self.every == 0)

    def stop(self) -> SwitchSamples:
        """Stop sampling, read everything a last time; the samples, times from time zero.
        A cell not read in a sample keeps its previous value there (counters only grow)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample(everything=True)
        self.cli.close()
        n = len(self.roles)
        t = np.array([r[0] - self.t0 for r in self.rows], dtype=np.int64)
        vals = np.zeros((len(self.rows), n), np.int64)
        byts = np.zeros((len(self.rows), n), np.int64)
        for i, (_, which, values) in enumerate(self.rows):
            if i:
                vals[i], byts[i] = vals[i - 1], byts[i - 1]
            for j, (v, b) in zip(which, values, strict=True):
                vals[i, j], byts[i, j] = v, b
        fresh = np.zeros((len(self.rows), n), bool)
        for i, (_, which, _) in enumerate(self.rows):
            fresh[i, which] = True
        return SwitchSamples(self.sw.node, self.roles, t, vals, byts, fresh, tuple(self.errors))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.cli.close()
