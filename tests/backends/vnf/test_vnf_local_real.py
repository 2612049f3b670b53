"""The local target for real: namespaces, veth, nftables and tc on this machine (root).

Builds the flagship — and the same chain with its filters on the OpenStack host, so the
traffic detours through VNF namespaces — loads the generated rulesets, and sends real
packets: a TCP exchange from the L4S client reaches the server; SYNs from the attacker's
blocklisted address are dropped and counted; a SYN flood above the 20 kpps rate limit
(burst 200) is cut down to what the token bucket allows and counted. Every run uses its
own namespace prefix, and the deployment is destroyed even when an assertion fails.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vnf_support import EXAMPLES, PROGRAMS, have, run

import mosaico_dsl as mo
from mosaico_dsl.backends.vnf import (
    LocalPlan,
    LocalTargetError,
    apply,
    destroy,
    load_plan,
    read_counters,
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not (have("ip") and have("nft") and have("tc")),
                       reason="needs iproute2 (ip, tc) and nftables (nft)"),
]

SERVER, PORT = "10.0.2.1", 80
RATE, BURST = 20_000, 200

# Runs inside a namespace: send COUNT TCP SYNs from SRC to DST:PORT through a raw socket as
# fast as possible; prints the elapsed time. Packets are built by scapy once, sent raw.
SYN_SENDER = r"""
import json, socket, sys, time
from scapy.layers.inet import IP, TCP
src, dst, dport, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pkts = [bytes(IP(src=src, dst=dst) / TCP(sport=20000 + i, dport=dport, flags="S", seq=i))
        for i in range(min(count, 512))]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, 32, 64 << 20)  # SO_SNDBUFFORCE: room to queue the burst
s.settimeout(20)
t0 = time.time()
for i in range(count):
    s.sendto(pkts[i % len(pkts)], (dst, 0))
print(json.dumps({"start": t0, "end": time.time()}))
"""

# Runs inside the server namespace: accept connections for a bounded time, echo one message.
ECHO_SERVER = r"""
import socket, sys, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(16)
srv.settimeout(1.0)
print("ready", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        continue
    with conn:
        conn.settimeout(5)
        data = conn.recv(100)
        conn.sendall(b"echo:" + data)
"""

CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"hello mosaico")
print(s.recv(100).decode())
"""

# Counts what arrives at the server, by source (a test-owned table in the server namespace).
SERVER_COUNTERS = """
table ip mosaico_test {
	counter from_l4s { }
	counter from_classic { }
	counter from_attacker { }
	chain input {
		type filter hook input priority filter; policy accept;
		ip saddr 10.0.1.1 tcp dport 80 counter name "from_l4s"
		ip saddr 10.0.1.2 tcp dport 443 counter name "from_classic"
		ip saddr 203.0.113.9 tcp dport { 80, 443 } counter name "from_attacker"
	}
}
"""


def _ns(prefix: str, name: str) -> list[str]:
    return ["ip", "netns", "exec", f"{prefix}{name}"]


def _py(prefix: str, ns: str, code: str, *args: str) -> str:
    return run(*_ns(prefix, ns), sys.executable, "-c", code, *args).stdout


def _server_counts(prefix: str) -> dict[str, int]:
    doc = json.loads(run(*_ns(prefix, "server"), "nft", "-j", "list", "counters").stdout)
    return {c["name"]: c["packets"] for item in doc["nftables"]
            if (c := item.get("counter")) and c["table"] == "mosaico_test"}


def _flood(prefix: str, ns: str, src: str, dport: int, count: int, procs: int) -> float:
    """``procs`` concurrent senders of ``count`` SYNs each; the seconds they sent for."""
    cmd = [*_ns(prefix, ns), sys.executable, "-c", SYN_SENDER, src, SERVER, str(dport),
           str(count)]
    running = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(procs)]
    windows = [json.loads(p.communicate(timeout=60)[0]) for p in running]
    assert all(p.returncode == 0 for p in running)
    return max(w["end"] for w in windows) - min(w["start"] for w in windows)


def _stall(prefix: str, ns: str, src: str, dport: int, count: int) -> list[str]:
    """Queue ``count`` SYNs behind a slow HTB class on ``eth0``: 100 kbit/s lets a trickle
    of ~230 packets/s through, far under the limit. Returns the `tc` command prefix."""
    tc = [*_ns(prefix, ns), "tc"]
    run(*tc, "qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "htb", "default", "1")
    run(*tc, "class", "replace", "dev", "eth0", "parent", "1:", "classid", "1:1", "htb",
        "rate", "100kbit", "ceil", "100kbit")
    run(*tc, "qdisc", "replace", "dev", "eth0", "parent", "1:1", "handle", "10:", "pfifo",
        "limit", str(count + 100))
    _flood(prefix, ns, src, dport, count, 1)
    return tc


def _release(tc: list[str]) -> float:
    """Open the class to 10 Gbit/s: the kernel sends the queue back to back (HTB charges
    tokens only for what it sent, so there is no deficit to pay back). Returns the seconds
    from the release to an empty queue, an upper bound of the burst's duration."""
    t0 = time.monotonic()
    run(*tc, "class", "change", "dev", "eth0", "parent", "1:", "classid", "1:1", "htb",
        "rate", "10gbit", "ceil", "10gbit", "burst", "4mb", "cburst", "4mb")
    deadline = t0 + 10
    while time.monotonic() < deadline:
        stats = json.loads(run(*tc, "-s", "-j", "qdisc", "show", "dev", "eth0").stdout)
        if all(q.get("qlen", 0) == 0 for q in stats):
            break
        time.sleep(0.002)
    window = time.monotonic() - t0
    run(*tc, "qdisc", "del", "dev", "eth0", "root")
    time.sleep(0.3)  # let the last packets cross the chain before counters are read
    return window


def _counter(plan: LocalPlan, values: dict, instance: str, meaning: str) -> int:
    for ns in plan.namespaces:
        for ref in ns.counters:
            if ref.instance == instance and ref.meaning == meaning:
                return values[(ns.name, ref.name)][0]
    raise KeyError((instance, meaning))


@pytest.fixture
def deployed(request, tmp_path: Path):
    """Compile, write, load and apply ``request.param``; always destroy afterwards."""
    source: Path = request.param
    out = mo.compile(source).write(tmp_path / "build")
    plan = load_plan(out)
    prefix = f"mt{secrets.token_hex(3)}-"
    server = None
    try:
        # Links unshaped: the flood below must outpace 20 kpps from a Python raw socket, and
        # shaping every veth costs more per packet than the 1 Gb/s links would limit.
        deployment = apply(plan, prefix=prefix, shape=False)
        run(*_ns(prefix, "server"), "nft", "-f", "-", stdin=SERVER_COUNTERS)
        server = subprocess.Popen([*_ns(prefix, "server"), sys.executable, "-c", ECHO_SERVER,
                                   str(PORT)], stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield plan, prefix, deployment
    finally:
        if server is not None:
            server.kill()
            server.wait(timeout=10)
        destroy(plan, prefix=prefix)
        left = run("ip", "netns", "list").stdout
        assert prefix not in left, f"namespaces left behind: {left}"


CASES = [EXAMPLES / "secure_l4s.mosaico", PROGRAMS / "vnf_chain.mosaico"]


@pytest.mark.parametrize("deployed", CASES, ids=["flagship-on-s1", "filters-on-vnfs"],
                         indirect=True)
def test_real_traffic_through_the_chain(deployed) -> None:
    plan, prefix, deployment = deployed
    # The DualQ's qdisc was installed on the bottleneck towards the server, whatever the
    # kernel offers (dualpi2, or the fallback the script names).
    assert [(q[1], q[2] in ("dualpi2", "fq_codel", "pfifo")) for q in deployment.qdiscs] == [
        ("p0", True)]

    # 1. Allowed traffic: a TCP exchange from the L4S client reaches the server.
    before = read_counters(plan, prefix=prefix)
    assert _py(prefix, "l4s_client", CLIENT, SERVER, str(PORT)).strip() == "echo:hello mosaico"
    after = read_counters(plan, prefix=prefix)
    assert _counter(plan, after, "web_ll/0", "passed") > _counter(plan, before, "web_ll/0",
                                                                  "passed")
    assert _counter(plan, after, "web_ll/3", "passed") > 0
    assert _server_counts(prefix)["from_l4s"] >= 3  # SYN, ACK, data (at least)

    # 2. The attacker's prefix is blocklisted: every SYN is dropped and counted.
    before = after
    _flood(prefix, "attacker", "203.0.113.9", 443, 50, 1)
    time.sleep(0.3)
    after = read_counters(plan, prefix=prefix)
    assert _counter(plan, after, "web_ll/0", "dropped") - \
        _counter(plan, before, "web_ll/0", "dropped") == 50
    assert _server_counts(prefix)["from_attacker"] == 0

    # 3. A SYN flood from the classic client far above 20 kpps. Python cannot send that fast
    #    on a busy machine, so the packets are queued on the client's interface first and
    #    released at once: the kernel sends them at line rate, as a real burst would come.
    #    The token bucket lets the burst and the rate through and drops (and counts) the
    #    rest. Port 443 has no listener: the server answers with RSTs, the client is silent.
    def limiter(values: dict) -> tuple[int, int]:
        return (_counter(plan, values, "web_ll/1", "passed"),
                _counter(plan, values, "web_ll/1", "dropped"))

    before = limiter(read_counters(plan, prefix=prefix))
    server_before = _server_counts(prefix)["from_classic"]
    sent = 3000
    tc = _stall(prefix, "classic_client", "10.0.1.2", 443, sent)
    at_release = limiter(read_counters(plan, prefix=prefix))
    window = _release(tc)
    after = limiter(read_counters(plan, prefix=prefix))
    assert at_release[1] == before[1], "the trickle under the rate is not dropped"
    passed, dropped = after[0] - at_release[0], after[1] - at_release[1]
    # Packets the host's backlogs shed on the way are never counted; the rest meet the
    # limiter once, and the bucket (full at the release) passes the burst, then the rate.
    assert after[0] + after[1] - before[0] - before[1] <= sent
    assert dropped > 0, (passed, dropped, window)
    assert min(BURST, passed + dropped) <= passed <= BURST + RATE * window + 20, (
        passed, dropped, window)
    received = _server_counts(prefix)["from_classic"] - server_before
    assert 0 < received <= after[0] - before[0]


def test_links_are_shaped_and_a_taken_prefix_is_refused(tmp_path: Path) -> None:
    out = mo.compile(EXAMPLES / "secure_l4s.mosaico", emit=["vnf"]).write(tmp_path / "b")
    plan = load_plan(out)
    prefix = f"mt{secrets.token_hex(3)}-"
    try:
        d = apply(plan, prefix=prefix)
        # (tc 6.1 prints HTB classes as text only, even with -j)
        server = run(*_ns(prefix, "server"), "tc", "class", "show", "dev", "eth0").stdout
        assert "class htb 1:1 root" in server and "rate 12Mbit ceil 12Mbit" in server
        port = run(*_ns(prefix, "s1"), "tc", "class", "show", "dev", "p1").stdout
        assert "rate 1Gbit ceil 1Gbit" in port
        # p0 carries the DualQ: its HTB (at the 12 Mb/s bottleneck) comes from tc.sh.
        assert (f"{prefix}s1", "p0") in {(ns, dev) for ns, dev, _ in d.qdiscs}
        # The 5 ms delay is emulated where the kernel has netem, and said so where not.
        qdiscs = run(*_ns(prefix, "server"), "tc", "qdisc", "show", "dev", "eth0").stdout
        warned = any("delays are not emulated" in w for w in d.warnings)
        assert ("netem" in qdiscs and "delay 5ms" in qdiscs) != warned
        with pytest.raises(LocalTargetError, match="already exist"):
            apply(plan, prefix=prefix)
    finally:
        destroy(plan, prefix=prefix)
        destroy(plan, prefix=prefix)
    assert prefix not in run("ip", "netns", "list").stdout


# ---------------------------------------------------------------------- replies (stateful)

# Server: accept one connection, read until the client shuts its side, send as many bytes
# back, close. Client: send N bytes, shut down writing, read to EOF; print both counts.
BULK_SERVER = r"""
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1]))); srv.listen(1); srv.settimeout(30)
print("ready", flush=True)
conn, _ = srv.accept(); conn.settimeout(30)
got = 0
while chunk := conn.recv(65536):
    got += len(chunk)
conn.sendall(b"r" * got); conn.close()
print(got, flush=True)
"""
BULK_CLIENT = r"""
import json, socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[4]))
c.sendall(b"q" * int(sys.argv[3])); c.shutdown(socket.SHUT_WR)
back = 0
while chunk := c.recv(65536):
    back += len(chunk)
print(json.dumps({"sent": int(sys.argv[3]), "back": back}))
"""
CONNECT = r"""
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("connected")
except OSError as e:
    print(type(e).__name__)
"""
# One packet from SRC:SPORT to DST:DPORT (raw: no connection behind it).
ONE_PACKET = r"""
import socket, sys
from scapy.layers.inet import IP, TCP, UDP
src, sport, dst, dport, proto = sys.argv[1:6]
sport, dport = int(sport), int(dport)
l4 = TCP(sport=sport, dport=dport, flags="SA") if proto == "tcp" else UDP(sport=sport,
                                                                          dport=dport)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(bytes(IP(src=src, dst=dst) / l4 / b"x"), (dst, 0))
"""


def _own(plan: LocalPlan, values: dict, meaning: str) -> int:
    """A switch stand-in's own counter (``replies`` or ``unclassified``) on s1."""
    ns = plan.namespace_of("s1")
    ref = next(r for r in ns.counters if not r.instance and r.meaning == meaning)
    return values[(ns.name, ref.name)][0]


@pytest.fixture
def stand_in(tmp_path: Path):
    """``stand_in(text)``: the program compiled and applied unshaped; destroyed after."""
    applied: list[tuple[LocalPlan, str]] = []

    def make(text: str) -> tuple[LocalPlan, str]:
        out = mo.compile(text).write(tmp_path / f"build{len(applied)}")
        plan = load_plan(out)
        prefix = f"mr{secrets.token_hex(3)}-"
        applied.append((plan, prefix))
        apply(plan, prefix=prefix, shape=False)
        return plan, prefix

    yield make
    for plan, prefix in applied:
        destroy(plan, prefix=prefix)
        assert prefix not in run("ip", "netns", "list").stdout


def test_tcp_through_the_stand_in_both_ways_and_only_replies_come_back(stand_in) -> None:
    plan, prefix = stand_in((EXAMPLES / "secure_l4s.mosaico").read_text())
    server = subprocess.Popen([*_ns(prefix, "server"), sys.executable, "-c", BULK_SERVER,
                               "443"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        before = read_counters(plan, prefix=prefix)
        size = 2_000_000
        got = json.loads(_py(prefix, "classic_client", BULK_CLIENT, SERVER, "443",
                             str(size), "20"))
        assert got == {"sent": size, "back": size}  # the connection completed both ways
        assert int(server.communicate(timeout=30)[0].strip()) == size
    finally:
        server.kill()
        server.wait(timeout=10)
    after = read_counters(plan, prefix=prefix)
    # The server's segments (≥ 2 MB of them) came back as replies; nothing was unclassified.
    assert _own(plan, after, "replies") - _own(plan, before, "replies") >= size // 65536
    assert _own(plan, after, "unclassified") == _own(plan, before, "unclassified")

    # Not replies: a datagram from the server, and a SYN-ACK from its port 443 that no
    # connection asked for (stateful: P4's stateless entries would pass the second).
    for sport, proto in ((5000, "udp"), (443, "tcp")):
        _py(prefix, "server", ONE_PACKET, SERVER, str(sport), "10.0.1.2", "40001", proto)
    time.sleep(0.3)
    final = read_counters(plan, prefix=prefix)
    assert _own(plan, final, "unclassified") - _own(plan, after, "unclassified") == 2
    assert _own(plan, final, "replies") == _own(plan, after, "replies")


def test_reply_drop_lets_no_connection_complete(stand_in) -> None:
    text = (EXAMPLES / "secure_l4s.mosaico").read_text().replace(
        "  require secure\n", "  require secure\n  reply drop\n")
    plan, prefix = stand_in(text)
    server = subprocess.Popen([*_ns(prefix, "server"), sys.executable, "-c", ECHO_SERVER,
                               "443"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        before = read_counters(plan, prefix=prefix)
        assert _py(prefix, "classic_client", CONNECT, SERVER, "443").strip() == "TimeoutError"
    finally:
        server.kill()
        server.wait(timeout=10)
    after = read_counters(plan, prefix=prefix)
    # The SYNs passed the chain; every SYN-ACK the server sent back was dropped and counted.
    assert _counter(plan, after, "web_ll/3", "passed") > _counter(plan, before, "web_ll/3",
                                                                  "passed")
    assert _own(plan, after, "unclassified") - _own(plan, before, "unclassified") >= 1
    assert not any(not r.instance and r.meaning == "replies"
                   for r in plan.namespace_of("s1").counters)


DIAMOND = """
import std.security as sec
from std.fwd import Forward

topology t {
  switch s1 : bmv2 { ports: 3 }
  switch a : bmv2 { ports: 2 }
  switch b : bmv2 { ports: 2 }
  switch s3 : bmv2 { ports: 3 }
  endpoint client { ip: 10.0.1.1, trusted: true }
  endpoint server { ip: 10.0.2.1 }
  link client -- s1.0 { bandwidth: 1Gbps, delay: 1ms }
  link s1.1 -- a.0 { bandwidth: 1Gbps, delay: 1ms }
  link s1.2 -- b.0 { bandwidth: 1Gbps, delay: 1ms }
  link a.1 -- s3.1 { bandwidth: 1Gbps, delay: 1ms }
  link b.1 -- s3.2 { bandwidth: 1Gbps, delay: 1ms }
  link s3.0 -- server { bandwidth: 1Gbps, delay: 1ms }
}

service web on t {
  match ipv4.dst == server and tcp.dport == 80
  from client
  chain { sec.Blocklist(prefixes: [203.0.113.0/24]) @ s3 -> Forward(to: server) }
}

service dns on t {
  match ipv4.dst == server and udp.dport == 53
  from client
  chain { sec.Blocklist(prefixes: [203.0.113.0/24]) @ a -> Forward(to: server) }
}
"""


def test_replies_retrace_a_route_the_destination_routes_do_not_take(tmp_path: Path) -> None:
    """Two equal paths; `web`'s requests go through `b`, destination routes through `a`
    (where `dns` runs, so `a` drops what it does not classify). Only `b`'s conntrack knows
    `web`'s connections: its replies must be steered back through `b`."""
    from dataclasses import replace

    from mosaico_dsl.backends.vnf.localplan import plan_local
    from mosaico_dsl.compiler import check
    from mosaico_dsl.place import Visit, place

    program = check(DIAMOND)
    placement = place(program)
    web = next(r for r in placement.routes if r.service == "web")
    runs = {v.node: v.instances for v in web.visits}
    via_b = tuple(Visit(n, runs.get(n, ())) for n in ("client", "s1", "b", "s3", "server"))
    routes = tuple(replace(r, visits=via_b) if r is web else r for r in placement.routes)
    plan = plan_local(program, replace(placement, routes=routes))
    s3 = plan.namespace_of("s3")
    assert [p.comment for p in s3.policy_routes] == ["replies towards b"]
    a_side = plan.namespace_of("a").interface("p1").address.split("/")[0]
    assert next(r for r in s3.routes if r.destination == "10.0.1.1/32").via == a_side
    prefix = f"md{secrets.token_hex(3)}-"
    server = None
    try:
        apply(plan, prefix=prefix, shape=False)
        server = subprocess.Popen([*_ns(prefix, "server"), sys.executable, "-c", ECHO_SERVER,
                                   "80"], stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        assert _py(prefix, "client", CLIENT, SERVER, "80").strip() == "echo:hello mosaico"
        counts = read_counters(plan, prefix=prefix)
        assert counts[("b", "replies")][0] > 0
        assert counts[("a", "unclassified_packets")][0] == 0
    finally:
        if server is not None:
            server.kill()
            server.wait(timeout=10)
        destroy(plan, prefix=prefix)
    assert prefix not in run("ip", "netns", "list").stdout
