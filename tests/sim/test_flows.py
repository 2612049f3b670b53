"""Traffic models and chain functions inside whole simulations of small programs."""

from __future__ import annotations

import pytest

from mosaico_dsl.sim import simulate
from mosaico_dsl.sim.engine import Engine
from mosaico_dsl.sim.tcp import CUBIC_BETA, CUBIC_C, TcpSender

from .conftest import FLAGSHIP, line_program

PAYLOAD = 1448


def _goodput_bytes(result, name):
    i = result.traces.flow_names.index(name)
    return int(result.traces.goodput[i].sum())


def test_a_finite_transfer_survives_losses_and_arrives_whole():
    # A 5 ms FIFO at 12 Mb/s holds 5 packets: slow start overflows it and loses packets.
    r = simulate(line_program(queue="std.l4s.Fifo(buffer: 5ms)"), duration="10s",
                 traffic="reno[bytes=2MB]")
    f = r.flow("reno#1")
    assert f.dropped > 0 and f.retransmits >= f.dropped - f.timeouts * 10
    segments = -(-2_000_000 // PAYLOAD)
    assert _goodput_bytes(r, "reno#1") == segments * PAYLOAD  # in order, nothing missing


def test_prague_alone_fills_the_link_with_a_shallow_queue():
    r = simulate(line_program(), duration="10s", traffic="prague:1")
    b = r.bottleneck
    assert b.utilisation > 0.9
    # At 12 Mb/s one packet takes 1 ms, longer than the ramp's 0.8 ms start, and the ramp
    # marks a packet only with more than Th_len = 1 others behind it: alone, Prague keeps
    # two to four packets queued, a few milliseconds.
    assert r.l4s.occupancy.p50 >= 2
    assert r.l4s.delay_ms.p99 < 5.0 and r.l4s.occupancy.p99 <= 5
    assert r.l4s.aqm_drops == 0 and r.l4s.marks > 0
    assert r.flow("prague#1").retransmits == 0


def test_classic_ecn_flows_are_marked_not_dropped():
    r = simulate(line_program(), duration="10s", traffic="reno[ecn=ect0]")
    rec = r.traces.queue["s1->server"]
    drops_at = rec[rec[:, 7] == 2][:, 1] / 1e9
    marks_at = rec[rec[:, 7] == 1][:, 1] / 1e9
    # ECT(0) is dropped only while p' ≥ 1/k (p_C ≥ p_Cmax): the slow-start overshoot
    assert (drops_at < 3).all()
    assert (marks_at > 3).sum() > 10
    f = r.flow("reno#1")
    assert 0 <= r.classic.marks - f.ce_received <= 40  # the rest were in flight at the end
    assert 5 < r.classic.delay_ms.p50 < 25  # PI2 holds the Classic queue near 15 ms


def test_flows_start_and_stop_when_told():
    r = simulate(line_program(), duration="6s", traffic="cubic@2s-4s")
    i = r.traces.flow_names.index("cubic#1")
    per_bin = r.traces.goodput[i]
    bin_s = r.traces.bin_ns / 1e9
    active = [k for k, v in enumerate(per_bin) if v]
    assert (min(active) + 1) * bin_s > 2.0 and min(active) * bin_s < 2.2  # bin of 2.0x s
    assert 3.9 <= max(active) * bin_s < 4.5
    f = r.flow("cubic#1")
    assert (f.start_s, f.stop_s) == (2.0, 4.0)


def test_cbr_delivers_its_rate_through_the_l_queue():
    r = simulate(line_program(match="ipv4.dst == server"), duration="5s",
                 traffic="cbr[rate=2Mbps,ecn=ect1,size=1000B]")
    f = r.flow("cbr#1")
    assert f.klass == "l4s" and f.dropped == 0
    assert f.sent == pytest.approx(5 * 2e6 / 8000, abs=2)
    assert f.goodput_bps == pytest.approx(2e6 * (1000 - 28) / 1000, rel=0.02)


def test_onoff_sends_less_than_cbr_at_the_same_rate():
    r = simulate(line_program(match="ipv4.dst == server"), duration="20s",
                 traffic="onoff[rate=2Mbps,on=200ms,off=200ms]")
    sent = r.flow("onoff#1").sent
    assert 0.3 * 5000 < sent < 0.7 * 5000  # about half of 20 s at 250 pps


def test_traffic_no_service_matches_is_dropped_at_the_first_switch_with_a_warning():
    r = simulate(FLAGSHIP, duration="2s", traffic="prague:1,cbr[rate=1Mbps]")
    (w,) = [d for d in r.warnings if d.code == "W1101"]
    assert "cbr#2" in w.message and "matches no service" in w.message
    f = r.flow("cbr#2")
    assert f.received == 0 and f.drops == (("web_ll/classifier", "filter", f.sent),)


def test_widely_spoofed_flood_evades_the_blocklist_but_meets_the_rate_limit():
    # Sources spread over 100.64.0.0/10: none is blocklisted; the 20 kpps police cuts it.
    r = simulate(FLAGSHIP, duration="3s",
                 traffic="flood[rate=30kpps,spoof=100.64.0.0/10]@1s-2s")
    f = r.flow("flood#1")
    rl = next(x for x in r.filters if x.function == "std.security.RateLimit")
    bl = next(x for x in r.filters if x.function == "std.security.Blocklist")
    assert bl.dropped == 0
    assert rl.dropped == pytest.approx(10_000 - 200, abs=300)  # 30k sent, 20k + burst pass
    assert dict(((w, why), n) for w, why, n in f.drops)[("web_ll/1", "filter")] == rl.dropped


def test_syn_guard_limits_syns_per_interval():
    text = line_program(filters="sec.SynGuard(max_syns: 100, interval: 100ms)")
    r = simulate(text, duration="1s", traffic="syn[rate=5kpps,spoof=198.18.0.0/15]")
    g = r.filters[0]
    assert g.function == "std.security.SynGuard"
    assert g.passed == 100 * 10  # 100 per 100 ms window, ten windows
    in_flight = r.flow("syn#1").sent - g.passed - g.dropped
    assert 0 <= in_flight <= 5  # sent in the last 1 ms, still on the 1 ms link


def test_a_vnf_detour_adds_its_links_and_processing_latency():
    direct = simulate(line_program(filters="sec.RateLimit(rate: 20kpps)"), duration="3s",
                      traffic="prague:1")
    detour = simulate(line_program(filters="sec.RateLimit(rate: 20kpps) @nfvi1"),
                      duration="3s", traffic="prague:1")
    assert [p.name for p in detour.ports] == ["client->s1", "s1->nfvi1", "nfvi1->s1",
                                              "s1->server"]
    assert detour.filters[0].node == "nfvi1"
    extra = detour.flow("prague#1").min_rtt_ms - direct.flow("prague#1").min_rtt_ms
    # two 50 µs links, 30 µs of Linux RateLimit instead of 1 µs on the switch, serialisation
    assert 0.1 < extra < 0.4


def test_functions_without_a_model_pass_traffic_and_warn():
    text = line_program(filters="Dpi()").replace(
        "from std.fwd import Forward",
        "from std.fwd import Forward\n\nfunction Dpi(depth: int = 4) : filter {\n"
        "  targets {\n    linux { vcpu: 2 }\n  }\n  latency {\n    linux: 100us\n  }\n}")
    r = simulate(text, duration="2s", traffic="reno:1")
    (w,) = [d for d in r.warnings if d.code == "W1102"]
    assert "Dpi" in w.message
    assert r.flow("reno#1").received > 100


def _sender(cc: str, **kw) -> TcpSender:
    return TcpSender(Engine(), None, cc, ecn=0, pacing=False, size=1500, limit=None, stop=None,
                     **kw)


def test_cubic_follows_its_window_function_after_a_loss():
    sender = _sender("cubic")
    sender.cwnd, sender.ssthresh = 100, 50
    sender._congestion(0, loss=True)
    assert sender.cwnd == int(100 * CUBIC_BETA) == 70  # Linux: snd_cwnd · 717 / 1024, floored
    k = ((100 - 70) / CUBIC_C) ** (1 / 3)
    t = 0
    while t < int(k * 1e9):  # ACKs at 1 ms intervals up to the plateau
        t += 1_000_000
        sender._grow(t, 1, in_cwr=False)
    assert sender.cwnd == pytest.approx(100, rel=0.03)  # back to W_max at t = K
    for _ in range(2000):
        t += 1_000_000
        sender._grow(t, 1, in_cwr=False)
    assert sender.cwnd >= CUBIC_C * 2 ** 3 + 100 - 1  # at least W(K + 2 s), beyond W_max


def test_without_a_queue_function_the_egress_is_bmv2s_64_packet_fifo():
    r = simulate(line_program(queue=""), duration="5s", traffic="cubic:1")
    b = r.bottleneck
    assert (b.name, b.discipline, b.function) == ("s1->server", "switch", None)
    assert r.classic.occupancy.max == 64 and r.classic.overflow_drops > 0
    assert r.classic.delay_ms.max == pytest.approx(64, abs=1.5)  # 64 packets of 1 ms


def test_acks_are_replies_and_skip_the_detour():
    # The Blocklist is pinned on `a`, off the shortest path: requests detour
    # client → s1 → a → s1 → b → s3 → server (14 ms). ACKs are replies: they take the route
    # reversed with the detour cut, server → s3 → b → s1 → client (4 ms), through no
    # function. One segment: one RTT sample, no queue anywhere.
    text = """import std.security as sec
from std.fwd import Forward
topology t {
  switch s1 : bmv2 { ports: 4 }
  switch a : bmv2 { ports: 2 }
  switch b : bmv2 { ports: 2 }
  switch s3 : bmv2 { ports: 4 }
  endpoint client { ip: 10.0.1.1, trusted: true }
  endpoint server { ip: 10.0.2.1 }
  link client -- s1.0 { bandwidth: 10Gbps, delay: 1ms }
  link s1.1 -- a.0 { bandwidth: 10Gbps, delay: 5ms }
  link a.1 -- s3.1 { bandwidth: 10Gbps, delay: 5ms }
  link s1.2 -- b.0 { bandwidth: 10Gbps, delay: 1ms }
  link b.1 -- s3.2 { bandwidth: 10Gbps, delay: 1ms }
  link s3.0 -- server { bandwidth: 10Gbps, delay: 1ms }
}
service web on t {
  match ipv4.dst == server and tcp.dport == 80
  from client
  chain { sec.Blocklist(prefixes: [203.0.113.0/24]) @ a -> Forward(to: server) }
}
"""
    r = simulate(text, duration="1s", traffic="reno[bytes=1448B]")
    (route,) = _placement(text).routes
    assert route.reply_nodes == ("server", "s3", "b", "s1", "client"), route
    assert r.flow("reno#1").mean_rtt_ms == pytest.approx(14 + 4, abs=0.05)


def _placement(text: str):
    from mosaico_dsl import compiler
    from mosaico_dsl.place import place
    return place(compiler.check(text))


def test_tcp_on_a_service_that_drops_replies_never_connects():
    text = line_program().replace("  chain {", "  reply drop\n  chain {")
    r = simulate(text, duration="10s", traffic="cubic")
    (w,) = [d for d in r.warnings if d.code == "W1103"]
    assert "reply drop" in w.message
    f = r.flow("cubic#1")
    # Only SYNs: at 0, 1, 3 and 7 s (RFC 6298 backoff from 1 s), no data, no goodput.
    assert (f.sent, f.received, f.timeouts) == (4, 4, 3)
    assert _goodput_bytes(r, "cubic#1") == 0
    # Open-loop traffic needs no replies and is unaffected.
    udp = simulate(text, duration="2s", traffic="cbr[rate=1Mbps,dport=80]")
    assert not [d for d in udp.warnings if d.code == "W1103"]


@pytest.mark.parametrize("cc", ["cubic", "reno"])
def test_linux_windows_are_whole_segments_and_a_cut_drops_the_partial_count(cc):
    """snd_cwnd is an integer: ssthresh rounds down, and tcp_init_cwnd_reduction zeroes
    snd_cwnd_cnt, so ACKs counted towards the next increment are lost at every cut."""
    sender = _sender(cc)
    sender.cwnd, sender.ssthresh = 9, 9
    t = 0
    for _ in range(5):  # five ACKs: not yet the nine Reno needs for one more segment
        t += 1_000_000
        sender._grow(t, 1, in_cwr=False)
    assert sender.cwnd == 9 and sender.cwnd_cnt > 0
    sender._congestion(t, loss=False)
    assert sender.cwnd == (6 if cc == "cubic" else 4) and sender.cwnd_cnt == 0


def test_cubic_stays_reno_friendly_at_linux_rate_above_w_max():
    """Linux's Reno-friendly estimate grows 3(1−β)/(1+β) ≈ 0.53 segment per round whatever
    W_max is; RFC 9438 would switch to 1 per round once it passes W_max. From 7 segments
    after a cut from 10, twenty 10 ms rounds must give about 7 + 0.53 · 20, not ~24."""
    sender = _sender("cubic")
    sender.cwnd, sender.ssthresh = 10, 10
    sender._congestion(0, loss=True)
    assert (sender.cwnd, sender.w_max) == (7, 10)
    t = 0
    for _ in range(20):
        acks = sender.cwnd
        for _ in range(acks):
            t += 10_000_000 // acks
            sender._grow(t, 1, in_cwr=False)
    assert 15 <= sender.cwnd <= 19


class _Sink:
    """The first stage of a stub flow's path: records when packets leave the sender."""

    def __init__(self) -> None:
        self.times: list[int] = []

    def arrive(self, t, pkt) -> None:
        self.times.append(t)


class _Flow:
    def __init__(self) -> None:
        self.path = [_Sink()]
        self.src_ip = 1


@pytest.mark.parametrize(("cc", "gap_ms"), [("prague", 1.0), ("reno", 10 / 12)])
def test_pacing_rate_in_congestion_avoidance(cc, gap_ms):
    """Linux paces at cwnd/srtt × 1.2 (tcp_pacing_ca_ratio) in congestion avoidance;
    Prague sets its own rate at × 1 (prague_update_pacing_rate)."""
    flow = _Flow()
    sender = TcpSender(Engine(), flow, cc, ecn=0, pacing=True, size=1500, limit=None,
                       stop=None)
    sender.cwnd, sender.ssthresh, sender.srtt = 10, 10, 10_000_000
    sender.start(0)
    sender.engine.run(500_000_000)  # no ACK comes back: ten packets, before the 1 s RTO
    times = flow.path[0].times
    assert len(times) == 10
    assert (times[-1] - times[0]) / 9 / 1e6 == pytest.approx(gap_ms, rel=1e-3)


def test_prague_grows_only_from_segments_acked_without_ce():
    """prague_update_cwnd: ``acked -= rs->ece_delta`` — the additive increase counts the
    segments delivered unmarked: 100 ACKs of which every other one is CE-marked grow the
    window exactly as 50 unmarked ones do."""
    def grow(acks: int, every_other_marked: bool) -> float:
        sender = _sender("prague")
        sender.cwnd, sender.ssthresh = 10.0, 10
        sender.snd_nxt, sender.round_end, sender.cwr_end = 1000, 10**9, 10**9
        for i in range(acks):  # no round ends, no cut: only the additive increase
            sender.on_ack((i + 1) * 1_000_000, (i + 1, i, every_other_marked and i % 2 == 0, 0))
        return sender.cwnd

    assert grow(100, True) == pytest.approx(grow(50, False), abs=1e-12)
    assert grow(100, False) > grow(50, False) + 3
