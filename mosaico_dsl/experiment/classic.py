"""The Classic sender's agent: the kernel's own TCP (CUBIC or Reno), measured passively.

One process per flow in the source endpoint's namespace: a TCP connection from the flow's
port with ``TCP_CONGESTION`` set, written as fast as the connection takes data until the
stop time (or the transfer's last byte). ``TCP_NOTSENT_LOWAT`` keeps at most 64 KiB
unsent in the socket, so the flow stops within a few packets of its stop time instead of
draining a send buffer of seconds. Measured without touching the flow:

* every segment the device sends (:class:`.capture.Capture`, outgoing) — with the
  receiver's capture, each one's one-way delay, or its loss;
* the kernel's view every 10 ms (``TCP_INFO``): smoothed RTT, cwnd, retransmissions,
  bytes acknowledged, CE deliveries.
"""

from __future__ import annotations

import selectors
import socket
import struct
import time

from . import wire
from .capture import Capture
from .records import Table
from .tasks import AgentTask, FlowTask

__all__ = ["run_tcp", "tcp_info", "TcpInfo", "SAMPLE_NS"]

SAMPLE_NS = 10_000_000
_CHUNK = 1 << 16
_NOTSENT_LOWAT = 1 << 16
TCP_NOTSENT_LOWAT = 25
_INFO_SIZE = 232
_U32 = struct.Struct("@I")
_U64 = struct.Struct("@Q")
# byte offsets in struct tcp_info (include/uapi/linux/tcp.h)
_OFFSETS = {"rtt_us": (68, _U32), "rttvar_us": (72, _U32), "ssthresh": (76, _U32),
            "cwnd": (80, _U32), "total_retrans": (100, _U32), "bytes_acked": (120, _U64),
            "min_rtt_us": (148, _U32), "delivered": (192, _U32), "delivered_ce": (196, _U32),
            "bytes_sent": (200, _U64)}
TcpInfo = dict[str, int]


def tcp_info(sock: socket.socket) -> TcpInfo:
    """The fields of ``TCP_INFO`` the experiment records (0 where the kernel is older)."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _INFO_SIZE)
    return {k: (s.unpack_from(raw, off)[0] if len(raw) >= off + s.size else 0)
            for k, (off, s) in _OFFSETS.items()}


def run_tcp(task: AgentTask, flow: FlowTask, ready, wait_for_start
            ) -> tuple[dict[str, Table], dict]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, flow.congestion.encode())
    sock.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, _NOTSENT_LOWAT)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((flow.src_ip, flow.sport))
    capture = Capture(task.interface, outgoing=True)
    tx = Table("t_ns", "ident", "seq", "length", "flags", "ecn")
    info = Table("t_ns", *_OFFSETS)
    ready()
    t0 = wait_for_start()
    start, stop, end = t0 + flow.start_ns, t0 + flow.stop_ns, t0 + task.end_ns
    while (now := time.time_ns()) < start:
        time.sleep(min(0.05, (start - now) / 1e9))
    sock.settimeout(5.0)
    sock.connect((flow.dst_ip, flow.dport))
    sock.setblocking(False)
    limit = flow.max_packets * (flow.size - wire.IPV4.size - wire.TCP.size)
    written = 0
    chunk = bytes(_CHUNK)
    sel = selectors.DefaultSelector()
    sel.register(capture, selectors.EVENT_READ, "capture")
    sel.register(sock, selectors.EVENT_WRITE, "send")
    sending = True
    next_sample = time.time_ns()
    last: TcpInfo = {}
    try:
        while (now := time.time_ns()) < end:
            if sending and (now >= stop or written >= limit):
                sending = False
                sel.unregister(sock)
            for key, _ in sel.select(min(0.01, (end - now) / 1e9)):
                if key.data == "send":
                    try:
                        written += sock.send(chunk[:max(0, min(_CHUNK, limit - written))])
                    except (BlockingIOError, InterruptedError):
                        pass
                else:
                    for ts, pkt in capture.drain():
                        p = wire.parse(pkt)
                        if (p is not None and p.proto == 6 and p.sport == flow.sport
                                and p.dport == flow.dport):
                            tx.add(ts - t0, p.ident, p.seq, p.length, p.flags, p.ecn)
            if now >= next_sample:
                last = tcp_info(sock)
                info.add(now - t0, *last.values())
                next_sample += SAMPLE_NS
            if not sending and last.get("bytes_acked", 0) >= written and now >= stop:
                break  # everything written was acknowledged
    finally:
        capture.statistics()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        capture.close()
        sel.close()
    meta = {"written": written, "capture_packets": capture.packets,
            "capture_dropped": capture.dropped, **{f"last_{k}": v for k, v in last.items()}}
    return {"tx": tx, "info": info}, meta
