"""The packets the experiment writes itself, byte by byte: IPv4, TCP and UDP headers, and
the two segment types of its L4S transport.

The L4S sender's segments are TCP on the wire — the flagship matches ``tcp.dport in {80,
443}``, and a switch classifies on that — with the TCP sequence number counting packets.
The 16 bytes after the TCP header hold a marker, the packet's number and the sender's
clock (open-loop UDP flows carry the same 16 bytes after the UDP header); the receiver's
feedback lists the packets it got since the last one, each
with its CE bit (Accurate ECN's information, per packet). The flags are PSH alone: a
kernel that receives such a segment for a listening socket discards it without a reset
(``tcp_rcv_state_process``, LISTEN: no ACK, no SYN, no RST → discard), so the endpoints
only need a listening socket on the port for the kernel to stay quiet.

Checksums are computed here (RFC 1071); with ``IP_HDRINCL`` Linux fills in the IPv4
header checksum and total length itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

__all__ = ["IPV4", "TCP", "ip_header", "tcp_segment", "udp_datagram", "parse",
           "Parsed", "DATA", "FEEDBACK", "data_segment", "data_datagram", "feedback_segment",
           "parse_feedback", "MAX_FEEDBACK", "TRANSPORT_HEADER", "FLAG_SYN", "FLAG_ACK",
           "FLAG_PSH", "FLAG_RST", "SYN_OPTIONS", "checksum"]

IPV4 = struct.Struct("!BBHHHBBH4s4s")
TCP = struct.Struct("!HHIIBBHHH")
UDP = struct.Struct("!HHHH")
_PSEUDO = struct.Struct("!4s4sBBH")
_DATA = struct.Struct("!HBBIq")  # magic, type, flow, packet number, sender clock (ns)
_FEEDBACK = struct.Struct("!HBBIq")  # magic, type, count, unused, echoed sender clock
_RECORD = struct.Struct("!I")  # sequence number, CE in the top bit
MAGIC = 0x4D34  # "M4"
DATA, FEEDBACK = 1, 2
TRANSPORT_HEADER = _DATA.size  # 16
MAX_FEEDBACK = 64  # records per feedback segment
FLAG_SYN, FLAG_RST, FLAG_PSH, FLAG_ACK = 0x02, 0x04, 0x08, 0x10
_CE_BIT = 1 << 31
_SEQ_MASK = _CE_BIT - 1
IP_DF = 0x4000


def checksum(data: bytes | bytearray | memoryview) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data = bytes(data) + b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip_header(src: IPv4Address, dst: IPv4Address, proto: int, ecn: int, length: int,
              ident: int = 0, ttl: int = 64) -> bytes:
    """An IPv4 header (no options, DF set); the checksum is left to the kernel."""
    return IPV4.pack(0x45, ecn & 3, length, ident & 0xFFFF, IP_DF, ttl, proto, 0,
                     src.packed, dst.packed)


def tcp_segment(src: IPv4Address, dst: IPv4Address, sport: int, dport: int, seq: int,
                ack: int, flags: int, payload: bytes = b"", window: int = 65535,
                pad: int = 0, options: bytes = b"") -> bytes:
    """A TCP header (with ``options``, a multiple of 4 bytes) and payload, then ``pad`` zero
    bytes, with a correct checksum. Zeros add nothing to the sum: padding costs no work."""
    head = TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                    (5 + len(options) // 4) << 4, flags, window, 0, 0) + options
    pseudo = _PSEUDO.pack(src.packed, dst.packed, 0, 6, len(head) + len(payload) + pad)
    csum = checksum(pseudo + head + payload)
    return head[:16] + struct.pack("!H", csum) + head[18:] + payload + bytes(pad)


# A SYN's options as Linux sends them: MSS 1460, SACK permitted, timestamps, NOP, window
# scale 7 — 20 bytes, so a SYN is 60 bytes on the wire (IPv4 20 + TCP 40).
SYN_OPTIONS = bytes([2, 4, 0x05, 0xB4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7])


def udp_datagram(sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP header and payload; checksum 0 (none, allowed over IPv4)."""
    return UDP.pack(sport, dport, UDP.size + len(payload), 0) + payload


def data_segment(src: IPv4Address, dst: IPv4Address, sport: int, dport: int, seq: int,
                 clock_ns: int, size: int, flow: int = 0) -> bytes:
    """A data segment of the L4S transport, ``size`` bytes with the IPv4 header."""
    pad = max(0, size - IPV4.size - TCP.size - _DATA.size)
    return tcp_segment(src, dst, sport, dport, seq, 0, FLAG_PSH,
                       _DATA.pack(MAGIC, DATA, flow & 0xFF, seq & 0xFFFFFFFF, clock_ns), pad=pad)


def data_datagram(sport: int, dport: int, seq: int, clock_ns: int, size: int, flow: int = 0
                  ) -> bytes:
    """A UDP datagram carrying the same marker, number and clock, ``size`` bytes in all."""
    pad = max(0, size - IPV4.size - UDP.size - _DATA.size)
    return udp_datagram(sport, dport, _DATA.pack(MAGIC, DATA, flow & 0xFF, seq & 0xFFFFFFFF,
                                                 clock_ns) + bytes(pad))


def feedback_segment(src: IPv4Address, dst: IPv4Address, sport: int, dport: int, number: int,
                     echo_ns: int, records: list[tuple[int, bool]]) -> bytes:
    """Feedback: the packets received since the last feedback, ``(seq, CE)`` each."""
    body = _FEEDBACK.pack(MAGIC, FEEDBACK, len(records), 0, echo_ns) + b"".join(
        _RECORD.pack((seq & _SEQ_MASK) | (_CE_BIT if ce else 0)) for seq, ce in records)
    return tcp_segment(src, dst, sport, dport, number, 0, FLAG_PSH, body)


@dataclass(frozen=True, slots=True)
class Parsed:
    """What the measurement reads from a received or captured IPv4 packet."""

    src: int
    dst: int
    proto: int
    ecn: int
    length: int  # IPv4 total length
    ident: int
    sport: int
    dport: int
    seq: int  # TCP sequence number; for UDP the experiment's packet number (else 0)
    flags: int  # TCP flags (0 for UDP)
    payload: int  # offset of the transport payload in the packet
    kind: int  # DATA or FEEDBACK for the L4S transport's segments, else 0
    clock_ns: int  # sender clock of a DATA segment, echoed clock of a FEEDBACK


def parse(pkt: bytes | memoryview) -> Parsed | None:
    """Parse an IPv4 packet (from its first byte); None if it is not IPv4 TCP/UDP."""
    if len(pkt) < IPV4.size + UDP.size or pkt[0] >> 4 != 4:
        return None
    ihl = (pkt[0] & 0x0F) * 4
    (_, tos, length, ident, _, _, proto, _, src, dst) = IPV4.unpack_from(pkt, 0)
    src_i, dst_i = int.from_bytes(src, "big"), int.from_bytes(dst, "big")
    if proto == 6 and len(pkt) >= ihl + TCP.size:
        sport, dport, seq, _, off, flags, _, _, _ = TCP.unpack_from(pkt, ihl)
        start = ihl + (off >> 4) * 4
        kind, _, clock = _transport(pkt, start)
        return Parsed(src_i, dst_i, proto, tos & 3, length, ident, sport, dport, seq, flags,
                      start, kind, clock)
    if proto == 17:
        sport, dport, _, _ = UDP.unpack_from(pkt, ihl)
        kind, number, clock = _transport(pkt, ihl + UDP.size)
        return Parsed(src_i, dst_i, proto, tos & 3, length, ident, sport, dport, number, 0,
                      ihl + UDP.size, kind, clock)
    return None


def _transport(pkt: bytes | memoryview, start: int) -> tuple[int, int, int]:
    """``(kind, number, clock)`` of the experiment's 16-byte header, zeros if absent."""
    if len(pkt) >= start + _DATA.size:
        magic, kind, _, number, clock = _DATA.unpack_from(pkt, start)
        if magic == MAGIC and kind in (DATA, FEEDBACK):
            return kind, number, clock
    return 0, 0, 0


def parse_feedback(pkt: bytes | memoryview, p: Parsed) -> list[tuple[int, bool]]:
    """The ``(seq, CE)`` records of a FEEDBACK segment."""
    _, _, count, _, _ = _FEEDBACK.unpack_from(pkt, p.payload)
    start = p.payload + _FEEDBACK.size
    count = min(count, (len(pkt) - start) // _RECORD.size)
    out = []
    for i in range(count):
        (v,) = _RECORD.unpack_from(pkt, start + i * _RECORD.size)
        out.append((v & _SEQ_MASK, bool(v & _CE_BIT)))
    return out
