"""TCP senders and receivers: Prague (L4S), Reno and CUBIC (Classic).

What is modelled, per packet:

* **Reliability** — a SACK scoreboard (every ACK acknowledges cumulatively and selectively
  the segment that triggered it); a segment is lost once three later segments are SACKed
  (DupThresh, RFC 6675); lost segments are retransmitted first; an RTO (RFC 6298, 200 ms
  minimum, exponential backoff) marks everything outstanding lost and restarts from one
  segment. RTT samples come from echoed timestamps, so retransmissions are unambiguous.
* **Congestion control** — slow start from 10 segments; one reduction per round trip:
  Reno halves, CUBIC (RFC 9438: C = 0.4, β = 0.7, fast convergence, Reno-friendly region)
  multiplies by β, on loss and on an ECN echo (RFC 3168); Prague keeps DCTCP's
  α ← (1 − g)·α + g·F (g = 1/16, F the CE fraction of the last round, exact through
  Accurate ECN per-ACK feedback), cuts ``cwnd·α/2`` once per round with CE, grows by one
  segment per round, and halves on loss like Reno.
* **Pacing** — Linux's: ``cwnd·size/srtt`` × 2 in slow start, × 1.2 after; on by
  default for Prague (L4S senders must pace), off for Reno and CUBIC (ACK-clocked bursts).

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
INITIAL_CWND = 10.0
CUBIC_C = 0.4
CUBIC_BETA = 0.7
DCTCP_G = 1 / 16
CONGESTION_CONTROLS = ("prague", "reno", "cubic")


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
        self.cwnd = INITIAL_CWND
        self.ssthresh = float("inf")
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
        # CUBIC
        self.w_max = 0.0
        self.epoch = -1
        self.k = 0.0
        self.origin = 0.0
        self.w_est = 0.0
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
                ratio = 2.0 if self.cwnd < self.ssthresh / 2 else 1.2
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
        self.cwnd = 1.0
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

        if not reduced and delivered and self.snd_una >= self.recovery_end:
            self._grow(t, delivered, in_cwr=self.snd_una < self.cwr_end)
        if t >= self.next_sample:
            self.cwnd_trace.append((t, self.cwnd))
            self.next_sample = t + self.sample_ns
        self._send(t)

    # ------------------------------------------------------------------ congestion control
    def _congestion(self, t: int, loss: bool) -> None:
        """One multiplicative decrease (loss, or a Classic ECN echo)."""
        if self.cc == "cubic":
            if self.cwnd < self.w_max:
                self.w_max = self.cwnd * (1 + CUBIC_BETA) / 2  # fast convergence
            else:
                self.w_max = self.cwnd
            self.cwnd = max(2.0, self.cwnd * CUBIC_BETA)
            self.epoch = -1
        else:
            self.cwnd = max(2.0, self.cwnd / 2)
        self.ssthresh = self.cwnd

    def _grow(self, t: int, acked: int, in_cwr: bool) -> None:
        if self.cwnd < self.ssthresh:
            self.cwnd = min(self.cwnd + acked, self.ssthresh) if self.ssthresh != \
                float("inf") else self.cwnd + acked
            return
        if self.cc == "cubic":
            if in_cwr:
                return
            self._cubic(t, acked)
        elif self.cc == "reno":
            if not in_cwr:
                self.cwnd += acked / self.cwnd
        else:  # prague: +1 segment per round, also in the round after a cut
            self.cwnd += acked / self.cwnd

    def _cubic(self, t: int, acked: int) -> None:
        cwnd = self.cwnd
        if self.epoch < 0:
            self.epoch = t
            if cwnd < self.w_max:
                self.k = ((self.w_max - cwnd) / CUBIC_C) ** (1 / 3)
                self.origin = self.w_max
            else:
                self.k = 0.0
                self.origin = cwnd
            self.w_est = cwnd
        elapsed = (t - self.epoch + self.min_rtt) / NS
        target = self.origin + CUBIC_C * (elapsed - self.k) ** 3
        target = min(max(target, cwnd), 1.5 * cwnd)
        alpha = 1.0 if self.w_est >= self.w_max else 3 * (1 - CUBIC_BETA) / (1 + CUBIC_BETA)
        self.w_est += alpha * acked / cwnd
        if self.w_est > target:
            self.cwnd = max(cwnd, self.w_est)
        else:
            self.cwnd = cwnd + (target - cwnd) / cwnd * acked


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
