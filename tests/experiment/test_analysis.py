"""From recorded packets to the simulator's figures: pairing, one-way delay less the
path's base, losses, CE marks, goodput, the switch's counters, the filters — on records
built by hand, so every expected number is known."""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path

import numpy as np
import pytest

from mosaico_dsl.backends.p4.metrics import SwitchMetrics
from mosaico_dsl.compiler import compile as compile_program
from mosaico_dsl.experiment.analysis import Recorded, analyse
from mosaico_dsl.experiment.compare import compare
from mosaico_dsl.experiment.records import Table, read_records, write_records
from mosaico_dsl.experiment.sampling import SwitchSamples, cells_of
from mosaico_dsl.experiment.testbed import DualQPort, Station, SwitchAccess, Testbed
from mosaico_dsl.sim.binding import bind_traffic
from mosaico_dsl.sim.run import simulate
from mosaico_dsl.sim.traffic import parse_traffic

MS = 1_000_000
DURATION = 1000 * MS
BASE = 200_000  # 200 µs: the path's latency with empty queues


FLAGSHIP = Path(__file__).resolve().parents[2] / "examples" / "secure_l4s.mosaico"


@pytest.fixture(scope="module")
def flagship():
    return compile_program(FLAGSHIP)


def _read(tmp_path, name, tables, meta=None):
    path = tmp_path / f"{name}.rec"
    write_records(path, tables, meta or {})
    return read_records(path)


def _table(columns, rows):
    t = Table(*columns)
    for r in rows:
        t.add(*r)
    return t


RX = ("t_ns", "src", "sport", "dport", "proto", "ident", "seq", "length", "ecn", "kind",
      "clock_ns", "flags")


@pytest.fixture(scope="module")
def recorded(flagship, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("analysis")
    specs = parse_traffic("prague:1,cubic:1,flood[rate=1kpps]")
    bindings, _ = bind_traffic(flagship.program, flagship.placement, specs,
                               duration_ns=DURATION)
    prague, cubic, flood = bindings
    rx, sent_l, tx_c, app = [], [], [], []
    # L4S: 100 packets, one per ms; queue delay seq % 3 ms; every 4th CE; 10 and 20 lost
    for seq in range(100):
        t = seq * MS
        sent_l.append((seq, t))
        if seq in (10, 20):
            continue
        rx.append((t + BASE + (seq % 3) * MS, int(prague.src_ip), prague.sport, prague.dport,
                   6, seq, seq, 1500, 3 if seq % 4 == 0 else 1, 1, t, 8))
    # Classic (kernel TCP): 100 segments, 15 ms of queue each, 50 and 60 lost
    for i in range(100):
        t = i * MS + 300_000
        tx_c.append((t, 1000 + i, 1448 * i, 1500, 0x18, 0))
        if i in (50, 60):
            continue
        rx.append((t + BASE + 15 * MS, int(cubic.src_ip), cubic.sport, cubic.dport, 6,
                   1000 + i, 1448 * i, 1500, 0, 0, 0, 0x18))
        app.append((t + BASE + 15 * MS, int(cubic.src_ip), cubic.sport, 1448))
    sink = _read(tmp, "sink", {"rx": _table(RX, rx),
                               "app": _table(("t_ns", "src", "sport", "bytes"), app)})
    sources = {
        prague.name: _read(tmp, "prague", {
            "sent": _table(("seq", "t_ns"), sent_l),
            "state": _table(("t_ns", "cwnd_milli", "alpha_micro", "srtt_ns", "in_flight"),
                            [(0, 10000, 10**6, 0, 0)])},
            {"rtt_sum_ns": 4 * MS * 50, "rtt_samples": 50, "min_rtt_ns": 3 * MS,
             "timeouts": 0}),
        cubic.name: _read(tmp, "cubic", {
            "tx": _table(("t_ns", "ident", "seq", "length", "flags", "ecn"), tx_c),
            "info": _table(("t_ns", "rtt_us", "rttvar_us", "ssthresh", "cwnd", "total_retrans",
                            "bytes_acked", "min_rtt_us", "delivered", "delivered_ce",
                            "bytes_sent"), [(0, 16000, 1000, 10, 12, 2, 0, 300, 0, 0, 0)])},
            {"last_total_retrans": 2}),
        flood.name: _read(tmp, "flood", {"sent": _table(("seq", "t_ns"),
                                                        [(i, i * MS) for i in range(1000)])},
                          {"planned": 1000}),
    }
    build = flagship.artifacts["s1/metrics.json"]
    metrics = SwitchMetrics.from_json(json.loads(build))
    port = DualQPort("s1", 0, "s1->server", "server", 12_000_000, 1000)
    sw = SwitchAccess("s1", "ns-s1", 9090, metrics, (port,))
    roles = cells_of(sw)
    end = {}
    for i, r in enumerate(roles):
        if r.metric == "packets":
            end[i] = 98 if r.traffic_class == "l4s" else 100
        elif r.metric == "marks":
            end[i] = 25 if r.traffic_class == "l4s" else 0
        elif r.metric == "drops":
            end[i] = 0 if r.traffic_class == "l4s" else 2
        elif r.metric == "filter_drops":
            end[i] = 1000 if r.instance.endswith("/0") else 0
        elif r.metric == "qdelay":
            end[i] = 1000 if r.traffic_class == "l4s" else 15000
        elif r.metric == "p_prime":
            end[i] = 2**30
    # before time zero; at 0.3 s; at 0.6 s with no packet since (its delay register is
    # stale: not a sample); at the end
    values = np.zeros((4, len(roles)), np.int64)
    values[1:, list(end)] = list(end.values())
    for i, r in enumerate(roles):
        if r.metric == "packets":
            values[1:3, i] = end[i] // 2
    samples = SwitchSamples("s1", roles, np.array([-MS, 300 * MS, 600 * MS, DURATION]),
                            values, values * 1514, np.ones_like(values, bool))
    stations = {n: Station(n, f"ns-{n}", "eth0", IPv4Address(ip)) for n, ip in
                (("l4s_client", "10.0.1.1"), ("classic_client", "10.0.1.2"),
                 ("attacker", "203.0.113.9"), ("server", "10.0.2.1"))}
    return Recorded(bindings, DURATION, sources, {"server": sink}, {"s1": samples},
                    Testbed(stations, {"s1": sw}))


@pytest.fixture(scope="module")
def live(recorded):
    return analyse(recorded, program="secure_l4s.mosaico", traffic="t", seed=1,
                   bin_ns=100 * MS)


def test_base_latency_is_the_smallest_one_way_delay_through_the_port(live):
    assert live.base_owd_ns["s1->server"] == BASE


def test_queue_delay_is_one_way_delay_less_the_base(live):
    l4s, classic = live.result.l4s, live.result.classic
    assert l4s.delay_ms.count == 98 and classic.delay_ms.count == 98
    assert l4s.delay_ms.p50 == pytest.approx(1.0) and l4s.delay_ms.max == pytest.approx(2.0)
    assert classic.delay_ms.p50 == pytest.approx(15.0)
    # occupancy: delay × 1000 pps + the packet itself
    assert classic.occupancy.p50 == pytest.approx(16)


def test_marks_and_drops_come_from_the_switch_counters(live):
    l4s, classic = live.result.l4s, live.result.classic
    assert (l4s.marks, l4s.aqm_drops) == (25, 0)
    assert (classic.marks, classic.aqm_drops) == (0, 2)
    # two L4S packets lost that the DualQ did not drop: counted as overflow
    assert l4s.overflow_drops == 2 and classic.overflow_drops == 0
    assert classic.departed == 98


def test_flows_count_what_each_end_saw(live):
    prague = live.result.flow("prague#1")
    # every 4th packet CE-marked, 20 of them lost: 24 marks arrived
    assert (prague.sent, prague.received, prague.ce_received) == (100, 98, 24)
    assert prague.drops == (("s1->server", "lost", 2),)
    assert prague.mean_rtt_ms == pytest.approx(4.0)
    assert prague.min_rtt_ms == pytest.approx(3.0)  # the sender's own minimum
    cubic = live.result.flow("cubic#2")
    assert (cubic.sent, cubic.received, cubic.retransmits) == (100, 98, 2)
    assert cubic.min_rtt_ms == pytest.approx(0.3)  # TCP_INFO's tcpi_min_rtt
    assert cubic.goodput_bps == pytest.approx(98 * 1448 * 8 / 1.0)
    # the L4S goodput: payload as the simulator counts it (1500 − 52 bytes a packet)
    assert prague.goodput_bps == pytest.approx(98 * 1448 * 8 / 1.0)
    flood = live.result.flow("flood#3")
    assert (flood.sent, flood.received, flood.dropped) == (1000, 0, 1000)


def test_filters_passed_is_what_reached_them_less_their_drops(live):
    f = {x.instance: x for x in live.result.filters}
    assert (f["web_ll/0"].dropped, f["web_ll/0"].passed) == (1000, 200)
    assert (f["web_ll/1"].dropped, f["web_ll/1"].passed) == (0, 200)


def test_switch_delay_samples_are_reported_beside(live):
    d = live.switch_delay_ms["s1->server"]
    assert d["l4s"].tolist() == [1.0, 1.0] and d["classic"].tolist() == [15.0, 15.0]
    # p' read 0 until 0.3 s, then 2^30 / 2^32: a time-weighted mean of 0.7 / 4
    assert live.result.bottleneck.p_prime_mean == pytest.approx(0.175, rel=0.01)


def test_the_live_metrics_have_the_simulators_schema(live, flagship):
    sim = simulate(flagship, duration="1s", traffic="prague:1,cubic:1,flood[rate=1kpps]")
    a, b = live.to_json(), sim.to_json()

    def keys(doc, depth=0):
        if not isinstance(doc, dict) or depth > 3:
            return set()
        return set(doc) | {f"{k}.{x}" for k, v in doc.items() if k not in ("flows", "ports",
                                                                            "filters")
                           for x in keys(v, depth + 1)}

    assert {k for k in keys(a) if not k.startswith("experiment")} == keys(b)
    assert "experiment" in a
    port_a, port_b = a["ports"]["s1->server"], b["ports"]["s1->server"]
    assert set(port_a) == set(port_b)
    assert set(port_a["classes"]["l4s"]) == set(port_b["classes"]["l4s"])
    assert set(a["flows"]["prague#1"]) == set(b["flows"]["prague#1"])


def test_comparison_rows_and_relative_differences(live, flagship):
    sim = simulate(flagship, duration="1s", traffic="prague:1,cubic:1,flood[rate=1kpps]")
    c = compare(sim, live)
    row = c.row("queue delay p50", "classic")
    assert row.live == pytest.approx(15.0)
    assert row.relative == pytest.approx((15.0 - row.sim) / row.sim)
    assert c.row("CE marks", "l4s").live == 25
    assert "| Classic | queue delay p50 (ms) |" in c.markdown()
