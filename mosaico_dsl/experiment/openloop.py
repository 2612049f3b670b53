"""Open-loop senders: UDP constant bit rate and on/off, and the attacks — floods and SYN
floods from spoofed sources.

One process per flow, writing whole IPv4 packets on a raw socket (``IPPROTO_RAW``), so a
flood can carry any source address of its ``spoof`` prefix, as a botnet behind ingress
filtering (BCP 38) would. ``cbr`` and ``onoff`` packets carry the experiment's number and
clock (:mod:`.wire`), so their one-way delay is measured like the L4S flow's; attack
packets carry nothing of the experiment's: the sink recognises them by source prefix and
port, as the switch's blocklist does.

The schedule is the simulator's — every ``interval``, ``burst`` packets back to back, on
and off periods drawn from exponential distributions — but a user-space process wakes up
about once a millisecond, so above 1 kpps the packets due in a millisecond leave together.
Attack packets are built in advance (1024 of them, sources drawn uniformly from the
prefix) and sent in turn: the sending loop does nothing but ``sendto``.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network

from . import wire
from .records import Table
from .tasks import AgentTask, FlowTask

__all__ = ["run_open_loop", "schedule", "attack_packets", "POOL"]

POOL = 1024
_TICK_NS = 1_000_000
_MAX_BURST = 5000  # packets sent in one wake-up, at most (a stalled sender does not flood)


def schedule(flow: FlowTask, rng: random.Random) -> Iterator[int]:
    """Send times (ns from time zero) of the flow's packets, in order, until its stop."""
    interval = max(1, flow.interval_ns)
    t = flow.start_ns
    on_until = t + _exp(rng, flow.on_ns) if flow.kind == "onoff" else None
    while t < flow.stop_ns:
        if on_until is not None and t >= on_until:
            t += _exp(rng, flow.off_ns or 1)
            on_until = t + _exp(rng, flow.on_ns)
            continue
        for _ in range(max(1, flow.burst)):
            yield t
        t += interval * max(1, flow.burst)


def _exp(rng: random.Random, mean: int) -> int:
    return max(1, int(rng.expovariate(1.0) * mean))


def attack_packets(flow: FlowTask, rng: random.Random, count: int = POOL) -> list[bytes]:
    """Flood (TCP ACK or UDP) or SYN packets from sources drawn uniformly from ``spoof``."""
    net = IPv4Network(flow.spoof or f"{flow.src_ip}/32", strict=False)
    dst = IPv4Address(flow.dst_ip)
    out = []
    for i in range(count):
        src = IPv4Address(int(net.network_address) + rng.randrange(net.num_addresses))
        sport = rng.randrange(1024, 65536)
        if flow.kind == "syn":
            seg = wire.tcp_segment(src, dst, sport, flow.dport, rng.getrandbits(32), 0,
                                   wire.FLAG_SYN, window=64240, options=wire.SYN_OPTIONS)
        elif flow.proto == 6:
            pad = max(0, flow.size - wire.IPV4.size - wire.TCP.size)
            seg = wire.tcp_segment(src, dst, sport, flow.dport, rng.getrandbits(32),
                                   rng.getrandbits(32), wire.FLAG_ACK, pad=pad)
        else:
            pad = max(0, flow.size - wire.IPV4.size - wire.UDP.size)
            seg = wire.udp_datagram(sport, flow.dport, bytes(pad))
        proto = 17 if flow.proto == 17 and flow.kind != "syn" else 6
        out.append(wire.ip_header(src, dst, proto, flow.ecn, wire.IPV4.size + len(seg),
                                  ident=i) + seg)
    return out


def run_open_loop(task: AgentTask, flow: FlowTask, ready, wait_for_start
                  ) -> tuple[dict[str, Table], dict]:
    rng = random.Random(f"mosaico-experiment/{flow.seed}/flow/{flow.index}")
    attack = flow.kind in ("flood", "syn")
    pool = attack_packets(flow, rng) if attack else []
    me, dst = IPv4Address(flow.src_ip), IPv4Address(flow.dst_ip)
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sent = Table("seq", "t_ns")
    errors = 0
    times = schedule(flow, rng)
    ready()
    t0 = wait_for_start()
    end = t0 + task.end_ns
    seq = 0
    nxt = next(times, None)
    try:
        while nxt is not None and seq < flow.max_packets:
            now = time.time_ns()
            if now >= end:
                break
            if t0 + nxt > now:
                time.sleep(min(_TICK_NS, t0 + nxt - now) / 1e9)
                continue
            burst = 0
            while nxt is not None and t0 + nxt <= now and burst < _MAX_BURST \
                    and seq < flow.max_packets:
                if attack:
                    pkt = pool[seq % len(pool)]
                else:
                    body = wire.data_datagram(flow.sport, flow.dport, seq, now, flow.size,
                                              flow.index) if flow.proto == 17 else \
                        wire.data_segment(me, dst, flow.sport, flow.dport, seq, now, flow.size,
                                          flow.index)
                    pkt = wire.ip_header(me, dst, flow.proto, flow.ecn,
                                         wire.IPV4.size + len(body), ident=seq) + body
                try:
                    tx.sendto(pkt, (flow.dst_ip, 0))
                except OSError:
                    errors += 1
                sent.add(seq, now - t0)
                seq += 1
                burst += 1
                nxt = next(times, None)
    finally:
        tx.close()
    planned = min(flow.max_packets,
                  seq + (1 + sum(1 for _ in times) if nxt is not None else 0))
    return {"sent": sent}, {"sent": seq, "send_errors": errors, "planned": planned}
