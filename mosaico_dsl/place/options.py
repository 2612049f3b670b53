"""Search options for the placement solver, importable without loading OR-Tools (which
costs most of a second: `mosaico fmt` and `check` should not pay it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ortools.sat.python import cp_model

__all__ = ["Options"]


@dataclass(frozen=True, slots=True)
class Options:
    """Search limits. Deterministic time is CP-SAT's own work counter, not wall-clock
    seconds, so a limited search still returns the same placement on every run (no
    wall-clock limit is ever set)."""

    deterministic_time: float = 60.0  # per solve
    workers: int = 1  # > 1 uses CP-SAT's deterministic interleaved portfolio
    seed: int = 0
    # The last level (total latency, a tie-break among equally good placements) may stop
    # this close to its proven bound, or after this much deterministic time; the search
    # record says how close it got.
    tie_break_gap: float = 0.005
    tie_break_time: float = 1.0
    # Explaining an infeasible program: after the first conflict, look for more only
    # while the solver has spent less than this (deterministic time, all solves).
    explain_time: float = 5.0
    # Programs of more than this many services × nodes (switches and hosts) are solved in
    # groups of about ``group_size`` services, each on a model narrowed to the ``width``
    # nearest nodes per target beside each path (docs/placement.md, "Large programs").
    exact_size: int = 40_000
    group_size: int = 250
    width: int = 4
    # Memory placement may plan to use: bytes, a size ("8GiB"), "off", or None for the
    # default (MOSAICO_MEMORY_LIMIT, else what the machine has available): a program whose
    # estimate is larger is refused before solving (E0814). See mosaico_dsl.limits.
    memory_limit: int | str | None = None

    def configure(self, solver: cp_model.CpSolver) -> None:
        from ortools.sat.python import cp_model

        p = solver.parameters
        p.num_workers = self.workers
        p.random_seed = self.seed
        p.interleave_search = self.workers > 1
        p.max_deterministic_time = self.deterministic_time
        # The LP relaxation of this model is nearly tight: following it finds optimal
        # placements several times faster than the default, and probing in presolve costs
        # more than it saves (measured with benchmarks/bench_place.py). The full
        # linearisation matters: with the default level, LP search spent 50 s of wall time
        # (under 1 deterministic second) on some 19-variable programs; level 2 solves those
        # in milliseconds and the benchmark faster too.
        p.search_branching = cp_model.LP_SEARCH
        p.cp_model_probing_level = 0
        p.linearization_level = 2


class _SearchLimit(Exception):
    """The search limit ran out before any placement was found."""
