"""The DualQ Coupled AQM (RFC 9332) exactly as the P4 backend implements it, in integers.

This module is the single definition of the algorithm the generated P4 runs: the P4
templates print :class:`DualQConstants` and mirror :func:`pi_update`, :func:`classic_verdict`
and :func:`l4s_verdict` line for line; the simulator calls these functions per packet; the
P4 tests derive their expectations from them. ``reference.py`` holds RFC 9332's float
pseudocode, ``tests/aqm`` bounds the difference between the two, and ``docs/l4s.md``
states every bound and maps the P4 to the RFC line by line.

Representation (matching v1model):

* times are microseconds (``standard_metadata.deq_timedelta`` is µs, 32 bit;
  ``egress_global_timestamp`` is µs, 48 bit);
* probabilities are 32-bit fixed point: ``P = round(p · 2^32)`` clamped to ``MAX_PROB``;
* the PI gains alpha and beta (Hz) are pre-scaled to ``Δp' per µs of delay`` in 2^-32 units
  and written as a few signed powers of two, so the update is shifts and adds only;
* the update runs lazily when a packet leaves and ``now − last_update ≥ Tupdate``; any
  number n of missed (idle) intervals is folded in exactly by writing n in binary against
  compile-time constants ``Tupdate << j`` / ``(α·target) << j`` (:func:`idle_fold`);
* p'² uses two independent 32-bit random draws: ``r1 < P and r2 < P``;
* the controller reads the Classic queue's *current* delay (:func:`classic_delay`): egress
  remembers how many Classic packets the latest Classic departure left behind, and ingress
  stamps the first Classic arrival after it (:func:`classic_arrival`), so Classic packets
  that wait behind a busy L queue are seen, not only those that leave;
* :func:`dequeue` is the whole per-packet egress step (sample, lazy update, verdict) in the
  order the P4 egress control runs it;
* :class:`Scheduler` is the link scheduler the simulator runs (Linux dualpi2's WRR); the P4
  program cannot schedule, the target's traffic manager does.

Widths (the P4 declares exactly these): p' 32 bit; timestamps 48 bit; delays 32 bit; the PI
increment is accumulated in 64 bit (|Δ| < 2^32 · 2^23 for the largest gains allowed by
``std.l4s``, and the idle fold adds less than twice 2^32 plus that, so it cannot wrap); the
idle fold's remainder is 48 bit, like the timestamps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = [
    "MAX_PROB", "PROB_ONE", "TIME_BITS", "Verdict", "ShiftAdd", "DualQConstants",
    "DualQState", "pi_update", "classic_verdict", "l4s_verdict", "l4s_native", "l4s_probability",
    "coupled_probability", "csd", "dequeue", "is_l4s", "ECN_NOT_ECT", "ECN_ECT1", "ECN_ECT0",
    "ECN_CE", "GAIN_TERMS", "idle_fold", "fold_steps", "classic_delay", "classic_arrival",
    "Scheduler", "C_PROTECTION", "MAX_DELAY",
]

PROB_ONE = 1 << 32
MAX_PROB = PROB_ONE - 1
TIME_BITS = 48  # egress_global_timestamp: elapsed times are below 2^48 µs
MAX_DELAY = (1 << 32) - 1  # delays are bit<32> µs (deq_timedelta)
GAIN_TERMS = 6  # signed powers of two per constant multiplier (alpha, beta, ramp)
_US = 1_000_000

ECN_NOT_ECT, ECN_ECT1, ECN_ECT0, ECN_CE = 0, 1, 2, 3


def is_l4s(ecn: int) -> bool:
    """RFC 9331 classification: ECT(1) and CE (the low bit set) take the L queue."""
    return ecn & 1 == 1


class Verdict(Enum):
    PASS = "pass"
    MARK = "mark"
    DROP = "drop"


def csd(value: int, max_terms: int) -> tuple[tuple[int, int], ...]:
    """``value`` ≈ Σ sign·2^shift with at most ``max_terms`` terms, most significant first.

    Greedy: each term is the power of two nearest to what is left, so the error after n
    terms is at most a third of the previous term; exact for sums of few powers of two.
    """
    terms: list[tuple[int, int]] = []
    rest = value
    while rest and len(terms) < max_terms:
        mag = abs(rest)
        low = mag.bit_length() - 1
        shift = low + 1 if (1 << (low + 1)) - mag < mag - (1 << low) else low
        sign = 1 if rest > 0 else -1
        terms.append((sign, shift))
        rest -= sign << shift
    return tuple(terms)


@dataclass(frozen=True, slots=True)
class ShiftAdd:
    """A constant multiplier written as shifts and adds: ``x*c ≈ Σ sign·(x << shift)``."""

    terms: tuple[tuple[int, int], ...]  # (sign, shift)
    exact: float  # the real-valued multiplier it approximates

    @classmethod
    def of(cls, exact: float, max_terms: int = 4) -> ShiftAdd:
        return cls(csd(round(exact), max_terms), exact)

    @property
    def value(self) -> int:
        return sum(s << k for s, k in self.terms)

    def __call__(self, x: int) -> int:
        return sum((x << k) if s > 0 else -(x << k) for s, k in self.terms)

    @property
    def relative_error(self) -> float:
        return abs(self.value - self.exact) / self.exact if self.exact else 0.0


@dataclass(frozen=True, slots=True)
class DualQConstants:
    """Every number the P4 program and the simulator need, computed by the compiler."""

    target_us: int
    tupdate_us: int
    alpha: ShiftAdd  # 2^-32 units of p' per µs of (qdelay − target), per update
    beta: ShiftAdd  # 2^-32 units of p' per µs of (qdelay − previous qdelay), per update
    idle_decay: int  # p' decrease per missed (idle) interval: α·(0 − target) negated
    fold_bits: int  # K: n ≥ 2^K missed intervals take p' to 0 whatever the first update adds
    coupling: ShiftAdd  # k, in 1/2^COUPLING_FRAC units
    step: bool
    min_th_us: int
    range_us: int
    ramp: ShiftAdd  # 2^32 / range_us
    th_len: int
    classic_ect_drop_p: int  # P at or above which Classic ECT packets are dropped, not marked
    buffer_us: int

    COUPLING_FRAC = 4  # k is applied as (P * k·16) >> 4: k = 2 is one shift

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> DualQConstants:
        """From a DualQ instance's IR arguments (times as :class:`~mosaico_dsl.units.Time`)."""
        us = lambda t: max(0, round(t.ns / 1000))
        target, tupdate = us(args["classic_target"]), max(1, us(args["tupdate"]))
        alpha_hz, beta_hz = float(args["alpha"]), float(args["beta"])
        k = float(args["coupling"])
        per_us = PROB_ONE / _US
        alpha = ShiftAdd.of(alpha_hz * per_us, GAIN_TERMS)
        beta = ShiftAdd.of(beta_hz * per_us, GAIN_TERMS)
        decay = alpha.value * target  # an idle interval: qdelay 0, so Δ = α·(0 − target)
        # The first update adds at most (α + β)·(2^32 − 1) (delays are bit<32>); K is the
        # least with 2^K·decay > MAX_PROB + that, so 2^K or more folds always clamp to 0.
        most_up = (alpha.value + beta.value) * MAX_PROB
        fold_bits = 0
        while decay and (decay << fold_bits) <= MAX_PROB + most_up:
            fold_bits += 1
        range_us = max(1, us(args["l4s_range"]))
        p_cmax = min(1.0 / (k * k), 1.0)
        return cls(
            target_us=target,
            tupdate_us=tupdate,
            alpha=alpha,
            beta=beta,
            idle_decay=decay,
            fold_bits=fold_bits,
            coupling=ShiftAdd.of(k * (1 << cls.COUPLING_FRAC)),
            step=args["l4s_mode"] == "step",
            min_th_us=us(args["l4s_min_th"]),
            range_us=range_us,
            ramp=ShiftAdd.of(PROB_ONE / range_us, GAIN_TERMS),
            th_len=int(args["th_len"]),
            classic_ect_drop_p=min(MAX_PROB, round((p_cmax ** 0.5) * PROB_ONE)),
            buffer_us=us(args["buffer"]),
        )


@dataclass(frozen=True, slots=True)
class DualQState:
    """Per-egress-port registers."""

    p: int = 0  # p' in 2^-32 units
    last_update_us: int = 0
    qdelay_c_us: int = 0  # the latest Classic queue delay sample
    qdelay_c_seen_us: int = 0  # when that sample was taken
    qdelay_c_prev_us: int = 0  # the sample used by the previous update
    qdelay_l_us: int = 0  # the latest L queue delay sample (monitoring)
    c_left: int = 0  # Classic packets left behind by the latest Classic departure
    c_arrival_us: int = 0  # first Classic arrival since that departure (0: none; ingress)


def _clamp(x: int) -> int:
    return 0 if x < 0 else MAX_PROB if x > MAX_PROB else x


def idle_fold(c: DualQConstants, rest_us: int) -> int:
    """The p' decrease for the n = ⌊rest/Tupdate⌋ missed intervals in ``rest_us``, exactly.

    n·(α·target) by n's binary digits: for j = K−1 … 0, if ``rest ≥ Tupdate << j`` take
    ``Tupdate << j`` off and add ``decay << j`` — compares, subtracts and adds of
    compile-time constants (no division, no loop in the P4). If n ≥ 2^K the decrease is
    ``decay << K``, which already exceeds anything p' plus one update can reach, so the
    clamped result is the one n·decay gives. Thresholds at or above 2^TIME_BITS µs are
    never reached by a 48-bit elapsed time and are omitted (as in the P4).
    """
    steps = fold_steps(c)
    if steps and steps[0][0] == c.fold_bits:
        if rest_us >= steps[0][1]:
            return steps[0][2]
        steps = steps[1:]
    down = 0
    for _, threshold, decrease in steps:
        if rest_us >= threshold:
            rest_us -= threshold
            down += decrease
    return down


def fold_steps(c: DualQConstants) -> tuple[tuple[int, int, int], ...]:
    """(j, Tupdate << j, decay << j) for j = K … 0, without thresholds ≥ 2^TIME_BITS µs.

    j = K is the saturating step (n ≥ 2^K), the others are n's binary digits; the P4
    template prints exactly these constants.
    """
    return tuple((j, c.tupdate_us << j, c.idle_decay << j)
                 for j in range(c.fold_bits, -1, -1) if c.tupdate_us << j < 1 << TIME_BITS)


def classic_delay(s: DualQState, now_us: int) -> int:
    """curq, the Classic queue's current delay (RFC 9332 A.1 ``cq.time()``), as egress sees it.

    * a Classic packet leaves now: its own sojourn time (it was the head);
    * Classic packets were left behind by the latest Classic departure: the head has waited
      at least since that departure, so ``max(latest sojourn, now − that departure)`` — the
      latest sample while Classic is served, a delay that keeps growing while it is not;
    * else, a Classic packet arrived since (ingress stamped it into an empty queue): it is
      the head, and its age is exact;
    * else the Classic queue is empty: 0.

    Packets leave the Classic queue only through egress, so ``c_left > 0`` means it is still
    not empty; this is what lets the controller see Classic packets that wait behind a busy
    L queue, not only those that leave (docs/l4s.md item 8).
    """
    waited = now_us - s.qdelay_c_seen_us
    if s.c_left > 0 or waited == 0:
        q = waited if waited > s.qdelay_c_us else s.qdelay_c_us
    elif s.c_arrival_us != 0:
        q = now_us - s.c_arrival_us
    else:
        return 0
    return q if q < MAX_DELAY else MAX_DELAY  # a bit<32> of µs (71 min): saturate


def classic_arrival(s: DualQState, now_us: int) -> DualQState:
    """Ingress, a Classic packet bound for the port: stamp the first arrival since the
    latest Classic departure (0 means none, so time 0 is stamped as 1 µs)."""
    if s.c_arrival_us != 0:
        return s
    return DualQState(s.p, s.last_update_us, s.qdelay_c_us, s.qdelay_c_seen_us,
                      s.qdelay_c_prev_us, s.qdelay_l_us, s.c_left, now_us if now_us > 0 else 1)


def pi_update(c: DualQConstants, s: DualQState, now_us: int) -> DualQState:
    """The lazy PI2 update: runs when ``now − last_update ≥ Tupdate``, else returns ``s``.

    The Classic delay is the queue's current delay (:func:`classic_delay`). Each missed
    interval beyond the first adds the idle decay α·(0 − target): ⌊elapsed/Tupdate⌋ − 1 of
    them, any number (:func:`idle_fold`) — no packet left, so both queues were empty. The
    next interval starts now (docs/l4s.md item 7).
    """
    elapsed = now_us - s.last_update_us
    if elapsed < c.tupdate_us:
        return s
    q = classic_delay(s, now_us)
    delta = c.alpha(q - c.target_us) if q >= c.target_us else -c.alpha(c.target_us - q)
    if q >= s.qdelay_c_prev_us:
        delta += c.beta(q - s.qdelay_c_prev_us)
    else:
        delta -= c.beta(s.qdelay_c_prev_us - q)
    delta -= idle_fold(c, elapsed - c.tupdate_us)
    return DualQState(_clamp(s.p + delta), now_us, s.qdelay_c_us, s.qdelay_c_seen_us, q,
                      s.qdelay_l_us, s.c_left, s.c_arrival_us)


def coupled_probability(c: DualQConstants, p: int) -> int:
    """p_CL = min(k·p', 1) in 2^-32 units; ``PROB_ONE`` or more means overload."""
    return c.coupling(p) >> DualQConstants.COUPLING_FRAC


def l4s_native(c: DualQConstants, qdelay_l_us: int, qlen: int) -> int:
    """p'_L: the native ramp (or step) on the L delay, 0 unless ``qlen > th_len``.

    RFC 9332 A.1, dequeue lines 5a-5d: ``if (lq.len() > Th_len) p'_L = laqm(lq.time())
    else p'_L = 0``, after line 4's ``lq.dequeue(pkt)``: ``lq.len()`` is the packets left
    behind (``qlen``), so with Th_len = 1 a packet is not natively marked unless two or
    more others wait behind it — at a low rate, where one packet's transmission outlasts
    the ramp, an L packet that waited for a single Classic (or L) packet is not marked.
    Th_len gates only this native term, never the coupled p_CL.
    """
    if qlen <= c.th_len:
        return 0
    if c.step:
        return MAX_PROB if qdelay_l_us >= c.min_th_us else 0
    if qdelay_l_us <= c.min_th_us:
        return 0
    if qdelay_l_us >= c.min_th_us + c.range_us:
        return MAX_PROB
    return _clamp(c.ramp(qdelay_l_us - c.min_th_us))


def l4s_probability(c: DualQConstants, p: int, qdelay_l_us: int, qlen: int) -> int:
    """p_L = max(p'_L, p_CL), clamped to MAX_PROB."""
    return max(l4s_native(c, qdelay_l_us, qlen), min(coupled_probability(c, p), MAX_PROB))


def classic_verdict(c: DualQConstants, s: DualQState, ecn: int, qlen: int, r1: int,
                    r2: int) -> Verdict:
    """A Classic packet leaving: drop (Not-ECT) or mark (ECT(0)) with p'², via two draws.

    Not while fewer than ``th_len`` Classic packets wait behind it: RFC 9332's Classic AQM
    has no such floor (docs/l4s.md item 10); like Linux's dualpi2 it spares a lone packet.
    """
    if qlen < c.th_len or not (r1 < s.p and r2 < s.p):
        return Verdict.PASS
    if ecn == 0 or s.p >= c.classic_ect_drop_p:
        return Verdict.DROP
    return Verdict.MARK


def l4s_verdict(c: DualQConstants, s: DualQState, qdelay_l_us: int, qlen: int, r1: int,
                r2: int, r3: int) -> Verdict:
    """An L packet leaving: CE-mark with p_L; under overload (k·p' ≥ 1) drop with p'²."""
    if coupled_probability(c, s.p) >= PROB_ONE and r1 < s.p and r2 < s.p:
        return Verdict.DROP
    p_l = l4s_probability(c, s.p, qdelay_l_us, qlen)
    return Verdict.MARK if p_l == MAX_PROB or r3 < p_l else Verdict.PASS


C_PROTECTION = 10  # % of the link a backlogged Classic queue gets (Linux dualpi2's default)


@dataclass(frozen=True, slots=True)
class Scheduler:
    """The DualQ's conditional priority on one shared link: Linux dualpi2's WRR.

    RFC 9332 §4.2.2 asks that the L queue cannot starve the Classic queue; Linux's dualpi2
    serves L first unless a credit says Classic is owed its weight ``wc`` (10 % by default)
    of the bytes sent while both queues wait: serving L adds ``wc·size`` to the credit,
    serving Classic takes ``wl·size`` (``wl = 100 − wc``), Classic is served when the
    credit is positive, and the credit restarts at ``mtu·(wc − wl)`` when both are empty.
    The simulator schedules with it; the P4 program cannot (the target's traffic manager
    schedules: BMv2 paces each priority queue on its own, docs/l4s.md item 11).
    """

    wc: int = C_PROTECTION
    mtu: int = 1500

    @property
    def wl(self) -> int:
        return 100 - self.wc

    @property
    def initial_credit(self) -> int:
        return self.mtu * (self.wc - self.wl)

    def serve_l(self, credit: int, l_waiting: int, c_waiting: int) -> bool:
        """Whether the next packet comes from the L queue."""
        return l_waiting > 0 and (c_waiting == 0 or credit <= 0)

    def credit_after(self, credit: int, served_l: bool, size: int, other_waiting: int) -> int:
        """The credit once a packet of ``size`` bytes left (the other queue not empty)."""
        if other_waiting == 0:
            return credit
        return credit + self.wc * size if served_l else credit - self.wl * size


def dequeue(c: DualQConstants, s: DualQState, *, now_us: int, l4s: bool, qdelay_us: int,
            ecn: int, qlen: int, r1: int, r2: int, r3: int) -> tuple[DualQState, Verdict]:
    """One packet leaving the port, exactly as the P4 egress control processes it.

    1. record the packet's own queue delay (``deq_timedelta``) as its queue's latest sample
       (a Classic packet also records the Classic packets it leaves behind, ``qlen``, and
       clears the arrival stamp of :func:`classic_arrival`);
    2. run the lazy PI update (:func:`pi_update`);
    3. decide with the updated p' (:func:`classic_verdict` or :func:`l4s_verdict`).

    ``qlen`` is ``deq_qdepth``: the packets left behind in this packet's queue (BMv2 reports
    the depth of the priority queue it left). The Classic verdict and the L packet's native
    ramp read it (never the coupled p_CL nor the overload drop): the ramp applies only
    while more than ``th_len`` others wait (RFC 9332's ``lq.len() > Th_len`` after the
    dequeue), the Classic verdict only while at least ``th_len`` do (a floor that is not
    in the RFC).
    """
    # DualQState(...) rather than dataclasses.replace: this runs per packet in the simulator
    if l4s:
        s = DualQState(s.p, s.last_update_us, s.qdelay_c_us, s.qdelay_c_seen_us,
                       s.qdelay_c_prev_us, qdelay_us, s.c_left, s.c_arrival_us)
    else:
        s = DualQState(s.p, s.last_update_us, qdelay_us, now_us, s.qdelay_c_prev_us,
                       s.qdelay_l_us, qlen, 0)
    s = pi_update(c, s, now_us)
    if l4s:
        return s, l4s_verdict(c, s, qdelay_us, qlen, r1, r2, r3)
    return s, classic_verdict(c, s, ecn, qlen, r1, r2)
