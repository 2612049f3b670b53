"""The flagship's switch s1 on a real BMv2, with its endpoints in network namespaces.

Shared by the packet tests of the thrift-loaded switch (``run-bmv2.sh``: simple_switch and
simple_switch_CLI) and of the P4Runtime-deployed one (``simple_switch_grpc`` and ``mosaico
deploy``), so both run the very same traffic against the very same wiring.

Everything lives in namespaces named with a random prefix: the switch in its own
(``<prefix>sw``, where its Thrift port 9090 and P4Runtime port 9559 are its own loopback's,
so concurrent runs never collide), each endpoint in one more, wired to the switch's ports
by veth pairs as examples/secure_l4s.mosaico's topology says. :func:`flagship_lab` removes
all of it, and kills what it started, on the way out.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["HOSTS", "SWITCH_MAC", "Lab", "flagship_lab"]

HOSTS = {  # endpoint → (switch port, IPv4, MAC), as the flagship topology wires them
    "server": (0, "10.0.2.1", "02:00:00:00:00:10"),
    "l4s": (1, "10.0.1.1", "02:00:00:00:00:11"),
    "classic": (2, "10.0.1.2", "02:00:00:00:00:12"),
    "attacker": (3, "203.0.113.9", "02:00:00:00:00:13"),
}
IDLE_PORTS = (4,)  # nfvi1's port: present, nothing behind it
SWITCH_MAC = "02:00:00:00:00:fe"

_TRAFFIC = textwrap.dedent("""
    import json, sys, time
    from scapy.all import AsyncSniffer, Ether, IP, TCP, sendp, conf
    conf.verb = 0
    spec = json.loads(sys.argv[1])
    if spec["mode"] == "sniff":
        s = AsyncSniffer(iface="eth0", filter="ip and dst host " + spec["dst"], store=True)
        s.start(); time.sleep(spec["seconds"]); s.stop()
        def checksum_ok(ip):
            fresh = IP(bytes(ip))
            seen = fresh.chksum
            del fresh.chksum
            return IP(bytes(fresh)).chksum == seen
        print(json.dumps([{"ecn": p[IP].tos & 3, "ttl": p[IP].ttl, "src": p[IP].src,
                           "chksum_ok": checksum_ok(p[IP]), "t": float(p.time)}
                          for p in s.results]))
    else:
        pkt = (Ether(src=spec["mac"], dst=spec["switch"]) /
               IP(src=spec["src"], dst=spec["dst"], tos=spec["ecn"], ttl=64) /
               TCP(sport=40000, dport=spec["dport"], flags="A") / (b"x" * spec["payload"]))
        gap = 1.0 / spec["pps"]
        start = time.time()
        for i in range(spec["count"]):
            sendp(pkt, iface="eth0")
            delay = start + (i + 1) * gap - time.time()
            if delay > 0:
                time.sleep(delay)
""")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=60)


@dataclass
class Lab:
    prefix: str
    switch_ns: str
    namespaces: dict[str, str]  # endpoint → its namespace
    started: list[subprocess.Popen] = field(default_factory=list)

    @property
    def interfaces(self) -> dict[int, str]:
        """Switch port → its interface inside the switch's namespace."""
        return {port: f"p{port}" for port in sorted(
            [p for p, _, _ in HOSTS.values()] + list(IDLE_PORTS))}

    @property
    def notifications(self) -> str:
        """BMv2's option for its nanomsg notification socket: an IPC path in /tmp, which
        namespaces share, so each lab needs its own (the default is per device id)."""
        return f"--notifications-addr ipc:///tmp/{self.prefix}-notifications.ipc"

    def in_switch(self, *cmd: str) -> list[str]:
        """``cmd`` run inside the switch's namespace."""
        return ["ip", "netns", "exec", self.switch_ns, *cmd]

    def start(self, cmd: Sequence[str], **kw) -> subprocess.Popen:
        """Start ``cmd`` (in its own session, so its children go with it); killed at exit."""
        proc = subprocess.Popen(list(cmd), start_new_session=True, **kw)
        self.started.append(proc)
        return proc

    def cli(self, command: str, thrift_port: int = 9090) -> str:
        """One simple_switch_CLI command against the switch (inside its namespace)."""
        return subprocess.run(self.in_switch("simple_switch_CLI", "--thrift-port",
                                             str(thrift_port)),
                              input=command + "\n", capture_output=True, text=True,
                              timeout=60).stdout

    def counter(self, name: str, index: int, thrift_port: int = 9090) -> int:
        """Packets of a counter cell; simple_switch_CLI prints ``name[i]= (B bytes, P
        packets)`` (older builds: ``BmCounterValue(packets=P, bytes=B)``)."""
        out = self.cli(f"counter_read {name} {index}", thrift_port)
        m = re.search(r"(\d+) packets\)|packets=(\d+)", out)
        if m is None:
            raise AssertionError(f"cannot read counter {name}[{index}]: {out!r}")
        return int(m.group(1) or m.group(2))

    def _traffic(self, endpoint: str, spec: dict, background: bool):
        cmd = ["ip", "netns", "exec", self.namespaces[endpoint], sys.executable, "-c",
               _TRAFFIC, json.dumps(spec)]
        if background:
            return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)

    def send(self, endpoint: str, *, count: int, pps: float, ecn: int = 0, dport: int = 80,
             payload: int = 1400, background: bool = False):
        _, src, mac = HOSTS[endpoint]
        return self._traffic(endpoint, {"mode": "send", "src": src, "dst": HOSTS["server"][1],
                                        "mac": mac, "switch": SWITCH_MAC, "ecn": ecn,
                                        "dport": dport, "count": count, "pps": pps,
                                        "payload": payload}, background)

    def sniff_server(self, seconds: float) -> subprocess.Popen:
        return self._traffic("server", {"mode": "sniff", "dst": HOSTS["server"][1],
                                        "seconds": seconds}, background=True)

    @staticmethod
    def received(proc: subprocess.Popen) -> list[dict]:
        out, _ = proc.communicate(timeout=300)
        return json.loads(out.strip().splitlines()[-1]) if out.strip() else []


@contextmanager
def flagship_lab() -> Iterator[Lab]:
    """The namespaces and veths of the flagship's s1 (root needed); removed at exit."""
    prefix = "mo" + secrets.token_hex(3)
    lab = Lab(prefix, f"{prefix}sw", {name: f"{prefix}{name}" for name in HOSTS})
    created: list[str] = []
    try:
        for ns in (lab.switch_ns, *lab.namespaces.values()):
            _ip("netns", "add", ns)
            created.append(ns)
        _ip("-n", lab.switch_ns, "link", "set", "lo", "up")
        for name, (port, ip, mac) in HOSTS.items():
            ns = lab.namespaces[name]
            _ip("-n", lab.switch_ns, "link", "add", f"p{port}", "type", "veth", "peer", "name",
                "eth0", "netns", ns)
            _ip("-n", lab.switch_ns, "link", "set", f"p{port}", "up")
            _ip("-n", ns, "link", "set", "eth0", "address", mac)
            _ip("-n", ns, "addr", "add", f"{ip}/8", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            for _, other_ip, _ in HOSTS.values():  # static ARP: everything goes via s1
                if other_ip != ip:
                    _ip("-n", ns, "neigh", "replace", other_ip, "lladdr", SWITCH_MAC, "dev",
                        "eth0")
        for port in IDLE_PORTS:
            _ip("-n", lab.switch_ns, "link", "add", f"p{port}", "type", "veth", "peer",
                "name", f"x{port}")
            _ip("-n", lab.switch_ns, "link", "set", f"p{port}", "up")
        yield lab
    finally:
        import os
        import signal

        for proc in lab.started:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(10)
        for ns in reversed(created):
            _ip("netns", "del", ns, check=False)
        if os.path.exists(f"/tmp/{prefix}-notifications.ipc"):
            os.unlink(f"/tmp/{prefix}-notifications.ipc")
