"""Physical quantities as types.

A :class:`Time` is not a float: every quantity is stored as an exact integer (or fraction,
for percentages) in its base unit — nanoseconds, bit/s, packets/s, bytes — converted once at
the edge (parsing, the Python API) and formatted once at the edge (printing, reports).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import ClassVar

__all__ = [
    "Dim",
    "UNITS",
    "Time",
    "Bandwidth",
    "Rate",
    "Size",
    "Percent",
    "Quantity",
    "QUANTITY_RE",
    "split_quantity",
    "make_quantity",
    "parse_quantity",
]


class Dim(Enum):
    """The dimension of a quantity; the checker's unit types are exactly these."""

    TIME = "time"
    BANDWIDTH = "bandwidth"
    RATE = "rate"
    SIZE = "size"
    PERCENT = "percent"


# unit → (dimension, factor to the base unit). Order matters for formatting: largest first.
UNITS: dict[str, tuple[Dim, int]] = {
    "s": (Dim.TIME, 10**9),
    "ms": (Dim.TIME, 10**6),
    "us": (Dim.TIME, 10**3),
    "ns": (Dim.TIME, 1),
    "Tbps": (Dim.BANDWIDTH, 10**12),
    "Gbps": (Dim.BANDWIDTH, 10**9),
    "Mbps": (Dim.BANDWIDTH, 10**6),
    "Kbps": (Dim.BANDWIDTH, 10**3),
    "kbps": (Dim.BANDWIDTH, 10**3),
    "bps": (Dim.BANDWIDTH, 1),
    "Mpps": (Dim.RATE, 10**6),
    "kpps": (Dim.RATE, 10**3),
    "pps": (Dim.RATE, 1),
    "GiB": (Dim.SIZE, 2**30),
    "MiB": (Dim.SIZE, 2**20),
    "KiB": (Dim.SIZE, 2**10),
    "GB": (Dim.SIZE, 10**9),
    "MB": (Dim.SIZE, 10**6),
    "KB": (Dim.SIZE, 10**3),
    "B": (Dim.SIZE, 1),
    "%": (Dim.PERCENT, 1),
}

# Units preferred when formatting a base value back to text (no aliases).
_FORMAT_UNITS: dict[Dim, tuple[str, ...]] = {
    Dim.TIME: ("s", "ms", "us", "ns"),
    Dim.BANDWIDTH: ("Tbps", "Gbps", "Mbps", "Kbps", "bps"),
    Dim.RATE: ("Mpps", "kpps", "pps"),
    Dim.SIZE: ("GiB", "MiB", "KiB", "B"),
    Dim.PERCENT: ("%",),
}

_UNIT_ALT = "|".join(sorted((re.escape(u) for u in UNITS), key=len, reverse=True))
#: A number immediately followed by a unit, as the lexer and the Python API accept it.
QUANTITY_RE = re.compile(rf"(?P<num>\d+(?:\.\d+)?)(?P<unit>{_UNIT_ALT})(?![A-Za-z0-9_])")


def _fmt_number(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return format(Decimal(value.numerator) / Decimal(value.denominator), "f").rstrip("0")


class Quantity:
    """Common behaviour of the quantity types; ``base`` is the value in the base unit."""

    __slots__ = ()
    dim: ClassVar[Dim]
    base_unit: ClassVar[str]

    @property
    def base(self) -> int | Fraction:  # pragma: no cover - overridden
        raise NotImplementedError

    def in_unit(self, unit: str) -> Fraction:
        dim, factor = UNITS[unit]
        if dim is not self.dim:
            raise ValueError(f"{unit} is not a unit of {self.dim.value}")
        return Fraction(self.base) / factor

    def __str__(self) -> str:
        base = Fraction(self.base)
        for unit in _FORMAT_UNITS[self.dim]:
            value = base / UNITS[unit][1]
            # Prefer the largest unit that shows the value exactly with at most 3 decimals.
            if abs(value) >= 1 and (value * 1000).denominator == 1:
                return f"{_fmt_number(value)}{unit}"
        return f"{_fmt_number(base)}{self.base_unit}"

    def __float__(self) -> float:
        return float(self.base)


@dataclass(frozen=True, order=True, slots=True)
class Time(Quantity):
    ns: int
    dim: ClassVar[Dim] = Dim.TIME
    base_unit: ClassVar[str] = "ns"

    @property
    def base(self) -> int:
        return self.ns

    @property
    def us(self) -> float:
        return self.ns / 1e3

    @property
    def ms(self) -> float:
        return self.ns / 1e6

    @property
    def seconds(self) -> float:
        return self.ns / 1e9

    def __add__(self, other: Time) -> Time:
        return Time(self.ns + other.ns)

    def __sub__(self, other: Time) -> Time:
        return Time(self.ns - other.ns)



@dataclass(frozen=True, order=True, slots=True)
class Bandwidth(Quantity):
    bps: int
    dim: ClassVar[Dim] = Dim.BANDWIDTH
    base_unit: ClassVar[str] = "bps"

    @property
    def base(self) -> int:
        return self.bps



@dataclass(frozen=True, order=True, slots=True)
class Rate(Quantity):
    pps: int
    dim: ClassVar[Dim] = Dim.RATE
    base_unit: ClassVar[str] = "pps"

    @property
    def base(self) -> int:
        return self.pps



@dataclass(frozen=True, order=True, slots=True)
class Size(Quantity):
    bytes: int
    dim: ClassVar[Dim] = Dim.SIZE
    base_unit: ClassVar[str] = "B"

    @property
    def base(self) -> int:
        return self.bytes



@dataclass(frozen=True, order=True, slots=True)
class Percent(Quantity):
    """A percentage; ``value`` is in percent (``Percent(10)`` is 10 %, i.e. 0.1)."""

    value: Fraction
    dim: ClassVar[Dim] = Dim.PERCENT
    base_unit: ClassVar[str] = "%"

    @property
    def base(self) -> Fraction:
        return self.value

    @property
    def fraction(self) -> Fraction:
        return self.value / 100



_CLASSES: dict[Dim, type] = {
    Dim.TIME: Time,
    Dim.BANDWIDTH: Bandwidth,
    Dim.RATE: Rate,
    Dim.SIZE: Size,
    Dim.PERCENT: Percent,
}


def split_quantity(text: str) -> tuple[Decimal, str] | None:
    """Split ``"1.5ms"`` into ``(Decimal("1.5"), "ms")``; ``None`` if it is not a quantity."""
    m = QUANTITY_RE.fullmatch(text.strip())
    if m is None:
        return None
    return Decimal(m["num"]), m["unit"]


def make_quantity(magnitude: Decimal | int | Fraction, unit: str) -> Quantity:
    """Build the typed quantity; raises ``ValueError`` if it is not whole in the base unit."""
    dim, factor = UNITS[unit]
    if dim is Dim.PERCENT:
        return Percent(Fraction(magnitude))
    if isinstance(magnitude, (Decimal, int)):
        scaled = magnitude * factor
        if scaled == int(scaled):  # the common case, without Fraction arithmetic
            return _CLASSES[dim](int(scaled))
    exact = Fraction(magnitude) * factor
    if exact.denominator != 1:
        cls = _CLASSES[dim]
        raise ValueError(
            f"{_fmt_number(Fraction(magnitude))}{unit} is not a whole number of "
            f"{cls.base_unit} (the finest {dim.value} resolution)"
        )
    return _CLASSES[dim](int(exact))


def parse_quantity(text: str) -> Quantity:
    """Parse ``"15ms"``, ``"12Mbps"``, ``"20kpps"``, ``"64KiB"`` or ``"10%"``."""
    parts = split_quantity(text)
    if parts is None:
        raise ValueError(f"{text!r} is not a quantity such as 15ms, 12Mbps, 20kpps, 64KiB or 10%")
    return make_quantity(*parts)
