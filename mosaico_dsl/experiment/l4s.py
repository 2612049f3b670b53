"""The L4S sender's agent: ECT(1) segments paced by :class:`.prague.ScalableController`.

One process per flow in the source endpoint's namespace. It writes whole IPv4 packets on
a raw socket (``IPPROTO_RAW``: the ECN field is ours to set, and the kernel adds nothing
but the header checksum) and reads the receiver's feedback on a raw TCP socket. It
captures its own packets as the device sends them: their departure time, free of the
process's scheduling. A listening TCP socket on its own port makes the kernel discard the
feedback segments instead of answering them with resets (:mod:`.wire`). It stops at its
stop time or after ``max_packets``, whichever comes first, then waits up to one RTO for
the last feedback.
"""

from __future__ import annotations

import select
import socket
import time
from ipaddress import IPv4Address

from . import wire
from .capture import Capture
from .prague import ScalableController
from .records import Table
from .tasks import AgentTask, FlowTask

__all__ = ["run_l4s", "SAMPLE_NS"]

SAMPLE_NS = 10_000_000  # the controller's state is recorded every 10 ms
_MAX_WAIT = 0.005


def run_l4s(task: AgentTask, flow: FlowTask, ready, wait_for_start
            ) -> tuple[dict[str, Table], dict]:
    me, dst = IPv4Address(flow.src_ip), IPv4Address(flow.dst_ip)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((flow.src_ip, flow.sport))
    listener.listen(1)
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.setblocking(False)
    capture = Capture(task.interface, outgoing=True)
    sent = Table("seq", "t_ns")
    wire_tx = Table("seq", "t_ns")  # when each packet left the device (kernel time)
    state = Table("t_ns", "cwnd_milli", "alpha_micro", "srtt_ns", "in_flight")
    cc = ScalableController(pacing=flow.pacing)
    errors = 0
    ready()
    t0 = wait_for_start()
    start, stop, end = t0 + flow.start_ns, t0 + flow.stop_ns, t0 + task.end_ns
    while (now := time.time_ns()) < start:
        time.sleep(min(0.05, (start - now) / 1e9))
    next_sample = start
    try:
        while True:
            now = time.time_ns()
            sending = now < stop and cc.sent < flow.max_packets
            while sending and cc.can_send(now) and cc.sent < flow.max_packets:
                seq = cc.on_send(now)
                pkt = wire.ip_header(me, dst, 6, flow.ecn, flow.size, ident=seq) + \
                    wire.data_segment(me, dst, flow.sport, flow.dport, seq, now, flow.size,
                                      flow.index)
                try:
                    tx.sendto(pkt, (flow.dst_ip, 0))
                except OSError:
                    errors += 1  # dropped before the wire: the controller will see a loss
                sent.add(seq, now - t0)
            for ts, pkt in capture.drain():
                p = wire.parse(pkt)
                if p is not None and p.kind == wire.DATA and p.sport == flow.sport \
                        and p.dport == flow.dport:
                    wire_tx.add(p.seq, ts - t0)
            while True:
                try:
                    data = rx.recv(65535)
                except (BlockingIOError, InterruptedError):
                    break
                p = wire.parse(data)
                if (p is None or p.kind != wire.FEEDBACK or p.dport != flow.sport
                        or p.sport != flow.dport or p.src != int(dst)):
                    continue
                cc.on_feedback(time.time_ns(), wire.parse_feedback(data, p), p.clock_ns)
            now = time.time_ns()
            cc.on_tick(now)
            if now >= next_sample:
                state.add(now - t0, int(cc.cwnd * 1000), int(cc.alpha * 1e6), cc.srtt,
                          cc.in_flight)
                next_sample += SAMPLE_NS
            if not sending and (not cc.outstanding or now >= min(end, stop + cc.rto)):
                break
            if now >= end:
                break
            at = cc.next_send_at() if sending else None
            wait = _MAX_WAIT if at is None else min(_MAX_WAIT, max(0.0, (at - now) / 1e9))
            select.select([rx], [], [], wait)
        for ts, pkt in capture.drain(limit=1 << 20):
            p = wire.parse(pkt)
            if p is not None and p.kind == wire.DATA and p.sport == flow.sport:
                wire_tx.add(p.seq, ts - t0)
    finally:
        capture.statistics()
        for s in (listener, tx, rx):
            s.close()
        capture.close()
    meta = {"sent": cc.sent, "delivered": cc.delivered, "ce": cc.ce, "lost": cc.lost,
            "timeouts": cc.timeouts, "reductions": cc.reductions, "send_errors": errors,
            "rtt_sum_ns": cc.rtt_sum, "rtt_samples": cc.rtt_samples, "alpha": cc.alpha,
            "min_rtt_ns": cc.min_rtt, "capture_dropped": capture.dropped}
    return {"sent": sent, "wire": wire_tx, "state": state}, meta
