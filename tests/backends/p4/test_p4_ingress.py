"""The generated ingress P4, run on packets with the switch's own entries.json.

The interpreter of ``p4model.py`` executes the program text (table lookups as BMv2 does
them, actions, library controls, registers, meters, clones), so these show — without BMv2 —
blocklisted sources dropped and counted, allowlists, ACL order, SYN floods cut, rate limits,
mirroring, DualQ classification, forwarding and the detour through a VNF host.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from typing import Any

from google.protobuf import json_format
from p4_support import ROOT, compiled, switch_dirs
from p4model import Interpreter, all_widths, parse_files

from mosaico_dsl.p4proto import p4r as R


class Switch:
    """One compiled switch directory, run packet by packet (state kept across packets)."""

    def __init__(self, example: str, switch: str) -> None:
        files = switch_dirs(compiled(ROOT / "examples" / f"{example}.mosaico"))[switch]
        texts = {k: v.decode() for k, v in files.items() if k.endswith(".p4")}
        self.tree = parse_files(texts, f"{switch}.p4")
        self.widths = all_widths(self.tree)
        self.entries: dict[int, list] = {}
        for doc in json.loads(files["entries.json"]):
            u = json_format.ParseDict(doc, R.Update())
            if u.entity.WhichOneof("entity") == "table_entry":
                te = u.entity.table_entry
                self.entries.setdefault(te.table_id, []).append(te)
        self.registers: dict = {}
        self.counters: dict = {}
        self.red: set[tuple[str, int]] = set()

    def send(self, port: int, *, src: str, dst: str, l4: str | None = "tcp", dport: int = 80,
             sport: int = 40000, flags: int = 0x10, ecn: int = 0, ttl: int = 64,
             dscp: int = 0, now: int = 1_000_000) -> Interpreter:
        fields: dict[str, Any] = {
            "standard_metadata.ingress_port": port,
            "standard_metadata.ingress_global_timestamp": now,
            "hdr.ethernet.dst": 0x02000000FE, "hdr.ethernet.src": 0x0200000001,
            "hdr.ethernet.ether_type": 0x0800,
            "hdr.ipv4.version": 4, "hdr.ipv4.ihl": 5, "hdr.ipv4.ttl": ttl,
            "hdr.ipv4.proto": 6 if l4 == "tcp" else 17, "hdr.ipv4.ecn": ecn,
            "hdr.ipv4.dscp": dscp,
            "hdr.ipv4.src": int(IPv4Address(src)), "hdr.ipv4.dst": int(IPv4Address(dst)),
        }
        valid = {"hdr.ethernet", "hdr.ipv4"}
        if l4:
            fields.update({f"hdr.{l4}.sport": sport, f"hdr.{l4}.dport": dport})
            if l4 == "tcp":
                fields["hdr.tcp.flags"] = flags
            valid.add(f"hdr.{l4}")
        vm = Interpreter(self.tree, fields, self.widths, self.registers, self.counters,
                         valid=valid, entries=self.entries,
                         meter_color=lambda m, i: 2 if (m, i) in self.red else 0)
        vm.run_control("MosaicoIngress")
        return vm


def _out(vm: Interpreter) -> int | None:
    return None if vm.dropped else vm.fields["standard_metadata.egress_spec"]


def test_flagship_blocklist_forwarding_and_classification():
    s1 = Switch("secure_l4s", "s1")
    attack = s1.send(3, src="203.0.113.9", dst="10.0.2.1")
    assert attack.dropped
    assert s1.counters["web_ll_0_blocklist_dropped"][0] == 1
    assert "web_ll_3_forward_routes" not in attack.applied  # dropped before forwarding

    web = s1.send(2, src="10.0.1.2", dst="10.0.2.1", ecn=0)
    assert _out(web) == 0  # to the server
    assert web.fields["hdr.ipv4.ttl"] == 63
    assert web.fields["standard_metadata.priority"] == 0  # Not-ECT: Classic queue
    assert web.fields["meta.mosaico.aqm"] == 1

    l4s = s1.send(1, src="10.0.1.1", dst="10.0.2.1", ecn=1, dport=443)
    assert _out(l4s) == 0
    assert (l4s.fields["standard_metadata.priority"], l4s.fields["meta.mosaico.l4s"]) == (1, 1)

    other = s1.send(2, src="10.0.1.2", dst="10.0.2.1", dport=22)  # not this service
    assert other.dropped and s1.counters["unclassified_packets"][0] == 1

    expiring = s1.send(2, src="10.0.1.2", dst="10.0.2.1", ttl=1)
    assert expiring.dropped


def test_flagship_rate_limit_drops_red_packets():
    s1 = Switch("secure_l4s", "s1")
    s1.red.add(("web_ll_1_ratelimit_meter", 0))
    vm = s1.send(2, src="10.0.1.2", dst="10.0.2.1")
    assert vm.dropped and s1.counters["web_ll_1_ratelimit_dropped"][0] == 1


def test_guarded_edge_allowlist_acl_synguard_mirror():
    e1 = Switch("guarded_edge", "e1")
    srv = "10.3.0.5"
    ok = e1.send(0, src="10.1.0.10", dst=srv, dport=443)
    assert _out(ok) == 3
    assert ok.fields["hdr.ethernet.dst"] == 0x020000000305  # srv's MAC
    assert ok.clones == [5]  # mirrored to the IDS session
    # The remote office may not use SSH (rule 1), but may use HTTPS (rule 2).
    assert e1.send(1, src="10.2.0.10", dst=srv, dport=22).dropped
    assert e1.counters["admin_1_acl_dropped"][0] == 1
    assert _out(e1.send(1, src="10.2.0.10", dst=srv, dport=443)) == 3
    # A source outside the offices is dropped by the allowlist (and counted there).
    spoofed = e1.send(1, src="192.0.2.1", dst=srv, dport=443)
    assert spoofed.dropped and e1.counters["admin_0_allowlist_dropped"][0] == 1
    # DNS over UDP: rule 3 allows it while the TTL is above 1.
    assert _out(e1.send(0, src="10.1.0.10", dst=srv, l4="udp", dport=53)) == 3
    # SYN flood: at most 50 SYNs per second per destination bucket.
    verdicts = [e1.send(0, src="10.1.0.10", dst=srv, dport=443, flags=0x02,
                        now=2_000_000 + i).dropped for i in range(60)]
    assert verdicts == [False] * 50 + [True] * 10
    assert e1.counters["admin_2_synguard_dropped"][0] == 10
    # A new window (1 s later) admits SYNs again; plain ACKs were never counted.
    assert not e1.send(0, src="10.1.0.10", dst=srv, dport=443, flags=0x02,
                       now=3_000_100).dropped
    assert not e1.send(0, src="10.1.0.10", dst=srv, dport=443, flags=0x10,
                       now=2_000_100).dropped


def test_two_services_detour_through_the_vnf_host():
    s1 = Switch("two_services", "s1")
    game = dict(src="10.0.1.1", dst="10.0.3.1", l4="udp", dport=27015)
    first = s1.send(1, **game)
    assert _out(first) == 5  # segment 0 (RateLimit), then out to nfvi1 for SynGuard
    assert first.fields["meta.mosaico.segment"] == 0
    assert "gaming_3_forward_routes" not in first.applied
    back = s1.send(5, **game)  # the VNF host returns it: segment 1 (Fifo, Forward)
    assert back.fields["meta.mosaico.segment"] == 1
    assert _out(back) == 3 and back.fields["hdr.ethernet.dst"] == 0x020000000301
    assert back.fields["hdr.ipv4.ttl"] == 63  # decremented once, by the Forward step
    # dscp 8 is excluded by the service's match; the web service is a separate branch.
    assert s1.send(1, **game, dscp=8).dropped
    web = s1.send(2, src="10.0.1.2", dst="10.0.2.1", dport=80, ecn=3)
    assert _out(web) == 0 and web.fields["standard_metadata.priority"] == 1


def test_flagship_replies_return_to_their_source_and_nothing_else_does():
    s1 = Switch("secure_l4s", "s1")
    # The server's SYN-ACK to the Classic client: the reverse 5-tuple of web_ll's traffic.
    synack = s1.send(0, src="10.0.2.1", dst="10.0.1.2", sport=80, dport=40000, flags=0x12,
                     ecn=0)
    assert _out(synack) == 2  # the client's port
    assert synack.fields["hdr.ipv4.ttl"] == 63  # delivered like a Forward step delivers
    assert synack.fields.get("meta.mosaico.aqm", 0) == 0  # no function, no queue discipline
    assert not any(t.startswith("web_ll_") for t in synack.applied)
    assert _out(s1.send(0, src="10.0.2.1", dst="10.0.1.1", sport=443, dport=51000)) == 1
    # Not replies: another source port, another client address, from a client's port,
    # UDP — dropped and counted like any unclassified packet.
    assert s1.send(0, src="10.0.2.1", dst="10.0.1.2", sport=22, dport=40000).dropped
    assert s1.send(0, src="10.0.2.1", dst="10.9.9.9", sport=80, dport=40000).dropped
    assert s1.send(1, src="10.0.2.1", dst="10.0.1.2", sport=80, dport=40000).dropped
    assert s1.send(0, src="10.0.2.1", dst="10.0.1.2", l4="udp", sport=80).dropped
    assert s1.counters["unclassified_packets"][0] == 4


def test_replies_skip_the_detour_and_get_the_source_mac():
    s1 = Switch("two_services", "s1")
    # gaming detours s1 → nfvi1 → s1 to run SynGuard; its replies run nothing: straight back.
    reply = s1.send(3, src="10.0.3.1", dst="10.0.1.1", l4="udp", sport=27015, dport=5000)
    assert _out(reply) == 1
    assert reply.fields["hdr.ethernet.dst"] == 0x020000000101  # alice's declared MAC
    # gaming serves alice and bob only (`from alice, bob`): no reply path to the web server.
    assert s1.send(3, src="10.0.3.1", dst="10.0.2.1", l4="udp", sport=27015).dropped
