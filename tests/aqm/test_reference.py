"""The integer DualQ (``aqm/dualq.py``) against RFC 9332's float pseudocode (``aqm/reference.py``).

Both are driven with the same queue-delay traces (integer microseconds, as
``deq_timedelta`` gives them, so input quantisation is not part of the comparison) and must
give the same probabilities within a bound derived here, not tuned:

* **PI update.** The integer increment is exact integer arithmetic on the delays, with the
  gains α, β replaced by shift-and-add constants ``A``, ``B`` (2⁻³² per µs). Their relative
  errors ε_A, ε_B against the exact gains (``ShiftAdd.relative_error``: rounding to an
  integer plus the signed-power-of-two truncation) are the only source of difference, so one
  update differs by at most ``e_n = ε_A·α·|q_n − target| + ε_B·β·|q_n − q_{n−1}|``. Clamping
  to [0, 1] is 1-Lipschitz, so errors add up but never grow: after n updates
  ``|P_n/2³² − p_n| ≤ Σ e_i + n·2⁻³²`` (the last term: the integer saturates at 1 − 2⁻³²),
  the sum restarting whenever both saturate at the same end of [0, 1].
  The tests check this bound at every update *and* that it stays small (below 0.5 % of the
  probability range over 30 s of the most adversarial trace — alternating 0 / 250 ms, where
  the proportional term is largest), so the claim is not vacuous; on monotone traces the
  error reaches the bound, so it is also tight.
* **Coupling, ramp.** ``p_CL = min(k·p', 1)`` and the native ramp differ by the relative
  error of their constants times the value, plus 2⁻³² of truncation.
* **Squaring.** ``r1 < P and r2 < P`` with independent uniform 32-bit draws is true for
  exactly P² of the 2⁶⁴ draw pairs: p'² with no approximation. Checked by counting the
  acceptance region and, end to end through the verdict functions, by sampling (5 σ).
"""

from __future__ import annotations

import math
from dataclasses import replace
from random import Random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mosaico_dsl.aqm import dualq as D
from mosaico_dsl.aqm import reference as R
from mosaico_dsl.units import Time

P32 = 2.0 ** 32


def _args(**over):
    """``std.l4s.DualQ``'s IR arguments with the stdlib defaults (RFC 9332 Appendix A)."""
    target = over.pop("classic_target", Time(15_000_000))
    rtt_max = over.pop("rtt_max", Time(100_000_000))
    tupdate = Time(min(target.ns, rtt_max.ns // 3))
    args = {"classic_target": target, "rtt_max": rtt_max, "tupdate": tupdate,
            "alpha": 0.1 * (tupdate.ns / 1e9) / (rtt_max.ns / 1e9) ** 2,
            "beta": 0.3 / (rtt_max.ns / 1e9), "coupling": 2.0, "l4s_mode": "ramp",
            "l4s_min_th": Time(800_000), "l4s_range": Time(400_000), "th_len": 1,
            "buffer": Time(250_000_000)}
    args.update(over)
    return args


CONFIGS = {
    "rfc-defaults": _args(),
    "target-5ms": _args(classic_target=Time(5_000_000), rtt_max=Time(30_000_000)),
    "k-1.5-step": _args(coupling=1.5, l4s_mode="step"),
    "k-3-rtt-200ms": _args(coupling=3.0, rtt_max=Time(200_000_000)),
}


def _traces() -> dict[str, list[int]]:
    """Classic queue delays (µs) sampled once per Tupdate; 2000 samples = 30 s at 15 ms."""
    n = 2000
    rng = np.random.default_rng(9332)
    walk = np.clip(np.cumsum(rng.normal(0, 3000, n)) + 15000, 0, 250_000)
    i = np.arange(n)
    return {
        "idle": [0] * n,
        "at-target": [15_000] * n,
        "standing-100ms": [100_000] * n,
        "step-up-down": [0] * 200 + [40_000] * 600 + [5_000] * 1200,
        "sawtooth": list((i % 60) * 1000),
        "sine": list((15_000 + 10_000 * np.sin(i / 20)).astype(int)),
        "random-walk": list(walk.astype(int)),
        "alternating-extremes": [250_000 if k % 2 else 0 for k in range(n)],
    }


def _run(args, trace):
    """Drive both models; yield (integer p', float p', the bound) after every update."""
    c = D.DualQConstants.from_args(args)
    ref = R.ReferencePI2(R.ReferenceParams.from_args(args))
    s = D.DualQState()
    eps_a, eps_b = c.alpha.relative_error, c.beta.relative_error
    alpha, beta = ref.params.alpha, ref.params.beta
    bound, prev = 0.0, 0
    for n, q in enumerate(trace, start=1):
        now = n * c.tupdate_us
        s = replace(s, qdelay_c_us=q, qdelay_c_seen_us=now)
        s = D.pi_update(c, s, now)
        ref.update(q / 1e6)
        bound += (eps_a * alpha * abs(q - c.target_us) + eps_b * beta * abs(q - prev)) / 1e6 \
            + 1 / P32
        if (s.p, ref.p) in ((0, 0.0), (D.MAX_PROB, 1.0)):
            bound = 1 / P32  # both clamped to the same end: the past error is forgotten
        prev = q
        yield s.p, ref.p, bound


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("trace", _traces())
def test_pi_update_matches_the_rfc_within_the_stated_bound(config, trace):
    args, samples = CONFIGS[config], _traces()[trace]
    worst = 0.0
    for p_int, p_ref, bound in _run(args, samples):
        err = abs(p_int / P32 - p_ref)
        assert err <= bound + 1e-12, (config, trace, err, bound)
        assert bound < 5e-3, bound  # a useful bound: within 0.5 % of [0, 1] throughout
        worst = max(worst, err)
    assert worst < 1e-3  # and the models are closer still


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 250_000), min_size=1, max_size=300),
       st.sampled_from(sorted(CONFIGS)))
def test_pi_update_bound_holds_for_any_trace(trace, config):
    for p_int, p_ref, bound in _run(CONFIGS[config], trace):
        assert abs(p_int / P32 - p_ref) <= bound + 1e-12


def test_the_controller_actually_moves():
    """Guard against a comparison of two constants: p' rises under a standing queue, and
    settles where the RFC's does."""
    ps = [p for p, _, _ in _run(CONFIGS["rfc-defaults"], [40_000] * 400)]
    assert ps[0] > 0 and ps[-1] == D.MAX_PROB  # 25 ms above target for 6 s saturates p'
    ps = [p for p, _, _ in _run(CONFIGS["rfc-defaults"], [15_000] * 400)]
    assert ps[-1] == ps[0]  # at target with no change: no integral, no proportional term


@pytest.mark.parametrize("config", CONFIGS)
def test_coupled_and_native_probabilities_match(config):
    args = CONFIGS[config]
    c = D.DualQConstants.from_args(args)
    ref = R.ReferenceParams.from_args(args)
    k_int = c.coupling.value / (1 << D.DualQConstants.COUPLING_FRAC)
    for p_u32 in [0, 1, 12345, 2**28, 2**30, 2**31 - 1, 2**31, 3 * 2**30, D.MAX_PROB]:
        p = p_u32 / P32
        pcl_int = min(D.coupled_probability(c, p_u32), D.MAX_PROB) / P32
        assert abs(pcl_int - R.coupled_probability(ref, p)) <= abs(k_int - ref.k) * p + 2 / P32
        for q in [0, 400, 799, 800, 801, 900, 1000, 1100, 1199, 1200, 1201, 5000]:
            native_err = c.ramp.relative_error if not c.step else 0.0
            for qlen in (0, ref.th_len - 1, ref.th_len, 10):
                got = D.l4s_probability(c, p_u32, q, qlen) / P32
                want = R.l4s_probability(ref, p, q / 1e6, qlen)
                assert abs(got - want) <= native_err * want + abs(k_int - ref.k) * p + 2 / P32, \
                    (p_u32, q, qlen, got, want)


@given(st.integers(0, D.MAX_PROB))
def test_two_draws_accept_exactly_p_squared_of_the_pairs(p_u32):
    """The acceptance region of ``r1 < P and r2 < P`` is the P×P square: its corners decide.

    ``classic_verdict`` reads r1 and r2 only through ``r < P``, so it is a product of two
    threshold sets; checking the thresholds at P−1 / P pins the region to [0,P)², whose
    measure is (P/2³²)² — p'² exactly.
    """
    c = D.DualQConstants.from_args(CONFIGS["rfc-defaults"])
    s = D.DualQState(p=p_u32)
    drop = D.Verdict.DROP
    if p_u32 > 0:
        assert D.classic_verdict(c, s, 0, 5, p_u32 - 1, p_u32 - 1) is drop
        assert D.classic_verdict(c, s, 0, 5, 0, 0) is drop
    assert D.classic_verdict(c, s, 0, 5, p_u32, 0) is D.Verdict.PASS
    assert D.classic_verdict(c, s, 0, 5, 0, p_u32) is D.Verdict.PASS


def _sample(fn, n, rng):
    counts = {v: 0 for v in D.Verdict}
    for _ in range(n):
        counts[fn(rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(32))] += 1
    return {v.value: counts[v] / n for v in D.Verdict}


@pytest.mark.parametrize("p", [0.05, 0.2, 0.45, 0.55, 0.8])
@pytest.mark.parametrize("ecn", [0, 2])
def test_classic_verdicts_have_the_reference_probabilities(p, ecn):
    """End to end through ``classic_verdict``: drop/mark frequencies within 5 σ."""
    args = CONFIGS["rfc-defaults"]
    c = D.DualQConstants.from_args(args)
    ref = R.ReferenceParams.from_args(args)
    s = D.DualQState(p=round(p * P32))
    n = 20_000
    got = _sample(lambda r1, r2, r3: D.classic_verdict(c, s, ecn, 5, r1, r2), n, Random(1))
    want = R.classic_outcome(ref, s.p / P32, ecn)
    for k in ("pass", "mark", "drop"):
        sigma = math.sqrt(max(want[k] * (1 - want[k]), 1e-9) / n)
        assert abs(got[k] - want[k]) <= 5 * sigma + 1e-9, (k, got, want)


@pytest.mark.parametrize("p", [0.0, 0.1, 0.3, 0.49, 0.5, 0.7])
@pytest.mark.parametrize("qdelay_us", [0, 900, 1100, 2000])
def test_l4s_verdicts_have_the_reference_probabilities(p, qdelay_us):
    """Marking with max(native, k·p'); under overload (k·p' ≥ 1) dropping with p'²."""
    args = CONFIGS["rfc-defaults"]
    c = D.DualQConstants.from_args(args)
    ref = R.ReferenceParams.from_args(args)
    s = D.DualQState(p=round(p * P32))
    n = 20_000
    got = _sample(lambda r1, r2, r3: D.l4s_verdict(c, s, qdelay_us, 3, r1, r2, r3), n,
                  Random(2))
    want = R.l4s_outcome(ref, s.p / P32, qdelay_us / 1e6, 3)
    for k in ("pass", "mark", "drop"):
        sigma = math.sqrt(max(want[k] * (1 - want[k]), 1e-9) / n)
        assert abs(got[k] - want[k]) <= 5 * sigma + 1e-6, (k, got, want)


@pytest.mark.parametrize("qlen", [0, 1, 2, 3])
def test_th_len_suppresses_only_the_native_ramp_in_both(qlen):
    """RFC 9332 A.1 lines 5a-5d: unless more than Th_len packets are left behind
    (``lq.len() > Th_len`` after line 4's dequeue) p'_L = 0, but p_L = max(p'_L, p_CL)
    still marks with the coupled k·p' — a short L queue must not escape the coupling."""
    args = _args(th_len=3)
    c = D.DualQConstants.from_args(args)
    ref = R.ReferenceParams.from_args(args)
    s = D.DualQState(p=round(0.3 * P32))  # k·p' = 0.6; the 5 ms L delay alone would say 1
    assert R.l4s_outcome(ref, 0.3, 0.005, qlen)["mark"] == pytest.approx(0.6)
    p_cl = D.coupled_probability(c, s.p)
    assert D.l4s_verdict(c, s, 5000, qlen, D.MAX_PROB, D.MAX_PROB, p_cl - 1) is D.Verdict.MARK
    assert D.l4s_verdict(c, s, 5000, qlen, D.MAX_PROB, D.MAX_PROB, p_cl) is D.Verdict.PASS
    assert R.l4s_outcome(ref, 0.3, 0.005, 4)["mark"] == 1.0
    assert D.l4s_verdict(c, s, 5000, 4, D.MAX_PROB, D.MAX_PROB, D.MAX_PROB) is D.Verdict.MARK


def test_th_len_does_not_gate_the_overload_drop_but_spares_a_lone_classic_packet():
    """The RFC's L overload drop has no floor; the Classic floor is the model's own
    (docs/l4s.md item 10), so the reference is compared to it only at qlen ≥ Th_len."""
    c = D.DualQConstants.from_args(_args(th_len=3))
    hot = D.DualQState(p=1 << 31)  # k·p' = 1: overload
    assert D.l4s_verdict(c, hot, 0, 0, 0, 0, D.MAX_PROB) is D.Verdict.DROP
    warm = D.DualQState(p=1 << 30)
    assert D.classic_verdict(c, warm, D.ECN_NOT_ECT, 2, 0, 0) is D.Verdict.PASS
    assert D.classic_verdict(c, warm, D.ECN_NOT_ECT, 3, 0, 0) is D.Verdict.DROP


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_folded_idle_intervals_equal_the_rfcs_periodic_updates(config):
    """A lazy update after ``idle`` silent intervals equals that many RFC updates with an
    empty Classic queue (curq = 0), for idle = 1 … 600 (9 s with the defaults), within the
    same per-update gain bound — and both are exactly 0 once the RFC's p' reaches 0 with a
    margin larger than that bound (the fold is exact: no cap on the intervals folded)."""
    args = CONFIGS[config]
    c = D.DualQConstants.from_args(args)
    built = D.DualQState()
    ref0 = R.ReferencePI2(R.ReferenceParams.from_args(args))
    bound0, prev, now0 = 0.0, 0, 0
    for q in [3 * c.target_us] * 40:  # build p' up with a standing queue
        now0 += c.tupdate_us
        built = D.pi_update(c, replace(built, qdelay_c_us=q, qdelay_c_seen_us=now0), now0)
        ref0.update(q / 1e6)
        bound0 += (c.alpha.relative_error * ref0.params.alpha * abs(q - c.target_us)
                   + c.beta.relative_error * ref0.params.beta * abs(q - prev)) / 1e6 + 1 / P32
        prev = q
    assert built.p > 0
    ref = R.ReferencePI2(ref0.params, ref0.p, ref0.prevq)
    bound, zeros = bound0, 0
    for idle in range(1, 601):
        # no packet for `idle` intervals, then one arrives (an L packet: no Classic sample)
        s = D.pi_update(c, built, now0 + idle * c.tupdate_us)
        ref.update(0.0)
        bound += (c.alpha.relative_error * ref.params.alpha * c.target_us
                  + (c.beta.relative_error * ref.params.beta * prev if idle == 1 else 0)) \
            / 1e6 + 1 / P32
        assert abs(s.p / P32 - ref.p) <= bound + 1e-12, idle
        # RFC's unclamped p' below −bound: the model's is below 0 too, so both are exactly 0
        unclamped = (ref0.p - ref.params.beta * ref0.prevq
                     - idle * ref.params.alpha * ref.params.target)
        if unclamped < -bound:
            assert s.p == 0 and ref.p == 0, idle
            zeros += 1
    assert zeros > 300  # long idle periods were reached and end at exactly 0, as the RFC's


def test_one_second_idle_clears_p_like_the_rfc():
    """docs/l4s.md item 9's example: p' = 0.13, then 1 s with no packet: the RFC's periodic
    updates reach 0 (66 × α·target = 0.149); so does the lazy update (it used to stop at
    seven folded intervals and keep 0.11)."""
    args = CONFIGS["rfc-defaults"]
    c = D.DualQConstants.from_args(args)
    ref = R.ReferencePI2(R.ReferenceParams.from_args(args), p=0.13)
    for _ in range(1_000_000 // c.tupdate_us):
        ref.update(0.0)
    s = D.pi_update(c, D.DualQState(p=round(0.13 * P32)), 1_000_000)
    assert ref.p == 0.0 and s.p == 0
    mid = D.pi_update(c, D.DualQState(p=round(0.13 * P32)), 30 * c.tupdate_us)
    ref = R.ReferencePI2(R.ReferenceParams.from_args(args), p=0.13)
    for _ in range(30):
        ref.update(0.0)
    assert mid.p > 0 and abs(mid.p / P32 - ref.p) < 30 * 1e-3 * ref.params.alpha * 0.015 + 1e-8
