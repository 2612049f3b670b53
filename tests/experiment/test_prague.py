"""The L4S sender's congestion controller against RFC 9331's scalable response and TCP
Prague's (DCTCP's α with g = 1/16, one reduction of cwnd·α/2 per round trip, +1 segment per
round trip, Reno's halving on loss), driven round by round with feedback in pairs of
packets, as the experiment's receiver sends it."""

from __future__ import annotations

import pytest

from mosaico_dsl.experiment.prague import INITIAL_CWND, MIN_RTO_NS, G, ScalableController

RTT = 1_000_000  # 1 ms


def run(cc: ScalableController, rounds: int, t: int = 0, *, marked=lambda seq: False,
        lost=lambda seq: False) -> int:
    """``rounds`` round trips: send the window, then the receiver reports every two packets
    (CE as ``marked`` says; packets ``lost`` says never arrive). Returns the time."""
    for _ in range(rounds):
        sent = []
        while cc.can_send(t):
            sent.append(cc.on_send(t))
        t += RTT
        arrived = [s for s in sent if not lost(s)]
        for i in range(0, len(arrived), 2):
            pair = arrived[i:i + 2]
            cc.on_feedback(t, [(s, marked(s)) for s in pair], echo_ns=t - RTT)
    return t


def test_slow_start_doubles_the_window_each_round_trip():
    cc = ScalableController(pacing=False)
    run(cc, 3)
    assert cc.cwnd == INITIAL_CWND * 8


def test_first_mark_ends_slow_start_with_a_cut():
    cc = ScalableController(pacing=False)
    t = run(cc, 3)
    before, first = cc.cwnd, cc.snd_nxt
    run(cc, 1, t, marked=lambda s: s == first)  # the round's first packet
    assert cc.reductions == 1
    # cut by α/2 (α decayed from 1 over the unmarked rounds), then +1 per round trip
    assert cc.ssthresh == pytest.approx(before * (1 - cc.alpha / 2), rel=0.1)
    assert cc.cwnd < before


def test_additive_increase_of_one_segment_per_round_trip():
    cc = ScalableController(pacing=False)
    t = run(cc, 2)
    t = run(cc, 1, t, marked=lambda s: s % 40 == 0)  # leave slow start
    start = cc.cwnd
    run(cc, 20, t)
    assert cc.cwnd - start == pytest.approx(20, abs=1.5)


@pytest.mark.parametrize("every", [2, 5, 10])
def test_alpha_tracks_the_marked_fraction_and_the_window_settles_at_2_over_p(every):
    cc = ScalableController(pacing=False)
    run(cc, 400, marked=lambda s: s % every == 0)
    p = 1 / every
    # the EWMA of the marked fraction per round (g = 1/16), with the round's window's
    # rounding of "every n-th packet" as the only error
    assert cc.alpha == pytest.approx(p, rel=0.25)
    # one cut of cwnd·α/2 per round balances +1 per round at cwnd = 2/α (RFC 9331 §4.3)
    assert cc.cwnd == pytest.approx(max(2.0, 2 / p), rel=0.4, abs=1.5)
    assert cc.lost == 0


def test_at_most_one_reduction_per_round_trip_however_many_marks():
    cc = ScalableController(pacing=False)
    t = run(cc, 2)
    before = cc.reductions
    run(cc, 5, t, marked=lambda s: True)
    assert cc.reductions - before == 5


def test_alpha_update_uses_g_of_one_sixteenth():
    cc = ScalableController(pacing=False)
    t = run(cc, 1)  # a round without marks: α ← (1 − g)·1
    run(cc, 1, t)
    assert cc.alpha == pytest.approx((1 - G) ** 1, rel=1e-9) or \
        cc.alpha == pytest.approx((1 - G) ** 2, rel=1e-9)


def test_loss_halves_the_window_once_per_round_trip():
    cc = ScalableController(pacing=False)
    t = run(cc, 2, marked=lambda s: s == 5)
    run(cc, 3, t)
    w = cc.cwnd
    first = cc.snd_nxt
    run(cc, 1, t + 3 * RTT, lost=lambda s: first <= s < first + 3)
    assert cc.lost == 3 and cc.reductions == 2  # the first mark, then this loss
    assert cc.ssthresh == pytest.approx(w / 2, abs=0.5)


def test_retransmission_timeout_restarts_from_one_segment():
    cc = ScalableController(pacing=False)
    t = run(cc, 2)
    while cc.can_send(t):
        cc.on_send(t)
    outstanding = cc.in_flight
    cc.on_tick(t + MIN_RTO_NS - 1)
    assert cc.timeouts == 0
    cc.on_tick(t + cc.rto + 1)
    assert cc.timeouts == 1 and cc.cwnd == 1.0 and cc.in_flight == 0
    assert cc.lost == outstanding


def test_pacing_spreads_the_window_over_the_round_trip():
    cc = ScalableController(pacing=True)
    t = run(cc, 2, marked=lambda s: s % 4 == 0)
    assert cc.cwnd >= cc.ssthresh  # congestion avoidance: rate = cwnd / srtt × 1.2
    gap = int(cc.srtt / (cc.cwnd * 1.2))
    # after an idle spell a late user-space sender may catch up by one gap: two packets
    # leave back to back, then one per gap
    cc.on_send(t)
    cc.on_send(t)
    assert not cc.can_send(t + gap - 1)
    assert cc.next_send_at() == t + gap
    cc.on_send(t + gap)
    assert cc.next_send_at() == t + 2 * gap
