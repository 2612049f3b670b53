"""The traffic agents against real Linux queues (root): three namespaces — a client, a
router, a server — and a 12 Mb/s HTB bottleneck on the router's port towards the server.

The L4S sender is checked against what RFC 9331 asks of a scalable flow: with a fixed
fraction p of its packets CE-marked (nftables, at random) its α converges to p and it
still fills the link; with losses (a short FIFO) it halves and keeps the link busy. The
kernel-TCP sender is captured at both ends; the floods send at the asked rate from
spoofed sources. Each test checks it produced the load it meant to.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path

import pytest

from mosaico_dsl.experiment.launch import Agents
from mosaico_dsl.experiment.records import read_records
from mosaico_dsl.experiment.tasks import SINK, SOURCE, AgentTask, FlowTask

pytestmark = pytest.mark.root

RATE_BPS = 12_000_000
CLIENT, SERVER = "10.9.1.1", "10.9.2.1"
S = 1_000_000_000


def sh(*cmd: str, stdin: str | None = None) -> None:
    subprocess.run(list(cmd), check=True, input=stdin, text=True, capture_output=True)


@pytest.fixture
def lab():
    """``make(limit=packets, mark=percent)`` builds the three namespaces; all removed after."""
    p = f"xa{secrets.token_hex(3)}-"
    names = [f"{p}{n}" for n in ("client", "router", "server")]

    def make(limit: int = 200, mark: int = 0) -> str:
        c, r, s = names
        for ns in names:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", "eth0", "netns", c, "type", "veth", "peer", "name", "r0",
           "netns", r)
        sh("ip", "link", "add", "eth0", "netns", s, "type", "veth", "peer", "name", "r1",
           "netns", r)
        for ns, dev, addr in ((c, "eth0", f"{CLIENT}/24"), (r, "r0", "10.9.1.254/24"),
                              (r, "r1", "10.9.2.254/24"), (s, "eth0", f"{SERVER}/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        for ns in (c, s):  # as the local target does: the wire sees MTU-sized packets
            sh("ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off", "tso", "off",
               "gso", "off")
        sh("ip", "-n", c, "route", "add", "default", "via", "10.9.1.254")
        sh("ip", "-n", s, "route", "add", "default", "via", "10.9.2.254")
        for key in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                    "net.ipv4.conf.r0.rp_filter=0"):
            sh("ip", "netns", "exec", r, "sysctl", "-qw", key)
        sh("ip", "netns", "exec", r, "tc", "qdisc", "add", "dev", "r1", "root", "handle", "1:",
           "htb", "default", "1")
        sh("ip", "netns", "exec", r, "tc", "class", "add", "dev", "r1", "parent", "1:",
           "classid", "1:1", "htb", "rate", f"{RATE_BPS}bit", "ceil", f"{RATE_BPS}bit")
        sh("ip", "netns", "exec", r, "tc", "qdisc", "add", "dev", "r1", "parent", "1:1",
           "pfifo", "limit", str(limit))
        if mark:
            # RFC 9331 marking stand-in: a fixed fraction of ECT(1) packets set to CE
            sh("ip", "netns", "exec", r, "nft", "-f", "-", stdin=(
                "table ip experiment {\n chain f {\n type filter hook forward priority 0;\n"
                f" ip ecn ect1 numgen random mod 100 < {mark} ip ecn set ce\n }}\n}}\n"))
        return p

    yield make
    for ns in names:
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def flow(kind: str, index: int, seconds: float, **kw) -> FlowTask:
    defaults = dict(src_ip=CLIENT, dst_ip=SERVER, proto=6, sport=10000 + index, dport=80,
                    ecn=1 if kind == "prague" else 0, size=1500, start_ns=0,
                    stop_ns=int(seconds * S), max_packets=10**6, pacing=kind == "prague",
                    congestion=kind if kind in ("reno", "cubic") else "")
    defaults.update(kw)
    return FlowTask(f"{kind}#{index + 1}", index, kind, **defaults)


def run_agents(tmp_path: Path, prefix: str, flows: list[FlowTask], seconds: float) -> dict:
    end = int(seconds * S) + S
    agents = Agents(tmp_path)
    try:
        agents.start(AgentTask(SINK, f"{prefix}server", SERVER, "eth0", end + S // 2,
                               tuple(flows), str(tmp_path / "sink.rec")), "sink")
        for f in flows:
            agents.start(AgentTask(SOURCE, f"{prefix}client", CLIENT, "eth0", end, (f,),
                                   str(tmp_path / f"{f.index}.rec")), f"src{f.index}")
        agents.wait_ready(60)
        agents.go(time.time_ns() + 300_000_000)
        agents.wait(seconds + 30)
    finally:
        agents.stop()
    out = {"sink": read_records(tmp_path / "sink.rec")}
    for f in flows:
        out[f.name] = read_records(tmp_path / f"{f.index}.rec")
    return out


def received(rec: dict, f: FlowTask):
    rx = rec["sink"][1]["rx"]
    return rx[(rx["sport"] == f.sport) & (rx["dport"] == f.dport)]


def test_l4s_sender_tracks_the_marked_fraction_and_fills_the_link(lab, tmp_path):
    prefix = lab(limit=500, mark=10)
    f = flow("prague", 0, 5)
    rec = run_agents(tmp_path, prefix, [f], 5)
    meta, tables = rec[f.name]
    rx = received(rec, f)
    data = rx[rx["kind"] == 1]
    assert meta["sent"] > 1000, "the sender produced the load it meant to"
    assert len(data) == meta["delivered"] and meta["lost"] == 0
    ce = (data["ecn"] == 3).mean()
    assert 0.07 < ce < 0.13, "nftables marks 10 % of ECT(1) packets"
    assert meta["ce"] == int((data["ecn"] == 3).sum()), "feedback reported every mark"
    assert 0.05 < meta["alpha"] < 0.2, "α converges to the marked fraction (g = 1/16)"
    late = data[data["t_ns"] > 1 * S]
    goodput = len(late) * 1448 * 8 / ((late["t_ns"].max() - late["t_ns"].min()) / S)
    assert goodput > 0.8 * RATE_BPS, f"the link is filled ({goodput / 1e6:.1f} Mb/s)"
    assert (data["t_ns"] - data["clock_ns"]).min() > 0, "one clock: delays are positive"


def test_l4s_sender_halves_on_loss_and_keeps_the_link_busy(lab, tmp_path):
    prefix = lab(limit=8)
    f = flow("prague", 0, 5)
    rec = run_agents(tmp_path, prefix, [f], 5)
    meta, tables = rec[f.name]
    data = received(rec, f)
    assert meta["lost"] > 0 and meta["reductions"] > 0
    assert meta["ce"] == 0
    assert meta["lost"] == meta["sent"] - len(data[data["kind"] == 1])
    goodput = len(data) * 1448 * 8 / 5
    assert goodput > 0.7 * RATE_BPS, f"{goodput / 1e6:.1f} Mb/s"
    cwnd = tables["state"]["cwnd_milli"] / 1000
    assert cwnd.max() < 40, "losses bound the window near the FIFO's size"


def test_kernel_tcp_is_captured_leaving_and_arriving(lab, tmp_path):
    prefix = lab(limit=50)
    f = flow("cubic", 0, 3)
    rec = run_agents(tmp_path, prefix, [f], 3)
    meta, tables = rec[f.name]
    tx = tables["tx"]
    tx = tx[tx["length"] > 52]
    rx = received(rec, f)
    rx = rx[rx["length"] > 52]
    pairs = set(zip(tx["ident"].tolist(), tx["seq"].tolist(), strict=True)) & \
        set(zip(rx["ident"].tolist(), rx["seq"].tolist(), strict=True))
    assert len(tx) > 1500, "the connection carried the load"
    assert len(pairs) >= 0.9 * len(tx), "each segment is found at both ends"
    assert meta["capture_dropped"] == 0
    app = rec["sink"][1]["app"]
    assert app["bytes"].sum() > 0.8 * RATE_BPS * 3 / 8 * 0.9
    info = tables["info"]
    assert len(info) > 100 and info["rtt_us"].max() > 0 and info["cwnd"].max() > 2


@pytest.mark.parametrize("kind,proto", [("flood", 6), ("flood", 17), ("syn", 6)])
def test_floods_leave_at_the_asked_rate_from_spoofed_sources(lab, tmp_path, kind, proto):
    prefix = lab(limit=5000)
    f = flow(kind, 0, 2, proto=proto, size=64 if kind == "flood" else 60, ecn=0,
             interval_ns=500_000, spoof="203.0.113.0/24", max_packets=4000, pacing=False)
    rec = run_agents(tmp_path, prefix, [f], 2)
    meta, tables = rec[f.name]
    assert meta["planned"] == 4000 and meta["sent"] >= 0.95 * 4000
    rx = rec["sink"][1]["rx"]
    got = rx[(rx["src"] >> 8) == (0xCB007100 >> 8)]
    assert len(got) >= 0.9 * meta["sent"]
    assert len(set(got["src"].tolist())) > 100, "sources drawn from the whole /24"
    assert set(got["proto"].tolist()) == {proto}
    if kind == "syn":
        assert set((got["flags"] & 0x3F).tolist()) == {0x02}
        assert set(got["length"].tolist()) == {60}
