"""Shared programs for the simulator tests: small topologies written in mosaico itself."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLAGSHIP = ROOT / "examples" / "secure_l4s.mosaico"


def line_program(*, queue: str = "std.l4s.DualQ()", bottleneck: str = "12Mbps",
                 delay: str = "5ms", queue_rate: str | None = None, filters: str = "",
                 extra_nodes: str = "", extra_links: str = "", match: str | None = None
                 ) -> str:
    """client -- s1 -- server, with ``filters -> queue -> Forward`` on s1."""
    rate = f", queue_rate: {queue_rate}" if queue_rate else ""
    chain = " -> ".join(x for x in (filters, queue, "Forward(to: server)") if x)
    imports = "import std.l4s\n" if "std.l4s" in chain else ""
    imports += "import std.security as sec\n" if "sec." in chain else ""
    return f"""{imports}from std.fwd import Forward

topology t {{
  switch s1 : bmv2 {{ ports: 8, priority_queues: 2{rate} }}
  host nfvi1 : openstack {{ vcpus: 8, ram: 16GiB, trusted: true }}
  endpoint client {{ ip: 10.0.1.1, trusted: true }}
  endpoint client2 {{ ip: 10.0.1.2, trusted: true }}
  endpoint bad {{ ip: 203.0.113.9 }}
  endpoint server {{ ip: 10.0.2.1 }}
  {extra_nodes}
  link client -- s1.1 {{ bandwidth: 1Gbps, delay: 1ms }}
  link client2 -- s1.2 {{ bandwidth: 1Gbps, delay: 1ms }}
  link bad -- s1.3 {{ bandwidth: 1Gbps, delay: 1ms }}
  link s1.4 -- nfvi1 {{ bandwidth: 10Gbps, delay: 50us }}
  link s1.0 -- server {{ bandwidth: {bottleneck}, delay: {delay} }}
  {extra_links}
}}

service web on t {{
  match {match or "ipv4.dst == server and tcp.dport in {80, 443}"}
  chain {{ {chain} }}
}}
"""


@pytest.fixture
def program_file(tmp_path):
    """``program_file(text)`` writes a program and returns its path."""
    def write(text: str, name: str = "prog.mosaico") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write
