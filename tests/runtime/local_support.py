"""Helpers of the local target's real tests: namespaces, BMv2 processes, the CLI, and
counters of what left a namespace (the load a test meant to produce)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from mosaico_dsl.backends.vnf import localswitch
from mosaico_dsl.cli import cli


def namespaces(prefix: str) -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith(prefix)}


def switches(prefix: str) -> list[int]:
    """simple_switch processes started for namespaces of this prefix."""
    out = []
    mark = str(localswitch.run_dir(prefix)).encode()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"simple_switch") and any(mark in a for a in argv):
                out.append(int(pid))
    return out


def leftovers(prefix: str) -> list[str]:
    """Namespaces, switch processes and run directories of this prefix still there."""
    root = localswitch.run_dir("x").parent
    runs = [p.name for p in root.glob(f"{prefix}*")] if root.is_dir() else []
    return sorted(namespaces(prefix)) + [f"pid {p}" for p in switches(prefix)] + runs


def clean(prefix: str) -> None:
    """Remove whatever a failed test left: switches (also those whose namespace is gone,
    found by their run directory), their run directories, namespaces."""
    root = localswitch.run_dir("x").parent
    runs = {p.name for p in root.glob(f"{prefix}*")} if root.is_dir() else set()
    for ns in namespaces(prefix) | runs:
        localswitch.stop(ns)
    for ns in namespaces(prefix):
        subprocess.run(["ip", "netns", "del", ns], check=False)


def mosaico(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def status(state: Path) -> list[dict]:
    r = mosaico("status", "--state", str(state), "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


_SENT = """
table ip mosaico_test {
	counter sent { }
	chain output {
		type filter hook output priority filter; policy accept;
		ip daddr %s %s dport %d counter name "sent"
	}
}
"""


def count_sent(ns: str, daddr: str, dport: int, proto: str = "tcp") -> None:
    """Count, in ``ns``, the packets that leave it for ``daddr:dport`` (a test table,
    replaced if there is one)."""
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"],
                   input="table ip mosaico_test\ndelete table ip mosaico_test\n"
                         + _SENT % (daddr, proto, dport), text=True, check=True)


def sent(ns: str) -> int:
    out = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "counter", "ip",
                          "mosaico_test", "sent"], capture_output=True, text=True, check=True)
    return next(i["counter"]["packets"] for i in json.loads(out.stdout)["nftables"]
                if "counter" in i)


def rx_packets(ns: str, dev: str = "eth0") -> int:
    out = subprocess.run(["ip", "-n", ns, "-j", "-s", "link", "show", dev],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]["stats64"]["rx"]["packets"]


SERVE = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(); print("ready", flush=True)
s.settimeout(20)
c, _ = s.accept(); c.sendall(b"hello"); c.close()
"""
CONNECT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print(c.recv(5).decode())
"""


def reaches(prefix: str, source: str, port: int, server: str = "server",
            address: str = "10.0.2.1") -> bool:
    """A TCP exchange — the replies too — from ``source`` to ``server`` on ``port``."""
    proc = subprocess.Popen(["ip", "netns", "exec", prefix + server, sys.executable, "-c",
                             SERVE, address, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        got = subprocess.run(["ip", "netns", "exec", prefix + source, sys.executable, "-c",
                              CONNECT, address, str(port)], capture_output=True, text=True,
                             timeout=30)
        return got.stdout.strip() == "hello"
    finally:
        proc.kill()
        proc.wait(10)


BURST = r"""
import json, socket, sys, time
from scapy.layers.inet import IP, TCP
src, dst, dport, count, tos, pps = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
pkts = [bytes(IP(src=src, dst=dst, tos=tos) / TCP(sport=40000 + i, dport=dport, flags="A",
                                                   seq=i) / (b"x" * 1400))
        for i in range(count)]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, 32, 16 << 20)  # SO_SNDBUFFORCE: room for the whole burst
t0 = time.monotonic()
for i, p in enumerate(pkts):
    while time.monotonic() < t0 + i / pps:
        pass
    s.sendto(p, (dst, 0))
print(json.dumps({"seconds": time.monotonic() - t0}))
"""


def burst(ns: str, src: str, dst: str, dport: int, count: int, tos: int, pps: int) -> float:
    """Send ``count`` full-size TCP segments from ``ns`` at ``pps`` (a raw socket), with
    the IP TOS byte ``tos`` (its low two bits are ECN); the seconds it took."""
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", BURST, src, dst,
                          str(dport), str(count), str(tos), str(pps)], capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout)["seconds"]


_ARRIVED = """
table ip mosaico_test {
	counter arrived { }
	counter ce { }
	chain prerouting {
		type filter hook prerouting priority raw; policy accept;
		ip saddr %s tcp dport %d counter name "arrived"
		ip saddr %s tcp dport %d ip ecn ce counter name "ce"
	}
}
"""


def count_arrived(ns: str, saddr: str, dport: int) -> None:
    """Count, in ``ns``, the packets arriving from ``saddr`` for ``dport``, and those CE."""
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"],
                   input="table ip mosaico_test\ndelete table ip mosaico_test\n"
                         + _ARRIVED % (saddr, dport, saddr, dport), text=True, check=True)


def arrived(ns: str) -> dict[str, int]:
    out = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "counters", "table",
                          "ip", "mosaico_test"], capture_output=True, text=True, check=True)
    return {i["counter"]["name"]: i["counter"]["packets"]
            for i in json.loads(out.stdout)["nftables"] if "counter" in i}
