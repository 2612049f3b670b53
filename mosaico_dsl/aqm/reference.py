"""RFC 9332's DualQ Coupled PI2 AQM as its Appendix A pseudocode states it, in floats.

This is the yardstick for :mod:`mosaico_dsl.aqm.dualq`, the integer algorithm the P4 backend
emits and the simulator runs: ``tests/aqm/test_reference*.py`` drives both with the same
queue-delay traces and bounds their difference. It is written from the RFC, not from the
integer model, and keeps the RFC's structure and names:

* parameters (Appendix A.1, Figure 2): ``target`` 15 ms, ``RTT_max`` 100 ms,
  ``Tupdate = min(target, RTT_max/3)``, ``alpha = 0.1·Tupdate/RTT_max²``,
  ``beta = 0.3/RTT_max`` (both in Hz), ``k = 2``, ``p_Cmax = min(1/k², 1)``, the L4S ramp
  ``minTh`` 800 µs and ``range`` 400 µs, ``Th_len`` 1 packet;
* ``dualpi2_update`` (Figure 4), every ``Tupdate``, on the Classic queue delay ``curq``::

      p' = p' + alpha·(curq − target) + beta·(curq − prevq),  p' ∈ [0, 1]
      p_CL = k·p'            (coupled L4S probability, at most 1)
      p_C  = p'²             (Classic probability)
      prevq = curq

* the native L4S AQM (``laqm``, Figure 5): 0 below ``minTh``, 1 from ``minTh + range``,
  linear in between (``step`` mode: 1 from ``minTh``); the dequeue suppresses only this
  native term while the L queue is short (``if (lq.len() > Th_len) p'_L = laqm(...) else
  p'_L = 0``, lines 5a-5d, after line 4's ``lq.dequeue(pkt)``: ``qlen`` here counts the
  packets left behind the one leaving);
* dequeue (Figure 3, with the overload rules of Section 4.2.2 / A.2): an L packet is
  marked with ``p_L = max(laqm(qdelay_L), p_CL)``, or — when ``p_CL`` saturates at 1 —
  dropped with ``p_C``; a Classic packet is dropped (Not-ECT) or marked (ECT) with ``p_C``,
  and dropped even if ECT once ``p_C ≥ p_Cmax``.

Times are seconds, probabilities reals in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ReferenceParams", "ReferencePI2", "laqm", "l4s_probability", "classic_probability",
           "coupled_probability", "classic_outcome", "l4s_outcome"]


@dataclass(frozen=True, slots=True)
class ReferenceParams:
    target: float = 0.015
    rtt_max: float = 0.100
    tupdate: float | None = None  # default min(target, rtt_max / 3)
    alpha: float | None = None  # Hz; default 0.1 · Tupdate / RTT_max²
    beta: float | None = None  # Hz; default 0.3 / RTT_max
    k: float = 2.0
    min_th: float = 800e-6
    range: float = 400e-6
    th_len: int = 1
    step: bool = False

    def __post_init__(self) -> None:
        t = self.tupdate if self.tupdate is not None else min(self.target, self.rtt_max / 3)
        object.__setattr__(self, "tupdate", t)
        if self.alpha is None:
            object.__setattr__(self, "alpha", 0.1 * t / self.rtt_max ** 2)
        if self.beta is None:
            object.__setattr__(self, "beta", 0.3 / self.rtt_max)

    @property
    def p_cmax(self) -> float:
        return min(1 / self.k ** 2, 1.0)

    @property
    def max_th(self) -> float:
        return self.min_th + self.range

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> ReferenceParams:
        """From a ``std.l4s.DualQ`` instance's IR arguments (the same the P4 backend reads)."""
        s = lambda t: t.ns / 1e9
        return cls(target=s(args["classic_target"]), rtt_max=s(args["rtt_max"]),
                   tupdate=s(args["tupdate"]), alpha=float(args["alpha"]),
                   beta=float(args["beta"]), k=float(args["coupling"]),
                   min_th=s(args["l4s_min_th"]), range=s(args["l4s_range"]),
                   th_len=int(args["th_len"]), step=args["l4s_mode"] == "step")


@dataclass
class ReferencePI2:
    """The PI2 controller's state and its periodic update (``dualpi2_update``)."""

    params: ReferenceParams = field(default_factory=ReferenceParams)
    p: float = 0.0  # p', the base probability
    prevq: float = 0.0

    def update(self, curq: float) -> float:
        """One update with the Classic queue delay ``curq`` (s); returns the new p'."""
        c = self.params
        p = self.p + c.alpha * (curq - c.target) + c.beta * (curq - self.prevq)
        self.p = min(max(p, 0.0), 1.0)
        self.prevq = curq
        return self.p

    @property
    def p_c(self) -> float:
        return classic_probability(self.p)

    @property
    def p_cl(self) -> float:
        return coupled_probability(self.params, self.p)


def classic_probability(p: float) -> float:
    """p_C = p'²."""
    return p * p


def coupled_probability(c: ReferenceParams, p: float) -> float:
    """p_CL = min(k·p', 1)."""
    return min(c.k * p, 1.0)


def laqm(c: ReferenceParams, qdelay: float) -> float:
    """The native L4S AQM's probability for an L queue delay (s)."""
    if c.step:
        return 1.0 if qdelay >= c.min_th else 0.0
    if qdelay >= c.max_th:
        return 1.0
    if qdelay > c.min_th:
        return (qdelay - c.min_th) / c.range
    return 0.0


def l4s_probability(c: ReferenceParams, p: float, qdelay_l: float, qlen: int) -> float:
    """p_L = max(p'_L, p_CL): the probability an L packet leaving now is marked.

    Th_len gates the native term only; the coupled p_CL applies at any queue length.
    """
    native = laqm(c, qdelay_l) if qlen > c.th_len else 0.0
    return max(native, coupled_probability(c, p))


def classic_outcome(c: ReferenceParams, p: float, ecn: int) -> dict[str, float]:
    """Probabilities of pass / mark / drop for a Classic packet leaving.

    The RFC's Classic AQM has no queue-length floor (``Th_len`` is the L4S ramp's); the
    integer model adds one, as Linux's dualpi2 does — the tests compare where it is inert.
    """
    pc = classic_probability(p)
    if ecn == 0 or pc >= c.p_cmax:
        return {"pass": 1 - pc, "mark": 0.0, "drop": pc}
    return {"pass": 1 - pc, "mark": pc, "drop": 0.0}


def l4s_outcome(c: ReferenceParams, p: float, qdelay_l: float, qlen: int) -> dict[str, float]:
    """Probabilities of pass / mark / drop for an L packet leaving."""
    drop = classic_probability(p) if coupled_probability(c, p) >= 1.0 else 0.0
    mark = (1 - drop) * l4s_probability(c, p, qdelay_l, qlen)
    return {"pass": 1 - drop - mark, "mark": mark, "drop": drop}
