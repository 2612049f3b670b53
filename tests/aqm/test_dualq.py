"""The integer DualQ model's own semantics: constants, the lazy update, the dequeue step.

``test_reference.py`` bounds the model against RFC 9332's float pseudocode; this file pins
the integer behaviour the P4 egress control mirrors (``tests/backends/p4/test_dualq_p4.py``
runs the generated P4 against :func:`dualq.dequeue`).
"""

from __future__ import annotations

from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mosaico_dsl.aqm import dualq as D
from mosaico_dsl.units import Time


def _args(**over):
    args = {"classic_target": Time(15_000_000), "rtt_max": Time(100_000_000),
            "tupdate": Time(15_000_000), "alpha": 0.15, "beta": 3.0, "coupling": 2.0,
            "l4s_mode": "ramp", "l4s_min_th": Time(800_000), "l4s_range": Time(400_000),
            "th_len": 1, "buffer": Time(250_000_000)}
    args.update(over)
    return args


C = D.DualQConstants.from_args(_args())


# ------------------------------------------------------------------ shift-add constants


@given(st.integers(1, 1 << 40), st.integers(1, 8))
def test_csd_error_shrinks_with_each_term(value, terms):
    """Greedy nearest-power terms: the error is below a third of the last term used."""
    sa = D.csd(value, terms)
    approx = sum(s << k for s, k in sa)
    if len(sa) < terms:  # stopped early: exact
        assert approx == value
    else:
        assert abs(value - approx) <= (1 << sa[-1][1]) // 2 + 1


@given(st.lists(st.integers(0, 40), min_size=1, max_size=3, unique=True))
def test_csd_is_exact_for_few_powers_of_two(shifts):
    value = sum(1 << s for s in shifts)
    assert sum(s << k for s, k in D.csd(value, len(shifts))) == value


@given(st.integers(0, 1 << 32), st.floats(0.5, 1e7))
def test_shift_add_applies_its_value(x, exact):
    sa = D.ShiftAdd.of(exact, D.GAIN_TERMS)
    assert sa(x) == x * sa.value


def test_reference_constants():
    """RFC 9332 defaults: α = 0.15 Hz, β = 3 Hz, k = 2 — within 0.1 % once integer."""
    per_us = D.PROB_ONE / 1e6
    assert C.alpha.exact == pytest.approx(0.15 * per_us)
    assert C.beta.exact == pytest.approx(3.0 * per_us)
    for sa in (C.alpha, C.beta, C.ramp):
        assert sa.relative_error < 1e-3
    assert C.coupling.value == 32 and C.coupling.terms == ((1, 5),)  # k·16: one shift
    assert C.classic_ect_drop_p == 1 << 31  # p_C ≥ p_Cmax = 1/4  ⇔  p' ≥ 1/2
    assert (C.target_us, C.tupdate_us, C.min_th_us, C.range_us) == (15000, 15000, 800, 400)
    assert C.idle_decay == C.alpha.value * 15000
    # K: the least with 2^K·α·target above p' = 1 plus the largest first-update rise
    most = D.MAX_PROB + (C.alpha.value + C.beta.value) * D.MAX_PROB
    assert C.idle_decay << C.fold_bits > most >= C.idle_decay << (C.fold_bits - 1)


def test_ect_drop_threshold_follows_coupling():
    c3 = D.DualQConstants.from_args(_args(coupling=3.0))
    assert c3.classic_ect_drop_p == round(D.PROB_ONE / 3)
    c_half = D.DualQConstants.from_args(_args(coupling=0.5))
    assert c_half.classic_ect_drop_p == D.MAX_PROB  # p_Cmax = min(1/k², 1) = 1


# ------------------------------------------------------------------ the lazy PI update


def test_no_update_before_tupdate():
    s = D.DualQState(p=1000, last_update_us=1_000_000, qdelay_c_us=50_000,
                     qdelay_c_seen_us=1_000_000)
    assert D.pi_update(C, s, 1_000_000 + C.tupdate_us - 1) is s


def test_update_reads_the_classic_queues_current_delay():
    """curq (RFC 9332 A.1 ``cq.time()``) as egress knows it: a departing Classic packet's
    sojourn; with Classic packets left behind, at least the time since that departure;
    after an arrival into an empty Classic queue, that packet's age; else 0."""
    now = 20_000
    leaving = D.DualQState(qdelay_c_us=40_000, qdelay_c_seen_us=now)
    assert D.classic_delay(leaving, now) == 40_000
    fresh = D.pi_update(C, leaving, now)
    assert fresh.p == C.alpha(40_000 - 15_000) + C.beta(40_000)
    assert fresh.qdelay_c_prev_us == 40_000
    # Classic packets wait behind L traffic: the head's delay grows, it is never forgotten
    waiting = D.DualQState(qdelay_c_us=3_000, qdelay_c_seen_us=0, c_left=4)
    assert D.classic_delay(waiting, 2_000) == 3_000
    assert D.classic_delay(waiting, 900_000) == 900_000
    # the queue was left empty: nothing waits, unless ingress stamped an arrival since
    empty = D.DualQState(qdelay_c_us=3_000, qdelay_c_seen_us=0)
    assert D.classic_delay(empty, 900_000) == 0
    assert D.pi_update(C, empty, now).p == 0
    stamped = D.classic_arrival(empty, 100_000)
    assert D.classic_delay(stamped, 900_000) == 800_000
    assert D.classic_arrival(stamped, 200_000) is stamped  # the first arrival stays
    assert D.classic_arrival(empty, 0).c_arrival_us == 1  # 0 means "none"


def test_a_starved_classic_queue_drives_p_up_not_down():
    """The issue-13 loop: L packets leave every 300 µs while Classic packets wait. The old
    model read "no recent Classic departure" as an empty queue and let p' decay to 0; the
    controller must see the wait and raise p' (so the coupling slows the L flow)."""
    s = D.DualQState(p=1 << 28)
    s, _ = D.dequeue(C, s, now_us=1_000, l4s=False, qdelay_us=10_000, ecn=0, qlen=9,
                     r1=D.MAX_PROB, r2=D.MAX_PROB, r3=D.MAX_PROB)
    ps = []
    for now in range(1_300, 2_000_000, 300):
        s, _ = D.dequeue(C, s, now_us=now, l4s=True, qdelay_us=500, ecn=1, qlen=3,
                         r1=D.MAX_PROB, r2=D.MAX_PROB, r3=D.MAX_PROB)
        ps.append(s.p)
    assert ps[-1] == D.MAX_PROB  # 2 s of starvation saturates p': overload, L dropped
    assert min(ps) >= (1 << 28) - C.alpha(C.target_us) - C.beta(10_000)  # never decayed away
    # the same L traffic with the Classic queue really empty decays p' to 0
    e = D.DualQState(p=1 << 28)
    for now in range(1_300, 2_000_000, 300):
        e, _ = D.dequeue(C, e, now_us=now, l4s=True, qdelay_us=500, ecn=1, qlen=3,
                         r1=D.MAX_PROB, r2=D.MAX_PROB, r3=D.MAX_PROB)
    assert e.p == 0


# ------------------------------------------------------------------ the scheduler


def test_wrr_gives_a_backlogged_classic_queue_its_weight():
    """Linux dualpi2's conditional priority: with both queues backlogged, Classic gets
    wc = 10 % of the bytes; L goes first from an empty start; a lone queue is served."""
    w = D.Scheduler()
    assert (w.wc, w.wl, w.initial_credit) == (10, 90, -80 * 1500)
    credit, served = w.initial_credit, []
    for _ in range(1000):
        from_l = w.serve_l(credit, 5, 5)
        served.append(from_l)
        credit = w.credit_after(credit, from_l, 1500, 5)
    assert served[:9] == [True] * 9 and not served[9]  # L first: 9 L, then Classic
    assert served.count(False) == 100
    assert w.serve_l(10**9, 1, 0) and not w.serve_l(-10**9, 0, 1)
    assert w.credit_after(123, True, 1500, 0) == 123  # alone: no credit moves
    half = D.Scheduler(wc=50)
    credit, n = half.initial_credit, 0
    for _ in range(100):
        from_l = half.serve_l(credit, 5, 5)
        n += from_l
        credit = half.credit_after(credit, from_l, 1000, 5)
    assert n == 50


@given(st.integers(0, 1 << 26), st.integers(0, C.tupdate_us - 1))
def test_missed_intervals_are_all_folded_exactly(m, phase):
    """Idle for m·Tupdate (+ less than one more): one update plus m − 1 idle intervals,
    for any m — ⌊elapsed/Tupdate⌋ − 1 of α·target, saturating only at p' = 0."""
    start = D.MAX_PROB // 2
    s = D.DualQState(p=start, last_update_us=1_000_000, qdelay_c_seen_us=0)
    now = 1_000_000 + max(1, m) * C.tupdate_us + phase
    out = D.pi_update(C, s, now)
    expected = start - C.alpha(C.target_us) - C.alpha.value * C.target_us * (max(1, m) - 1)
    assert out.p == max(0, expected)
    assert out.last_update_us == now  # the next interval starts now (docs/l4s.md item 7)


@given(st.integers(0, (1 << 48) - 1), st.sampled_from([1, 7, 1000, 15_000, 123_457, 1 << 30]),
       st.floats(0.0, 10.0), st.integers(0, 100_000))
def test_idle_fold_is_n_times_the_decay_or_saturates(rest, tupdate, alpha, target):
    """The binary decomposition equals n·decay below 2^K intervals; from 2^K on it is at
    least 2^K·decay, more than p' plus any first-update rise — so clamping gives n·decay."""
    c = D.DualQConstants.from_args(_args(tupdate=Time(tupdate * 1000), alpha=alpha,
                                         classic_target=Time(target * 1000)))
    n = rest // c.tupdate_us
    fold = D.idle_fold(c, rest)
    if n < 1 << c.fold_bits:
        assert fold == n * c.idle_decay
    else:
        assert fold == c.idle_decay << c.fold_bits
        most = D.MAX_PROB + (c.alpha.value + c.beta.value) * D.MAX_PROB
        assert fold > most or c.idle_decay == 0
    assert fold < 1 << 63  # the P4's bit<64> accumulator cannot wrap


@given(st.integers(0, D.MAX_PROB), st.integers(0, 1 << 24), st.integers(0, 1 << 24))
def test_update_clamps_to_probability_range(p, q, prev):
    s = D.DualQState(p=p, last_update_us=10**9, qdelay_c_us=q,
                     qdelay_c_seen_us=10**9 + C.tupdate_us, qdelay_c_prev_us=prev)
    out = D.pi_update(C, s, 10**9 + C.tupdate_us)
    assert 0 <= out.p <= D.MAX_PROB
    unclamped = p + (C.alpha(q - C.target_us) if q >= C.target_us
                     else -C.alpha(C.target_us - q))
    unclamped += C.beta(q - prev) if q >= prev else -C.beta(prev - q)
    assert out.p == min(max(unclamped, 0), D.MAX_PROB)


def test_standing_queue_drives_p_up_and_idle_brings_it_back():
    s, now = D.DualQState(), 0
    trace = []
    for _ in range(200):
        now += C.tupdate_us
        s, _ = D.dequeue(C, s, now_us=now, l4s=False, qdelay_us=60_000, ecn=0, qlen=10,
                         r1=D.MAX_PROB, r2=D.MAX_PROB, r3=D.MAX_PROB)
        trace.append(s.p)
    assert all(b >= a for a, b in zip(trace[1:], trace[2:], strict=False))  # integral action only
    assert trace[-1] > D.PROB_ONE // 4
    for _ in range(400):
        now += C.tupdate_us
        s, _ = D.dequeue(C, s, now_us=now, l4s=False, qdelay_us=0, ecn=0, qlen=0,
                         r1=D.MAX_PROB, r2=D.MAX_PROB, r3=D.MAX_PROB)
    assert s.p == 0


# ------------------------------------------------------------------ verdicts


@pytest.mark.parametrize("p", [0, 1, 1 << 20, 1 << 31, D.MAX_PROB])
def test_classic_acceptance_region_is_exactly_p_squared(p):
    """Both draws below P: the boundary draws decide exactly at P."""
    s = D.DualQState(p=p)
    if p:
        assert D.classic_verdict(C, s, 0, 5, p - 1, p - 1) is D.Verdict.DROP
    assert D.classic_verdict(C, s, 0, 5, p, 0) is D.Verdict.PASS
    assert D.classic_verdict(C, s, 0, 5, 0, p) is D.Verdict.PASS


def test_classic_marks_ect0_and_drops_not_ect_and_overload():
    s = D.DualQState(p=1 << 30)  # p' = 1/4 < 1/k
    assert D.classic_verdict(C, s, D.ECN_ECT0, 5, 0, 0) is D.Verdict.MARK
    assert D.classic_verdict(C, s, D.ECN_NOT_ECT, 5, 0, 0) is D.Verdict.DROP
    hot = D.DualQState(p=1 << 31)  # p_C = 1/4 = p_Cmax: ECN disabled
    assert D.classic_verdict(C, hot, D.ECN_ECT0, 5, 0, 0) is D.Verdict.DROP


def test_sampled_classic_rate_is_p_squared():
    rng = Random(9332)
    p = int(0.3 * D.PROB_ONE)
    s = D.DualQState(p=p)
    n = 40_000
    drops = sum(D.classic_verdict(C, s, 0, 5, rng.getrandbits(32), rng.getrandbits(32))
                is D.Verdict.DROP for _ in range(n))
    sigma = (0.09 * 0.91 / n) ** 0.5
    assert abs(drops / n - 0.09) < 5 * sigma


def test_l4s_ramp_and_coupling():
    s = D.DualQState(p=0)
    assert D.l4s_probability(C, 0, 800, 3) == 0
    assert D.l4s_probability(C, 0, 1200, 3) == D.MAX_PROB
    mid = D.l4s_probability(C, 0, 1000, 3)
    assert abs(mid / D.PROB_ONE - 0.5) < 1e-3
    assert D.l4s_probability(C, 1 << 28, 0, 3) == 1 << 29  # k·p' with k = 2
    assert D.l4s_verdict(C, s, 1200, 3, 0, 0, D.MAX_PROB) is D.Verdict.MARK  # certain
    assert D.l4s_verdict(C, s, 700, 3, 0, 0, 0) is D.Verdict.PASS  # p_L = 0


def test_step_mode():
    c = D.DualQConstants.from_args(_args(l4s_mode="step", l4s_min_th=Time(1_000_000)))
    assert D.l4s_probability(c, 0, 999, 3) == 0
    assert D.l4s_probability(c, 0, 1000, 3) == D.MAX_PROB


def test_l4s_overload_drops_with_p_squared():
    s = D.DualQState(p=1 << 31)  # k·p' = 1: saturated
    assert D.l4s_verdict(C, s, 0, 3, 0, 0, 0) is D.Verdict.DROP
    assert D.l4s_verdict(C, s, 0, 3, 1 << 31, 0, 0) is D.Verdict.MARK  # not dropped: marked
    below = D.DualQState(p=(1 << 31) - 1)
    assert D.l4s_verdict(C, below, 0, 3, 0, 0, 0) is D.Verdict.MARK


@given(st.integers(0, D.MAX_PROB), st.integers(0, 100_000), st.integers(0, 2))
def test_below_th_len_only_the_native_ramp_is_off(p, qdelay, qlen):
    """RFC 9332 A.1 lines 5a-5d: p'_L = 0 below Th_len; p_CL and overload still apply."""
    c = D.DualQConstants.from_args(_args(th_len=3))
    assert D.l4s_native(c, qdelay, qlen) == 0
    assert D.l4s_probability(c, p, qdelay, qlen) == min(D.coupled_probability(c, p),
                                                        D.MAX_PROB)
    assert D.l4s_native(c, qdelay, 3) == D.l4s_native(C, qdelay, 1)
    assert D.classic_verdict(c, D.DualQState(p=p), 0, qlen, 0, 0) is D.Verdict.PASS


# ------------------------------------------------------------------ the dequeue step


def test_dequeue_records_samples_per_class():
    s = D.DualQState(last_update_us=100)
    s1, _ = D.dequeue(C, s, now_us=200, l4s=True, qdelay_us=900, ecn=1, qlen=2,
                      r1=0, r2=0, r3=D.MAX_PROB)
    assert (s1.qdelay_l_us, s1.qdelay_c_us, s1.qdelay_c_seen_us) == (900, 0, 0)
    s2, _ = D.dequeue(C, s1, now_us=300, l4s=False, qdelay_us=7000, ecn=0, qlen=2,
                      r1=D.MAX_PROB, r2=D.MAX_PROB, r3=0)
    assert (s2.qdelay_l_us, s2.qdelay_c_us, s2.qdelay_c_seen_us) == (900, 7000, 300)


def test_dequeue_decides_with_the_updated_probability():
    """The update runs before the verdict, with this very packet's sample."""
    s = D.DualQState(p=0, last_update_us=0)
    s1, v = D.dequeue(C, s, now_us=C.tupdate_us, l4s=False, qdelay_us=200_000, ecn=0, qlen=5,
                      r1=0, r2=0, r3=0)
    assert s1.p > 0 and v is D.Verdict.DROP  # with p = 0 nothing could have been dropped


@pytest.mark.parametrize("ecn,l4s", [(0, False), (1, True), (2, False), (3, True)])
def test_classification(ecn, l4s):
    assert D.is_l4s(ecn) is l4s


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(1, 40_000), st.booleans(), st.integers(0, 300_000),
                          st.integers(0, 3), st.integers(0, 50)), min_size=1, max_size=60),
       st.randoms(use_true_random=False))
def test_dequeue_keeps_state_in_range(events, rng):
    s, now = D.DualQState(), 0
    for gap, l4s, qdelay, ecn, qlen in events:
        now += gap
        s, v = D.dequeue(C, s, now_us=now, l4s=l4s, qdelay_us=qdelay, ecn=ecn, qlen=qlen,
                         r1=rng.getrandbits(32), r2=rng.getrandbits(32),
                         r3=rng.getrandbits(32))
        assert 0 <= s.p <= D.MAX_PROB
        assert s.last_update_us <= now and now - s.last_update_us < C.tupdate_us
        assert v in D.Verdict
