"""The experiment's packets, judged by an independent dissector (scapy): headers, flags,
checksums, sizes; and the transport's own fields read back."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP

from mosaico_dsl.experiment import wire

SRC, DST = IPv4Address("10.0.1.1"), IPv4Address("10.0.2.1")


def _valid_checksums(raw: bytes) -> IP:
    """Parse with scapy; recompute the IPv4 and transport checksums and compare."""
    pkt = IP(raw)
    fixed = IP(raw)
    del fixed.chksum
    layer = TCP if TCP in fixed else UDP
    if fixed[layer].chksum:  # UDP checksum 0: none
        del fixed[layer].chksum
    rebuilt = IP(bytes(fixed))
    assert pkt[layer].chksum == rebuilt[layer].chksum
    return pkt


def _with_ip_checksum(header: bytes, body: bytes) -> bytes:
    """What the kernel does for IP_HDRINCL: fill in the header checksum."""
    h = bytearray(header)
    h[10:12] = wire.checksum(bytes(h)).to_bytes(2, "big")
    return bytes(h) + body


def test_data_segment_is_a_valid_ect1_tcp_segment_of_the_asked_size():
    seg = wire.data_segment(SRC, DST, 10000, 80, 42, 123456789, 1500, flow=3)
    raw = _with_ip_checksum(wire.ip_header(SRC, DST, 6, 1, 20 + len(seg), ident=42), seg)
    pkt = _valid_checksums(raw)
    assert len(raw) == 1500 and pkt.len == 1500
    assert pkt.tos & 3 == 1  # ECT(1)
    assert pkt.flags == "DF" and pkt.ttl == 64
    assert (pkt.src, pkt.dst) == ("10.0.1.1", "10.0.2.1")
    t = pkt[TCP]
    assert (t.sport, t.dport, t.seq, t.ack) == (10000, 80, 42, 0)
    assert t.flags == "P"  # PSH alone: a listening socket discards it without a reset
    p = wire.parse(raw)
    assert p is not None and (p.kind, p.seq, p.clock_ns, p.ecn) == (wire.DATA, 42, 123456789, 1)
    assert (p.src, p.dst, p.sport, p.dport, p.length) == (int(SRC), int(DST), 10000, 80, 1500)


def test_syn_is_60_bytes_with_linux_options():
    seg = wire.tcp_segment(SRC, DST, 40000, 80, 7, 0, wire.FLAG_SYN, window=64240,
                           options=wire.SYN_OPTIONS)
    raw = _with_ip_checksum(wire.ip_header(SRC, DST, 6, 0, 20 + len(seg)), seg)
    pkt = _valid_checksums(raw)
    assert len(raw) == 60
    assert pkt[TCP].flags == "S"
    opts = dict((k, v) for k, v in pkt[TCP].options if k != "NOP")
    assert opts["MSS"] == 1460 and opts["WScale"] == 7 and "SAckOK" in opts \
        and "Timestamp" in opts
    assert wire.parse(raw).kind == 0  # not the experiment's


def test_udp_datagram_carries_number_and_clock():
    body = wire.data_datagram(5000, 9, 77, 555, 1200)
    raw = _with_ip_checksum(wire.ip_header(SRC, DST, 17, 2, 20 + len(body)), body)
    pkt = _valid_checksums(raw)
    assert len(raw) == 1200 and pkt[UDP].dport == 9 and pkt.tos & 3 == 2
    p = wire.parse(raw)
    assert (p.proto, p.kind, p.seq, p.clock_ns) == (17, wire.DATA, 77, 555)


@given(st.lists(st.tuples(st.integers(0, 2**31 - 1), st.booleans()), max_size=wire.MAX_FEEDBACK),
       st.integers(0, 2**62), st.integers(0, 2**32 - 1))
def test_feedback_records_round_trip(records, echo, number):
    seg = wire.feedback_segment(DST, SRC, 80, 10000, number, echo, records)
    raw = _with_ip_checksum(wire.ip_header(DST, SRC, 6, 0, 20 + len(seg)), seg)
    p = wire.parse(raw)
    assert p.kind == wire.FEEDBACK and p.clock_ns == echo and p.seq == number
    assert wire.parse_feedback(raw, p) == records
    _valid_checksums(raw)


def test_checksum_of_rfc1071_example():
    # RFC 1071 section 3: the one's complement sum of 0001 f203 f4f5 f6f7 is ddf2.
    assert wire.checksum(bytes.fromhex("0001f203f4f5f6f7")) == (~0xDDF2) & 0xFFFF


def test_parse_refuses_what_is_not_ipv4_tcp_or_udp():
    assert wire.parse(b"\x60" + bytes(40)) is None  # IPv6
    icmp = wire.ip_header(SRC, DST, 1, 0, 28) + bytes(8)
    assert wire.parse(icmp) is None
