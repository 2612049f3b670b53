"""TCP senders and receivers: Prague (L4S), Reno and CUBIC (Classic), as Linux runs them.

What is modelled, per packet:

* **Reliability** — a SACK scoreboard (every ACK acknowledges cumulatively and selectively
  the segment that triggered it); a segment is lost once three later segments are SACKed
  (DupThresh, RFC 6675); lost segments are retransmitted first; an RTO (RFC 6298, 200 ms
  minimum, exponential backoff) marks everything outstanding lost and restarts from one
  segment. RTT samples come from echoed timestamps, so retransmissions are unambiguous.
* **Congestion control** — one reduction per round trip, on loss and on an ECN echo
  (RFC 3168), no growth while it lasts. Reno and CUBIC are Linux's ``tcp_cong.c`` and
  ``tcp_cubic.c`` (v5.x), integer arithmetic included: ``snd_cwnd``
  is a whole number of segments grown by ``tcp_cong_avoid_ai`` (one segment per ``cnt``
  ACKed, the partial count dropped at each reduction), Reno halves, CUBIC multiplies by
  717/1024 and keeps Linux's Reno-friendly estimate at a constant 3(1−β)/(1+β) segments per
  round — RFC 9438 raises it to 1 once the estimate passes W_max, Linux does not — and
  recomputes its target at most every HZ/32 while the window is unchanged. At the small
  windows of a low-rate bottleneck these details are worth a segment or two per sawtooth.
  Prague is Linux's ``tcp_prague.c``: DCTCP's α ← (1 − g)·α + g·F (g = 1/16, F the CE
  fraction of the last round, exact through Accurate ECN per-ACK feedback), a cut of
  ``cwnd·α/2`` once per round with CE, a fractional window that grows by one segment per
  round *from the segments ACKed without CE* (``prague_update_cwnd``: ``acked -=
  rs->ece_delta``), also in the round after a cut, and halves on loss.
* **Pacing** — Linux's: ``cwnd·size/srtt`` × 2 while cwnd < ssthresh/2, then × 1.2
  (``tcp_pacing_ca_ratio``), or × 1 for Prague (``prague_update_pacing_rate``: "Pacing is
  set to 100% during AI"); on by default for Prague (L4S senders must pace), off for Reno
  and CUBIC (ACK-clocked bursts).

The receiver acknowledges every segment at once (no delayed ACKs), echoing its timestamp
and whether it arrived CE-marked: for Prague that is Accurate ECN's exact count; for
Classic ECN it is an ECE the sender answers at most once per round, which is what
RFC 3168's ECE/CWR handshake achieves. ACKs travel the reverse path's links (propagation
plus serialisation) and never queue.
"""

from __future__ import annotations

from collections import deque
from heapq import heappush
from typing import Any

from .engine import Engine
from .packet import CE, IP_TCP_HEADER, SYN_SIZE, Packet

__all__ = ["TcpSender", "TcpReceiver", "UnansweredConnect", "CONGESTION_CONTROLS"]

NS = 1_000_000_000
MIN_RTO = 200_000_000
MAX_RTO = 60 * NS
INITIAL_RTO = NS
DUPTHRESH = 3
INITIAL_CWND = 10  # RFC 6928, Linux's TCP_INIT_CWND
INFINITE_SSTHRESH = 0x7FFFFFFF  # Linux's TCP_INFINITE_SSTHRESH
DCTCP_G = 1 / 16
CONGESTION_CONTROLS = ("prague", "reno", "cubic")

# Linux tcp_cubic.c (v5.x): beta = 717/1024, bic_scale = 41 (C = 410/1024), times in
# 1/2^BICTCP_HZ s, jiffies of 1/HZ s (HZ = 1000; tcp_jiffies32).
BICTCP_BETA_SCALE = 1024
CUBIC_BETA_1024 = 717
BICTCP_HZ = 10
HZ = 1000
JIFFY_NS = NS // HZ
CUBE_RTT_SCALE = 41 * 10
CUBE_FACTOR = (1 << (10 + 3 * BICTCP_HZ)) // CUBE_RTT_SCALE
BETA_SCALE = 8 * (BICTCP_BETA_SCALE + CUBIC_BETA_1024) // 3 // (
    BICTCP_BETA_SCALE - CUBIC_BETA_1024)  # 15: Reno-friendly +1 per 15/8 cwnd ACKed
CUBIC_BETA = CUBIC_BETA_1024 / BICTCP_BETA_SCALE
CUBIC_C = CUBE_RTT_SCALE / BICTCP_BETA_SCALE
# cubic_root()'s table: cbrt(x << 18) − 1 for the top bits of x, refined by one Newton step
_CBRT_V = (0, 54, 54, 54, 118, 118, 118, 118, 123, 129, 134, 138, 143, 147, 151, 156,
           157, 161, 164, 168, 170, 173, 176, 179, 181, 185, 187, 190, 192, 194, 197, 199,
           200, 202, 204, 206, 209, 211, 213, 215, 217, 219, 221, 222, 224, 225, 227, 229,
           231, 232, 234, 236, 237, 239, 240, 242, 244, 245, 246, 248, 250, 251, 252, 254)


def cubic_root(a: int) -> int:
    """Linux's ``cubic_root``: a table lookup and one Newton–Raphson step (≈ 0.2 % off)."""
    b = a.bit_length()
    if b < 7:
        return (_CBRT_V[a] + 35) >> 6
    b = ((b * 84) >> 8) - 1
    x = ((_CBRT_V[a >> (b * 3)] + 10) << b) >> 6
    x = 2 * x + a // (x * (x - 1))
    return (x * 341) >> 10


class TcpSender:
    """One bulk (or ``limit``-segment) transfer, sending from ``start`` until ``stop``."""

    def __init__(self, engine: Engine, flow: Any, cc: str, *, ecn: int, pacing: bool,
                 size: int, limit: int | None, stop: int | None) -> None:
        if cc not in CONGESTION_CONTROLS:
            raise ValueError(f"unknown congestion control {cc}")
        self.engine = engine
        self.flow = flow
        self.cc = cc
        self.ecn = ecn
        self.pacing = pacing
        self.size = size
        self.limit = limit  # segments to send (None: unlimited)
        self.stop_at = stop
        # segments: an int for Reno and CUBIC (Linux's snd_cwnd), a float for Prague
        self.cwnd: float = INITIAL_CWND
        self.ssthresh: float = INFINITE_SSTHRESH
        self.cwnd_cnt = 0  # snd_cwnd_cnt: segments ACKed towards the next increment
        self.snd_una = 0
        self.snd_nxt = 0
        self.sacked: set[int] = set()
        self.lost: set[int] = set()  # marked lost, until acknowledged
        self.retx_out: set[int] = set()  # lost and retransmitted, not yet acknowledged
        self.retx_q: deque[int] = deque()
        self.high_sacked = -1
        self.scan = 0
        self.recovery_end = 0  # in loss recovery while snd_una < recovery_end
        self.cwr_end = 0  # one congestion response per round: none before snd_una passes it
        self.srtt = 0
        self.rttvar = 0
        self.min_rtt = 0
        self.rto = INITIAL_RTO
        self.backoff = 1
        self.rto_deadline = 0
        self.rto_pending = False
        self.next_tx = 0
        self.pace_pending = False
        self.active = False
        # Prague / DCTCP
        self.alpha = 1.0
        self.round_end = 0
        self.round_acked = 0
        self.round_ce = 0
        # CUBIC (struct bictcp)
        self._cubic_reset()
        # statistics
        self.sent = 0
        self.retransmits = 0
        self.rtt_sum = 0
        self.rtt_samples = 0
        self.timeouts = 0
        self.cwnd_trace: list[tuple[int, float]] = []  # (t, cwnd), one per sample_ns
        self.sample_ns = 1_000_000
        self.next_sample = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self, t: int, _: Any = None) -> None:
        self.active = True
        self._send(t)

    def stop(self, t: int, _: Any = None) -> None:
        """Stop sending new data (what is outstanding is still delivered)."""
        if self.limit is None or self.limit > self.snd_nxt:
            self.limit = self.snd_nxt

    # ------------------------------------------------------------------ sending
    def _send(self, t: int) -> None:
        if not self.active:
            return
        e = self.engine
        sacked, lost, retx_out = self.sacked, self.lost, self.retx_out
        while (self.snd_nxt - self.snd_una - len(sacked) - len(lost) + len(retx_out)
               < self.cwnd):
            seq = -1
            retx = False
            while self.retx_q:
                s = self.retx_q[0]
                if s < self.snd_una or s in sacked or s not in lost:
                    self.retx_q.popleft()
                    continue
                seq, retx = s, True
                break
            if seq < 0:
                if self.limit is not None and self.snd_nxt >= self.limit:
                    return
                seq = self.snd_nxt
            if self.pacing and t < self.next_tx:
                if not self.pace_pending:
                    self.pace_pending = True
                    heappush(e.heap, (self.next_tx, next(e.counter), self._pace, None))
                return
            if retx:
                self.retx_q.popleft()
                retx_out.add(seq)
                self.retransmits += 1
            else:
                self.snd_nxt += 1
            self.sent += 1
            flow = self.flow
            pkt = Packet(flow, seq, self.size, self.ecn, flow.src_ip, t)
            flow.path[0].arrive(t, pkt)
            if self.pacing and self.srtt:
                ratio = 2.0 if self.cwnd < self.ssthresh / 2 else \
                    1.0 if self.cc == "prague" else 1.2
                gap = int(self.srtt / (self.cwnd * ratio))
                self.next_tx = (self.next_tx if self.next_tx > t else t) + gap
            if not self.rto_pending:
                self._arm_rto(t)

    def _pace(self, t: int, _: Any) -> None:
        self.pace_pending = False
        self._send(t)

    # ------------------------------------------------------------------ timers
    def _arm_rto(self, t: int) -> None:
        self.rto_deadline = t + min(MAX_RTO, self.rto * self.backoff)
        if not self.rto_pending:
            self.rto_pending = True
            e = self.engine
            heappush(e.heap, (self.rto_deadline, next(e.counter), self._on_rto, None))

    def _on_rto(self, t: int, _: Any) -> None:
        self.rto_pending = False
        if self.snd_una >= self.snd_nxt:
            return  # nothing outstanding
        if t < self.rto_deadline:  # re-armed since: sleep until the new deadline
            self.rto_pending = True
            e = self.engine
            heappush(e.heap, (self.rto_deadline, next(e.counter), self._on_rto, None))
            return
        self.timeouts += 1
        self._congestion(t, loss=True)
        self.cwnd = 1
        if self.cc == "cubic":  # tcp_enter_loss → cubictcp_state(TCP_CA_Loss): bictcp_reset
            self._cubic_reset()
        outstanding = [s for s in range(self.snd_una, self.snd_nxt) if s not in self.sacked]
        self.lost.update(outstanding)
        self.retx_out.clear()
        self.retx_q = deque(outstanding)
        self.scan = self.snd_nxt
        self.recovery_end = self.snd_nxt
        self.cwr_end = self.snd_nxt
        self.backoff = min(self.backoff * 2, 64)
        self._arm_rto(t)
        self._send(t)

    # ------------------------------------------------------------------ ACKs
    def on_ack(self, t: int, ack: tuple[int, int, bool, int]) -> None:
        cum, sack, ce, echo = ack
        rtt = t - echo
        if self.srtt == 0:
            self.srtt, self.rttvar, self.min_rtt = rtt, rtt // 2, rtt
        else:
            dev = self.srtt - rtt
            self.rttvar += ((dev if dev >= 0 else -dev) - self.rttvar) // 4
            self.srtt += (rtt - self.srtt) // 8
            if rtt < self.min_rtt:
                self.min_rtt = rtt
        rto = self.srtt + 4 * self.rttvar
        self.rto = rto if rto > MIN_RTO else MIN_RTO
        self.rtt_sum += rtt
        self.rtt_samples += 1
        if self.cc == "cubic" and (self.epoch < 0 or t // JIFFY_NS - self.epoch >= HZ):
            # cubictcp_acked: the minimum RTT, ignoring samples within 1 s of a reduction
            us = rtt // 1000 or 1
            if not self.delay_min or us < self.delay_min:
                self.delay_min = us

        delivered = 0
        if cum > self.snd_una:
            sacked, lost, retx_out = self.sacked, self.lost, self.retx_out
            for s in range(self.snd_una, cum):
                if s in sacked:
                    sacked.discard(s)
                else:
                    delivered += 1
                if s in lost:
                    lost.discard(s)
                    retx_out.discard(s)
            self.snd_una = cum
            self.backoff = 1
            if self.snd_una < self.snd_nxt:
                self._arm_rto(t)
        if sack >= cum and sack not in self.sacked:
            self.sacked.add(sack)
            delivered += 1
            if sack in self.lost:
                self.lost.discard(sack)
                self.retx_out.discard(sack)

        new_loss = False
        if sack > self.high_sacked:
            self.high_sacked = sack
            s = max(self.scan, self.snd_una)
            last = sack - DUPTHRESH
            while s <= last:
                if s not in self.sacked and s not in self.lost:
                    self.lost.add(s)
                    self.retx_q.append(s)
                    new_loss = True
                s += 1
            self.scan = max(self.scan, s)

        reduced = False
        if new_loss and self.snd_una >= self.recovery_end:
            self.recovery_end = self.snd_nxt
            self.cwr_end = self.snd_nxt
            self._congestion(t, loss=True)
            reduced = True
        if self.cc == "prague":
            self.round_acked += delivered
            self.round_ce += ce
            if self.snd_una >= self.round_end:  # a round ended: update alpha
                if self.round_acked:
                    frac = self.round_ce / self.round_acked
                    self.alpha += DCTCP_G * (frac - self.alpha)
                self.round_acked = self.round_ce = 0
                self.round_end = self.snd_nxt
            if ce and not reduced and self.snd_una >= self.cwr_end:
                self.cwnd = max(2.0, self.cwnd * (1 - self.alpha / 2))
                self.ssthresh = self.cwnd
                self.cwr_end = self.snd_nxt
                reduced = True
        elif ce and not reduced and self.snd_una >= self.cwr_end:
            self.cwr_end = self.snd_nxt
            self._congestion(t, loss=False)
            reduced = True

        if self.cc == "prague" and ce:  # prague_update_cwnd: acked -= rs->ece_delta
            delivered = delivered - 1 if delivered else 0
        if not reduced and delivered and self.snd_una >= self.recovery_end:
            self._grow(t, delivered, in_cwr=self.snd_una < self.cwr_end)
        if t >= self.next_sample:
            self.cwnd_trace.append((t, self.cwnd))
            self.next_sample = t + self.sample_ns
        self._send(t)

    # ------------------------------------------------------------------ congestion control
    def _congestion(self, t: int, loss: bool) -> None:
        """One multiplicative decrease (loss, or an ECN echo): the CC's ``ssthresh`` and,
        as Linux's PRR leaves it when the reduction ends, ``cwnd = ssthresh``."""
        if self.cc == "prague":  # prague_enter_loss halves; an ECN echo is handled in on_ack
            self.cwnd = max(2.0, self.cwnd / 2)
        else:
            cwnd = self.cwnd
            if self.cc == "cubic":  # cubictcp_recalc_ssthresh, fast convergence on
                self.epoch = -1
                if cwnd < self.w_max:
                    self.w_max = cwnd * (BICTCP_BETA_SCALE + CUBIC_BETA_1024) // (
                        2 * BICTCP_BETA_SCALE)
                else:
                    self.w_max = cwnd
                cwnd = cwnd * CUBIC_BETA_1024 // BICTCP_BETA_SCALE
            else:  # tcp_reno_ssthresh
                cwnd >>= 1
            self.cwnd = cwnd if cwnd > 2 else 2
            self.cwnd_cnt = 0  # tcp_init_cwnd_reduction
        self.ssthresh = self.cwnd

    def _grow(self, t: int, acked: int, in_cwr: bool) -> None:
        if self.cc == "prague":  # +1 segment per round, also in the round after a cut
            if self.cwnd < self.ssthresh:
                self.cwnd = min(self.cwnd + acked, self.ssthresh)
            else:
                self.cwnd += acked / self.cwnd
            return
        if in_cwr:  # Linux reduces (PRR) in CWR and Recovery, never raises
            return
        cwnd = self.cwnd
        if cwnd < self.ssthresh:  # tcp_slow_start
            grown = min(cwnd + acked, self.ssthresh)
            acked -= grown - cwnd
            self.cwnd = cwnd = grown
            if acked <= 0:
                return
        if self.cc == "cubic":
            self._cubic_update(t, acked)
            w = self.cnt
        else:  # tcp_reno_cong_avoid
            w = cwnd
        # tcp_cong_avoid_ai(tp, w, acked)
        if self.cwnd_cnt >= w:
            self.cwnd_cnt = 0
            cwnd += 1
        self.cwnd_cnt += acked
        if self.cwnd_cnt >= w:
            delta = self.cwnd_cnt // w
            self.cwnd_cnt -= delta * w
            cwnd += delta
        self.cwnd = cwnd

    def _cubic_reset(self) -> None:
        """bictcp_reset: every CUBIC variable to zero (an epoch of -1 means none)."""
        self.cnt = 0
        self.w_max = 0  # last_max_cwnd
        self.last_cwnd = 0
        self.last_time = 0
        self.origin = 0  # bic_origin_point
        self.k = 0  # bic_K, in 1/2^BICTCP_HZ s
        self.delay_min = 0  # µs
        self.epoch = -1  # epoch_start, jiffies
        self.ack_cnt = 0
        self.w_est = 0  # tcp_cwnd: the Reno-friendly estimate

    def _cubic_update(self, t: int, acked: int) -> None:
        """bictcp_update: ``cnt``, the segments to ACK per one-segment increase."""
        self.ack_cnt += acked
        cwnd = self.cwnd
        now = t // JIFFY_NS
        if self.last_cwnd == cwnd and now - self.last_time <= HZ // 32:
            return
        if self.epoch < 0 or now != self.last_time:  # at most once per jiffy
            self.last_cwnd = cwnd
            self.last_time = now
            if self.epoch < 0:
                self.epoch = now
                self.ack_cnt = acked
                self.w_est = cwnd
                if self.w_max <= cwnd:
                    self.k = 0
                    self.origin = cwnd
                else:
                    self.k = cubic_root(CUBE_FACTOR * (self.w_max - cwnd))
                    self.origin = self.w_max
            elapsed = now - self.epoch + (self.delay_min + 999) // 1000  # usecs_to_jiffies
            tk = (elapsed << BICTCP_HZ) // HZ
            offs = self.k - tk if tk < self.k else tk - self.k
            delta = (CUBE_RTT_SCALE * offs * offs * offs) >> (10 + 3 * BICTCP_HZ)
            target = self.origin - delta if tk < self.k else self.origin + delta
            self.cnt = cwnd // (target - cwnd) if target > cwnd else 100 * cwnd
            if self.w_max == 0 and self.cnt > 20:
                self.cnt = 20  # before the first reduction: at least 5 % per round
        # TCP friendliness: the window Reno (with CUBIC's β) would have
        delta = (cwnd * BETA_SCALE) >> 3
        if self.ack_cnt > delta:
            n = (self.ack_cnt - 1) // delta  # the while loop's iterations
            self.ack_cnt -= n * delta
            self.w_est += n
        if self.w_est > cwnd:
            max_cnt = cwnd // (self.w_est - cwnd)
            if self.cnt > max_cnt:
                self.cnt = max_cnt
        if self.cnt < 2:
            self.cnt = 2  # at most 1.5× per round


class TcpReceiver:
    """Reassembles in order, counts goodput per time bin, ACKs every segment at once.

    A receiver touches nothing but its own state and the ACK it schedules, so the last
    port hands packets over when they start their final hop, stamped with their arrival
    time (``terminal``): one event fewer per packet, the same results. Packets that would
    arrive after ``horizon`` (the end of the run) are not counted.
    """

    latency = 0
    terminal = True

    def __init__(self, engine: Engine, flow: Any, sender: TcpSender, ack_delay: int,
                 bin_ns: int, horizon: int) -> None:
        self.engine = engine
        self.flow = flow
        self.sender = sender
        self.ack_delay = ack_delay  # reverse path: propagation + serialisation of an ACK
        self.bin_ns = bin_ns
        self.horizon = horizon
        self.rcv_nxt = 0
        self.ooo: set[int] = set()
        self.received = 0
        self.ce = 0
        self.goodput: dict[int, int] = {}  # time bin -> payload bytes delivered in order

    def arrive(self, t: int, pkt: Packet) -> None:
        if t > self.horizon:
            return
        self.received += 1
        ce = pkt.ecn == CE
        if ce:
            self.ce += 1
        seq = pkt.seq
        if seq == self.rcv_nxt:
            n = 1
            nxt = seq + 1
            ooo = self.ooo
            while nxt in ooo:
                ooo.discard(nxt)
                nxt += 1
                n += 1
            self.rcv_nxt = nxt
            b = t // self.bin_ns
            self.goodput[b] = self.goodput.get(b, 0) + n * (pkt.size - IP_TCP_HEADER)
        elif seq > self.rcv_nxt:
            self.ooo.add(seq)
        e = self.engine
        heappush(e.heap, (t + self.ack_delay, next(e.counter), self.sender.on_ack,
                          (self.rcv_nxt, seq, ce, pkt.sent)))


class UnansweredConnect:
    """A TCP connect whose SYN-ACK never returns (its service has ``reply drop``): the SYN,
    then retransmissions after 1, 2, 4, … s — RFC 6298's initial RTO of 1 s, doubled at
    each timeout (5.5) — until Linux's default ``tcp_syn_retries`` (6) are spent. No data
    is ever sent; the destination's sink counts the SYNs that reach it."""

    RETRIES = 6
    cwnd_trace: tuple = ()

    def __init__(self, engine: Engine, flow: Any, *, ecn: int, stop: int) -> None:
        self.engine = engine
        self.flow = flow
        self.ecn = ecn
        self.stop_at = stop
        self.sent = 0
        self.timeouts = 0

    def start(self, t: int, _: Any = None) -> None:
        self._syn(t, 0)

    def _syn(self, t: int, attempt: Any) -> None:
        if t >= self.stop_at or attempt > self.RETRIES:
            return
        if attempt:
            self.timeouts += 1
        self.sent += 1
        self.flow.path[0].arrive(t, Packet(self.flow, attempt, SYN_SIZE, self.ecn,
                                           self.flow.src_ip, t, True))
        e = self.engine
        heappush(e.heap, (t + (NS << attempt), next(e.counter), self._syn, attempt + 1))

    def stop(self, t: int, _: Any = None) -> None:
        self.stop_at = min(self.stop_at, t)
