"""The switches' own numbers during a run: counters and registers read at intervals.

Which cells are read comes from each switch's metrics map — the DualQ's packets, CE marks
and drops per port and class, its latest Classic and L4S queue delays, every filter's drop
counter and the unclassified packets — plus the DualQ's base probability p′, the register
next to its delay samples (the unit's registers share one prefix). They are read just
before time zero, every ``period`` while the traffic runs (in a thread of its own: the
reads wait on the switch, not on the CPU), and once at the end.
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


class Sampler:
    """Reads one switch's cells from a thread until stopped."""

    def __init__(self, sw: SwitchAccess, t0_ns: int, period: float = 0.1) -> None:
        self.sw = sw
        self.roles = cells_of(sw)
        self.period = period
        self.t0 = t0_ns
        self.cli = RuntimeCli(sw.namespace, sw.thrift_port)
        self.rows: list[tuple[int, list[tuple[int, int]]]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        cells = [r.cell for r in self.roles]
        try:
            values = self.cli.read(cells)
        except RuntimeCliError as e:
            self.errors.append(str(e))
            return
        self.rows.append((time.time_ns() - self.t0, values))

    def start(self) -> None:
        self.sample()  # the baseline, before the traffic
        self._thread = threading.Thread(target=self._run, name=f"sampler {self.sw.node}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def stop(self) -> SwitchSamples:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()  # the final values
        self.cli.close()
        n = len(self.roles)
        t = np.array([r[0] for r in self.rows], dtype=np.int64)
        vals = np.array([[v for v, _ in r[1]] for r in self.rows], dtype=np.int64).reshape(-1, n)
        byts = np.array([[b for _, b in r[1]] for r in self.rows], dtype=np.int64).reshape(-1, n)
        return SwitchSamples(self.sw.node, self.roles, t, vals, byts, tuple(self.errors))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.cli.close()
