"""Helpers of the real-BMv2 tests: a compiled switch running ``simple_switch`` inside a
network namespace of its own, hosts in namespaces on veth pairs, its CLI, and traffic that
checks it produced the load it was asked for.

Everything is named with a random prefix and lives in namespaces (the switch's Thrift port
is on the switch namespace's own loopback), so concurrent runs do not collide.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

THRIFT_PORT = 9090  # inside the switch's namespace: private to this run
SWITCH_MAC = "02:00:00:00:00:fe"


def sh(*cmd: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=check,
                          timeout=120)


def p4c(switch_dir: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["p4c-bm2-ss", "--arch", "v1model", "--std", "p4-16", "-o", f"{name}.json",
         "--p4runtime-files", "p4info.p4c.txtpb", f"{name}.p4"],
        cwd=switch_dir, capture_output=True, text=True, timeout=600)


# ------------------------------------------------------------------------------ the CLI

_COUNTER = re.compile(
    r"\[(?P<i>\d+)\]\s*=\s*(?:\((?P<bytes>\d+) bytes, (?P<packets>\d+) packets\)"
    r"|BmCounterValue\((?:packets=(?P<p2>\d+), bytes=(?P<b2>\d+)"
    r"|bytes=(?P<b3>\d+), packets=(?P<p3>\d+))\))")
_REGISTER = re.compile(r"\[(?P<i>\d+)\]\s*=\s*(?P<value>\d+)")


def parse_counter(text: str) -> tuple[int, int]:
    """(packets, bytes) from ``counter_read``: this BMv2's ``name[0]= (B bytes, P packets)``
    or older ones' ``name[0]= BmCounterValue(packets=P, bytes=B)``."""
    m = _COUNTER.search(text)
    if m is None:
        raise ValueError(f"no counter value in {text!r}")
    packets = m["packets"] or m["p2"] or m["p3"]
    octets = m["bytes"] or m["b2"] or m["b3"]
    return int(packets), int(octets)


def parse_register(text: str) -> int:
    m = _REGISTER.search(text)
    if m is None:
        raise ValueError(f"no register value in {text!r}")
    return int(m["value"])


# ------------------------------------------------------------------------ the topology


@dataclass(frozen=True)
class Host:
    port: int  # the switch port it hangs off
    ip: str
    mac: str


@dataclass
class Bmv2Switch:
    """A running switch: ``namespace(name)`` for hosts, ``cli()`` for its runtime."""

    prefix: str
    directory: Path
    hosts: dict[str, Host]

    @property
    def switch_ns(self) -> str:
        return f"{self.prefix}sw"

    def namespace(self, host: str) -> str:
        return f"{self.prefix}{host}"

    def cli(self, command: str, check: bool = True) -> str:
        return sh("ip", "netns", "exec", self.switch_ns, "simple_switch_CLI", "--thrift-port",
                  str(THRIFT_PORT), stdin=command + "\n", check=check).stdout

    def counter(self, name: str, index: int) -> int:
        """Packets of a counter cell."""
        return parse_counter(self.cli(f"counter_read {name} {index}"))[0]

    def register(self, name: str, index: int) -> int:
        return parse_register(self.cli(f"register_read {name} {index}"))


def _no_offloads(ns: str, dev: str) -> None:
    """A kernel socket's packets on a veth carry partial checksums (TX offload) and may be
    GSO super-frames; BMv2 reads frames raw off the wire side, so both must be off."""
    sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off",
       "gro", "off", check=False)


def _no_ipv6(ns: str) -> None:
    """No IPv6 in a namespace: the kernel's router solicitations and MLD reports would count
    among what a host sent and what the switch did not classify."""
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
       "net.ipv6.conf.default.disable_ipv6=1")


def start_switch(directory: Path, name: str, hosts: dict[str, Host], idle_ports: tuple[int, ...],
                 ) -> tuple[Bmv2Switch, subprocess.Popen]:
    """Run ``directory``'s ``run-bmv2.sh`` (p4c already done) in a namespace, each host in
    one of its own, wired to the ports the topology gives them; returns once the script has
    loaded the entries. The caller stops it with :func:`stop_switch`."""
    sw = Bmv2Switch(f"p4t{secrets.token_hex(3)}-", directory, hosts)
    # BMv2's notification socket is a file (default /tmp/bmv2-<device>-notifications.ipc):
    # a namespace does not separate it, so each run names its own.
    ipc = Path(tempfile.mkdtemp(prefix=sw.prefix)) / "notifications.ipc"
    env = dict(os.environ, BMV2="simple_switch", BMV2_ARGS=f"--notifications-addr ipc://{ipc}")
    sh("ip", "netns", "add", sw.switch_ns)
    _no_ipv6(sw.switch_ns)
    sh("ip", "netns", "exec", sw.switch_ns, "ip", "link", "set", "lo", "up")
    for host, h in hosts.items():
        ns = sw.namespace(host)
        sh("ip", "netns", "add", ns)
        _no_ipv6(ns)
        sh("ip", "link", "add", f"p{h.port}", "netns", sw.switch_ns, "type", "veth", "peer",
           "name", "eth0", "netns", ns)
        for cmd in (("link", "set", "eth0", "address", h.mac),
                    ("addr", "add", f"{h.ip}/8", "dev", "eth0"),
                    ("link", "set", "eth0", "up"), ("link", "set", "lo", "up")):
            sh("ip", "netns", "exec", ns, "ip", *cmd)
        for other in hosts.values():  # static neighbours: everything via the switch
            if other.ip != h.ip:
                sh("ip", "netns", "exec", ns, "ip", "neigh", "replace", other.ip, "lladdr",
                   SWITCH_MAC, "dev", "eth0")
        _no_offloads(ns, "eth0")
        _no_offloads(sw.switch_ns, f"p{h.port}")
        sh("ip", "netns", "exec", sw.switch_ns, "ip", "link", "set", f"p{h.port}", "up")
        env[f"IFACE_{h.port}"] = f"p{h.port}"
    for port in idle_ports:  # present but unused
        sh("ip", "netns", "exec", sw.switch_ns, "ip", "link", "add", f"p{port}", "type", "veth",
           "peer", "name", f"x{port}")
        sh("ip", "netns", "exec", sw.switch_ns, "ip", "link", "set", f"p{port}", "up")
        env[f"IFACE_{port}"] = f"p{port}"
    proc = subprocess.Popen(["ip", "netns", "exec", sw.switch_ns, "sh",
                             str(directory / "run-bmv2.sh")], cwd=directory, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    last = 0
    # The script loads entries.txt right after the switch answers; the last line of it is
    # loaded when the classifier holds every entry the file lists.
    wanted = sum(1 for line in (directory / "entries.txt").read_text().splitlines()
                 if line.startswith("table_add MosaicoIngress.classifier "))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        out = sw.cli("table_num_entries MosaicoIngress.classifier", check=False)
        m = re.search(r"RuntimeCmd:\s*(\d+)\s*$", out, re.M)
        last = int(m.group(1)) if m else 0
        if last >= wanted:
            time.sleep(0.5)  # the queue rates follow the entries in the same CLI session
            return sw, proc
        time.sleep(0.3)
    output = ""
    if proc.poll() is None:
        stop_switch(sw, proc)
    elif proc.stdout is not None:
        output = proc.stdout.read().decode(errors="replace")
    pytest.fail(f"BMv2 did not start ({last}/{wanted} classifier entries): {output}")


def stop_switch(sw: Bmv2Switch, proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    for ns in (sw.switch_ns, *(sw.namespace(h) for h in sw.hosts)):
        sh("ip", "netns", "del", ns, check=False)


# ------------------------------------------------------------------------------ traffic

_TRAFFIC = textwrap.dedent(r"""
    import json, select, socket, sys, time
    from scapy.all import AsyncSniffer, Ether, IP, TCP, UDP, conf
    conf.verb = 0
    spec = json.loads(sys.argv[1])

    def tx_packets():
        with open("/sys/class/net/eth0/statistics/tx_packets") as f:
            return int(f.read())

    if spec["mode"] == "sniff":
        s = AsyncSniffer(iface="eth0", filter=spec["filter"], store=True)
        s.start(); time.sleep(0.5)  # the capture socket opens in the sniffer's thread
        print("ready", flush=True)
        select.select([sys.stdin], [], [], spec["seconds"])  # until told, at most this long
        time.sleep(0.3)  # what is still crossing the switch
        s.stop()
        def checksum_ok(ip):
            fresh = IP(bytes(ip))
            seen = fresh.chksum
            del fresh.chksum
            return IP(bytes(fresh)).chksum == seen
        print(json.dumps([{"ecn": p[IP].tos & 3, "ttl": p[IP].ttl, "src": p[IP].src,
                           "dst": p[IP].dst, "sport": p[IP].sport, "dport": p[IP].dport,
                           "proto": p[IP].proto, "eth_dst": p[Ether].dst,
                           "chksum_ok": checksum_ok(p[IP]), "t": float(p.time)}
                          for p in s.results if IP in p]))
    else:
        l4 = (TCP(sport=spec["sport"], dport=spec["dport"], flags=spec["flags"])
              if spec["proto"] == "tcp" else UDP(sport=spec["sport"], dport=spec["dport"]))
        frame = bytes(Ether(src=spec["mac"], dst=spec["switch"]) /
                      IP(src=spec["src"], dst=spec["dst"], tos=spec["ecn"], ttl=64) /
                      l4 / (b"x" * spec["payload"]))
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        sock.bind(("eth0", 0))
        tx0, start = tx_packets(), time.monotonic()
        late = 0.0
        for b in range(spec["bursts"]):
            due = start + b * spec["interval"]
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            else:
                late = max(late, now - due)
            for _ in range(spec["burst"]):
                sock.send(frame)
        end = time.monotonic()
        print(json.dumps({"sent": tx_packets() - tx0, "seconds": end - start,
                          "late": late}))
""")


@dataclass(frozen=True)
class Load:
    """What left the sender's interface (its own tx counter) and over how long."""

    sent: int
    seconds: float
    late: float  # the worst delay of a burst behind its schedule

    @property
    def pps(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("inf")


def in_ns(sw: Bmv2Switch, host: str, spec: dict, background: bool = False):
    cmd = ["ip", "netns", "exec", sw.namespace(host), sys.executable, "-c", _TRAFFIC,
           json.dumps(spec)]
    if background:
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)


def send(sw: Bmv2Switch, host: str, *, dst: str, bursts: int, burst: int, interval: float,
         ecn: int = 0, proto: str = "tcp", sport: int = 40000, dport: int = 80,
         flags: str = "A", payload: int = 1400) -> Load:
    """``bursts`` bursts of ``burst`` identical frames, one every ``interval`` seconds, from
    ``host`` to the switch; each burst leaves back to back through a raw socket."""
    h = sw.hosts[host]
    out = in_ns(sw, host, {"mode": "send", "src": h.ip, "dst": dst, "mac": h.mac,
                           "switch": SWITCH_MAC, "ecn": ecn, "proto": proto, "sport": sport,
                           "dport": dport, "flags": flags, "payload": payload,
                           "bursts": bursts, "burst": burst, "interval": interval}).stdout
    doc = json.loads(out.strip().splitlines()[-1])
    return Load(doc["sent"], doc["seconds"], doc["late"])


def sniff(sw: Bmv2Switch, host: str, bpf: str, seconds: float = 120) -> subprocess.Popen:
    """Capture on ``host`` until :func:`received` (at most ``seconds``)."""
    proc = in_ns(sw, host, {"mode": "sniff", "filter": bpf, "seconds": seconds},
                 background=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def received(proc: subprocess.Popen) -> list[dict]:
    out, _ = proc.communicate("stop\n", timeout=300)
    return json.loads(out.strip().splitlines()[-1]) if out.strip() else []
