"""A simulated packet: what the switch and the hosts read and rewrite on the way."""

from __future__ import annotations

from typing import Any

__all__ = ["Packet", "NOT_ECT", "ECT1", "ECT0", "CE", "IP_TCP_HEADER", "IP_UDP_HEADER",
           "ACK_SIZE", "SYN_SIZE"]

NOT_ECT, ECT1, ECT0, CE = 0, 1, 2, 3  # RFC 3168 codepoints (ECT(1) = 0b01)
IP_TCP_HEADER = 52  # IPv4 20 + TCP 20 + timestamps 12: a 1500 B packet carries 1448 B
IP_UDP_HEADER = 28
ACK_SIZE = 64
SYN_SIZE = 60


class Packet:
    """Per-packet state. Fields that never change within a flow live on the flow.

    ``hop`` indexes the flow's path (the stage the packet is at); ``enq`` is when it entered
    the queue it is in (ns); ``src`` is an int IPv4 address (spoofed per packet by floods).
    """

    __slots__ = ("flow", "seq", "size", "ecn", "src", "syn", "sent", "hop", "enq", "occ")

    def __init__(self, flow: Any, seq: int, size: int, ecn: int, src: int, sent: int,
                 syn: bool = False) -> None:
        self.flow = flow
        self.seq = seq
        self.size = size
        self.ecn = ecn
        self.src = src
        self.syn = syn
        self.sent = sent
        self.hop = 0
        self.enq = 0
        self.occ = 0
