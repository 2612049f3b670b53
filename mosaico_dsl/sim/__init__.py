"""Packet-level simulation of a compiled, placed program: what will this chain do?

``simulate(program, duration="60s", traffic="prague:1,cubic:1", seed=1)`` runs a
discrete-event simulation of the placed chain — links, switch egress ports with the DualQ
Coupled AQM exactly as the P4 backend implements it, filters, VNF detours, and TCP Prague,
Reno, CUBIC, UDP and attack traffic — and returns a :class:`SimResult`: per-class queue
delay and occupancy, CE marks, drops and throughput, with the traces behind them.
``mosaico sim FILE -o DIR`` is the same from the command line. See ``docs/simulation.md``.
"""

from .metrics import ClassStats, Distribution, FilterStats, FlowStats, PortStats, SimResult
from .run import DEFAULT_DURATION, DEFAULT_SEED, DEFAULT_TRAFFIC, simulate
from .traffic import FlowSpec, format_traffic, parse_traffic

__all__ = ["simulate", "SimResult", "PortStats", "ClassStats", "FlowStats", "FilterStats",
           "Distribution", "FlowSpec", "parse_traffic", "format_traffic", "DEFAULT_TRAFFIC",
           "DEFAULT_DURATION", "DEFAULT_SEED"]
