"""The generated programs on the real tools: p4c compiles them without a warning about
generated code and agrees on P4Info; BMv2 runs the flagship between network namespaces and
shows forwarding, blocklisting, replies returned to their client (and nothing else), L4S
CE marking, and Classic drops that rise with the queue.

Marked ``p4c`` / ``bmv2`` / ``root``: they skip (with the reason) where the binaries or root
are missing, and fail there when MOSAICO_REQUIRE_P4TOOLS=1 (CI). The switch runs in a
namespace of its own (its Thrift port is private to it), so concurrent runs do not collide.
Every traffic test checks that its sender produced the load the test relies on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bmv2_support import (
    Bmv2Switch,
    Host,
    Load,
    p4c,
    parse_counter,
    parse_register,
    received,
    send,
    sniff,
    start_switch,
    stop_switch,
)
from google.protobuf import text_format
from p4_support import EXAMPLES, ROOT, switch_dirs

import mosaico_dsl as mo
from mosaico_dsl.p4proto import p4i as P

# Every example and every test program that compiles to P4.
PROGRAMS = (*EXAMPLES, *sorted((ROOT / "tests" / "backends" / "vnf" / "programs").glob(
    "*.mosaico")), *sorted((ROOT / "tests" / "runtime" / "data").glob("*.mosaico")))


def _write(source: Path, out: Path) -> dict[str, Path]:
    result = mo.compile(source, emit=["p4"])
    result.write(out)
    return {name: out / name for name in switch_dirs(result)}


def _summary(info: P.P4Info) -> dict:
    """What must agree: ids, names, match fields, parameters, sizes, widths."""
    return {
        "tables": {t.preamble.id: (t.preamble.name, [(m.id, m.name, m.bitwidth, m.match_type)
                                                     for m in t.match_fields],
                                   sorted(a.id for a in t.action_refs), t.size,
                                   sorted(t.direct_resource_ids))
                   for t in info.tables},
        "actions": {a.preamble.id: (a.preamble.name, [(p.id, p.name, p.bitwidth)
                                                      for p in a.params])
                    for a in info.actions},
        "counters": {c.preamble.id: (c.preamble.name, c.size, c.spec.unit)
                     for c in info.counters},
        "direct_counters": {c.preamble.id: (c.preamble.name, c.direct_table_id)
                            for c in info.direct_counters},
        "meters": {m.preamble.id: (m.preamble.name, m.size, m.spec.unit) for m in info.meters},
        "registers": {r.preamble.id: (r.preamble.name, r.size,
                                      r.type_spec.bitstring.bit.bitwidth)
                      for r in info.registers},
    }


@pytest.mark.p4c
@pytest.mark.parametrize("source", PROGRAMS, ids=lambda p: p.stem)
def test_p4c_compiles_and_agrees_on_p4info(source, tmp_path):
    dirs = _write(source, tmp_path / "build")
    assert dirs
    for name, d in dirs.items():
        r = p4c(d, name)
        assert r.returncode == 0, r.stderr
        ours = [line for line in r.stderr.splitlines()
                if "warning" in line.lower() and "v1model.p4" not in line
                and "core.p4" not in line]
        assert not ours, "p4c warns about generated code:\n" + "\n".join(ours)
        theirs = text_format.Parse((d / "p4info.p4c.txtpb").read_text(), P.P4Info())
        mine = text_format.Parse((d / "p4info.txtpb").read_text(), P.P4Info())
        assert _summary(theirs) == _summary(mine)


def test_cli_values_are_read_in_both_formats():
    # This BMv2 (1.15) prints the first; older ones the second.
    assert parse_counter("RuntimeCmd: MosaicoIngress.web_ll_0_blocklist_dropped[0]= "
                         "(1400 bytes, 20 packets)\nRuntimeCmd:") == (20, 1400)
    assert parse_counter("x[3]= BmCounterValue(packets=7, bytes=420)") == (7, 420)
    assert parse_counter("x[3]= BmCounterValue(bytes=420, packets=7)") == (7, 420)
    assert parse_register("RuntimeCmd: MosaicoEgress.dualq1_p[0]= 4242\n") == 4242
    with pytest.raises(ValueError):
        parse_counter("RuntimeCmd: Invalid counter operation (INVALID_COUNTER_NAME)")


# ------------------------------------------------------------------ BMv2 in namespaces

FLAGSHIP = ROOT / "examples" / "secure_l4s.mosaico"
SERVER = "10.0.2.1"
HOSTS = {  # as the flagship topology wires them
    "server": Host(0, SERVER, "02:00:00:00:00:10"),
    "l4s": Host(1, "10.0.1.1", "02:00:00:00:00:11"),
    "classic": Host(2, "10.0.1.2", "02:00:00:00:00:12"),
    "attacker": Host(3, "203.0.113.9", "02:00:00:00:00:13"),
}
DRAIN_PPS = 1000  # port 0: queue_rate 12Mbps at 1500-byte packets (run-bmv2.sh)


@pytest.fixture(scope="module")
def flagship_build(tmp_path_factory) -> Path:
    d = _write(FLAGSHIP, tmp_path_factory.mktemp("bmv2") / "build")["s1"]
    r = p4c(d, "s1")
    assert r.returncode == 0, r.stderr
    return d


@pytest.fixture
def s1(flagship_build):
    """BMv2 running the flagship's s1 (fresh state), one namespace per endpoint."""
    sw, proc = start_switch(flagship_build, "s1", HOSTS, idle_ports=(4,))
    try:
        yield sw
    finally:
        stop_switch(sw, proc)


def _check_load(load: Load, packets: int, pps: float | None = None) -> None:
    """The sender really sent ``packets`` — and at ``pps`` or faster where that matters."""
    assert load.sent == packets, f"the sender put {load.sent} of {packets} packets on the wire"
    if pps is not None:
        assert load.pps >= pps, (f"the sender reached {load.pps:.0f} pps, not the {pps:.0f} "
                                 f"this test needs ({load})")


bmv2_test = [pytest.mark.bmv2, pytest.mark.p4c, pytest.mark.root]


@pytest.mark.bmv2
@pytest.mark.p4c
@pytest.mark.root
def test_forwarding_and_blocklist(s1: Bmv2Switch):
    server = sniff(s1, "server", f"ip and dst host {SERVER}")
    _check_load(send(s1, "classic", dst=SERVER, bursts=20, burst=1, interval=0.01,
                     payload=100), 20)
    _check_load(send(s1, "attacker", dst=SERVER, bursts=20, burst=1, interval=0.01,
                     payload=100), 20)
    got = received(server)
    from_classic = [p for p in got if p["src"] == HOSTS["classic"].ip]
    assert len(from_classic) == 20
    assert all(p["ttl"] == 63 and p["chksum_ok"] for p in from_classic)
    assert not [p for p in got if p["src"] == HOSTS["attacker"].ip]
    assert s1.counter("MosaicoIngress.web_ll_0_blocklist_dropped", 0) == 20


@pytest.mark.bmv2
@pytest.mark.p4c
@pytest.mark.root
def test_replies_return_to_the_client_and_nothing_else_does(s1: Bmv2Switch):
    """The server's answers to the Classic client — the reverse 5-tuple of web_ll's
    traffic — leave by the client's port; the same client addressed from another server
    port, or by UDP, is no reply: dropped and counted."""
    classic = sniff(s1, "classic", f"ip and src host {SERVER}")
    l4s = sniff(s1, "l4s", f"ip and src host {SERVER}")
    client = HOSTS["classic"].ip
    _check_load(send(s1, "server", dst=client, sport=80, dport=40000, flags="SA",
                     bursts=5, burst=1, interval=0.01, payload=0), 5)
    _check_load(send(s1, "server", dst=client, sport=443, dport=40001, flags="A",
                     bursts=5, burst=1, interval=0.01, payload=200), 5)
    unclassified = s1.counter("MosaicoIngress.unclassified_packets", 0)
    _check_load(send(s1, "server", dst=client, sport=22, dport=40000, flags="SA",
                     bursts=4, burst=1, interval=0.01, payload=0), 4)
    _check_load(send(s1, "server", dst=client, proto="udp", sport=80, dport=40000,
                     bursts=3, burst=1, interval=0.01, payload=20), 3)
    got = received(classic)
    assert sorted((p["proto"], p["sport"]) for p in got) == [(6, 80)] * 5 + [(6, 443)] * 5
    assert all(p["ttl"] == 63 and p["chksum_ok"] and p["dst"] == client for p in got)
    assert received(l4s) == []  # back to its own client only
    assert s1.counter("MosaicoIngress.unclassified_packets", 0) - unclassified == 7


@pytest.mark.bmv2
@pytest.mark.p4c
@pytest.mark.root
def test_l4s_packets_are_ce_marked_once_the_l_queue_passes_the_threshold(s1: Bmv2Switch):
    # One burst of 150 ECT(1) packets, far faster than port 0 drains (1000 pps): the L queue
    # grows well past the 1.2 ms step once the first packets are through.
    server = sniff(s1, "server", f"ip and dst host {SERVER} and src host 10.0.1.1")
    load = send(s1, "l4s", dst=SERVER, ecn=1, bursts=1, burst=150, interval=0)
    _check_load(load, 150, pps=4 * DRAIN_PPS)
    got = sorted(received(server), key=lambda p: p["t"])
    assert len(got) >= 140, f"{len(got)} of 150 L4S packets arrived"
    # The first packet finds the queue empty and is not marked (the second already waits
    # one 1 ms service time: inside the ramp, it may be).
    late = got[len(got) // 2:]
    assert got[0]["ecn"] == 1
    assert sum(p["ecn"] == 3 for p in late) >= 0.9 * len(late)
    assert s1.counter("MosaicoEgress.dualq1_marks", 0 * 2 + 1) >= len(late) * 0.9
    assert s1.register("MosaicoEgress.dualq1_qdelay_l", 0) > 1200


@pytest.mark.bmv2
@pytest.mark.p4c
@pytest.mark.root
def test_classic_drops_rise_as_the_classic_queue_grows(s1: Bmv2Switch):
    """Not-ECT traffic below the drain rate keeps the Classic queue short and loses nothing
    to the AQM; at twice the drain rate the queue delay passes the 15 ms target, the PI
    controller raises p', and Classic packets are dropped with p'² — more the longer the
    queue stays. Bursts of 10 every 10 ms / 20 ms: each fits the queue's target."""
    def phase(burst: int, interval: float, seconds: int) -> tuple[float, int]:
        n0 = s1.counter("MosaicoEgress.dualq1_packets", 0)
        d0 = s1.counter("MosaicoEgress.dualq1_drops", 0)
        bursts = round(seconds / interval)
        load = send(s1, "classic", dst=SERVER, bursts=bursts, burst=burst, interval=interval)
        pps = burst / interval
        _check_load(load, bursts * burst)
        assert load.seconds <= seconds * 1.2 and load.late < 0.1, (
            f"the sender fell behind its schedule of {pps:.0f} pps: {load}")
        n1 = s1.counter("MosaicoEgress.dualq1_packets", 0)
        d1 = s1.counter("MosaicoEgress.dualq1_drops", 0)
        return (d1 - d0) / max(1, n1 - n0), s1.register("MosaicoEgress.dualq1_p", 0)

    light, p_light = phase(10, 0.02, 3)  # 500 pps: half of what port 0 drains
    assert light < 0.01
    first, p_first = phase(10, 0.005, 3)  # 2000 pps
    second, p_second = phase(10, 0.005, 3)
    assert first > light + 0.02
    assert second >= first * 0.8  # stays high while the queue stays long
    assert p_first > p_light
    assert s1.register("MosaicoEgress.dualq1_qdelay_c", 0) > 15_000
