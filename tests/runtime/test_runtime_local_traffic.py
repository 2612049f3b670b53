"""Real traffic through every example that has a P4 switch, deployed with
``mosaico deploy --target local`` — on BMv2 (the compiled program) and on the Linux stand-in.

Per example and data plane (root; BMv2 and p4c for the BMv2 runs):

* a TCP bulk transfer (iperf3) from each trusted client to its server completes in both
  directions, replies included, with a goodput within 20 % of the bottleneck of that
  direction (below);
* connection attempts the program refuses (the flagship's attacker, blocklisted; an
  untrusted office's SSH, denied by the guarded edge's ACL) fail, and the refusing
  function's drop counter, read by ``mosaico status``, equals the packets that left the
  sender — counted in the sender's own namespace;
* traffic no service matches is dropped and counted as unclassified, exactly;
* UDP datagrams of a UDP service arrive, all of them, through the VNF detour; mirrored
  traffic arrives at the collector, one copy per packet forwarded.

**The bottleneck.** TCP with timestamps carries ``MSS`` payload bytes (1448 at MTU 1500,
read from iperf3) in an Ethernet frame of ``MSS + 66`` bytes (20 IP, 20 TCP, 12 options,
14 Ethernet). HTB, which shapes the links' Linux ends, counts frame bytes: a link of B bit/s
carries ``B · MSS / (MSS + 66)`` of goodput. BMv2 paces each egress port in packets per
second (entries.txt's ``set_queue_rate``: the link's, or the switch's ``queue_rate``,
divided by 1500-byte packets), one TCP segment per packet: ``pps · MSS · 8``. On BMv2 the
switch's ports are not shaped by HTB — BMv2 is the queue — so client → server is limited
by the client's link and BMv2's port towards the server, server → client by the server's
link and BMv2's port towards the client. The flagship: 1000 pps (12 Mb/s / 1500 B) gives
11.58 Mb/s towards the server; the server's 12 Mb/s link gives 11.48 Mb/s back. On the
stand-in both ends of every link are shaped: the smaller link, 11.48 Mb/s both ways.

guarded_edge declares 1 Gb/s links. BMv2 does not forward that much on a 2-core machine:
measured here, office → srv ran at 5–70 Mb/s (about 4–6 kpps with the mirror's copies),
changing with the machine's load — the switch's CPU share, not a rate the program sets. So
this test narrows the office's and the server's links to 12 Mb/s (a queue rate BMv2 keeps
up with, as in the flagship); every function, port and the mirror are the example's own.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from local_support import clean, count_sent, leftovers, mosaico, rx_packets, sent, status

from mosaico_dsl.compiler import compile as compile_program

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 4  # per transfer and direction
HEADERS = 66  # IPv4 20 + TCP 20 + timestamps 12 + Ethernet 14


@dataclass(frozen=True)
class Attempts:
    """TCP connection attempts that must fail, and the status row that counts them."""

    source: str
    server: str
    port: int
    counted_by: str  # a function instance ("web_ll/0"), or "unclassified"


@dataclass(frozen=True)
class Datagrams:
    source: str
    server: str
    port: int
    count: int
    pps: int  # well under the service's rate limit
    service: str


@dataclass(frozen=True)
class Scenario:
    transfers: tuple[tuple[str, str, int], ...]  # (trusted client, server, port)
    refused: tuple[Attempts, ...]
    datagrams: tuple[Datagrams, ...] = ()
    mirror: tuple[str, str, str] | None = None  # (collector, mirror instance, forward inst.)
    edits: tuple[tuple[str, str], ...] = field(default=())  # source text replacements


SCENARIOS = {
    "secure_l4s": Scenario(
        transfers=(("classic_client", "server", 80), ("l4s_client", "server", 443)),
        refused=(Attempts("attacker", "server", 80, "web_ll/0"),
                 Attempts("classic_client", "server", 22, "unclassified"))),
    "two_services": Scenario(
        transfers=(("alice", "web", 80), ("bob", "web", 443)),
        refused=(Attempts("alice", "game", 80, "unclassified"),),
        datagrams=(Datagrams("alice", "game", 27015, 400, 400, "gaming"),)),
    "guarded_edge": Scenario(
        transfers=(("office", "srv", 22),),
        refused=(Attempts("remote", "srv", 22, "admin/1"),
                 Attempts("office", "srv", 80, "unclassified")),
        mirror=("ids", "admin/3", "admin/4"),
        edits=(("office -- e1.0 { bandwidth: 1Gbps", "office -- e1.0 { bandwidth: 12Mbps"),
               ("e1.3   -- srv  { bandwidth: 1Gbps", "e1.3   -- srv  { bandwidth: 12Mbps"))),
}


def _with_p4_switch() -> set[str]:
    return {p.stem for p in (ROOT / "examples").glob("*.mosaico")
            if re.search(r"^\s*switch\s+\w+\s*:\s*bmv2", p.read_text(), re.M)}


def test_every_example_with_a_p4_switch_has_a_scenario():
    assert set(SCENARIOS) == _with_p4_switch()


# --------------------------------------------------------------------------- the build


@dataclass(frozen=True)
class Topology:
    ips: dict[str, str]
    links: dict[frozenset, tuple[int, dict[str, int | None]]]  # {a, b} → (bps, node → port)
    queue_pps: dict[int, int]  # BMv2 port → set_queue_rate

    @classmethod
    def of(cls, build: Path) -> Topology:
        (topo,) = json.loads((build / "ir.json").read_text())["topologies"]
        ips = {e["name"]: e["ip"]["ipv4"] for e in topo["endpoints"]}
        links = {}
        for lk in topo["links"]:
            a, b = lk["a"], lk["b"]
            links[frozenset((a["node"], b["node"]))] = (
                lk["bandwidth"]["bandwidth_bps"],
                {a["node"]: a.get("port"), b["node"]: b.get("port")})
        (switch,) = topo["switches"]
        rates = re.findall(r"^set_queue_rate (\d+) (\d+)$",
                           (build / switch["name"] / "entries.txt").read_text(), re.M)
        return cls(ips, links, {int(port): int(pps) for pps, port in rates})

    def link(self, endpoint: str) -> tuple[int, int]:
        """(bandwidth, switch port) of an endpoint's link to the switch."""
        (bps, ports), = [v for k, v in self.links.items() if endpoint in k]
        (port,) = [p for n, p in ports.items() if n != endpoint]
        return bps, port

    def bottleneck(self, sender: str, receiver: str, plane: str, mss: int) -> float:
        """Goodput (bit/s) of a bulk TCP transfer from ``sender`` to ``receiver``."""
        s_bps, _ = self.link(sender)
        r_bps, r_port = self.link(receiver)
        htb = s_bps * mss / (mss + HEADERS)  # the sender's own link, shaped at its end
        if plane == "bmv2":
            return min(htb, self.queue_pps[r_port] * mss * 8)
        return min(htb, r_bps * mss / (mss + HEADERS))


# --------------------------------------------------------------------------- traffic


def _in(prefix: str, ns: str) -> list[str]:
    return ["ip", "netns", "exec", prefix + ns]


def iperf(prefix: str, client: str, server: str, address: str, port: int,
          reverse: bool) -> dict:
    """One iperf3 transfer of SECONDS; its JSON report."""
    srv = subprocess.Popen([*_in(prefix, server), "iperf3", "-s", "-1", "--forceflush", "-p",
                            str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while "listening" not in (line := srv.stdout.readline()):
            assert line, "iperf3 -s exited"
        run = subprocess.run([*_in(prefix, client), "iperf3", "-c", address, "-p", str(port),
                              "-t", str(SECONDS), "-J", *(["-R"] if reverse else [])],
                             capture_output=True, text=True, timeout=SECONDS + 60)
        report = json.loads(run.stdout)
        assert "error" not in report, report["error"]
        return report
    finally:
        srv.kill()
        srv.wait(10)


ATTEMPT = """
import socket, sys
for _ in range(int(sys.argv[3])):
    s = socket.socket()
    s.settimeout(0.4)
    try:
        s.connect((sys.argv[1], int(sys.argv[2])))
    except OSError:
        pass
    else:
        print("connected")
    s.close()
"""

DATAGRAMS = """
import json, socket, sys, time
dst, port, count, pps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t0 = time.monotonic()
for i in range(count):
    while time.monotonic() < t0 + i / pps:
        time.sleep(0.0005)
    s.sendto(b"x" * 200, (dst, port))
print(json.dumps({"seconds": time.monotonic() - t0}))
"""

RECEIVE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.settimeout(3); print("ready", flush=True)
n = 0
try:
    while True:
        s.recv(2048); n += 1
except socket.timeout:
    print(n)
"""


def rows(state: Path, node: str) -> dict[str, dict]:
    return {r["service"]: r for r in status(state) if r["node"] == node}


def unclassified(by: dict[str, dict]) -> int:
    """The switch's drops that no service owns: the packets no service matched."""
    return (by["*"]["drops"] or 0) - sum(r["drops"] or 0 for s, r in by.items()
                                          if s != "*" and "/" not in s)


@pytest.mark.root
@pytest.mark.parametrize("plane", [
    pytest.param("bmv2", marks=[pytest.mark.bmv2, pytest.mark.p4c]), "linux"])
@pytest.mark.parametrize("example", sorted(SCENARIOS))
def test_traffic(example, plane, tmp_path):
    sc = SCENARIOS[example]
    text = (ROOT / "examples" / f"{example}.mosaico").read_text()
    for old, new in sc.edits:
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "src").mkdir()
    src = tmp_path / "src" / f"{example}.mosaico"
    src.write_text(text)
    build = compile_program(src).write(tmp_path / "build")
    topo = Topology.of(build)
    (switch,) = {p.parent.name for p in build.glob("*/entries.txt")}
    prefix = f"rt{secrets.token_hex(3)}-"
    state = tmp_path / "state.db"
    args = ["--target", "local", "--local-prefix", prefix, "--state", str(state),
            "--data-plane", plane]
    try:
        r = mosaico("deploy", str(build), *args)
        assert r.exit_code == 0, r.output
        assert f"switch {switch}: data plane {plane}" in r.output

        # -- bulk TCP, both directions, at the bottleneck's rate
        for client, server, port in sc.transfers:
            for reverse in (False, True):
                report = iperf(prefix, client, server, topo.ips[server], port, reverse)
                end = report["end"]
                what = f"{client} {'<-' if reverse else '->'} {server}:{port} on {plane}"
                # the load it meant: a sender with data all the time, for the whole run
                assert end["sum_sent"]["seconds"] >= 0.95 * SECONDS, what
                assert all(i["sum"]["bytes"] > 0 for i in report["intervals"]), what
                assert end["sum_sent"]["bytes"] >= end["sum_received"]["bytes"], what
                mss = report["start"]["tcp_mss_default"]
                sender, receiver = (server, client) if reverse else (client, server)
                want = topo.bottleneck(sender, receiver, plane, mss)
                got = end["sum_received"]["bits_per_second"]
                assert 0.8 * want <= got <= 1.05 * want, \
                    f"{what}: goodput {got / 1e6:.2f} Mb/s, bottleneck {want / 1e6:.2f} Mb/s"

        # -- refused attempts: they fail, and exactly what left the sender is counted
        for a in sc.refused:
            ns = prefix + a.source
            count_sent(ns, topo.ips[a.server], a.port)
            before = rows(state, switch)
            out = subprocess.run([*_in(prefix, a.source), sys.executable, "-c", ATTEMPT,
                                  topo.ips[a.server], str(a.port), "3"],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0 and "connected" not in out.stdout, out
            time.sleep(0.3)
            after = rows(state, switch)
            packets = sent(ns)
            assert packets >= 3, "every attempt sent its SYN"
            if a.counted_by == "unclassified":
                assert unclassified(after) - unclassified(before) == packets
            else:
                assert (after[a.counted_by]["drops"] - (before[a.counted_by]["drops"] or 0)
                        == packets), f"{a.counted_by} on {plane}"

        # -- datagrams through the VNF detour: every one arrives
        for d in sc.datagrams:
            recv = subprocess.Popen([*_in(prefix, d.server), sys.executable, "-c", RECEIVE,
                                     str(d.port)], stdout=subprocess.PIPE, text=True)
            assert recv.stdout.readline().strip() == "ready"
            count_sent(prefix + d.source, topo.ips[d.server], d.port, "udp")
            before = rows(state, switch)[d.service]["packets"] or 0
            out = subprocess.run([*_in(prefix, d.source), sys.executable, "-c", DATAGRAMS,
                                  topo.ips[d.server], str(d.port), str(d.count), str(d.pps)],
                                 capture_output=True, text=True, timeout=120, check=True)
            took = json.loads(out.stdout)["seconds"]
            assert took >= (d.count - 1) / d.pps * 0.99, "paced as intended"
            assert sent(prefix + d.source) == d.count
            assert int(recv.communicate(timeout=30)[0].strip()) == d.count
            assert rows(state, switch)[d.service]["packets"] - before == d.count

        # -- the mirror: one copy at the collector per packet forwarded
        if sc.mirror is not None:
            collector, mirror, forward = sc.mirror
            client, server, port = sc.transfers[0]
            before_rx = rx_packets(prefix + collector)
            before = rows(state, switch)
            iperf(prefix, client, server, topo.ips[server], port, False)
            time.sleep(0.3)
            after = rows(state, switch)
            copies = rx_packets(prefix + collector) - before_rx
            counted = mirror if plane == "linux" else forward  # BMv2: the route's hits
            assert copies == after[counted]["packets"] - (before[counted]["packets"] or 0) > 0
    finally:
        mosaico("destroy", "--state", str(state))
        clean(prefix)
    assert not leftovers(prefix)
