"""The local target applies only the difference — for real, as root, with namespaces.

edge_a.mosaico and edge_b.mosaico differ by one VNF ruleset (the Blocklist on nfvi1 blocks
198.51.100.0/24 instead of 203.0.113.0/24) and one endpoint (probe, on s1's port 3).
Deploying B over A must create the probe's namespace and veth, address it on s1, route to
it from nfvi1, reload the Blocklist's ruleset in place — and touch nothing else: every
namespace of A keeps its identity (a marker device placed in each survives), the
Blocklist's counters keep their values and go on counting, and the queue on s1's port 0
keeps its statistics. Rollback (a later target failing, a step of the local target
failing) and drift (tables deleted or changed by hand) are exercised the same way.

Each test uses its own namespace prefix and removes every namespace it could have
created, even when it fails.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from local_support import reaches
from runtime_helpers import DATA

from mosaico_dsl.cli import cli
from mosaico_dsl.compiler import compile as compile_program
from mosaico_dsl.runtime.p4runtime import Endpoint, connect
from mosaico_dsl.runtime.state import StateStore

pytestmark = pytest.mark.root

BLOCKLIST = "nfvi1-web-0-blocklist"
RATELIMIT = "nfvi1-web-1-ratelimit"
SERVER = "10.0.2.1"


def namespaces(prefix: str) -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith(prefix)}


def sh(*cmd: str, stdin: str | None = None) -> str:
    proc = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.stderr}"
    return proc.stdout


def mosaico(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def prefix():
    p = f"ri{secrets.token_hex(3)}-"
    yield p
    for ns in namespaces(p):
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert not namespaces(p), "namespaces left behind"


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("incremental")
    return tuple(compile_program(DATA / f"edge_{v}.mosaico").write(root / v) for v in "ab")


def args_for(prefix: str, state_path: Path) -> list[str]:
    # The Linux stand-in: these tests read its rulesets and qdiscs (BMv2's own incremental
    # redeploys are in test_runtime_local_bmv2.py).
    return ["--target", "local", "--local-prefix", prefix, "--state", str(state_path),
            "--data-plane", "linux"]


_MARK = "/proc/sys/net/ipv4/tcp_fin_timeout"  # per namespace; 60 in a new one


def mark(prefix: str) -> set[str]:
    """A mark in every namespace of the deployment — a sysctl mosaico never sets: a
    namespace that is deleted and created again (even under the same name and inode
    number) has the default value again."""
    out = namespaces(prefix)
    for ns in out:
        sh("ip", "netns", "exec", ns, "sh", "-c", f"echo 37 > {_MARK}")
    return out


def marked(ns: str) -> bool:
    return sh("ip", "netns", "exec", ns, "cat", _MARK).strip() == "37"


def counters(prefix: str, vnf: str) -> dict[str, int]:
    doc = json.loads(sh("ip", "netns", "exec", prefix + vnf, "nft", "-j", "list", "counters"))
    return {c["name"]: c["packets"] for item in doc["nftables"] if (c := item.get("counter"))}


def blocklisted(prefix: str) -> str:
    doc = json.loads(sh("ip", "netns", "exec", prefix + BLOCKLIST, "nft", "-j", "list",
                        "set", "ip", "mosaico_web_0_blocklist", "web_0_blocklist_prefixes"))
    elems = doc["nftables"][1]["set"].get("elem", [])
    return ",".join(f"{e['prefix']['addr']}/{e['prefix']['len']}" for e in elems)


def qdisc_packets(ns: str, dev: str) -> int:
    stats = json.loads(sh("ip", "netns", "exec", ns, "tc", "-s", "-j", "qdisc", "show",
                          "dev", dev))
    return next(q["packets"] for q in stats if q.get("root"))


SYNS = r"""
import socket, sys
from scapy.layers.inet import IP, TCP
src, dst, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for i in range(count):
    s.sendto(bytes(IP(src=src, dst=dst) / TCP(sport=30000 + i, dport=80, flags="S")), (dst, 0))
"""

DATAGRAMS = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(b"probe", (sys.argv[1], int(sys.argv[2])))
"""


def attack(prefix: str, count: int) -> None:
    """``count`` SYNs from the attacker to the server's port 80 (nothing listens there)."""
    sh("ip", "netns", "exec", f"{prefix}attacker", sys.executable, "-c", SYNS, "203.0.113.9",
       SERVER, str(count))
    subprocess.run(["sleep", "0.3"], check=True)


def changes(out: str) -> set[tuple[str, str]]:
    plan = json.loads(out)
    (unit,) = plan["units"]
    return {(c["op"], re.sub(r"\d+\.\d+\.\d+\.\d+", "ADDR", c["what"])) for c in unit["changes"]}


def test_a_changed_program_applies_only_the_difference(builds, prefix, state_path):
    a, b = builds
    p, args = prefix, args_for(prefix, state_path)
    r = mosaico("deploy", str(a), *args)
    assert r.exit_code == 0, r.output
    before = mark(p)
    assert before == {p + n for n in ("s1", "nfvi1", "client", "attacker", "server",
                                      BLOCKLIST, RATELIMIT)}
    assert reaches(p, "client", 80)
    attack(p, 25)
    blocked = counters(p, BLOCKLIST)
    assert blocked["web_0_blocklist_dropped"] == 25
    passed = blocked["web_0_blocklist_passed"]
    assert passed >= 3  # the client's SYN, ACK, FIN at least
    limited = counters(p, RATELIMIT)
    queued = qdisc_packets(p + "s1", "p0")
    assert queued >= 3

    plan = mosaico("plan", str(b), *args, "--format", "json")
    assert plan.exit_code == 0, plan.output
    assert changes(plan.output) == {
        ("add", f"namespace {p}probe (endpoint probe)"),
        ("add", f"link {p}s1:p3 — {p}probe:eth0"),
        ("modify", f"addressing of {p}s1: + p3 ADDR/32"),
        ("modify", f"addressing of {p}nfvi1: + route ADDR/32 via ADDR dev e0"),
        ("modify", f"nftables nfvi1/web-0-blocklist.nft in {p}{BLOCKLIST} (reloaded in place)"),
        ("add", f"queue of {p}s1:p3 (HTB 1Gbps + netem 100us)"),
    }

    r = mosaico("deploy", str(b), *args)
    assert r.exit_code == 0, r.output
    assert namespaces(p) == before | {f"{p}probe"}
    assert all(marked(ns) for ns in before), "a namespace of A was rebuilt"
    # The ruleset was reloaded in place: same counters, same values, a new prefix set.
    assert counters(p, BLOCKLIST) == blocked
    assert blocklisted(p) == "198.51.100.0/24"
    assert counters(p, RATELIMIT) == limited
    assert qdisc_packets(p + "s1", "p0") >= queued, "s1's queue was reinstalled"
    # The unchanged counters go on counting: the attacker is no longer blocked.
    attack(p, 25)
    assert counters(p, BLOCKLIST) == {"web_0_blocklist_dropped": 25,
                                      "web_0_blocklist_passed": passed + 25}
    # The probe is wired and routed to s1; no service carries its traffic, so s1 drops
    # and counts what it sends on towards the server, as the P4 switch would.
    unclassified = counters(p, "s1")["unclassified_packets"]
    sh("ip", "netns", "exec", f"{p}probe", sys.executable, "-c", DATAGRAMS, SERVER, "8080")
    subprocess.run(["sleep", "0.3"], check=True)
    assert counters(p, "s1")["unclassified_packets"] - unclassified == 3

    again = mosaico("plan", str(b), *args)
    assert "Plan: 0 changes" in again.output, again.output

    # Back to A: the probe goes, the Blocklist blocks 203.0.113.0/24 again.
    r = mosaico("deploy", str(a), *args)
    assert r.exit_code == 0, r.output
    assert f"- namespace {p}probe (endpoint probe)" in r.output
    assert namespaces(p) == before
    assert all(marked(ns) for ns in before)
    assert blocklisted(p) == "203.0.113.0/24"
    assert counters(p, BLOCKLIST) == {"web_0_blocklist_dropped": 25,
                                      "web_0_blocklist_passed": passed + 25}

    gone = mosaico("destroy", *args)
    assert gone.exit_code == 0, gone.output
    assert namespaces(p) == set()


def test_a_later_target_failing_undoes_the_local_changes(builds, prefix, state_path,
                                                         reference_switch):
    """B is deployed to the local target and to s1 over P4Runtime; s1 has another primary
    controller, so after the local steps the deploy fails and rolls them back in reverse
    order: A's realisation is back, namespaces and counters intact."""
    a, b = builds
    p, args = prefix, args_for(prefix, state_path)
    assert mosaico("deploy", str(a), *args).exit_code == 0
    before = mark(p)
    attack(p, 10)
    blocked = counters(p, BLOCKLIST)

    s1 = reference_switch(device_id=1)
    loop = asyncio.new_event_loop()
    other = loop.run_until_complete(connect(Endpoint("ops", s1.address, 1, election_id=99)))
    try:
        r = mosaico("deploy", str(b), *args, "--target", "p4runtime",
                    "--address", f"s1={s1.address}")
    finally:
        loop.run_until_complete(other.close())
        loop.close()
    assert r.exit_code == 1
    assert "error[E1206]" in r.output and "error[E1212]" in r.output
    assert f"undone: local: remove namespace {p}probe" in r.output
    assert "undone: local: restore the previous nftables nfvi1/web-0-blocklist.nft" in r.output
    assert namespaces(p) == before
    assert all(marked(ns) for ns in before)
    assert blocklisted(p) == "203.0.113.0/24"
    assert counters(p, BLOCKLIST) == blocked
    routes = sh("ip", "-n", f"{p}nfvi1", "route", "show")
    assert "10.0.3.1" not in routes
    assert "Plan: 0 changes" in mosaico("plan", str(a), *args).output
    with StateStore(state_path) as store:
        assert [u.target for u in store.units()] == ["local"]


def test_a_failing_local_step_undoes_the_steps_before_it(builds, prefix, state_path):
    """A device named p3 already sits in s1's namespace: the probe's veth cannot be
    created, and the probe's namespace, created just before, is removed again."""
    a, b = builds
    p, args = prefix, args_for(prefix, state_path)
    assert mosaico("deploy", str(a), *args).exit_code == 0
    before = mark(p)
    sh("ip", "-n", f"{p}s1", "link", "add", "p3", "type", "veth", "peer", "name", "p3peer")
    r = mosaico("deploy", str(b), *args)
    assert r.exit_code == 1
    assert "error[E1211]: local target:" in r.output and "File exists" in r.output
    assert f"undone: local: remove namespace {p}probe (endpoint probe)" in r.output
    assert "error[E1212]" in r.output
    assert namespaces(p) == before
    assert all(marked(ns) for ns in before)
    assert blocklisted(p) == "203.0.113.0/24"
    sh("ip", "-n", f"{p}s1", "link", "del", "p3")
    assert "Plan: 0 changes" in mosaico("plan", str(a), *args).output


def test_tables_deleted_or_changed_by_hand_are_drift(builds, prefix, state_path):
    a, _ = builds
    p, args = prefix, args_for(prefix, state_path)
    assert mosaico("deploy", str(a), *args).exit_code == 0
    before = mark(p)
    attack(p, 7)
    sh("ip", "netns", "exec", p + RATELIMIT, "nft", "delete", "table", "ip",
       "mosaico_web_1_ratelimit")
    sh("ip", "netns", "exec", p + BLOCKLIST, "nft", "insert", "rule", "ip",
       "mosaico_web_0_blocklist", "forward", "ip", "saddr", "10.0.1.1", "drop")

    plan = mosaico("plan", str(a), *args)
    assert plan.exit_code == 0, plan.output
    out = plan.output
    assert "drift since the last deploy (2)" in out
    assert (f"- nftables table ip mosaico_web_1_ratelimit (nfvi1/web-1-ratelimit.nft) in "
            f"{p}{RATELIMIT}\n        drift: deleted out of band") in out
    assert (f"~ nftables table ip mosaico_web_0_blocklist (nfvi1/web-0-blocklist.nft) in "
            f"{p}{BLOCKLIST}\n        drift: changed out of band") in out
    assert f"+ nftables nfvi1/web-1-ratelimit.nft in {p}{RATELIMIT}" in out
    assert f"~ nftables nfvi1/web-0-blocklist.nft in {p}{BLOCKLIST} (reloaded in place)" in out
    assert "Plan: 2 changes" in out
    assert not reaches(p, "client", 80), "the rule added by hand drops the client"

    r = mosaico("deploy", str(a), *args)
    assert r.exit_code == 0, r.output
    assert reaches(p, "client", 80), "the rule added by hand is gone"
    assert counters(p, BLOCKLIST)["web_0_blocklist_dropped"] == 7, "counters survive repair"
    assert set(counters(p, RATELIMIT)) == {"web_1_ratelimit_dropped", "web_1_ratelimit_passed"}
    assert all(marked(ns) for ns in before)
    assert "Plan: 0 changes" in mosaico("plan", str(a), *args).output
