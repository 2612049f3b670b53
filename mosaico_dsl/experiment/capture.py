"""Passive capture at an endpoint's device: every IPv4 packet with the kernel's timestamp.

An ``AF_PACKET`` socket sees a packet as the device sends or receives it — after TCP
segmented and queued it, before anything parses it on the way in — and stamps it with the
kernel clock (``SO_TIMESTAMPNS``, CLOCK_REALTIME). The sender's capture and the
receiver's capture run on one machine, one clock: the difference is the packet's one-way
delay, and a packet the sender's side saw and the receiver's never did was lost. Nothing
is sent: measuring does not load what it measures.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

__all__ = ["Capture", "PACKET_HOST", "PACKET_OUTGOING"]

ETH_P_IP = 0x0800
ETH_P_ALL = 0x0003  # sent packets reach only ETH_P_ALL sockets (dev_queue_xmit_nit)
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_HOST, PACKET_OUTGOING = 0, 4
_TIMESPEC = struct.Struct("@qq")
_STATS = struct.Struct("@II")
_BUFFER = 16 << 20
# asm-generic/socket.h, which Python's socket module does not name (64-bit time_t: the
# "old" timestamp options carry a struct timespec of two longs)
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35


class Capture:
    """IPv4 packets on ``interface``, received (``outgoing=False``) or sent (``True``)."""

    def __init__(self, interface: str, *, outgoing: bool) -> None:
        self.outgoing = outgoing
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, _BUFFER)
        except OSError:  # without CAP_NET_ADMIN: as much as rmem_max allows
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _BUFFER)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind((interface, ETH_P_ALL))
        self.sock.setblocking(False)
        self._cmsg = socket.CMSG_SPACE(_TIMESPEC.size)
        self.packets = 0
        self.dropped = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self, limit: int = 4096) -> Iterator[tuple[int, bytes]]:
        """The packets waiting now, as ``(kernel time ns, IPv4 packet)``."""
        want = PACKET_OUTGOING if self.outgoing else None
        for _ in range(limit):
            try:
                data, anc, _, addr = self.sock.recvmsg(65535, self._cmsg)
            except (BlockingIOError, InterruptedError):
                return
            if addr[1] != ETH_P_IP:
                continue
            kind = addr[2]
            if want is not None and kind != want or want is None and kind == PACKET_OUTGOING:
                continue
            ts = 0
            for level, typ, blob in anc:
                if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack_from(blob)
                    ts = sec * 1_000_000_000 + nsec
            yield ts, data

    def statistics(self) -> tuple[int, int]:
        """``(packets, dropped)`` since the last call, as the kernel counted them (reading
        resets them); accumulated in :attr:`packets` and :attr:`dropped`."""
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size)
        packets, dropped = _STATS.unpack(raw)
        self.packets += packets
        self.dropped += dropped
        return packets, dropped

    def close(self) -> None:
        self.sock.close()
