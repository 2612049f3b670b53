"""The simulator's parts on their own: event loop, ports, filters."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from mosaico_dsl.aqm import dualq as D
from mosaico_dsl.ir.predicate import Cmp, Field
from mosaico_dsl.ir.values import AclRule
from mosaico_dsl.sim.engine import Engine
from mosaico_dsl.sim.filters import Acl, Allowlist, Blocklist, RateLimit, SynGuard
from mosaico_dsl.sim.network import DropLog
from mosaico_dsl.sim.packet import CE, ECT0, ECT1, NOT_ECT, Packet
from mosaico_dsl.sim.ports import AQM_DROP, MARK, OVERFLOW, PASS, DualQPort, FifoPort
from mosaico_dsl.units import Time

MS = 1_000_000


class _Sink:
    latency = 0
    terminal = False

    def __init__(self):
        self.got: list[tuple[int, Packet]] = []

    def arrive(self, t, pkt):
        self.got.append((t, pkt))


class _Flow:
    def __init__(self, fid, path, dst=0x0A000201, proto=6):
        self.id, self.path, self.dst, self.proto = fid, path, dst, proto
        self.drops: dict = {}
        self.fields = {"ipv4.dst": IPv4Address(dst), "ipv4.proto": proto, "tcp.dport": 80}


def _dualq_constants(**over):
    args = {"classic_target": Time(15 * MS), "rtt_max": Time(100 * MS),
            "tupdate": Time(15 * MS), "alpha": 0.15, "beta": 3.0, "coupling": 2.0,
            "l4s_mode": "ramp", "l4s_min_th": Time(800_000), "l4s_range": Time(400_000),
            "th_len": 1, "buffer": Time(250 * MS)}
    args.update(over)
    return D.DualQConstants.from_args(args)


# ---------------------------------------------------------------------------- engine

def test_equal_times_run_in_scheduling_order_and_run_stops_at_the_horizon():
    e, seen = Engine(), []
    for i in range(5):
        e.at(10, lambda t, a: seen.append((t, a)), i)
    e.at(11, lambda t, a: seen.append((t, a)), "late")
    e.run(10)
    assert seen == [(10, i) for i in range(5)]
    e.run(11)
    assert seen[-1] == (11, "late") and e.events == 6


# ---------------------------------------------------------------------------- ports

def _port_and_sink(cls=FifoPort, rate=12_000_000, **kw):
    e, drops, sink = Engine(), DropLog(), _Sink()
    port = cls(e, "p", rate, 5 * MS, drops, **kw)
    flow = _Flow(0, [port, sink])
    return e, port, sink, flow, drops


def test_fifo_serialises_at_the_rate_and_adds_propagation():
    e, port, sink, flow, _ = _port_and_sink()
    for i in range(3):
        e.at(0, lambda t, p: port.arrive(t, p), Packet(flow, i, 1500, NOT_ECT, 1, 0))
    e.run(10**9)
    # 1500 B at 12 Mb/s = 1 ms each, then 5 ms of propagation
    assert [t for t, _ in sink.got] == [6 * MS, 7 * MS, 8 * MS]
    assert [p.seq for _, p in sink.got] == [0, 1, 2]


def test_fifo_tail_drops_beyond_its_limit():
    e, port, sink, flow, drops = _port_and_sink(limit_packets=2, record=True)
    for i in range(5):
        e.at(0, lambda t, p: port.arrive(t, p), Packet(flow, i, 1500, NOT_ECT, 1, 0))
    e.run(10**9)
    # one in transmission, two queued, two refused
    assert [p.seq for _, p in sink.got] == [0, 1, 2]
    assert [r[2] for r in drops.rows] == [3, 4] and port.overflow_drops == 2
    assert sorted(r[7] for r in port.records) == [PASS, PASS, PASS, OVERFLOW, OVERFLOW]


def test_dualq_serves_the_l_queue_first():
    e, port, sink, flow, _ = _port_and_sink(DualQPort, constants=_dualq_constants(),
                                            rng=Random(1))
    order = [(NOT_ECT, 0), (ECT0, 1), (NOT_ECT, 2), (ECT1, 3), (CE, 4)]
    for ecn, seq in order:
        e.at(0, lambda t, p: port.arrive(t, p), Packet(flow, seq, 1500, ecn, 1, 0))
    e.run(10**9)
    # packet 0 was alone and left at once; then both L packets jump the Classic queue
    assert [p.seq for _, p in sink.got] == [0, 3, 4, 1, 2]


def test_dualq_applies_the_integer_model_per_packet():
    """With p' at 1, an ECT(0) Classic packet is dropped (p_C ≥ p_Cmax), Not-ECT dropped,
    an L packet dropped under overload; a packet alone in its queue (deq_qdepth 0 < Th_len)
    passes untouched."""
    e, port, sink, flow, drops = _port_and_sink(DualQPort, constants=_dualq_constants(),
                                                rng=Random(1))
    port.state = replace(D.DualQState(), p=D.MAX_PROB, last_update_us=0)
    ecns = [ECT0, ECT0, NOT_ECT, ECT1, NOT_ECT]
    for i, ecn in enumerate(ecns):
        e.at(0, lambda t, pk: port.arrive(t, pk), Packet(flow, i, 1500, ecn, 1, 0))
    e.run(20 * MS)  # all leave by 1 ms, before the first lazy update (15 ms) lowers p'
    verdicts = {r[3]: r[7] for r in port.records}
    assert verdicts[0] == PASS  # alone in its queue: deq_qdepth 0 < Th_len
    assert [verdicts[i] for i in (3, 1, 2)] == [AQM_DROP] * 3  # L first, then Classic
    assert verdicts[4] == PASS  # the last one leaves an empty port
    assert [p.seq for _, p in sink.got] == [0, 4]


def test_dualq_marks_l_packets_queued_behind_others():
    e, port, sink, flow, _ = _port_and_sink(DualQPort, constants=_dualq_constants(),
                                            rng=Random(3))
    # 40 L packets at once: the L queue delay passes the 1.2 ms ramp end within two packets
    for i in range(40):
        e.at(0, lambda t, p: port.arrive(t, p), Packet(flow, i, 1500, ECT1, 1, 0))
    e.run(10**9)
    codes = [r[7] for r in port.records]
    # the last two leave one and no packet behind: not more than Th_len = 1 (p' is 0)
    assert codes[-2:] == [PASS, PASS]
    assert set(codes[3:-2]) == {MARK}
    assert all(p.ecn == CE for _, p in sink.got[3:-2])


def test_dualq_buffer_is_250ms_at_the_port_rate():
    c = _dualq_constants(buffer=Time(10 * MS))  # 10 ms at 12 Mb/s = 15000 B = 10 packets
    e, port, sink, flow, drops = _port_and_sink(DualQPort, constants=c, rng=Random(1))
    for i in range(15):
        e.at(0, lambda t, p: port.arrive(t, p), Packet(flow, i, 1500, NOT_ECT, 1, 0))
    e.run(10**9)
    # the first leaves at once; 10 fit the buffer; 4 overflow
    assert len(drops.rows) == 4 and {r[4] for r in drops.rows} == {"overflow"}


# ---------------------------------------------------------------------------- filters

def _pkt(src="10.0.0.1", syn=False, flow=None):
    return Packet(flow or _Flow(0, []), 0, 60, NOT_ECT, int(IPv4Address(src)), 0, syn)


def test_blocklist_and_allowlist_match_source_prefixes():
    nets = (IPv4Network("203.0.113.0/24"), IPv4Network("198.51.100.7/32"))
    block = Blocklist("b", "std.security.Blocklist", "s1", nets)
    allow = Allowlist("a", "std.security.Allowlist", "s1", nets)
    for src, listed in [("203.0.113.1", True), ("203.0.114.1", False),
                        ("198.51.100.7", True), ("198.51.100.8", False)]:
        assert block.admit(0, _pkt(src)) is not listed
        assert allow.admit(0, _pkt(src)) is listed
    assert (block.dropped, block.passed, allow.dropped, allow.passed) == (2, 2, 2, 2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2 * MS), min_size=1, max_size=400),
       st.integers(1, 50_000), st.integers(1, 200))
def test_rate_limit_never_passes_more_than_burst_plus_rate_times_time(gaps, rate, burst):
    rl = RateLimit("r", "std.security.RateLimit", "s1", rate, burst, False, 1)
    t = passed = 0
    for g in gaps:
        t += g
        passed += rl.admit(t, _pkt())
    assert passed <= burst + rate * t / 1e9 + 1e-9
    assert passed + rl.dropped == len(gaps)


def test_rate_limit_passes_a_conforming_stream_and_polices_an_excess():
    rl = RateLimit("r", "std.security.RateLimit", "s1", 1000, 10, False, 1)
    ok = sum(rl.admit(i * MS, _pkt()) for i in range(2000))  # exactly 1000 pps
    assert ok == 2000
    rl = RateLimit("r", "std.security.RateLimit", "s1", 1000, 10, False, 1)
    ok = sum(rl.admit(i * MS // 4, _pkt()) for i in range(4000))  # 4000 pps for 1 s
    assert 1000 <= ok <= 1011


def test_rate_limit_per_source_keeps_separate_buckets():
    rl = RateLimit("r", "std.security.RateLimit", "s1", 10, 1, True, 1024)
    assert rl.admit(0, _pkt("10.0.0.1")) and rl.admit(0, _pkt("10.0.0.2"))
    assert not rl.admit(0, _pkt("10.0.0.1"))


def test_syn_guard_counts_syns_per_destination_and_window():
    g = SynGuard("g", "std.security.SynGuard", "s1", 3, 1_000_000_000, 1024)
    flow = _Flow(0, [])
    got = [g.admit(t, _pkt(syn=True, flow=flow)) for t in (0, 1, 2, 3, 4)]
    assert got == [True, True, True, False, False]
    assert g.admit(5, _pkt(syn=False, flow=flow))  # not a SYN: not counted
    assert g.admit(1_000_000_000, _pkt(syn=True, flow=flow))  # a new window


def test_acl_first_matching_rule_decides():
    src = Field("ipv4", "src", "ipv4", 32)
    dport = Field("tcp", "dport", "port", 16)
    rules = (AclRule("deny", Cmp(src, "==", IPv4Network("10.9.0.0/16"))),
             AclRule("allow", Cmp(dport, "==", 80)))
    acl = Acl("x", "std.security.Acl", "s1", rules, "deny")
    assert not acl.admit(0, _pkt("10.9.1.1"))  # first rule
    assert acl.admit(0, _pkt("10.8.1.1"))  # second rule: dport 80
    flow = _Flow(1, [])
    flow.fields["tcp.dport"] = 22
    assert not acl.admit(0, _pkt("10.8.1.1", flow=flow))  # no rule: default deny
