"""Bounds on the quantities a program may state, each with the reason it is there.

A value outside them is a mistake (a sign, a unit, a few digits too many), and left
unchecked it reaches places that cannot represent it: the placement model's 64-bit
integer sums, P4Runtime's meter rates, ``tc`` and the local-plan schema. The checker
reports E0304 with the reason; nothing later has to cope with a negative delay or a
rate of 10^30 packets per second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ir.values import ValueRange
from ..units import Bandwidth, Size, Time

__all__ = ["Limit", "LINK_BANDWIDTH", "LINK_DELAY", "LATENCY_BUDGET", "BANDWIDTH_REQUIREMENT",
           "HOST_RAM", "PROCESSING_LATENCY", "COST"]


@dataclass(frozen=True)
class Limit:
    range: ValueRange
    why: str

    def __contains__(self, value: Any) -> bool:
        return value in self.range

    def message(self, what: str, value: Any) -> str:
        from ..ir.values import format_value

        return (f"{what} must be in {self.range}, not {format_value(value)}: {self.why}")


LINK_BANDWIDTH = Limit(
    ValueRange(Bandwidth(1), Bandwidth(100 * 10**12)),
    "a rate is positive, and 100 Tbps is far above any link (Ethernet's fastest is 1.6 Tb/s, "
    "IEEE 802.3dj)")
LINK_DELAY = Limit(
    ValueRange(Time(0), Time(10 * 10**9)),
    "a one-way delay is not negative, and above 10 s it is no network link (a geostationary "
    "satellite hop takes about 0.25 s)")
LATENCY_BUDGET = Limit(
    ValueRange(Time(1), Time(1000 * 10**9)),
    "a budget is positive, and one above 1000 s bounds nothing: leave `require latency` out")
BANDWIDTH_REQUIREMENT = Limit(
    ValueRange(Bandwidth(1), Bandwidth(100 * 10**12)),
    "a rate is positive, and no path carries more than 100 Tbps")
HOST_RAM = Limit(
    ValueRange(Size(2**20), Size(2**50)),
    "a host has at least 1 MiB and at most 1 PiB of memory")
PROCESSING_LATENCY = Limit(
    ValueRange(Time(0), Time(10 * 10**9)),
    "a function's processing latency is not negative, and above 10 s it is no packet "
    "function")
COST = Limit(
    ValueRange(0, 2**40),
    "a resource cost is not negative, and 2^40 is above any node's capacity")
