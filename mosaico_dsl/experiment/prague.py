"""The scalable congestion controller of the experiment's L4S sender.

This kernel has no TCP Prague (nor DCTCP), so the experiment brings its own sender; its
response is RFC 9331's for a scalable flow and the one TCP Prague implements (as the
simulator's Prague does, :mod:`mosaico_dsl.sim.tcp`):

* per-packet feedback tells which packets arrived and which were CE-marked (what Accurate
  ECN reports exactly);
* α ← (1 − g)·α + g·F once per round trip, g = 1/16, F the CE fraction of the round;
* at most one reduction per round trip with CE: cwnd ← cwnd·(1 − α/2);
* additive increase of one segment per round trip, also in the round after a reduction;
* slow start from 10 segments until the first CE mark or loss;
* loss (three later packets acknowledged, or no feedback for an RTO) halves the window
  once per round trip, as Reno does; an RTO restarts from one segment;
* pacing at Linux's rate, cwnd·size/srtt × 2 in slow start, × 1.2 after.

Packets are not retransmitted: the sender measures, it does not need its bytes delivered;
a lost packet counts as lost. Times are nanoseconds; this class reads no clock itself.
"""

from __future__ import annotations

__all__ = ["ScalableController", "G", "INITIAL_CWND", "DUPTHRESH", "MIN_RTO_NS"]

G = 1 / 16
INITIAL_CWND = 10.0
DUPTHRESH = 3
MIN_RTO_NS = 200_000_000
INITIAL_RTO_NS = 1_000_000_000


class ScalableController:
    """Window, pacing and the per-round ECN response of one L4S flow."""

    def __init__(self, *, pacing: bool = True) -> None:
        self.pacing = pacing
        self.cwnd = INITIAL_CWND
        self.ssthresh = float("inf")
        self.alpha = 1.0  # as DCTCP and Prague start: the first mark halves the window
        self.snd_nxt = 0
        self.outstanding: dict[int, int] = {}  # seq -> send time, in sequence order
        self.high_acked = -1
        self.round_end = 0
        self.round_acked = 0
        self.round_ce = 0
        self.cwr_end = 0  # no second reduction before a packet from after the last one
        self.srtt = 0
        self.rttvar = 0
        self.min_rtt = 0
        self.last_feedback = 0
        self.next_tx = 0
        # statistics
        self.sent = 0
        self.delivered = 0
        self.ce = 0
        self.lost = 0
        self.timeouts = 0
        self.reductions = 0
        self.rtt_sum = 0
        self.rtt_samples = 0

    # ------------------------------------------------------------------ sending
    @property
    def in_flight(self) -> int:
        return len(self.outstanding)

    def can_send(self, now: int) -> bool:
        return self.in_flight < self.cwnd and (not self.pacing or now >= self.next_tx)

    def next_send_at(self) -> int | None:
        """When the next packet may leave if the window allows one (None: it does not)."""
        if self.in_flight >= self.cwnd:
            return None
        return self.next_tx if self.pacing else 0

    def on_send(self, now: int) -> int:
        """A packet leaves now; returns its sequence number."""
        seq = self.snd_nxt
        self.snd_nxt += 1
        self.sent += 1
        self.outstanding[seq] = now
        if not self.last_feedback:
            self.last_feedback = now
        if self.pacing and self.srtt:
            ratio = 2.0 if self.cwnd < self.ssthresh / 2 else 1.2
            gap = int(self.srtt / (self.cwnd * ratio))
            # Linux's earliest departure time, except that a sender woken late (a user-space
            # timer) may catch up by one gap rather than lose the time for good
            self.next_tx = max(self.next_tx, now - gap) + gap
        return seq

    # ------------------------------------------------------------------ feedback
    def on_feedback(self, now: int, records: list[tuple[int, bool]], echo_ns: int) -> None:
        """The receiver reports ``(seq, CE)`` per packet; ``echo_ns`` is the send time of the
        newest packet it had received."""
        self.last_feedback = now
        if echo_ns:
            self._rtt(now - echo_ns)
        delivered = ce = 0
        for seq, marked in records:
            if self.outstanding.pop(seq, None) is None:
                continue  # reported twice, or declared lost already
            delivered += 1
            ce += marked
            if seq > self.high_acked:
                self.high_acked = seq
        self.delivered += delivered
        self.ce += ce
        reduced = self._detect_loss(now)
        self.round_acked += delivered
        self.round_ce += ce
        if self.high_acked >= self.round_end:  # a round ended: update alpha
            if self.round_acked:
                self.alpha += G * (self.round_ce / self.round_acked - self.alpha)
            self.round_acked = self.round_ce = 0
            self.round_end = self.snd_nxt
        if ce and not reduced and self.high_acked >= self.cwr_end:
            self.cwnd = max(2.0, self.cwnd * (1 - self.alpha / 2))
            self.ssthresh = self.cwnd
            self.cwr_end = self.snd_nxt
            self.reductions += 1
            reduced = True
        if delivered and not reduced:
            if self.cwnd < self.ssthresh:
                self.cwnd += delivered
            else:
                self.cwnd += delivered / self.cwnd

    def _rtt(self, rtt: int) -> None:
        if rtt <= 0:
            return
        if self.srtt == 0:
            self.srtt, self.rttvar, self.min_rtt = rtt, rtt // 2, rtt
        else:
            self.rttvar += (abs(self.srtt - rtt) - self.rttvar) // 4
            self.srtt += (rtt - self.srtt) // 8
            self.min_rtt = min(self.min_rtt, rtt)
        self.rtt_sum += rtt
        self.rtt_samples += 1

    def _detect_loss(self, now: int) -> bool:
        """Packets three below the newest acknowledged one are lost; one halving per round."""
        lost = []
        for seq in self.outstanding:
            if seq > self.high_acked - DUPTHRESH:
                break
            lost.append(seq)
        for seq in lost:
            del self.outstanding[seq]
        self.lost += len(lost)
        if lost and self.high_acked >= self.cwr_end:
            self._halve()
            return True
        return False

    def _halve(self) -> None:
        self.cwnd = max(2.0, self.cwnd / 2)
        self.ssthresh = self.cwnd
        self.cwr_end = self.snd_nxt
        self.reductions += 1

    # ------------------------------------------------------------------ timers
    @property
    def rto(self) -> int:
        if not self.srtt:
            return INITIAL_RTO_NS
        return max(MIN_RTO_NS, self.srtt + 4 * self.rttvar)

    def on_tick(self, now: int) -> None:
        """Call regularly: an RTO without feedback declares everything outstanding lost."""
        if self.outstanding and now - self.last_feedback >= self.rto:
            self.timeouts += 1
            self.lost += len(self.outstanding)
            self.outstanding.clear()
            self._halve()
            self.cwnd = 1.0
            self.last_feedback = now
